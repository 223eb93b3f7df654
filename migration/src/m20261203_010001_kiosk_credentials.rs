//! Kiosk credentials: one live credential per cabinet, stored as the SHA-256 of
//! a 256-bit random secret (shown once), revocable by staff.

use sea_orm_migration::prelude::*;

use crate::columns::{id, timestamp};
use crate::keys::{self, foreign_key, reference};

#[derive(DeriveMigrationName)]
pub struct Migration;

#[derive(DeriveIden, Clone)]
enum KioskCredentials {
    Table,
    Id,
    CabinetId,
    SecretHash,
    Hint,
    Label,
    CreatedBy,
    CreatedAt,
    LastUsedAt,
    RevokedAt,
}

#[derive(DeriveIden, Clone)]
enum Cabinets {
    Table,
}

#[derive(DeriveIden, Clone)]
enum Users {
    Table,
}

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .create_table(
                Table::create()
                    .table(KioskCredentials::Table)
                    .col(id(KioskCredentials::Id))
                    .col(reference(KioskCredentials::CabinetId))
                    .col(
                        ColumnDef::new(KioskCredentials::SecretHash)
                            .string_len(64)
                            .not_null(),
                    )
                    .col(
                        ColumnDef::new(KioskCredentials::Hint)
                            .string_len(16)
                            .not_null(),
                    )
                    .col(
                        ColumnDef::new(KioskCredentials::Label)
                            .string_len(100)
                            .not_null()
                            .default(""),
                    )
                    .col(ColumnDef::new(KioskCredentials::CreatedBy).integer())
                    .col(timestamp(KioskCredentials::CreatedAt))
                    .col(ColumnDef::new(KioskCredentials::LastUsedAt).timestamp_with_time_zone())
                    .col(ColumnDef::new(KioskCredentials::RevokedAt).timestamp_with_time_zone())
                    .foreign_key(&mut foreign_key(
                        KioskCredentials::Table,
                        KioskCredentials::CabinetId,
                        Cabinets::Table,
                        ForeignKeyAction::Cascade,
                    ))
                    .foreign_key(&mut foreign_key(
                        KioskCredentials::Table,
                        KioskCredentials::CreatedBy,
                        Users::Table,
                        ForeignKeyAction::SetNull,
                    ))
                    .to_owned(),
            )
            .await?;
        keys::unique_index(manager, KioskCredentials::Table, &["secret_hash"]).await?;
        // One live credential per cabinet: issuing revokes the previous one in the
        // same transaction, and two concurrent issues cannot both insert.
        keys::unique_index_where(
            manager,
            KioskCredentials::Table,
            &["cabinet_id"],
            Expr::col(KioskCredentials::RevokedAt).is_null(),
        )
        .await?;
        Ok(())
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .drop_table(Table::drop().table(KioskCredentials::Table).to_owned())
            .await
    }
}
