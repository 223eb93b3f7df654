//! Telemetry samples keep the key of their session only.
//!
//! Every stored sample made the database check its device's and its bay's
//! rows as well as its session's: three lookups and row locks per sample, at
//! thousands of samples a second. The session is what a sample belongs to:
//! it is deleted with its session, and so with the session's bay, as before.
//! A device removed from the inventory no longer takes its samples with it;
//! they stay with the sessions they measured.
//!
//! PostgreSQL drops the two constraints in place. SQLite cannot drop a
//! constraint, so the table is rebuilt: created beside the old one, filled
//! from it, and renamed in its place, with its indexes created again.

use sea_orm_migration::prelude::*;
use sea_orm_migration::sea_orm::{ConnectionTrait, DatabaseBackend};

use crate::keys::foreign_key;
use crate::m20261203_050000_session_telemetry::{
    self as telemetry, Bays, Devices, Keys, SessionTelemetry,
};

#[derive(DeriveMigrationName)]
pub struct Migration;

/// The columns, in the order both versions of the table have them.
const COLUMNS: &str =
    "id, session_id, device_id, bay_id, current_a, voltage_v, energy_kwh, ts, ts_us, received_at";

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        if manager.get_database_backend() == DatabaseBackend::Postgres {
            for column in ["device_id", "bay_id"] {
                manager
                    .drop_foreign_key(
                        ForeignKey::drop()
                            .name(format!("fk_session_telemetry_{column}"))
                            .table(SessionTelemetry::Table)
                            .to_owned(),
                    )
                    .await?;
            }
            Ok(())
        } else {
            rebuild(manager, Keys::SessionOnly).await
        }
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        if manager.get_database_backend() == DatabaseBackend::Postgres {
            manager
                .create_foreign_key(foreign_key(
                    SessionTelemetry::Table,
                    SessionTelemetry::DeviceId,
                    Devices::Table,
                    ForeignKeyAction::Cascade,
                ))
                .await?;
            manager
                .create_foreign_key(foreign_key(
                    SessionTelemetry::Table,
                    SessionTelemetry::BayId,
                    Bays::Table,
                    ForeignKeyAction::Cascade,
                ))
                .await?;
            Ok(())
        } else {
            rebuild(manager, Keys::All).await
        }
    }
}

/// Rebuilds the table with `keys` (SQLite), rows and ids kept.
async fn rebuild(manager: &SchemaManager<'_>, keys: Keys) -> Result<(), DbErr> {
    let rebuilt = Alias::new("session_telemetry_rebuilt");
    manager
        .create_table(telemetry::create(rebuilt.clone(), keys))
        .await?;
    manager
        .get_connection()
        .execute_unprepared(&format!(
            "INSERT INTO session_telemetry_rebuilt ({COLUMNS}) SELECT {COLUMNS} FROM session_telemetry"
        ))
        .await?;
    manager
        .drop_table(Table::drop().table(SessionTelemetry::Table).to_owned())
        .await?;
    manager
        .rename_table(
            Table::rename()
                .table(rebuilt, SessionTelemetry::Table)
                .to_owned(),
        )
        .await?;
    telemetry::create_indexes(manager).await
}
