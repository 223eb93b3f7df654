//! Payment fees per event and provider (pretix's `<provider>_fee_abs` and
//! `<provider>_fee_percent` settings): starting a provider payment adds this
//! fee to the order as a payment fee.

use sea_orm_migration::prelude::*;

use crate::columns::id;
use crate::keys::{drop_tables, foreign_key, reference, unique_index};

#[derive(DeriveMigrationName)]
pub struct Migration;

#[derive(DeriveIden, Clone)]
enum PaymentProviderFees {
    Table,
    Id,
    EventId,
    Provider,
    FixedMinor,
    PercentBp,
}

#[derive(DeriveIden)]
enum Events {
    Table,
}

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .create_table(
                Table::create()
                    .table(PaymentProviderFees::Table)
                    .col(id(PaymentProviderFees::Id))
                    .col(reference(PaymentProviderFees::EventId))
                    .col(
                        ColumnDef::new(PaymentProviderFees::Provider)
                            .string_len(40)
                            .not_null(),
                    )
                    .col(
                        ColumnDef::new(PaymentProviderFees::FixedMinor)
                            .big_integer()
                            .not_null(),
                    )
                    .col(
                        ColumnDef::new(PaymentProviderFees::PercentBp)
                            .integer()
                            .not_null(),
                    )
                    .foreign_key(&mut foreign_key(
                        PaymentProviderFees::Table,
                        PaymentProviderFees::EventId,
                        Events::Table,
                        ForeignKeyAction::Cascade,
                    ))
                    .to_owned(),
            )
            .await?;
        unique_index(
            manager,
            PaymentProviderFees::Table,
            &["event_id", "provider"],
        )
        .await
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        drop_tables(manager, vec![PaymentProviderFees::Table.into_iden()]).await
    }
}
