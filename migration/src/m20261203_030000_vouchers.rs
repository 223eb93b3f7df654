//! Ticketing vouchers (pretix `Voucher` and django-program's `Voucher` with
//! its applicable products, one model), the voucher a cart or order position
//! was bought with, and the idempotency keys of checkouts.

use sea_orm_migration::prelude::*;

use crate::columns::{id, timestamp};
use crate::keys::{Link, drop_tables, foreign_key, index, link_table, reference, unique_index};

#[derive(DeriveMigrationName)]
pub struct Migration;

#[derive(DeriveIden, Clone)]
enum Vouchers {
    Table,
    Id,
    EventId,
    Code,
    MaxUsages,
    MinUsages,
    Redeemed,
    ValidFrom,
    ValidUntil,
    PriceMode,
    ValueMinor,
    PercentBp,
    VariationId,
    QuotaId,
    SubEventId,
    Active,
    ShowHiddenItems,
    BlockQuota,
    AllowIgnoreQuota,
    Tag,
    Comment,
    CreatedAt,
}

#[derive(DeriveIden, Clone)]
enum VoucherProducts {
    Table,
    VoucherId,
    ProductId,
    AddedAt,
}

#[derive(DeriveIden, Clone)]
enum CheckoutKeys {
    Table,
    Id,
    CartId,
    IdempotencyKey,
    OrderId,
    CreatedAt,
}

/// The column added to cart and order positions.
#[derive(DeriveIden, Clone)]
enum Positions {
    VoucherId,
}

#[derive(DeriveIden)]
enum CartPositions {
    Table,
}

#[derive(DeriveIden)]
enum OrderPositions {
    Table,
}

#[derive(DeriveIden)]
enum Events {
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
enum Quotas {
    Table,
}

#[derive(DeriveIden)]
enum SubEvents {
    Table,
}

#[derive(DeriveIden)]
enum Orders {
    Table,
}

/// A required boolean (the service always sets it).
fn flag(col: impl IntoIden) -> ColumnDef {
    ColumnDef::new(col).boolean().not_null().to_owned()
}

/// A required integer.
fn count(col: impl IntoIden) -> ColumnDef {
    ColumnDef::new(col).integer().not_null().to_owned()
}

/// A required string of at most `len` characters.
fn text(col: impl IntoIden, len: u32) -> ColumnDef {
    ColumnDef::new(col).string_len(len).not_null().to_owned()
}

/// A foreign key of `Vouchers` that goes with its target.
fn voucher_link(column: Vouchers, target: impl Iden + 'static) -> ForeignKeyCreateStatement {
    foreign_key(Vouchers::Table, column, target, ForeignKeyAction::Cascade)
}

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .create_table(
                Table::create()
                    .table(Vouchers::Table)
                    .col(id(Vouchers::Id))
                    .col(reference(Vouchers::EventId))
                    .col(text(Vouchers::Code, 100))
                    .col(count(Vouchers::MaxUsages))
                    .col(count(Vouchers::MinUsages))
                    .col(count(Vouchers::Redeemed))
                    .col(ColumnDef::new(Vouchers::ValidFrom).timestamp_with_time_zone())
                    .col(ColumnDef::new(Vouchers::ValidUntil).timestamp_with_time_zone())
                    .col(text(Vouchers::PriceMode, 16))
                    .col(ColumnDef::new(Vouchers::ValueMinor).big_integer())
                    .col(ColumnDef::new(Vouchers::PercentBp).integer())
                    .col(ColumnDef::new(Vouchers::VariationId).integer())
                    .col(ColumnDef::new(Vouchers::QuotaId).integer())
                    .col(ColumnDef::new(Vouchers::SubEventId).integer())
                    .col(flag(Vouchers::Active))
                    .col(flag(Vouchers::ShowHiddenItems))
                    .col(flag(Vouchers::BlockQuota))
                    .col(flag(Vouchers::AllowIgnoreQuota))
                    .col(ColumnDef::new(Vouchers::Tag).string_len(255))
                    .col(ColumnDef::new(Vouchers::Comment).text().not_null())
                    .col(timestamp(Vouchers::CreatedAt))
                    .foreign_key(&mut voucher_link(Vouchers::EventId, Events::Table))
                    .foreign_key(&mut voucher_link(
                        Vouchers::VariationId,
                        ProductVariations::Table,
                    ))
                    .foreign_key(&mut voucher_link(Vouchers::QuotaId, Quotas::Table))
                    .foreign_key(&mut voucher_link(Vouchers::SubEventId, SubEvents::Table))
                    .to_owned(),
            )
            .await?;
        unique_index(manager, Vouchers::Table, &["event_id", "code"]).await?;
        index(manager, Vouchers::Table, &["event_id", "tag"]).await?;
        link_table(
            manager,
            VoucherProducts::Table,
            Link {
                column: VoucherProducts::VoucherId,
                references: Vouchers::Table,
            },
            Link {
                column: VoucherProducts::ProductId,
                references: Products::Table,
            },
            VoucherProducts::AddedAt,
        )
        .await?;

        // Plain columns: SQLite cannot add a foreign key to an existing table.
        for table in [
            CartPositions::Table.into_iden(),
            OrderPositions::Table.into_iden(),
        ] {
            let mut alter = Table::alter();
            alter
                .table(table)
                .add_column(ColumnDef::new(Positions::VoucherId).integer());
            manager.alter_table(alter).await?;
        }

        manager
            .create_table(
                Table::create()
                    .table(CheckoutKeys::Table)
                    .col(id(CheckoutKeys::Id))
                    .col(text(CheckoutKeys::CartId, 64))
                    .col(text(CheckoutKeys::IdempotencyKey, 200))
                    // Set in the checkout's transaction once the order exists;
                    // the row is inserted first so that a racing retry waits on it.
                    .col(ColumnDef::new(CheckoutKeys::OrderId).integer())
                    .col(timestamp(CheckoutKeys::CreatedAt))
                    .foreign_key(&mut foreign_key(
                        CheckoutKeys::Table,
                        CheckoutKeys::OrderId,
                        Orders::Table,
                        ForeignKeyAction::Cascade,
                    ))
                    .to_owned(),
            )
            .await?;
        unique_index(
            manager,
            CheckoutKeys::Table,
            &["cart_id", "idempotency_key"],
        )
        .await
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        drop_tables(
            manager,
            vec![
                CheckoutKeys::Table.into_iden(),
                VoucherProducts::Table.into_iden(),
                Vouchers::Table.into_iden(),
            ],
        )
        .await?;
        for table in [
            OrderPositions::Table.into_iden(),
            CartPositions::Table.into_iden(),
        ] {
            let mut alter = Table::alter();
            alter.table(table).drop_column(Positions::VoucherId);
            manager.alter_table(alter).await?;
        }
        Ok(())
    }
}
