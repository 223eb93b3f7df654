//! Badge linking: a customer's one-use short code for one cabinet's kiosk
//! (stored hashed, expiring), and the kiosk's wrong codes, counted per cabinet.

use sea_orm_migration::prelude::*;

use crate::columns::{id, timestamp};
use crate::keys::{self, foreign_key, reference};

#[derive(DeriveMigrationName)]
pub struct Migration;

#[derive(DeriveIden, Clone)]
enum BadgeLinkCodes {
    Table,
    Id,
    UserId,
    CabinetId,
    CodeHash,
    ExpiresAtUs,
    UsedAt,
    AuthMethodId,
    CreatedAt,
}

#[derive(DeriveIden, Clone)]
enum BadgeLinkFailures {
    Table,
    Id,
    CabinetId,
    CreatedAtUs,
}

#[derive(DeriveIden, Clone)]
enum Users {
    Table,
}

#[derive(DeriveIden, Clone)]
enum Cabinets {
    Table,
}

#[derive(DeriveIden, Clone)]
enum AuthMethods {
    Table,
}

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .create_table(
                Table::create()
                    .table(BadgeLinkCodes::Table)
                    .col(id(BadgeLinkCodes::Id))
                    .col(reference(BadgeLinkCodes::UserId))
                    .col(reference(BadgeLinkCodes::CabinetId))
                    .col(
                        ColumnDef::new(BadgeLinkCodes::CodeHash)
                            .string_len(64)
                            .not_null(),
                    )
                    .col(
                        ColumnDef::new(BadgeLinkCodes::ExpiresAtUs)
                            .big_integer()
                            .not_null(),
                    )
                    .col(ColumnDef::new(BadgeLinkCodes::UsedAt).timestamp_with_time_zone())
                    .col(ColumnDef::new(BadgeLinkCodes::AuthMethodId).integer())
                    .col(timestamp(BadgeLinkCodes::CreatedAt))
                    .foreign_key(&mut foreign_key(
                        BadgeLinkCodes::Table,
                        BadgeLinkCodes::UserId,
                        Users::Table,
                        ForeignKeyAction::Cascade,
                    ))
                    .foreign_key(&mut foreign_key(
                        BadgeLinkCodes::Table,
                        BadgeLinkCodes::CabinetId,
                        Cabinets::Table,
                        ForeignKeyAction::Cascade,
                    ))
                    .foreign_key(&mut foreign_key(
                        BadgeLinkCodes::Table,
                        BadgeLinkCodes::AuthMethodId,
                        AuthMethods::Table,
                        ForeignKeyAction::SetNull,
                    ))
                    .to_owned(),
            )
            .await?;
        keys::index(manager, BadgeLinkCodes::Table, &["code_hash"]).await?;
        keys::index(manager, BadgeLinkCodes::Table, &["user_id"]).await?;
        manager
            .create_table(
                Table::create()
                    .table(BadgeLinkFailures::Table)
                    .col(id(BadgeLinkFailures::Id))
                    .col(reference(BadgeLinkFailures::CabinetId))
                    .col(
                        ColumnDef::new(BadgeLinkFailures::CreatedAtUs)
                            .big_integer()
                            .not_null(),
                    )
                    .foreign_key(&mut foreign_key(
                        BadgeLinkFailures::Table,
                        BadgeLinkFailures::CabinetId,
                        Cabinets::Table,
                        ForeignKeyAction::Cascade,
                    ))
                    .to_owned(),
            )
            .await?;
        keys::index(
            manager,
            BadgeLinkFailures::Table,
            &["cabinet_id", "created_at_us"],
        )
        .await?;
        Ok(())
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .drop_table(Table::drop().table(BadgeLinkFailures::Table).to_owned())
            .await?;
        manager
            .drop_table(Table::drop().table(BadgeLinkCodes::Table).to_owned())
            .await
    }
}
