//! Charging sessions (seed 002: `Session`) and the authentication attempts at
//! kiosks (seed 002: `Authentification` history).
//!
//! At most one open session per bay: a partial unique index over the rows
//! whose `ended_at` is null. Deadlines are integer microseconds so jobs
//! compare numbers on every backend.

use sea_orm_migration::prelude::*;

use crate::columns::{id, timestamp};
use crate::keys::{self, foreign_key, reference};

#[derive(DeriveMigrationName)]
pub struct Migration;

#[derive(DeriveIden, Clone)]
enum ChargingSessions {
    Table,
    Id,
    ReservationId,
    UserId,
    BayId,
    CabinetId,
    State,
    Method,
    OpenedAt,
    StateChangedAt,
    PlugTimeoutSecs,
    PlugDeadlineUs,
    StartCommandId,
    ChargingSince,
    EndedAt,
    EnergyKwh,
    Error,
}

#[derive(DeriveIden, Clone)]
enum ChargingAuthAttempts {
    Table,
    Id,
    CabinetId,
    BayId,
    ReservationId,
    UserId,
    SessionId,
    Method,
    Succeeded,
    CreatedAt,
    CreatedAtUs,
}

#[derive(DeriveIden, Clone)]
enum Reservations {
    Table,
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
enum Cabinets {
    Table,
}

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .create_table(
                Table::create()
                    .table(ChargingSessions::Table)
                    .col(id(ChargingSessions::Id))
                    .col(reference(ChargingSessions::ReservationId))
                    .col(reference(ChargingSessions::UserId))
                    .col(reference(ChargingSessions::BayId))
                    .col(reference(ChargingSessions::CabinetId))
                    .col(
                        ColumnDef::new(ChargingSessions::State)
                            .string_len(20)
                            .not_null(),
                    )
                    .col(
                        ColumnDef::new(ChargingSessions::Method)
                            .string_len(8)
                            .not_null(),
                    )
                    .col(timestamp(ChargingSessions::OpenedAt))
                    .col(timestamp(ChargingSessions::StateChangedAt))
                    .col(
                        ColumnDef::new(ChargingSessions::PlugTimeoutSecs)
                            .integer()
                            .not_null(),
                    )
                    .col(ColumnDef::new(ChargingSessions::PlugDeadlineUs).big_integer())
                    .col(ColumnDef::new(ChargingSessions::StartCommandId).string_len(36))
                    .col(ColumnDef::new(ChargingSessions::ChargingSince).timestamp_with_time_zone())
                    .col(ColumnDef::new(ChargingSessions::EndedAt).timestamp_with_time_zone())
                    .col(ColumnDef::new(ChargingSessions::EnergyKwh).double())
                    .col(ColumnDef::new(ChargingSessions::Error).string_len(255))
                    .foreign_key(&mut foreign_key(
                        ChargingSessions::Table,
                        ChargingSessions::ReservationId,
                        Reservations::Table,
                        ForeignKeyAction::Cascade,
                    ))
                    .foreign_key(&mut foreign_key(
                        ChargingSessions::Table,
                        ChargingSessions::UserId,
                        Users::Table,
                        ForeignKeyAction::Cascade,
                    ))
                    .foreign_key(&mut foreign_key(
                        ChargingSessions::Table,
                        ChargingSessions::BayId,
                        Bays::Table,
                        ForeignKeyAction::Cascade,
                    ))
                    .foreign_key(&mut foreign_key(
                        ChargingSessions::Table,
                        ChargingSessions::CabinetId,
                        Cabinets::Table,
                        ForeignKeyAction::Cascade,
                    ))
                    .to_owned(),
            )
            .await?;
        keys::unique_index_where(
            manager,
            ChargingSessions::Table,
            &["bay_id"],
            Expr::col(ChargingSessions::EndedAt).is_null(),
        )
        .await?;
        keys::index(
            manager,
            ChargingSessions::Table,
            &["state", "plug_deadline_us"],
        )
        .await?;
        keys::index(manager, ChargingSessions::Table, &["user_id", "id"]).await?;
        keys::index(manager, ChargingSessions::Table, &["reservation_id"]).await?;

        manager
            .create_table(
                Table::create()
                    .table(ChargingAuthAttempts::Table)
                    .col(id(ChargingAuthAttempts::Id))
                    .col(reference(ChargingAuthAttempts::CabinetId))
                    .col(reference(ChargingAuthAttempts::BayId))
                    .col(ColumnDef::new(ChargingAuthAttempts::ReservationId).integer())
                    .col(ColumnDef::new(ChargingAuthAttempts::UserId).integer())
                    .col(ColumnDef::new(ChargingAuthAttempts::SessionId).integer())
                    .col(
                        ColumnDef::new(ChargingAuthAttempts::Method)
                            .string_len(8)
                            .not_null(),
                    )
                    .col(
                        ColumnDef::new(ChargingAuthAttempts::Succeeded)
                            .boolean()
                            .not_null(),
                    )
                    .col(timestamp(ChargingAuthAttempts::CreatedAt))
                    .col(
                        ColumnDef::new(ChargingAuthAttempts::CreatedAtUs)
                            .big_integer()
                            .not_null(),
                    )
                    .foreign_key(&mut foreign_key(
                        ChargingAuthAttempts::Table,
                        ChargingAuthAttempts::CabinetId,
                        Cabinets::Table,
                        ForeignKeyAction::Cascade,
                    ))
                    .foreign_key(&mut foreign_key(
                        ChargingAuthAttempts::Table,
                        ChargingAuthAttempts::BayId,
                        Bays::Table,
                        ForeignKeyAction::Cascade,
                    ))
                    .foreign_key(&mut foreign_key(
                        ChargingAuthAttempts::Table,
                        ChargingAuthAttempts::ReservationId,
                        Reservations::Table,
                        ForeignKeyAction::SetNull,
                    ))
                    .foreign_key(&mut foreign_key(
                        ChargingAuthAttempts::Table,
                        ChargingAuthAttempts::UserId,
                        Users::Table,
                        ForeignKeyAction::SetNull,
                    ))
                    .to_owned(),
            )
            .await?;
        keys::index(
            manager,
            ChargingAuthAttempts::Table,
            &["cabinet_id", "succeeded", "created_at_us"],
        )
        .await?;
        keys::index(
            manager,
            ChargingAuthAttempts::Table,
            &["bay_id", "succeeded", "created_at_us"],
        )
        .await?;
        keys::index(manager, ChargingAuthAttempts::Table, &["user_id", "id"]).await?;
        Ok(())
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        keys::drop_tables(
            manager,
            vec![
                ChargingAuthAttempts::Table.into_iden(),
                ChargingSessions::Table.into_iden(),
            ],
        )
        .await
    }
}
