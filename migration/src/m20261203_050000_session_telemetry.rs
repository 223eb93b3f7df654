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
pub(crate) enum SessionTelemetry {
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
pub(crate) enum Devices {
    Table,
}

#[derive(DeriveIden)]
pub(crate) enum Bays {
    Table,
}

/// The keys a telemetry table is created with.
#[derive(Clone, Copy, PartialEq, Eq)]
pub(crate) enum Keys {
    /// Its session, device and bay, as first created.
    All,
    /// Its session only (`m20261211_010000_telemetry_keys`).
    SessionOnly,
}

/// The telemetry table, created as `name` (a rebuild creates it beside the
/// old one and renames it); its keys are named after `session_telemetry`.
pub(crate) fn create(name: impl IntoIden, keys: Keys) -> TableCreateStatement {
    let name = name.into_iden();
    let required = |column: SessionTelemetry| ColumnDef::new(column).not_null().to_owned();
    let mut table = Table::create()
        .table(name.clone())
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
        .foreign_key(&mut key(
            &name,
            SessionTelemetry::SessionId,
            ChargingSessions::Table,
        ))
        .to_owned();
    if keys == Keys::All {
        table
            .foreign_key(&mut key(&name, SessionTelemetry::DeviceId, Devices::Table))
            .foreign_key(&mut key(&name, SessionTelemetry::BayId, Bays::Table));
    }
    table
}

/// A cascading key of `table`, named after `session_telemetry` whatever the
/// table is created as.
fn key<R: Iden + 'static>(
    table: &DynIden,
    column: SessionTelemetry,
    to: R,
) -> ForeignKeyCreateStatement {
    foreign_key(
        SessionTelemetry::Table,
        column,
        to,
        ForeignKeyAction::Cascade,
    )
    .from_tbl(table.clone())
    .to_owned()
}

/// The table's indexes (dropped with it, so a rebuild creates them again).
pub(crate) async fn create_indexes(manager: &SchemaManager<'_>) -> Result<(), DbErr> {
    unique_index(manager, SessionTelemetry::Table, &["device_id", "ts_us"]).await?;
    index(manager, SessionTelemetry::Table, &["session_id", "ts_us"]).await?;
    index(manager, SessionTelemetry::Table, &["bay_id", "id"]).await?;
    index(manager, SessionTelemetry::Table, &["ts_us"]).await
}

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .create_table(create(SessionTelemetry::Table, Keys::All))
            .await?;
        create_indexes(manager).await
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        drop_tables(manager, vec![SessionTelemetry::Table.into_iden()]).await
    }
}
