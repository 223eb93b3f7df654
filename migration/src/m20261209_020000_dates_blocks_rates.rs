//! Per-date product settings (seed 003 pretix `SubEventItem`,
//! `SubEventItemVariation`), vouchers that block quota (`Voucher.block_quota`)
//! and exchange rates for foreign-currency figures on invoices.
//!
//! - `sub_event_product_settings`: one row per date and product (variation
//!   null: pretix's `SubEventItem`) or per date and variation (pretix's
//!   `SubEventItemVariation`), each unique by a partial index.
//! - `quotas.blocked`: units vouchers keep for their unused usages;
//!   `vouchers.blocked` how many usages a voucher keeps now, in each quota of
//!   `vouchers.blocked_quota_ids`; `cart_positions.blocked_quota_ids` the
//!   quotas whose unit a position took from its voucher's block.
//! - `exchange_rates`: an organizer's rates per currency pair and date, the
//!   rate an exact decimal string; `invoice_settings.foreign_currency_display`
//!   the currency invoices also show their taxes in.

use sea_orm_migration::prelude::*;

use crate::columns::{id, timestamp};
use crate::keys::{drop_tables, foreign_key, index, reference, unique_index, unique_index_where};

#[derive(DeriveMigrationName)]
pub struct Migration;

#[derive(DeriveIden, Clone)]
enum SubEventProductSettings {
    Table,
    Id,
    SubEventId,
    ProductId,
    VariationId,
    PriceMinor,
    Disabled,
    AvailableFrom,
    AvailableUntil,
    UpdatedAt,
}

#[derive(DeriveIden, Clone)]
enum ExchangeRates {
    Table,
    Id,
    OrganizerId,
    FromCurrency,
    ToCurrency,
    Date,
    Rate,
    Source,
    CreatedAt,
}

#[derive(DeriveIden)]
enum SubEvents {
    Table,
}

#[derive(DeriveIden)]
enum Products {
    Table,
}

#[derive(DeriveIden)]
enum ProductVariations {
    Table,
}

#[derive(DeriveIden)]
enum Organizers {
    Table,
}

#[derive(DeriveIden)]
enum Quotas {
    Table,
    Blocked,
}

#[derive(DeriveIden)]
enum Vouchers {
    Table,
    Blocked,
    BlockedQuotaIds,
}

#[derive(DeriveIden)]
enum CartPositions {
    Table,
    BlockedQuotaIds,
}

#[derive(DeriveIden)]
enum InvoiceSettings {
    Table,
    ForeignCurrencyDisplay,
}

async fn add_column(
    manager: &SchemaManager<'_>,
    table: impl IntoIden,
    column: &mut ColumnDef,
) -> Result<(), DbErr> {
    manager
        .alter_table(Table::alter().table(table).add_column(column).to_owned())
        .await
}

