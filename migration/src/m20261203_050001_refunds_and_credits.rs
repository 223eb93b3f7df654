//! Ticketing refunds (pretix `OrderRefund`) and store credits
//! (django-program `Credit`): a refund may issue a credit that later orders
//! of the same customer and event are paid with.

use sea_orm_migration::prelude::*;

use crate::columns::{id, timestamp};
use crate::keys::{drop_tables, foreign_key, index, reference, unique_index};

#[derive(DeriveMigrationName)]
pub struct Migration;

#[derive(DeriveIden, Clone)]
enum OrderRefunds {
    Table,
    Id,
    OrderId,
    LocalId,
    State,
    Source,
    Method,
    AmountMinor,
    PaymentId,
    Provider,
    Reference,
    Info,
    Comment,
    CreatedBy,
    CreatedAt,
    ExecutionDate,
}

#[derive(DeriveIden, Clone)]
enum StoreCredits {
    Table,
    Id,
    UserId,
    EventId,
    AmountMinor,
    RemainingMinor,
    Status,
    SourceOrderId,
    SourceRefundId,
    AppliedToOrderId,
    Note,
    Expires,
    CreatedAt,
    UpdatedAt,
}

#[derive(DeriveIden)]
enum Orders {
    Table,
}

#[derive(DeriveIden)]
enum OrderPayments {
    Table,
}

#[derive(DeriveIden)]
enum Users {
    Table,
}

#[derive(DeriveIden)]
enum Events {
    Table,
}

fn text(col: impl IntoIden, len: u32) -> ColumnDef {
    ColumnDef::new(col).string_len(len).not_null().to_owned()
}

fn minor(col: impl IntoIden) -> ColumnDef {
    ColumnDef::new(col).big_integer().not_null().to_owned()
}

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .create_table(
                Table::create()
                    .table(OrderRefunds::Table)
                    .col(id(OrderRefunds::Id))
                    .col(reference(OrderRefunds::OrderId))
                    .col(reference(OrderRefunds::LocalId))
                    .col(text(OrderRefunds::State, 16))
                    .col(text(OrderRefunds::Source, 16))
                    .col(text(OrderRefunds::Method, 16))
                    .col(minor(OrderRefunds::AmountMinor))
                    .col(ColumnDef::new(OrderRefunds::PaymentId).integer())
                    .col(ColumnDef::new(OrderRefunds::Provider).string_len(64))
                    .col(ColumnDef::new(OrderRefunds::Reference).string_len(200))
                    .col(ColumnDef::new(OrderRefunds::Info).text().not_null())
                    .col(ColumnDef::new(OrderRefunds::Comment).text().not_null())
                    .col(ColumnDef::new(OrderRefunds::CreatedBy).integer())
                    .col(timestamp(OrderRefunds::CreatedAt))
                    .col(ColumnDef::new(OrderRefunds::ExecutionDate).timestamp_with_time_zone())
                    .foreign_key(&mut foreign_key(
                        OrderRefunds::Table,
                        OrderRefunds::OrderId,
                        Orders::Table,
                        ForeignKeyAction::Cascade,
                    ))
                    .foreign_key(&mut foreign_key(
                        OrderRefunds::Table,
                        OrderRefunds::PaymentId,
                        OrderPayments::Table,
                        ForeignKeyAction::SetNull,
                    ))
                    .foreign_key(&mut foreign_key(
                        OrderRefunds::Table,
                        OrderRefunds::CreatedBy,
                        Users::Table,
                        ForeignKeyAction::SetNull,
                    ))
                    .to_owned(),
            )
            .await?;
        unique_index(manager, OrderRefunds::Table, &["order_id", "local_id"]).await?;

        manager
            .create_table(
                Table::create()
                    .table(StoreCredits::Table)
                    .col(id(StoreCredits::Id))
                    .col(reference(StoreCredits::UserId))
                    .col(reference(StoreCredits::EventId))
                    .col(minor(StoreCredits::AmountMinor))
                    .col(minor(StoreCredits::RemainingMinor))
                    .col(text(StoreCredits::Status, 16))
                    .col(ColumnDef::new(StoreCredits::SourceOrderId).integer())
                    .col(ColumnDef::new(StoreCredits::SourceRefundId).integer())
                    .col(ColumnDef::new(StoreCredits::AppliedToOrderId).integer())
                    .col(ColumnDef::new(StoreCredits::Note).text().not_null())
                    .col(
                        ColumnDef::new(StoreCredits::Expires)
                            .timestamp_with_time_zone()
                            .not_null(),
                    )
                    .col(timestamp(StoreCredits::CreatedAt))
                    .col(timestamp(StoreCredits::UpdatedAt))
                    .foreign_key(&mut foreign_key(
                        StoreCredits::Table,
                        StoreCredits::UserId,
                        Users::Table,
                        ForeignKeyAction::Cascade,
                    ))
                    .foreign_key(&mut foreign_key(
                        StoreCredits::Table,
                        StoreCredits::EventId,
                        Events::Table,
                        ForeignKeyAction::Cascade,
                    ))
                    .foreign_key(&mut foreign_key(
                        StoreCredits::Table,
                        StoreCredits::SourceOrderId,
                        Orders::Table,
                        ForeignKeyAction::SetNull,
                    ))
                    .foreign_key(&mut foreign_key(
                        StoreCredits::Table,
                        StoreCredits::SourceRefundId,
                        OrderRefunds::Table,
                        ForeignKeyAction::SetNull,
                    ))
                    .foreign_key(&mut foreign_key(
                        StoreCredits::Table,
                        StoreCredits::AppliedToOrderId,
                        Orders::Table,
                        ForeignKeyAction::SetNull,
                    ))
                    .to_owned(),
            )
            .await?;
        index(manager, StoreCredits::Table, &["user_id", "event_id"]).await
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        drop_tables(
            manager,
            vec![
                StoreCredits::Table.into_iden(),
                OrderRefunds::Table.into_iden(),
            ],
        )
        .await
    }
}
