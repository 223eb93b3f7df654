//! Failed kiosk authentications are counted against the reservation they
//! tried, since its credential was issued: an index on the reservation, so
//! that count reads those rows rather than every attempt ever recorded.

use sea_orm_migration::prelude::*;

use crate::keys;

#[derive(DeriveMigrationName)]
pub struct Migration;

#[derive(DeriveIden, Clone)]
enum ChargingAuthAttempts {
    Table,
}

const COLUMNS: [&str; 3] = ["reservation_id", "succeeded", "created_at_us"];

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        keys::index(manager, ChargingAuthAttempts::Table, &COLUMNS).await
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        keys::drop_index(manager, ChargingAuthAttempts::Table, &COLUMNS, false).await
    }
}
