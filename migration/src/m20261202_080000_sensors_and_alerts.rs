//! Supervision (seed 002): sensors (`Capteur`) created on a device's first
//! reading of a kind, their readings (`CapteurData`), and operational alerts
//! (`Alerte`).
//!
//! `sensor_readings` is unique on (sensor, device time), so a QoS 1
//! redelivery is stored once. An alert is *open* while `open_key` holds its
//! condition (`<subject>:<kind>`); the unique index on it makes a repeated
//! condition update the open alert, whichever replica sees it, and resolving
//! clears it (NULLs never conflict) so the next occurrence opens a new alert.
//! `session_id` names the charging session an alert concerns, once sessions
//! exist (no foreign key yet).

use sea_orm_migration::prelude::*;

use crate::columns::{id, timestamp};
use crate::keys::{drop_tables, foreign_key, index, unique_index};

#[derive(DeriveMigrationName)]
pub struct Migration;

#[derive(DeriveIden, Clone)]
enum Sensors {
    Table,
    Id,
    DeviceId,
    Kind,
    Unit,
    CreatedAt,
}

#[derive(DeriveIden, Clone)]
enum SensorReadings {
    Table,
    Id,
    SensorId,
    Value,
    Ts,
    TsUs,
    ReceivedAt,
}

#[derive(DeriveIden, Clone)]
enum Alerts {
    Table,
    Id,
    Kind,
    Severity,
    Status,
    Message,
    StationId,
    BayId,
    DeviceId,
    ReadingId,
    SessionId,
    RaisedAt,
    FirstSeen,
    LastSeen,
    NotifiedAt,
    NotificationCount,
    AssignedTechnicianId,
    AcknowledgedById,
    AcknowledgedAt,
    ResolvedById,
    ResolvedAt,
    ResolutionNote,
    OpenKey,
}

#[derive(DeriveIden)]
enum Devices {
    Table,
}

#[derive(DeriveIden)]
enum Stations {
    Table,
}

#[derive(DeriveIden)]
enum Bays {
    Table,
}

#[derive(DeriveIden)]
enum Users {
    Table,
}

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .create_table(
                Table::create()
                    .table(Sensors::Table)
                    .col(id(Sensors::Id))
                    .col(ColumnDef::new(Sensors::DeviceId).integer().not_null())
                    .col(ColumnDef::new(Sensors::Kind).string_len(32).not_null())
                    .col(ColumnDef::new(Sensors::Unit).string_len(16).not_null())
                    .col(timestamp(Sensors::CreatedAt))
                    .foreign_key(&mut foreign_key(
                        Sensors::Table,
                        Sensors::DeviceId,
                        Devices::Table,
                        ForeignKeyAction::Cascade,
                    ))
                    .to_owned(),
            )
            .await?;
        unique_index(manager, Sensors::Table, &["device_id", "kind"]).await?;

        manager
            .create_table(
                Table::create()
                    .table(SensorReadings::Table)
                    .col(id(SensorReadings::Id))
                    .col(
                        ColumnDef::new(SensorReadings::SensorId)
                            .integer()
                            .not_null(),
                    )
                    .col(ColumnDef::new(SensorReadings::Value).double().not_null())
                    .col(
                        ColumnDef::new(SensorReadings::Ts)
                            .timestamp_with_time_zone()
                            .not_null(),
                    )
                    .col(
                        ColumnDef::new(SensorReadings::TsUs)
                            .big_integer()
                            .not_null(),
                    )
                    .col(timestamp(SensorReadings::ReceivedAt))
                    .foreign_key(&mut foreign_key(
                        SensorReadings::Table,
                        SensorReadings::SensorId,
                        Sensors::Table,
                        ForeignKeyAction::Cascade,
                    ))
                    .to_owned(),
            )
            .await?;
        unique_index(manager, SensorReadings::Table, &["sensor_id", "ts_us"]).await?;

        let optional_user = |column: Alerts| {
            foreign_key(
                Alerts::Table,
                column,
                Users::Table,
                ForeignKeyAction::SetNull,
            )
        };
        manager
            .create_table(
                Table::create()
                    .table(Alerts::Table)
                    .col(id(Alerts::Id))
                    .col(ColumnDef::new(Alerts::Kind).string_len(32).not_null())
                    .col(ColumnDef::new(Alerts::Severity).string_len(16).not_null())
                    .col(ColumnDef::new(Alerts::Status).string_len(16).not_null())
                    .col(ColumnDef::new(Alerts::Message).string_len(500).not_null())
                    .col(ColumnDef::new(Alerts::StationId).integer().not_null())
                    .col(ColumnDef::new(Alerts::BayId).integer())
                    .col(ColumnDef::new(Alerts::DeviceId).integer())
                    .col(ColumnDef::new(Alerts::ReadingId).integer())
                    .col(ColumnDef::new(Alerts::SessionId).integer())
                    .col(timestamp(Alerts::RaisedAt))
                    .col(timestamp(Alerts::FirstSeen))
                    .col(timestamp(Alerts::LastSeen))
                    .col(ColumnDef::new(Alerts::NotifiedAt).timestamp_with_time_zone())
                    .col(
                        ColumnDef::new(Alerts::NotificationCount)
                            .integer()
                            .not_null()
                            .default(1),
                    )
                    .col(ColumnDef::new(Alerts::AssignedTechnicianId).integer())
                    .col(ColumnDef::new(Alerts::AcknowledgedById).integer())
                    .col(ColumnDef::new(Alerts::AcknowledgedAt).timestamp_with_time_zone())
                    .col(ColumnDef::new(Alerts::ResolvedById).integer())
                    .col(ColumnDef::new(Alerts::ResolvedAt).timestamp_with_time_zone())
                    .col(ColumnDef::new(Alerts::ResolutionNote).text())
                    .col(ColumnDef::new(Alerts::OpenKey).string_len(100))
                    .foreign_key(&mut foreign_key(
                        Alerts::Table,
                        Alerts::StationId,
                        Stations::Table,
                        ForeignKeyAction::Cascade,
                    ))
                    .foreign_key(&mut foreign_key(
                        Alerts::Table,
                        Alerts::BayId,
                        Bays::Table,
                        ForeignKeyAction::Cascade,
                    ))
                    .foreign_key(&mut foreign_key(
                        Alerts::Table,
                        Alerts::DeviceId,
                        Devices::Table,
                        ForeignKeyAction::SetNull,
                    ))
                    .foreign_key(&mut foreign_key(
                        Alerts::Table,
                        Alerts::ReadingId,
                        SensorReadings::Table,
                        ForeignKeyAction::SetNull,
                    ))
                    .foreign_key(&mut optional_user(Alerts::AssignedTechnicianId))
                    .foreign_key(&mut optional_user(Alerts::AcknowledgedById))
                    .foreign_key(&mut optional_user(Alerts::ResolvedById))
                    .to_owned(),
            )
            .await?;
        unique_index(manager, Alerts::Table, &["open_key"]).await?;
        index(manager, Alerts::Table, &["station_id", "status"]).await
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        drop_tables(
            manager,
            vec![
                Alerts::Table.into_iden(),
                SensorReadings::Table.into_iden(),
                Sensors::Table.into_iden(),
            ],
        )
        .await
    }
}
