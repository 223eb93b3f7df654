//! Ticketing, second part: the catalog (categories, products — pretix's item,
//! django-program's ticket type and add-on, the olympic offer, as one model —
//! and their variations), quotas with their counters, cart positions holding
//! quota, and orders with their positions (tickets).
//!
//! Money is stored in minor units (`*_minor`, `BIGINT`) and tax rates in
//! hundredths of a percent (`*_bp`): never floats.

use sea_orm_migration::prelude::*;

use crate::columns::{id, timestamp};
use crate::keys::{Link, foreign_key, index, link_table, unique_index};

#[derive(DeriveMigrationName)]
pub struct Migration;

#[derive(DeriveIden, Clone)]
enum ProductCategories {
    Table,
    Id,
    EventId,
    Name,
    Position,
    IsAddon,
}

#[derive(DeriveIden, Clone)]
enum Products {
    Table,
    Id,
    EventId,
    CategoryId,
    Name,
    Description,
    Kind,
    Active,
    Admission,
    PriceMinor,
    TaxRateBp,
    AvailableFrom,
    AvailableUntil,
    MinPerOrder,
    MaxPerOrder,
    LimitPerUser,
    RequireVoucher,
    HideWithoutVoucher,
    RequireApproval,
    Personalized,
    CheckinAttention,
    Position,
    CreatedAt,
    UpdatedAt,
}

#[derive(DeriveIden, Clone)]
enum ProductVariations {
    Table,
    Id,
    ProductId,
    Value,
    Description,
    Active,
    PriceMinor,
    Position,
}

#[derive(DeriveIden, Clone)]
enum Quotas {
    Table,
    Id,
    EventId,
    SubEventId,
    Name,
    Size,
    Paid,
    Pending,
    InCarts,
}

#[derive(DeriveIden, Clone)]
enum QuotaProducts {
    Table,
    QuotaId,
    ProductId,
    AddedAt,
}

#[derive(DeriveIden, Clone)]
enum CartPositions {
    Table,
    Id,
    EventId,
    CartId,
    ProductId,
    VariationId,
    SubEventId,
    PriceMinor,
    QuotaIds,
    UserId,
    Datetime,
    Expires,
}

#[derive(DeriveIden, Clone)]
enum Orders {
    Table,
    Id,
    EventId,
    Code,
    Secret,
    Status,
    UserId,
    Email,
    TotalMinor,
    Testmode,
    SalesChannel,
    Datetime,
    Expires,
    UpdatedAt,
}

#[derive(DeriveIden, Clone)]
enum OrderPositions {
    Table,
    Id,
    OrderId,
    Positionid,
    ProductId,
    VariationId,
    SubEventId,
    PriceMinor,
    TaxRateBp,
    TaxValueMinor,
    Secret,
    TicketKey,
    Canceled,
    AttendeeName,
    AttendeeEmail,
    QuotaIds,
    CreatedAt,
}

#[derive(DeriveIden)]
enum Events {
    Table,
}

#[derive(DeriveIden)]
enum SubEvents {
    Table,
}

#[derive(DeriveIden)]
enum Users {
    Table,
}

fn flag(col: impl IntoIden, default: bool) -> ColumnDef {
    ColumnDef::new(col)
        .boolean()
        .not_null()
        .default(default)
        .to_owned()
}

fn instant(col: impl IntoIden) -> ColumnDef {
    ColumnDef::new(col).timestamp_with_time_zone().to_owned()
}

