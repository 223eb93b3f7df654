//! Check-in at the door (seed 003 pretix `CheckinList`/`Checkin`, seed 004
//! django-program `CheckIn`): lists per event, scanner devices, the per-list
//! state of each ticket (inside or not, how many entries), and the history of
//! every scan, accepted or rejected.
//!
//! `checkin_states` has one row per ticket and list: an entry is admitted by
//! inserting that row or by a conditional `UPDATE` of it, so two scanners
//! racing on one ticket admit it once. `checkins` is unique on
//! `(nonce_scope, nonce)`, so a repeated nonce of one scanner stores nothing new
//! (rows without a nonce are never equal: `NULL`s are distinct in both
//! databases).

use sea_orm_migration::prelude::*;

use crate::columns::{id, timestamp};
use crate::keys::{Link, foreign_key, index, link_table, reference, unique_index};

#[derive(DeriveMigrationName)]
pub struct Migration;

#[derive(DeriveIden, Clone)]
enum CheckinLists {
    Table,
    Id,
    EventId,
    SubEventId,
    Name,
    AllProducts,
    IncludePending,
    AllowMultipleEntries,
    AllowEntryAfterExit,
    Questions,
    CreatedAt,
    UpdatedAt,
}

#[derive(DeriveIden, Clone)]
enum CheckinListProducts {
    Table,
    ListId,
    ProductId,
    AddedAt,
}

#[derive(DeriveIden, Clone)]
enum ScannerDevices {
    Table,
    Id,
    EventId,
    Name,
    Gate,
    SecretHash,
    Active,
    CreatedAt,
    RevokedAt,
}

#[derive(DeriveIden, Clone)]
enum CheckinStates {
    Table,
    ListId,
    PositionId,
    ProductId,
    Inside,
    Entries,
    LastEntryAt,
    UpdatedAt,
}

#[derive(DeriveIden, Clone)]
enum Checkins {
    Table,
    Id,
    EventId,
    ListId,
    PositionId,
    Kind,
    Successful,
    Reason,
    Forced,
    ScannerId,
    UserId,
    TeamApiTokenId,
    Gate,
    Note,
    Answers,
    NonceScope,
    Nonce,
    Datetime,
    CreatedAt,
}

#[derive(DeriveIden, Clone)]
enum Events {
    Table,
}

#[derive(DeriveIden, Clone)]
enum SubEvents {
    Table,
}

#[derive(DeriveIden, Clone)]
enum Products {
    Table,
}

#[derive(DeriveIden, Clone)]
enum OrderPositions {
    Table,
}

