//! Event meta properties (seed 003 pretix `EventMetaProperty`,
//! `EventMetaValue`, `SubEventMetaValue`): fields an organizer defines for its
//! events, with a default, and the values events and dates of a series set.
//!
//! A property's name is unique within its organizer; an event (or a date) has
//! at most one value per property. Deleting a property, an event or a date
//! deletes its values.

use sea_orm_migration::prelude::*;

use crate::columns::{id, timestamp};
use crate::keys::{drop_tables, foreign_key, index, reference, unique_index};

#[derive(DeriveMigrationName)]
pub struct Migration;

#[derive(DeriveIden, Clone)]
enum EventMetaProperties {
    Table,
    Id,
    OrganizerId,
    Name,
    DefaultValue,
    CreatedAt,
}

#[derive(DeriveIden, Clone)]
enum EventMetaValues {
    Table,
    Id,
    EventId,
    PropertyId,
    Value,
}

#[derive(DeriveIden, Clone)]
enum SubEventMetaValues {
    Table,
    Id,
    SubEventId,
    PropertyId,
    Value,
}

#[derive(DeriveIden)]
enum Organizers {
    Table,
}

#[derive(DeriveIden)]
enum Events {
    Table,
}

#[derive(DeriveIden)]
enum SubEvents {
    Table,
}

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .create_table(
                Table::create()
                    .table(EventMetaProperties::Table)
                    .col(id(EventMetaProperties::Id))
                    .col(reference(EventMetaProperties::OrganizerId))
                    .col(
                        ColumnDef::new(EventMetaProperties::Name)
                            .string_len(50)
                            .not_null(),
                    )
                    .col(
                        ColumnDef::new(EventMetaProperties::DefaultValue)
                            .text()
                            .not_null(),
                    )
                    .col(timestamp(EventMetaProperties::CreatedAt))
                    .foreign_key(&mut foreign_key(
                        EventMetaProperties::Table,
                        EventMetaProperties::OrganizerId,
                        Organizers::Table,
                        ForeignKeyAction::Cascade,
                    ))
                    .to_owned(),
            )
            .await?;
        unique_index(
            manager,
            EventMetaProperties::Table,
            &["organizer_id", "name"],
        )
        .await?;

        manager
            .create_table(
                Table::create()
                    .table(EventMetaValues::Table)
                    .col(id(EventMetaValues::Id))
                    .col(reference(EventMetaValues::EventId))
                    .col(reference(EventMetaValues::PropertyId))
                    .col(ColumnDef::new(EventMetaValues::Value).text().not_null())
                    .foreign_key(&mut foreign_key(
                        EventMetaValues::Table,
                        EventMetaValues::EventId,
                        Events::Table,
                        ForeignKeyAction::Cascade,
                    ))
                    .foreign_key(&mut foreign_key(
                        EventMetaValues::Table,
                        EventMetaValues::PropertyId,
                        EventMetaProperties::Table,
                        ForeignKeyAction::Cascade,
                    ))
                    .to_owned(),
            )
            .await?;
        unique_index(
            manager,
            EventMetaValues::Table,
            &["event_id", "property_id"],
        )
        .await?;
        index(manager, EventMetaValues::Table, &["property_id"]).await?;

        manager
            .create_table(
                Table::create()
                    .table(SubEventMetaValues::Table)
                    .col(id(SubEventMetaValues::Id))
                    .col(reference(SubEventMetaValues::SubEventId))
                    .col(reference(SubEventMetaValues::PropertyId))
                    .col(ColumnDef::new(SubEventMetaValues::Value).text().not_null())
                    .foreign_key(&mut foreign_key(
                        SubEventMetaValues::Table,
                        SubEventMetaValues::SubEventId,
                        SubEvents::Table,
                        ForeignKeyAction::Cascade,
                    ))
                    .foreign_key(&mut foreign_key(
                        SubEventMetaValues::Table,
                        SubEventMetaValues::PropertyId,
                        EventMetaProperties::Table,
                        ForeignKeyAction::Cascade,
                    ))
                    .to_owned(),
            )
            .await?;
        unique_index(
            manager,
            SubEventMetaValues::Table,
            &["sub_event_id", "property_id"],
        )
        .await?;
        index(manager, SubEventMetaValues::Table, &["property_id"]).await
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        drop_tables(
            manager,
            vec![
                SubEventMetaValues::Table.into_iden(),
                EventMetaValues::Table.into_iden(),
                EventMetaProperties::Table.into_iden(),
            ],
        )
        .await
    }
}
