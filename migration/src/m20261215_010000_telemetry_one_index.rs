//! Telemetry samples keep one index beside their primary key.
//!
//! A stored sample wrote five index entries: its primary key, its device and
//! time (the redelivery check), its session and time (range queries), its bay
//! (latest values) and its time (pruning). At thousands of samples a second
//! those were most of the database's work per sample. One unique index on
//! (session, time, device) now serves the redelivery check (a sample's
//! session is the one open on its device's bay at its time, so a redelivery
//! has the same session), a session's range queries and its latest sample;
//! a bay's latest sample is read through its sessions (indexed here by bay),
//! and pruning follows the primary key.

use sea_orm_migration::prelude::*;

use crate::keys;

#[derive(DeriveMigrationName)]
pub struct Migration;

#[derive(DeriveIden, Clone)]
enum SessionTelemetry {
    Table,
}

#[derive(DeriveIden, Clone)]
enum ChargingSessions {
    Table,
}

/// The unique index that replaces the four.
const KEY: [&str; 3] = ["session_id", "ts_us", "device_id"];

/// The indexes it replaces: whether unique, and their columns.
const REPLACED: [(bool, &[&str]); 4] = [
    (true, &["device_id", "ts_us"]),
    (false, &["session_id", "ts_us"]),
    (false, &["bay_id", "id"]),
    (false, &["ts_us"]),
];

/// A bay's sessions, newest first.
const SESSIONS_BY_BAY: [&str; 2] = ["bay_id", "id"];

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        // The new key first: existing rows are unique on it already (it holds
        // the old key's columns).
        keys::unique_index(manager, SessionTelemetry::Table, &KEY).await?;
        for (unique, columns) in REPLACED {
            keys::drop_index(manager, SessionTelemetry::Table, columns, unique).await?;
        }
        keys::index(manager, ChargingSessions::Table, &SESSIONS_BY_BAY).await
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        keys::drop_index(manager, ChargingSessions::Table, &SESSIONS_BY_BAY, false).await?;
        for (unique, columns) in REPLACED {
            if unique {
                keys::unique_index(manager, SessionTelemetry::Table, columns).await?;
            } else {
                keys::index(manager, SessionTelemetry::Table, columns).await?;
            }
        }
        keys::drop_index(manager, SessionTelemetry::Table, &KEY, true).await
    }
}