fn count(col: impl IntoIden) -> ColumnDef {
    ColumnDef::new(col)
        .integer()
        .not_null()
        .default(0)
        .to_owned()
}

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    #[allow(clippy::too_many_lines)]
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .create_table(
                Table::create()
                    .table(ProductCategories::Table)
                    .col(id(ProductCategories::Id))
                    .col(
                        ColumnDef::new(ProductCategories::EventId)
                            .integer()
                            .not_null(),
                    )
                    .col(
                        ColumnDef::new(ProductCategories::Name)
                            .string_len(200)
                            .not_null(),
                    )
                    .col(count(ProductCategories::Position))
                    .col(flag(ProductCategories::IsAddon, false))
                    .foreign_key(&mut foreign_key(
                        ProductCategories::Table,
                        ProductCategories::EventId,
                        Events::Table,
                        ForeignKeyAction::Cascade,
                    ))
                    .to_owned(),
            )
            .await?;
        index(manager, ProductCategories::Table, &["event_id"]).await?;

        manager
            .create_table(
                Table::create()
                    .table(Products::Table)
                    .col(id(Products::Id))
                    .col(ColumnDef::new(Products::EventId).integer().not_null())
                    .col(ColumnDef::new(Products::CategoryId).integer())
                    .col(ColumnDef::new(Products::Name).string_len(200).not_null())
                    .col(
                        ColumnDef::new(Products::Description)
                            .text()
                            .not_null()
                            .default(""),
                    )
                    .col(ColumnDef::new(Products::Kind).string_len(16).not_null())
                    .col(flag(Products::Active, true))
                    .col(flag(Products::Admission, true))
                    .col(
                        ColumnDef::new(Products::PriceMinor)
                            .big_integer()
                            .not_null(),
                    )
                    .col(count(Products::TaxRateBp))
                    .col(instant(Products::AvailableFrom))
                    .col(instant(Products::AvailableUntil))
                    .col(ColumnDef::new(Products::MinPerOrder).integer())
                    .col(ColumnDef::new(Products::MaxPerOrder).integer())
                    .col(ColumnDef::new(Products::LimitPerUser).integer())
                    .col(flag(Products::RequireVoucher, false))
                    .col(flag(Products::HideWithoutVoucher, false))
                    .col(flag(Products::RequireApproval, false))
                    .col(flag(Products::Personalized, false))
                    .col(flag(Products::CheckinAttention, false))
                    .col(count(Products::Position))
                    .col(timestamp(Products::CreatedAt))
                    .col(timestamp(Products::UpdatedAt))
                    .foreign_key(&mut foreign_key(
                        Products::Table,
                        Products::EventId,
                        Events::Table,
                        ForeignKeyAction::Cascade,
                    ))
                    .foreign_key(&mut foreign_key(
                        Products::Table,
                        Products::CategoryId,
                        ProductCategories::Table,
                        ForeignKeyAction::SetNull,
                    ))
                    .to_owned(),
            )
            .await?;
        index(manager, Products::Table, &["event_id"]).await?;

        manager
            .create_table(
                Table::create()
                    .table(ProductVariations::Table)
                    .col(id(ProductVariations::Id))
                    .col(
                        ColumnDef::new(ProductVariations::ProductId)
                            .integer()
                            .not_null(),
                    )
                    .col(
                        ColumnDef::new(ProductVariations::Value)
                            .string_len(200)
                            .not_null(),
                    )
                    .col(
                        ColumnDef::new(ProductVariations::Description)
                            .text()
                            .not_null()
                            .default(""),
                    )
                    .col(flag(ProductVariations::Active, true))
                    .col(ColumnDef::new(ProductVariations::PriceMinor).big_integer())
                    .col(count(ProductVariations::Position))
                    .foreign_key(&mut foreign_key(
                        ProductVariations::Table,
                        ProductVariations::ProductId,
                        Products::Table,
                        ForeignKeyAction::Cascade,
                    ))
                    .to_owned(),
            )
            .await?;
        index(manager, ProductVariations::Table, &["product_id"]).await?;

        manager
            .create_table(
                Table::create()
                    .table(Quotas::Table)
                    .col(id(Quotas::Id))
                    .col(ColumnDef::new(Quotas::EventId).integer().not_null())
                    .col(ColumnDef::new(Quotas::SubEventId).integer())
                    .col(ColumnDef::new(Quotas::Name).string_len(200).not_null())
                    .col(ColumnDef::new(Quotas::Size).integer())
                    .col(count(Quotas::Paid))
                    .col(count(Quotas::Pending))
                    .col(count(Quotas::InCarts))
                    .foreign_key(&mut foreign_key(
                        Quotas::Table,
                        Quotas::EventId,
                        Events::Table,
                        ForeignKeyAction::Cascade,
                    ))
                    .foreign_key(&mut foreign_key(
                        Quotas::Table,
                        Quotas::SubEventId,
                        SubEvents::Table,
                        ForeignKeyAction::Cascade,
                    ))
                    .to_owned(),
            )
            .await?;
        index(manager, Quotas::Table, &["event_id"]).await?;

        link_table(
            manager,
            QuotaProducts::Table,
            Link {
                column: QuotaProducts::QuotaId,
                references: Quotas::Table,
            },
            Link {
                column: QuotaProducts::ProductId,
                references: Products::Table,
            },
            QuotaProducts::AddedAt,
        )
        .await?;

        manager
            .create_table(
                Table::create()
                    .table(CartPositions::Table)
                    .col(id(CartPositions::Id))
                    .col(ColumnDef::new(CartPositions::EventId).integer().not_null())
                    .col(
                        ColumnDef::new(CartPositions::CartId)
                            .string_len(64)
                            .not_null(),
                    )
                    .col(
                        ColumnDef::new(CartPositions::ProductId)
                            .integer()
                            .not_null(),
                    )
                    .col(ColumnDef::new(CartPositions::VariationId).integer())
                    .col(ColumnDef::new(CartPositions::SubEventId).integer())
                    .col(
                        ColumnDef::new(CartPositions::PriceMinor)
                            .big_integer()
                            .not_null(),
                    )
                    .col(
                        ColumnDef::new(CartPositions::QuotaIds)
                            .string_len(500)
                            .not_null(),
                    )
                    .col(ColumnDef::new(CartPositions::UserId).integer())
                    .col(timestamp(CartPositions::Datetime))
                    .col(instant(CartPositions::Expires).not_null())
                    .foreign_key(&mut foreign_key(
                        CartPositions::Table,
                        CartPositions::EventId,
                        Events::Table,
                        ForeignKeyAction::Cascade,
                    ))
                    .foreign_key(&mut foreign_key(
                        CartPositions::Table,
                        CartPositions::ProductId,
                        Products::Table,
                        ForeignKeyAction::Cascade,
                    ))
                    .to_owned(),
            )
            .await?;
        index(manager, CartPositions::Table, &["cart_id"]).await?;
        index(manager, CartPositions::Table, &["expires"]).await?;

        manager
            .create_table(
                Table::create()
                    .table(Orders::Table)
                    .col(id(Orders::Id))
                    .col(ColumnDef::new(Orders::EventId).integer().not_null())
                    .col(ColumnDef::new(Orders::Code).string_len(16).not_null())
                    .col(ColumnDef::new(Orders::Secret).string_len(64).not_null())
                    .col(ColumnDef::new(Orders::Status).string_len(16).not_null())
                    .col(ColumnDef::new(Orders::UserId).integer())
                    .col(ColumnDef::new(Orders::Email).string_len(254).not_null())
                    .col(ColumnDef::new(Orders::TotalMinor).big_integer().not_null())
                    .col(flag(Orders::Testmode, false))
                    .col(
                        ColumnDef::new(Orders::SalesChannel)
                            .string_len(32)
                            .not_null()
                            .default("web"),
                    )
                    .col(timestamp(Orders::Datetime))
                    .col(instant(Orders::Expires).not_null())
                    .col(timestamp(Orders::UpdatedAt))
                    .foreign_key(&mut foreign_key(
                        Orders::Table,
                        Orders::EventId,
                        Events::Table,
                        ForeignKeyAction::Cascade,
                    ))
                    .foreign_key(&mut foreign_key(
                        Orders::Table,
                        Orders::UserId,
                        Users::Table,
                        ForeignKeyAction::SetNull,
                    ))
                    .to_owned(),
            )
            .await?;
        unique_index(manager, Orders::Table, &["event_id", "code"]).await?;
        index(manager, Orders::Table, &["user_id"]).await?;

        manager
            .create_table(
                Table::create()
                    .table(OrderPositions::Table)
                    .col(id(OrderPositions::Id))
                    .col(ColumnDef::new(OrderPositions::OrderId).integer().not_null())
                    .col(
                        ColumnDef::new(OrderPositions::Positionid)
                            .integer()
                            .not_null(),
                    )
                    .col(
                        ColumnDef::new(OrderPositions::ProductId)
                            .integer()
                            .not_null(),
                    )
                    .col(ColumnDef::new(OrderPositions::VariationId).integer())
                    .col(ColumnDef::new(OrderPositions::SubEventId).integer())
                    .col(
                        ColumnDef::new(OrderPositions::PriceMinor)
                            .big_integer()
                            .not_null(),
                    )
                    .col(count(OrderPositions::TaxRateBp))
                    .col(
                        ColumnDef::new(OrderPositions::TaxValueMinor)
                            .big_integer()
                            .not_null()
                            .default(0),
                    )
                    .col(
                        ColumnDef::new(OrderPositions::Secret)
                            .string_len(64)
                            .not_null(),
                    )
                    .col(ColumnDef::new(OrderPositions::TicketKey).string_len(64))
                    .col(flag(OrderPositions::Canceled, false))
                    .col(ColumnDef::new(OrderPositions::AttendeeName).string_len(200))
                    .col(ColumnDef::new(OrderPositions::AttendeeEmail).string_len(254))
                    .col(
                        ColumnDef::new(OrderPositions::QuotaIds)
                            .string_len(500)
                            .not_null(),
                    )
                    .col(timestamp(OrderPositions::CreatedAt))
                    .foreign_key(&mut foreign_key(
                        OrderPositions::Table,
                        OrderPositions::OrderId,
                        Orders::Table,
                        ForeignKeyAction::Cascade,
                    ))
                    .foreign_key(&mut foreign_key(
                        OrderPositions::Table,
                        OrderPositions::ProductId,
                        Products::Table,
                        ForeignKeyAction::Restrict,
                    ))
                    .to_owned(),
            )
            .await?;
        index(manager, OrderPositions::Table, &["order_id"]).await?;
        unique_index(manager, OrderPositions::Table, &["secret"]).await?;
        Ok(())
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        for table in [
            OrderPositions::Table.into_iden(),
            Orders::Table.into_iden(),
            CartPositions::Table.into_iden(),
            QuotaProducts::Table.into_iden(),
            Quotas::Table.into_iden(),
            ProductVariations::Table.into_iden(),
            Products::Table.into_iden(),
            ProductCategories::Table.into_iden(),
        ] {
            manager
                .drop_table(Table::drop().table(table).to_owned())
                .await?;
        }
        Ok(())
    }
}
