//! Stations assigned to technicians (seed 002: `AffectationStation`): the scope a
//! technician principal carries. Supervision builds on it.

use sea_orm_migration::prelude::*;

use crate::keys::{Link, link_table};

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
        link_table(
            manager,
            StationAssignments::Table,
            Link {
                column: StationAssignments::UserId,
                references: Users::Table,
            },
            Link {
                column: StationAssignments::StationId,
                references: Stations::Table,
            },
            StationAssignments::AssignedAt,
        )
        .await
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .drop_table(Table::drop().table(StationAssignments::Table).to_owned())
            .await
    }
}
