//! Stations assigned to technicians (seed 002: `AffectationStation`): the scope a
//! technician principal carries. Supervision builds on it.

use sea_orm_migration::prelude::*;

use crate::columns::timestamp;
use crate::keys::{foreign_key, index};

#[derive(DeriveMigrationName)]
pub struct Migration;

#[derive(DeriveIden, Clone)]
enum StationAssignments {
    Table,
    UserId,
    StationId,
    AssignedAt,
}

#[derive(DeriveIden)]
enum Users {
    Table,
}

#[derive(DeriveIden)]
enum Stations {
    Table,
}

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .create_table(
                Table::create()
                    .table(StationAssignments::Table)
                    .col(
                        ColumnDef::new(StationAssignments::UserId)
                            .integer()
                            .not_null(),
                    )
                    .col(
                        ColumnDef::new(StationAssignments::StationId)
                            .integer()
                            .not_null(),
                    )
                    .col(timestamp(StationAssignments::AssignedAt))
                    .primary_key(
                        Index::create()
                            .col(StationAssignments::UserId)
                            .col(StationAssignments::StationId),
                    )
                    .foreign_key(&mut foreign_key(
                        StationAssignments::Table,
                        StationAssignments::UserId,
                        Users::Table,
                        ForeignKeyAction::Cascade,
                    ))
                    .foreign_key(&mut foreign_key(
                        StationAssignments::Table,
                        StationAssignments::StationId,
                        Stations::Table,
                        ForeignKeyAction::Cascade,
                    ))
                    .to_owned(),
            )
            .await?;
        index(manager, StationAssignments::Table, &["station_id"]).await
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .drop_table(Table::drop().table(StationAssignments::Table).to_owned())
            .await
    }
}
