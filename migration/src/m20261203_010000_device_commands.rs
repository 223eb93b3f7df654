//! The device command log (seed 002: the device's `last_command_*` history):
//! one row per command sent to a bay's device, with its acknowledgement and
//! its deadline.
//!
//! `deadline_us` is integer microseconds so the timeout job compares numbers on
//! every backend; `owner` names the step that sent the command (e.g.
//! `charging_session:42`), so its outcome reaches that step.

use sea_orm_migration::prelude::*;

use crate::columns::{id, timestamp};
use crate::keys::{self, foreign_key, reference};

#[derive(DeriveMigrationName)]
pub struct Migration;

#[derive(DeriveIden, Clone)]
enum DeviceCommandLog {
    Table,
    Id,
    CommandId,
    DeviceId,
    BayId,
    Action,
    Payload,
    Owner,
    SentAt,
    DeadlineUs,
    Status,
    AckedAt,
    Error,
    IgnoredAcks,
}

#[derive(DeriveIden, Clone)]
enum Devices {
    Table,
}

#[derive(DeriveIden, Clone)]
enum Bays {
    Table,
}

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .create_table(
                Table::create()
                    .table(DeviceCommandLog::Table)
                    .col(id(DeviceCommandLog::Id))
                    .col(
                        ColumnDef::new(DeviceCommandLog::CommandId)
                            .string_len(36)
                            .not_null(),
                    )
                    .col(reference(DeviceCommandLog::DeviceId))
                    .col(reference(DeviceCommandLog::BayId))
                    .col(
                        ColumnDef::new(DeviceCommandLog::Action)
                            .string_len(16)
                            .not_null(),
                    )
                    .col(ColumnDef::new(DeviceCommandLog::Payload).text().not_null())
                    .col(ColumnDef::new(DeviceCommandLog::Owner).string_len(64))
                    .col(timestamp(DeviceCommandLog::SentAt))
                    .col(
                        ColumnDef::new(DeviceCommandLog::DeadlineUs)
                            .big_integer()
                            .not_null(),
                    )
                    .col(
                        ColumnDef::new(DeviceCommandLog::Status)
                            .string_len(16)
                            .not_null(),
                    )
                    .col(ColumnDef::new(DeviceCommandLog::AckedAt).timestamp_with_time_zone())
                    .col(ColumnDef::new(DeviceCommandLog::Error).string_len(255))
                    .col(
                        ColumnDef::new(DeviceCommandLog::IgnoredAcks)
                            .integer()
                            .not_null()
                            .default(0),
                    )
                    .foreign_key(&mut foreign_key(
                        DeviceCommandLog::Table,
                        DeviceCommandLog::DeviceId,
                        Devices::Table,
                        ForeignKeyAction::Cascade,
                    ))
                    .foreign_key(&mut foreign_key(
                        DeviceCommandLog::Table,
                        DeviceCommandLog::BayId,
                        Bays::Table,
                        ForeignKeyAction::Cascade,
                    ))
                    .to_owned(),
            )
            .await?;
        keys::unique_index(manager, DeviceCommandLog::Table, &["command_id"]).await?;
        keys::index(manager, DeviceCommandLog::Table, &["status", "deadline_us"]).await?;
        keys::index(manager, DeviceCommandLog::Table, &["bay_id", "id"]).await?;
        Ok(())
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .drop_table(Table::drop().table(DeviceCommandLog::Table).to_owned())
            .await
    }
}