async fn drop_column(
    manager: &SchemaManager<'_>,
    table: impl IntoIden,
    column: impl IntoIden,
) -> Result<(), DbErr> {
    manager
        .alter_table(Table::alter().table(table).drop_column(column).to_owned())
        .await
}

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .create_table(
                Table::create()
                    .table(SubEventProductSettings::Table)
                    .col(id(SubEventProductSettings::Id))
                    .col(reference(SubEventProductSettings::SubEventId))
                    .col(reference(SubEventProductSettings::ProductId))
                    .col(
                        ColumnDef::new(SubEventProductSettings::VariationId)
                            .integer()
                            .null(),
                    )
                    .col(
                        ColumnDef::new(SubEventProductSettings::PriceMinor)
                            .big_integer()
                            .null(),
                    )
                    .col(
                        ColumnDef::new(SubEventProductSettings::Disabled)
                            .boolean()
                            .not_null()
                            .default(false),
                    )
                    .col(
                        ColumnDef::new(SubEventProductSettings::AvailableFrom)
                            .timestamp_with_time_zone()
                            .null(),
                    )
                    .col(
                        ColumnDef::new(SubEventProductSettings::AvailableUntil)
                            .timestamp_with_time_zone()
                            .null(),
                    )
                    .col(timestamp(SubEventProductSettings::UpdatedAt))
                    .foreign_key(&mut foreign_key(
                        SubEventProductSettings::Table,
                        SubEventProductSettings::SubEventId,
                        SubEvents::Table,
                        ForeignKeyAction::Cascade,
                    ))
                    .foreign_key(&mut foreign_key(
                        SubEventProductSettings::Table,
                        SubEventProductSettings::ProductId,
                        Products::Table,
                        ForeignKeyAction::Cascade,
                    ))
                    .foreign_key(&mut foreign_key(
                        SubEventProductSettings::Table,
                        SubEventProductSettings::VariationId,
                        ProductVariations::Table,
                        ForeignKeyAction::Cascade,
                    ))
                    .to_owned(),
            )
            .await?;
        // One row per date and product, and one per date and variation.
        unique_index_where(
            manager,
            SubEventProductSettings::Table,
            &["sub_event_id", "product_id"],
            Expr::col(SubEventProductSettings::VariationId).is_null(),
        )
        .await?;
        unique_index_where(
            manager,
            SubEventProductSettings::Table,
            &["sub_event_id", "variation_id"],
            Expr::col(SubEventProductSettings::VariationId).is_not_null(),
        )
        .await?;
        index(manager, SubEventProductSettings::Table, &["product_id"]).await?;

        add_column(
            manager,
            Quotas::Table,
            ColumnDef::new(Quotas::Blocked)
                .integer()
                .not_null()
                .default(0),
        )
        .await?;
        add_column(
            manager,
            Vouchers::Table,
            ColumnDef::new(Vouchers::Blocked)
                .integer()
                .not_null()
                .default(0),
        )
        .await?;
        add_column(
            manager,
            Vouchers::Table,
            ColumnDef::new(Vouchers::BlockedQuotaIds)
                .string()
                .not_null()
                .default(""),
        )
        .await?;
        add_column(
            manager,
            CartPositions::Table,
            ColumnDef::new(CartPositions::BlockedQuotaIds)
                .string()
                .not_null()
                .default(""),
        )
        .await?;

        manager
            .create_table(
                Table::create()
                    .table(ExchangeRates::Table)
                    .col(id(ExchangeRates::Id))
                    .col(reference(ExchangeRates::OrganizerId))
                    .col(
                        ColumnDef::new(ExchangeRates::FromCurrency)
                            .string_len(3)
                            .not_null(),
                    )
                    .col(
                        ColumnDef::new(ExchangeRates::ToCurrency)
                            .string_len(3)
                            .not_null(),
                    )
                    .col(ColumnDef::new(ExchangeRates::Date).date().not_null())
                    .col(
                        ColumnDef::new(ExchangeRates::Rate)
                            .string_len(40)
                            .not_null(),
                    )
                    .col(
                        ColumnDef::new(ExchangeRates::Source)
                            .string_len(50)
                            .not_null(),
                    )
                    .col(timestamp(ExchangeRates::CreatedAt))
                    .foreign_key(&mut foreign_key(
                        ExchangeRates::Table,
                        ExchangeRates::OrganizerId,
                        Organizers::Table,
                        ForeignKeyAction::Cascade,
                    ))
                    .to_owned(),
            )
            .await?;
        unique_index(
            manager,
            ExchangeRates::Table,
            &["organizer_id", "from_currency", "to_currency", "date"],
        )
        .await?;
        add_column(
            manager,
            InvoiceSettings::Table,
            ColumnDef::new(InvoiceSettings::ForeignCurrencyDisplay)
                .string_len(3)
                .null(),
        )
        .await
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        drop_column(
            manager,
            InvoiceSettings::Table,
            InvoiceSettings::ForeignCurrencyDisplay,
        )
        .await?;
        drop_column(
            manager,
            CartPositions::Table,
            CartPositions::BlockedQuotaIds,
        )
        .await?;
        drop_column(manager, Vouchers::Table, Vouchers::BlockedQuotaIds).await?;
        drop_column(manager, Vouchers::Table, Vouchers::Blocked).await?;
        drop_column(manager, Quotas::Table, Quotas::Blocked).await?;
        drop_tables(
            manager,
            vec![
                ExchangeRates::Table.into_iden(),
                SubEventProductSettings::Table.into_iden(),
            ],
        )
        .await
    }
}
