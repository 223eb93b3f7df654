//! Reservations of bays (seed 002: `Reservation`), staff maintenance flags on
//! bays, and the notification outbox.
//!
//! Reservation windows are stored as integer microseconds (`starts_at_us`,
//! `ends_at_us`): overlap checks compare them, and SQLite compares text
//! timestamps lexically.

use sea_orm_migration::prelude::*;

use crate::columns::{id, timestamp};
use crate::keys::{self, foreign_key, reference};

#[derive(DeriveMigrationName)]
pub struct Migration;

#[derive(DeriveIden, Clone)]
enum Reservations {
    Table,
    Id,
    ReferenceCode,
    UserId,
    BayId,
    AuthMethodId,
    AuthChoice,
    StartsAtUs,
    EndsAtUs,
    Status,
    CancelledAtUs,
    CreatedAt,
}

#[derive(DeriveIden, Clone)]
enum BayMaintenance {
    Table,
    BayId,
    Reason,
    CreatedAt,
}

#[derive(DeriveIden, Clone)]
enum NotificationOutbox {
    Table,
    Id,
    UserId,
    Template,
    Payload,
    CreatedAt,
    SentAtUs,
}

#[derive(DeriveIden, Clone)]
enum Users {
    Table,
}

#[derive(DeriveIden, Clone)]
enum Bays {
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
                    .table(Reservations::Table)
                    .col(id(Reservations::Id))
                    .col(
                        ColumnDef::new(Reservations::ReferenceCode)
                            .string_len(16)
                            .not_null(),
                    )
                    .col(reference(Reservations::UserId))
                    .col(reference(Reservations::BayId))
                    .col(ColumnDef::new(Reservations::AuthMethodId).integer())
                    .col(
                        ColumnDef::new(Reservations::AuthChoice)
                            .string_len(8)
                            .not_null(),
                    )
                    .col(
                        ColumnDef::new(Reservations::StartsAtUs)
                            .big_integer()
                            .not_null(),
                    )
                    .col(
                        ColumnDef::new(Reservations::EndsAtUs)
                            .big_integer()
                            .not_null(),
                    )
                    .col(
                        ColumnDef::new(Reservations::Status)
                            .string_len(16)
                            .not_null(),
                    )
                    .col(ColumnDef::new(Reservations::CancelledAtUs).big_integer())
                    .col(timestamp(Reservations::CreatedAt))
                    .foreign_key(&mut foreign_key(
                        Reservations::Table,
                        Reservations::UserId,
                        Users::Table,
                        ForeignKeyAction::Cascade,
                    ))
                    .foreign_key(&mut foreign_key(
                        Reservations::Table,
                        Reservations::BayId,
                        Bays::Table,
                        ForeignKeyAction::Cascade,
                    ))
                    .foreign_key(&mut foreign_key(
                        Reservations::Table,
                        Reservations::AuthMethodId,
                        AuthMethods::Table,
                        ForeignKeyAction::SetNull,
                    ))
                    .to_owned(),
            )
            .await?;
        keys::unique_index(manager, Reservations::Table, &["reference_code"]).await?;
        keys::index(manager, Reservations::Table, &["bay_id", "starts_at_us"]).await?;
        keys::index(manager, Reservations::Table, &["user_id", "starts_at_us"]).await?;

        manager
            .create_table(
                Table::create()
                    .table(BayMaintenance::Table)
                    .col(reference(BayMaintenance::BayId).primary_key())
                    .col(
                        ColumnDef::new(BayMaintenance::Reason)
                            .string_len(255)
                            .not_null()
                            .default(""),
                    )
                    .col(timestamp(BayMaintenance::CreatedAt))
                    .foreign_key(&mut foreign_key(
                        BayMaintenance::Table,
                        BayMaintenance::BayId,
                        Bays::Table,
                        ForeignKeyAction::Cascade,
                    ))
                    .to_owned(),
            )
            .await?;

        manager
            .create_table(
                Table::create()
                    .table(NotificationOutbox::Table)
                    .col(id(NotificationOutbox::Id))
                    .col(reference(NotificationOutbox::UserId))
                    .col(
                        ColumnDef::new(NotificationOutbox::Template)
                            .string_len(64)
                            .not_null(),
                    )
                    .col(
                        ColumnDef::new(NotificationOutbox::Payload)
                            .text()
                            .not_null(),
                    )
                    .col(timestamp(NotificationOutbox::CreatedAt))
                    .col(ColumnDef::new(NotificationOutbox::SentAtUs).big_integer())
                    .foreign_key(&mut foreign_key(
                        NotificationOutbox::Table,
                        NotificationOutbox::UserId,
                        Users::Table,
                        ForeignKeyAction::Cascade,
                    ))
                    .to_owned(),
            )
            .await?;
        keys::index(manager, NotificationOutbox::Table, &["sent_at_us"]).await?;
        Ok(())
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        for table in [
            NotificationOutbox::Table.into_iden(),
            BayMaintenance::Table.into_iden(),
            Reservations::Table.into_iden(),
        ] {
            manager
                .drop_table(Table::drop().table(table).to_owned())
                .await?;
        }
        Ok(())
    }
}
