//! Technicians (seed 002 `Technicien`): a profile linked to an account holding
//! the technician role; and the role and active flag of their station
//! assignments (`TechnicienStation`). Only active assignments give a
//! technician a station's scope; an observer's assignment gives it to read.

use sea_orm_migration::prelude::*;

use crate::columns::{id, timestamp};
use crate::keys::{foreign_key, unique_index};

#[derive(DeriveMigrationName)]
pub struct Migration;

#[derive(DeriveIden, Clone)]
enum Technicians {
    Table,
    Id,
    UserId,
    Name,
    Email,
    Phone,
    CreatedAt,
}

#[derive(DeriveIden)]
enum StationAssignments {
    Table,
    Role,
    IsActive,
}

#[derive(DeriveIden)]
enum Users {
    Table,
}

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .create_table(
                Table::create()
                    .table(Technicians::Table)
                    .col(id(Technicians::Id))
                    .col(ColumnDef::new(Technicians::UserId).integer().not_null())
                    .col(ColumnDef::new(Technicians::Name).string_len(150).not_null())
                    .col(ColumnDef::new(Technicians::Email).string_len(254).null())
                    .col(ColumnDef::new(Technicians::Phone).string_len(32).null())
                    .col(timestamp(Technicians::CreatedAt))
                    .foreign_key(&mut foreign_key(
                        Technicians::Table,
                        Technicians::UserId,
                        Users::Table,
                        ForeignKeyAction::Cascade,
                    ))
                    .to_owned(),
            )
            .await?;
        unique_index(manager, Technicians::Table, &["user_id"]).await?;
        // SQLite adds one column per statement.
        let columns = [
            ColumnDef::new(StationAssignments::Role)
                .string_len(16)
                .not_null()
                .default("contributor")
                .to_owned(),
            ColumnDef::new(StationAssignments::IsActive)
                .boolean()
                .not_null()
                .default(true)
                .to_owned(),
        ];
        for mut column in columns {
            manager
                .alter_table(
                    Table::alter()
                        .table(StationAssignments::Table)
                        .add_column(&mut column)
                        .to_owned(),
                )
                .await?;
        }
        Ok(())
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        for column in [StationAssignments::IsActive, StationAssignments::Role] {
            manager
                .alter_table(
                    Table::alter()
                        .table(StationAssignments::Table)
                        .drop_column(column)
                        .to_owned(),
                )
                .await?;
        }
        manager
            .drop_table(Table::drop().table(Technicians::Table).to_owned())
            .await
    }
}
