//! Events a kiosk accepted while offline (`kiosk_offline_events`), stored as
//! uploaded before they are reconciled, with their outcome: nothing uploaded
//! is lost, and an event id uploaded again is recognized.

use sea_orm_migration::prelude::*;

use crate::columns::{id, timestamp};
use crate::keys::{self, foreign_key, reference};

#[derive(DeriveMigrationName)]
pub struct Migration;

#[derive(DeriveIden, Clone)]
enum KioskOfflineEvents {
    Table,
    Id,
    CabinetId,
    EventId,
    Kind,
    BayId,
    ReservationId,
    Method,
    OccurredAt,
    ReceivedAt,
    Outcome,
    Reason,
    Detail,
    SessionId,
}

#[derive(DeriveIden, Clone)]
enum Cabinets {
    Table,
}

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .create_table(
                Table::create()
                    .table(KioskOfflineEvents::Table)
                    .col(id(KioskOfflineEvents::Id))
                    .col(reference(KioskOfflineEvents::CabinetId))
                    .col(
                        ColumnDef::new(KioskOfflineEvents::EventId)
                            .string_len(36)
                            .not_null(),
                    )
                    .col(
                        ColumnDef::new(KioskOfflineEvents::Kind)
                            .string_len(24)
                            .not_null(),
                    )
                    // Plain ids: the record of what the kiosk said stays even
                    // when what it named is gone.
                    .col(reference(KioskOfflineEvents::BayId))
                    .col(ColumnDef::new(KioskOfflineEvents::ReservationId).integer())
                    .col(ColumnDef::new(KioskOfflineEvents::Method).string_len(16))
                    .col(timestamp(KioskOfflineEvents::OccurredAt))
                    .col(timestamp(KioskOfflineEvents::ReceivedAt))
                    .col(
                        ColumnDef::new(KioskOfflineEvents::Outcome)
                            .string_len(16)
                            .not_null(),
                    )
                    .col(ColumnDef::new(KioskOfflineEvents::Reason).string_len(32))
                    .col(ColumnDef::new(KioskOfflineEvents::Detail).string_len(255))
                    .col(ColumnDef::new(KioskOfflineEvents::SessionId).integer())
                    .foreign_key(&mut foreign_key(
                        KioskOfflineEvents::Table,
                        KioskOfflineEvents::CabinetId,
                        Cabinets::Table,
                        ForeignKeyAction::Cascade,
                    ))
                    .to_owned(),
            )
            .await?;
        keys::unique_index(
            manager,
            KioskOfflineEvents::Table,
            &["cabinet_id", "event_id"],
        )
        .await?;
        Ok(())
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .drop_table(Table::drop().table(KioskOfflineEvents::Table).to_owned())
            .await
    }
}
