//! Charging telemetry (seed 002 `SessionTelemetry`): the current, voltage and
//! energy a bay's device measures during a charging session.
//!
//! Unique on (device, device time), so a QoS 1 redelivery is stored once.
//! Samples arrive by the thousand per second and are pruned after the
//! configured retention, so the key is a 64-bit integer; `ts_us` (device
//! time in microseconds) is indexed per session for range queries and alone
//! for pruning.

use sea_orm_migration::prelude::*;

use crate::columns::timestamp;
use crate::keys::{drop_tables, foreign_key, index, unique_index};

#[derive(DeriveMigrationName)]
pub struct Migration;

#[derive(DeriveIden, Clone)]
enum SessionTelemetry {
    Table,
    Id,
    SessionId,
    DeviceId,
    BayId,
    CurrentA,
    VoltageV,
    EnergyKwh,
    Ts,
    TsUs,
    ReceivedAt,
}

#[derive(DeriveIden)]
enum ChargingSessions {
    Table,
}

#[derive(DeriveIden)]
enum Devices {
    Table,
}

#[derive(DeriveIden)]
enum Bays {
    Table,
}

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        let required = |column: SessionTelemetry| ColumnDef::new(column).not_null().to_owned();
        manager
            .create_table(
                Table::create()
                    .table(SessionTelemetry::Table)
                    .col(
                        ColumnDef::new(SessionTelemetry::Id)
                            .big_integer()
                            .not_null()
                            .auto_increment()
                            .primary_key(),
                    )
                    .col(required(SessionTelemetry::SessionId).integer())
                    .col(required(SessionTelemetry::DeviceId).integer())
                    .col(required(SessionTelemetry::BayId).integer())
                    .col(required(SessionTelemetry::CurrentA).double())
                    .col(required(SessionTelemetry::VoltageV).double())
                    .col(required(SessionTelemetry::EnergyKwh).double())
                    .col(required(SessionTelemetry::Ts).timestamp_with_time_zone())
                    .col(required(SessionTelemetry::TsUs).big_integer())
                    .col(timestamp(SessionTelemetry::ReceivedAt))
                    .foreign_key(&mut foreign_key(
                        SessionTelemetry::Table,
                        SessionTelemetry::SessionId,
                        ChargingSessions::Table,
                        ForeignKeyAction::Cascade,
                    ))
                    .foreign_key(&mut foreign_key(
                        SessionTelemetry::Table,
                        SessionTelemetry::DeviceId,
                        Devices::Table,
                        ForeignKeyAction::Cascade,
                    ))
                    .foreign_key(&mut foreign_key(
                        SessionTelemetry::Table,
                        SessionTelemetry::BayId,
                        Bays::Table,
                        ForeignKeyAction::Cascade,
                    ))
                    .to_owned(),
            )
            .await?;
        unique_index(manager, SessionTelemetry::Table, &["device_id", "ts_us"]).await?;
        index(manager, SessionTelemetry::Table, &["session_id", "ts_us"]).await?;
        index(manager, SessionTelemetry::Table, &["bay_id", "id"]).await?;
        index(manager, SessionTelemetry::Table, &["ts_us"]).await
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        drop_tables(manager, vec![SessionTelemetry::Table.into_iden()]).await
    }
}
