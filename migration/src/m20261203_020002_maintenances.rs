//! Maintenance interventions (seed 002 `Maintenance`): a station, the
//! technician doing it (kept when the profile goes, as null), a type, a
//! description, a status and the planned and done dates.

use sea_orm_migration::prelude::*;

use crate::columns::{id, timestamp};
use crate::keys::{foreign_key, index};

#[derive(DeriveMigrationName)]
pub struct Migration;

#[derive(DeriveIden, Clone)]
enum Maintenances {
    Table,
    Id,
    StationId,
    TechnicianId,
    Kind,
    Description,
    Status,
    PlannedAt,
    DoneAt,
    CreatedAt,
}

#[derive(DeriveIden)]
enum Stations {
    Table,
}

#[derive(DeriveIden)]
enum Technicians {
    Table,
}

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .create_table(
                Table::create()
                    .table(Maintenances::Table)
                    .col(id(Maintenances::Id))
                    .col(ColumnDef::new(Maintenances::StationId).integer().not_null())
                    .col(ColumnDef::new(Maintenances::TechnicianId).integer().null())
                    .col(ColumnDef::new(Maintenances::Kind).string_len(64).not_null())
                    .col(ColumnDef::new(Maintenances::Description).text().not_null())
                    .col(
                        ColumnDef::new(Maintenances::Status)
                            .string_len(16)
                            .not_null()
                            .default("planned"),
                    )
                    .col(
                        ColumnDef::new(Maintenances::PlannedAt)
                            .timestamp_with_time_zone()
                            .not_null(),
                    )
                    .col(
                        ColumnDef::new(Maintenances::DoneAt)
                            .timestamp_with_time_zone()
                            .null(),
                    )
                    .col(timestamp(Maintenances::CreatedAt))
                    .foreign_key(&mut foreign_key(
                        Maintenances::Table,
                        Maintenances::StationId,
                        Stations::Table,
                        ForeignKeyAction::Cascade,
                    ))
                    .foreign_key(&mut foreign_key(
                        Maintenances::Table,
                        Maintenances::TechnicianId,
                        Technicians::Table,
                        ForeignKeyAction::SetNull,
                    ))
                    .to_owned(),
            )
            .await?;
        index(manager, Maintenances::Table, &["station_id"]).await?;
        index(manager, Maintenances::Table, &["technician_id"]).await
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .drop_table(Table::drop().table(Maintenances::Table).to_owned())
            .await
    }
}
