//! Ticketing payments (pretix `OrderPayment`, django-program `Payment`, one
//! model) and order fees (pretix `OrderFee`: a payment's fee is one).

use sea_orm_migration::prelude::*;

use crate::columns::{id, timestamp};
use crate::keys::{drop_tables, foreign_key, index, reference, unique_index};

#[derive(DeriveMigrationName)]
pub struct Migration;

#[derive(DeriveIden, Clone)]
enum OrderFees {
    Table,
    Id,
    OrderId,
    FeeType,
    InternalType,
    Description,
    ValueMinor,
    TaxRateBp,
    TaxValueMinor,
    Canceled,
    CreatedAt,
}

#[derive(DeriveIden, Clone)]
enum OrderPayments {
    Table,
    Id,
    OrderId,
    LocalId,
    State,
    Method,
    AmountMinor,
    FeeId,
    Provider,
    Reference,
    Info,
    Note,
    CreatedBy,
    CreatedAt,
    PaymentDate,
}

#[derive(DeriveIden)]
enum Orders {
    Table,
}

#[derive(DeriveIden)]
enum Users {
    Table,
}

/// A required string of at most `len` characters.
fn text(col: impl IntoIden, len: u32) -> ColumnDef {
    ColumnDef::new(col).string_len(len).not_null().to_owned()
}

/// A required amount in minor units.
fn minor(col: impl IntoIden) -> ColumnDef {
    ColumnDef::new(col).big_integer().not_null().to_owned()
}

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .create_table(
                Table::create()
                    .table(OrderFees::Table)
                    .col(id(OrderFees::Id))
                    .col(reference(OrderFees::OrderId))
                    .col(text(OrderFees::FeeType, 16))
                    .col(text(OrderFees::InternalType, 64))
                    .col(text(OrderFees::Description, 200))
                    .col(minor(OrderFees::ValueMinor))
                    .col(reference(OrderFees::TaxRateBp))
                    .col(minor(OrderFees::TaxValueMinor))
                    .col(ColumnDef::new(OrderFees::Canceled).boolean().not_null())
                    .col(timestamp(OrderFees::CreatedAt))
                    .foreign_key(&mut foreign_key(
                        OrderFees::Table,
                        OrderFees::OrderId,
                        Orders::Table,
                        ForeignKeyAction::Cascade,
                    ))
                    .to_owned(),
            )
            .await?;
        index(manager, OrderFees::Table, &["order_id"]).await?;

        manager
            .create_table(
                Table::create()
                    .table(OrderPayments::Table)
                    .col(id(OrderPayments::Id))
                    .col(reference(OrderPayments::OrderId))
                    .col(reference(OrderPayments::LocalId))
                    .col(text(OrderPayments::State, 16))
                    .col(text(OrderPayments::Method, 16))
                    .col(minor(OrderPayments::AmountMinor))
                    .col(ColumnDef::new(OrderPayments::FeeId).integer())
                    .col(ColumnDef::new(OrderPayments::Provider).string_len(64))
                    .col(ColumnDef::new(OrderPayments::Reference).string_len(200))
                    .col(ColumnDef::new(OrderPayments::Info).text().not_null())
                    .col(ColumnDef::new(OrderPayments::Note).text().not_null())
                    .col(ColumnDef::new(OrderPayments::CreatedBy).integer())
                    .col(timestamp(OrderPayments::CreatedAt))
                    .col(ColumnDef::new(OrderPayments::PaymentDate).timestamp_with_time_zone())
                    .foreign_key(&mut foreign_key(
                        OrderPayments::Table,
                        OrderPayments::OrderId,
                        Orders::Table,
                        ForeignKeyAction::Cascade,
                    ))
                    .foreign_key(&mut foreign_key(
                        OrderPayments::Table,
                        OrderPayments::FeeId,
                        OrderFees::Table,
                        ForeignKeyAction::SetNull,
                    ))
                    .foreign_key(&mut foreign_key(
                        OrderPayments::Table,
                        OrderPayments::CreatedBy,
                        Users::Table,
                        ForeignKeyAction::SetNull,
                    ))
                    .to_owned(),
            )
            .await?;
        unique_index(manager, OrderPayments::Table, &["order_id", "local_id"]).await
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        drop_tables(
            manager,
            vec![
                OrderPayments::Table.into_iden(),
                OrderFees::Table.into_iden(),
            ],
        )
        .await
    }
}
