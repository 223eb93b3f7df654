//! Blocked tickets and revoked ticket secrets (seed 003 pretix
//! `OrderPosition.blocked` and `RevokedTicketSecret`).
//!
//! `ticket_blocks` has one row per ticket ever blocked; unblocking keeps the
//! row with `blocked = false`, so an offline delta sees the change.
//! `revoked_ticket_secrets` keeps each secret a ticket no longer has, so a
//! door scanning it answers `REVOKED` rather than `INVALID`.

use sea_orm_migration::prelude::*;

use crate::columns::{id, timestamp};
use crate::keys::{foreign_key, index, reference, unique_index};

#[derive(DeriveMigrationName)]
pub struct Migration;

#[derive(DeriveIden, Clone)]
enum TicketBlocks {
    Table,
    PositionId,
    EventId,
    Blocked,
    UpdatedAt,
}

#[derive(DeriveIden, Clone)]
enum RevokedTicketSecrets {
    Table,
    Id,
    EventId,
    PositionId,
    Secret,
    CreatedAt,
}

#[derive(DeriveIden, Clone)]
enum Events {
    Table,
}

#[derive(DeriveIden, Clone)]
enum OrderPositions {
    Table,
}

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .create_table(
                Table::create()
                    .table(TicketBlocks::Table)
                    .col(
                        ColumnDef::new(TicketBlocks::PositionId)
                            .integer()
                            .not_null()
                            .primary_key(),
                    )
                    .col(reference(TicketBlocks::EventId))
                    .col(ColumnDef::new(TicketBlocks::Blocked).boolean().not_null())
                    .col(timestamp(TicketBlocks::UpdatedAt))
                    .foreign_key(&mut foreign_key(
                        TicketBlocks::Table,
                        TicketBlocks::PositionId,
                        OrderPositions::Table,
                        ForeignKeyAction::Cascade,
                    ))
                    .foreign_key(&mut foreign_key(
                        TicketBlocks::Table,
                        TicketBlocks::EventId,
                        Events::Table,
                        ForeignKeyAction::Cascade,
                    ))
                    .to_owned(),
            )
            .await?;
        index(manager, TicketBlocks::Table, &["event_id", "updated_at"]).await?;

        manager
            .create_table(
                Table::create()
                    .table(RevokedTicketSecrets::Table)
                    .col(id(RevokedTicketSecrets::Id))
                    .col(reference(RevokedTicketSecrets::EventId))
                    .col(reference(RevokedTicketSecrets::PositionId))
                    .col(
                        ColumnDef::new(RevokedTicketSecrets::Secret)
                            .string_len(200)
                            .not_null(),
                    )
                    .col(timestamp(RevokedTicketSecrets::CreatedAt))
                    .foreign_key(&mut foreign_key(
                        RevokedTicketSecrets::Table,
                        RevokedTicketSecrets::PositionId,
                        OrderPositions::Table,
                        ForeignKeyAction::Cascade,
                    ))
                    .foreign_key(&mut foreign_key(
                        RevokedTicketSecrets::Table,
                        RevokedTicketSecrets::EventId,
                        Events::Table,
                        ForeignKeyAction::Cascade,
                    ))
                    .to_owned(),
            )
            .await?;
        unique_index(manager, RevokedTicketSecrets::Table, &["secret"]).await?;
        index(
            manager,
            RevokedTicketSecrets::Table,
            &["event_id", "created_at"],
        )
        .await?;
        index(manager, RevokedTicketSecrets::Table, &["position_id"]).await?;
        Ok(())
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        crate::keys::drop_tables(
            manager,
            vec![
                RevokedTicketSecrets::Table.into_iden(),
                TicketBlocks::Table.into_iden(),
            ],
        )
        .await
    }
}
