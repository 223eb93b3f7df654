//! Mobile pairing: a kiosk's short-lived token (stored as its SHA-256) that a
//! signed-in customer opens on their phone and authorizes for one of their
//! reservations; the kiosk consumes it once.

use sea_orm_migration::prelude::*;

use crate::columns::{id, timestamp};
use crate::keys::{self, foreign_key, reference};

#[derive(DeriveMigrationName)]
pub struct Migration;

#[derive(DeriveIden, Clone)]
enum KioskPairings {
    Table,
    Id,
    CabinetId,
    TokenHash,
    State,
    ExpiresAtUs,
    UserId,
    ReservationId,
    SessionId,
    CreatedAt,
    ChangedAt,
}

#[derive(DeriveIden, Clone)]
enum Cabinets {
    Table,
}

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .create_table(
                Table::create()
                    .table(KioskPairings::Table)
                    .col(id(KioskPairings::Id))
                    .col(reference(KioskPairings::CabinetId))
                    .col(
                        ColumnDef::new(KioskPairings::TokenHash)
                            .string_len(64)
                            .not_null(),
                    )
                    .col(
                        ColumnDef::new(KioskPairings::State)
                            .string_len(16)
                            .not_null(),
                    )
                    .col(
                        ColumnDef::new(KioskPairings::ExpiresAtUs)
                            .big_integer()
                            .not_null(),
                    )
                    // Kept as plain ids: a pairing is a short-lived record of who acted.
                    .col(ColumnDef::new(KioskPairings::UserId).integer())
                    .col(ColumnDef::new(KioskPairings::ReservationId).integer())
                    .col(ColumnDef::new(KioskPairings::SessionId).integer())
                    .col(timestamp(KioskPairings::CreatedAt))
                    .col(timestamp(KioskPairings::ChangedAt))
                    .foreign_key(&mut foreign_key(
                        KioskPairings::Table,
                        KioskPairings::CabinetId,
                        Cabinets::Table,
                        ForeignKeyAction::Cascade,
                    ))
                    .to_owned(),
            )
            .await?;
        keys::unique_index(manager, KioskPairings::Table, &["token_hash"]).await?;
        Ok(())
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .drop_table(Table::drop().table(KioskPairings::Table).to_owned())
            .await
    }
}
