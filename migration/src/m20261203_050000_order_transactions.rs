//! The ticketing transaction ledger (pretix `Transaction`): immutable rows,
//! one per change of a position or fee of an order, from which sales reports
//! are summed.

use sea_orm_migration::prelude::*;

use crate::columns::{id, timestamp};
use crate::keys::{drop_tables, foreign_key, index, reference};

#[derive(DeriveMigrationName)]
pub struct Migration;

#[derive(DeriveIden, Clone)]
enum OrderTransactions {
    Table,
    Id,
    OrderId,
    EventId,
    Datetime,
    Day,
    Positionid,
    FeeId,
    Count,
    ProductId,
    VariationId,
    SubEventId,
    PriceMinor,
    TaxRateBp,
    TaxValueMinor,
    FeeType,
    InternalType,
}

#[derive(DeriveIden)]
enum Orders {
    Table,
}

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .create_table(
                Table::create()
                    .table(OrderTransactions::Table)
                    .col(id(OrderTransactions::Id))
                    .col(reference(OrderTransactions::OrderId))
                    .col(reference(OrderTransactions::EventId))
                    .col(timestamp(OrderTransactions::Datetime))
                    .col(
                        ColumnDef::new(OrderTransactions::Day)
                            .string_len(10)
                            .not_null(),
                    )
                    .col(ColumnDef::new(OrderTransactions::Positionid).integer())
                    .col(ColumnDef::new(OrderTransactions::FeeId).integer())
                    .col(reference(OrderTransactions::Count))
                    .col(ColumnDef::new(OrderTransactions::ProductId).integer())
                    .col(ColumnDef::new(OrderTransactions::VariationId).integer())
                    .col(ColumnDef::new(OrderTransactions::SubEventId).integer())
                    .col(
                        ColumnDef::new(OrderTransactions::PriceMinor)
                            .big_integer()
                            .not_null(),
                    )
                    .col(reference(OrderTransactions::TaxRateBp))
                    .col(
                        ColumnDef::new(OrderTransactions::TaxValueMinor)
                            .big_integer()
                            .not_null(),
                    )
                    .col(ColumnDef::new(OrderTransactions::FeeType).string_len(16))
                    .col(ColumnDef::new(OrderTransactions::InternalType).string_len(64))
                    .foreign_key(&mut foreign_key(
                        OrderTransactions::Table,
                        OrderTransactions::OrderId,
                        Orders::Table,
                        ForeignKeyAction::Cascade,
                    ))
                    .to_owned(),
            )
            .await?;
        index(manager, OrderTransactions::Table, &["order_id"]).await?;
        index(manager, OrderTransactions::Table, &["event_id", "day"]).await
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        drop_tables(manager, vec![OrderTransactions::Table.into_iden()]).await
    }
}
