//! Device inventory (seed 002 `Device`): when a device was retired from
//! service, and when this server last received a report from it.
//!
//! `last_heard_at` is the server's receive time, unlike `last_seen` (the
//! device's clock): the heartbeat timeout compares it with the server's
//! clock, so a device whose clock drifts is not taken for a silent one.

use sea_orm_migration::prelude::*;

#[derive(DeriveMigrationName)]
pub struct Migration;

#[derive(DeriveIden)]
enum Devices {
    Table,
    RetiredAt,
    LastHeardAt,
}

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        // SQLite adds one column per statement.
        for column in [Devices::RetiredAt, Devices::LastHeardAt] {
            manager
                .alter_table(
                    Table::alter()
                        .table(Devices::Table)
                        .add_column(
                            ColumnDef::new(column)
                                .timestamp_with_time_zone()
                                .null()
                                .to_owned(),
                        )
                        .to_owned(),
                )
                .await?;
        }
        Ok(())
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        for column in [Devices::LastHeardAt, Devices::RetiredAt] {
            manager
                .alter_table(
                    Table::alter()
                        .table(Devices::Table)
                        .drop_column(column)
                        .to_owned(),
                )
                .await?;
        }
        Ok(())
    }
}