#[derive(DeriveIden, Clone)]
enum Users {
    Table,
}

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        let flag = |col: CheckinLists| ColumnDef::new(col).boolean().not_null().to_owned();
        manager
            .create_table(
                Table::create()
                    .table(CheckinLists::Table)
                    .col(id(CheckinLists::Id))
                    .col(reference(CheckinLists::EventId))
                    .col(ColumnDef::new(CheckinLists::SubEventId).integer())
                    .col(
                        ColumnDef::new(CheckinLists::Name)
                            .string_len(200)
                            .not_null(),
                    )
                    .col(flag(CheckinLists::AllProducts))
                    .col(flag(CheckinLists::IncludePending))
                    .col(flag(CheckinLists::AllowMultipleEntries))
                    .col(flag(CheckinLists::AllowEntryAfterExit))
                    .col(ColumnDef::new(CheckinLists::Questions).text().not_null())
                    .col(timestamp(CheckinLists::CreatedAt))
                    .col(timestamp(CheckinLists::UpdatedAt))
                    .foreign_key(&mut foreign_key(
                        CheckinLists::Table,
                        CheckinLists::EventId,
                        Events::Table,
                        ForeignKeyAction::Cascade,
                    ))
                    .foreign_key(&mut foreign_key(
                        CheckinLists::Table,
                        CheckinLists::SubEventId,
                        SubEvents::Table,
                        ForeignKeyAction::Cascade,
                    ))
                    .to_owned(),
            )
            .await?;
        index(manager, CheckinLists::Table, &["event_id"]).await?;
        link_table(
            manager,
            CheckinListProducts::Table,
            Link {
                column: CheckinListProducts::ListId,
                references: CheckinLists::Table,
            },
            Link {
                column: CheckinListProducts::ProductId,
                references: Products::Table,
            },
            CheckinListProducts::AddedAt,
        )
        .await?;

        manager
            .create_table(
                Table::create()
                    .table(ScannerDevices::Table)
                    .col(id(ScannerDevices::Id))
                    .col(reference(ScannerDevices::EventId))
                    .col(
                        ColumnDef::new(ScannerDevices::Name)
                            .string_len(200)
                            .not_null(),
                    )
                    .col(
                        ColumnDef::new(ScannerDevices::Gate)
                            .string_len(100)
                            .not_null(),
                    )
                    .col(
                        ColumnDef::new(ScannerDevices::SecretHash)
                            .string_len(64)
                            .not_null(),
                    )
                    .col(ColumnDef::new(ScannerDevices::Active).boolean().not_null())
                    .col(timestamp(ScannerDevices::CreatedAt))
                    .col(ColumnDef::new(ScannerDevices::RevokedAt).timestamp_with_time_zone())
                    .foreign_key(&mut foreign_key(
                        ScannerDevices::Table,
                        ScannerDevices::EventId,
                        Events::Table,
                        ForeignKeyAction::Cascade,
                    ))
                    .to_owned(),
            )
            .await?;
        index(manager, ScannerDevices::Table, &["event_id"]).await?;
        unique_index(manager, ScannerDevices::Table, &["secret_hash"]).await?;

        manager
            .create_table(
                Table::create()
                    .table(CheckinStates::Table)
                    .col(reference(CheckinStates::ListId))
                    .col(reference(CheckinStates::PositionId))
                    .col(reference(CheckinStates::ProductId))
                    .col(ColumnDef::new(CheckinStates::Inside).boolean().not_null())
                    .col(ColumnDef::new(CheckinStates::Entries).integer().not_null())
                    .col(ColumnDef::new(CheckinStates::LastEntryAt).timestamp_with_time_zone())
                    .col(timestamp(CheckinStates::UpdatedAt))
                    .primary_key(
                        Index::create()
                            .col(CheckinStates::ListId)
                            .col(CheckinStates::PositionId),
                    )
                    .foreign_key(&mut foreign_key(
                        CheckinStates::Table,
                        CheckinStates::ListId,
                        CheckinLists::Table,
                        ForeignKeyAction::Cascade,
                    ))
                    .foreign_key(&mut foreign_key(
                        CheckinStates::Table,
                        CheckinStates::PositionId,
                        OrderPositions::Table,
                        ForeignKeyAction::Cascade,
                    ))
                    .to_owned(),
            )
            .await?;
        index(manager, CheckinStates::Table, &["position_id"]).await?;

        manager
            .create_table(
                Table::create()
                    .table(Checkins::Table)
                    .col(id(Checkins::Id))
                    .col(reference(Checkins::EventId))
                    .col(reference(Checkins::ListId))
                    .col(ColumnDef::new(Checkins::PositionId).integer())
                    .col(ColumnDef::new(Checkins::Kind).string_len(8).not_null())
                    .col(ColumnDef::new(Checkins::Successful).boolean().not_null())
                    .col(ColumnDef::new(Checkins::Reason).string_len(24))
                    .col(ColumnDef::new(Checkins::Forced).boolean().not_null())
                    .col(ColumnDef::new(Checkins::ScannerId).integer())
                    .col(ColumnDef::new(Checkins::UserId).integer())
                    .col(ColumnDef::new(Checkins::TeamApiTokenId).integer())
                    .col(ColumnDef::new(Checkins::Gate).string_len(100).not_null())
                    .col(ColumnDef::new(Checkins::Note).string_len(500))
                    .col(ColumnDef::new(Checkins::Answers).text().not_null())
                    .col(ColumnDef::new(Checkins::NonceScope).string_len(40))
                    .col(ColumnDef::new(Checkins::Nonce).string_len(100))
                    .col(
                        ColumnDef::new(Checkins::Datetime)
                            .timestamp_with_time_zone()
                            .not_null(),
                    )
                    .col(timestamp(Checkins::CreatedAt))
                    .foreign_key(&mut foreign_key(
                        Checkins::Table,
                        Checkins::EventId,
                        Events::Table,
                        ForeignKeyAction::Cascade,
                    ))
                    .foreign_key(&mut foreign_key(
                        Checkins::Table,
                        Checkins::ListId,
                        CheckinLists::Table,
                        ForeignKeyAction::Cascade,
                    ))
                    .foreign_key(&mut foreign_key(
                        Checkins::Table,
                        Checkins::PositionId,
                        OrderPositions::Table,
                        ForeignKeyAction::Cascade,
                    ))
                    .foreign_key(&mut foreign_key(
                        Checkins::Table,
                        Checkins::ScannerId,
                        ScannerDevices::Table,
                        ForeignKeyAction::SetNull,
                    ))
                    .foreign_key(&mut foreign_key(
                        Checkins::Table,
                        Checkins::UserId,
                        Users::Table,
                        ForeignKeyAction::SetNull,
                    ))
                    .to_owned(),
            )
            .await?;
        index(manager, Checkins::Table, &["list_id"]).await?;
        index(manager, Checkins::Table, &["position_id"]).await?;
        unique_index(manager, Checkins::Table, &["nonce_scope", "nonce"]).await?;
        // A door may scan the olympic ticket key instead of the secret.
        index(manager, OrderPositions::Table, &["ticket_key"]).await?;
        Ok(())
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .drop_index(
                Index::drop()
                    .name("ix_order_positions_ticket_key")
                    .table(OrderPositions::Table)
                    .to_owned(),
            )
            .await?;
        crate::keys::drop_tables(
            manager,
            vec![
                Checkins::Table.into_iden(),
                CheckinStates::Table.into_iden(),
                ScannerDevices::Table.into_iden(),
                CheckinListProducts::Table.into_iden(),
                CheckinLists::Table.into_iden(),
            ],
        )
        .await
    }
}
