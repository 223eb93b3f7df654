//! Ticketing, first part (seed 003, pretix): organizers, their events and the
//! dates of a series (sub-events), teams with pretix's permission set, their
//! members and events, team API tokens (stored hashed) and the ticketing audit
//! log.

use sea_orm_migration::prelude::*;

use crate::columns::{id, timestamp};
use crate::keys::{Link, foreign_key, index, link_table, unique_index};

#[derive(DeriveMigrationName)]
pub struct Migration;

#[derive(DeriveIden, Clone)]
enum Organizers {
    Table,
    Id,
    Name,
    Slug,
    CreatedAt,
}

#[derive(DeriveIden, Clone)]
enum Events {
    Table,
    Id,
    OrganizerId,
    Name,
    Slug,
    Currency,
    DateFrom,
    DateTo,
    PresaleStart,
    PresaleEnd,
    Location,
    TimeZone,
    Live,
    Testmode,
    HasSubevents,
    SalesChannels,
    CartHoldMinutes,
    CreatedAt,
}

#[derive(DeriveIden, Clone)]
enum SubEvents {
    Table,
    Id,
    EventId,
    Name,
    Active,
    IsPublic,
    DateFrom,
    DateTo,
    PresaleStart,
    PresaleEnd,
    Location,
    CreatedAt,
}

// pretix's column `can_change_teams` ends with the table's name.
#[allow(clippy::enum_variant_names)]
#[derive(DeriveIden, Clone)]
enum Teams {
    Table,
    Id,
    OrganizerId,
    Name,
    AllEvents,
    CanCreateEvents,
    CanChangeTeams,
    CanManageCustomers,
    CanChangeOrganizerSettings,
    CanChangeEventSettings,
    CanChangeItems,
    CanViewOrders,
    CanChangeOrders,
    CanCheckinOrders,
    CanViewVouchers,
    CanChangeVouchers,
    CreatedAt,
}

#[derive(DeriveIden, Clone)]
enum TeamMembers {
    Table,
    TeamId,
    UserId,
    AddedAt,
}

#[derive(DeriveIden, Clone)]
enum TeamEvents {
    Table,
    TeamId,
    EventId,
    AddedAt,
}

#[derive(DeriveIden, Clone)]
enum TeamApiTokens {
    Table,
    Id,
    TeamId,
    Name,
    TokenHash,
    Active,
    CreatedAt,
}

#[derive(DeriveIden, Clone)]
enum TicketingLog {
    Table,
    Id,
    OrganizerId,
    EventId,
    UserId,
    TeamApiTokenId,
    ActionType,
    ObjectType,
    ObjectId,
    Data,
    Datetime,
}

#[derive(DeriveIden)]
enum Users {
    Table,
}

fn flag(col: impl IntoIden) -> ColumnDef {
    ColumnDef::new(col)
        .boolean()
        .not_null()
        .default(false)
        .to_owned()
}

fn instant(col: impl IntoIden) -> ColumnDef {
    ColumnDef::new(col).timestamp_with_time_zone().to_owned()
}

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .create_table(
                Table::create()
                    .table(Organizers::Table)
                    .col(id(Organizers::Id))
                    .col(ColumnDef::new(Organizers::Name).string_len(200).not_null())
                    .col(ColumnDef::new(Organizers::Slug).string_len(50).not_null())
                    .col(timestamp(Organizers::CreatedAt))
                    .to_owned(),
            )
            .await?;
        unique_index(manager, Organizers::Table, &["slug"]).await?;

        manager
            .create_table(
                Table::create()
                    .table(Events::Table)
                    .col(id(Events::Id))
                    .col(ColumnDef::new(Events::OrganizerId).integer().not_null())
                    .col(ColumnDef::new(Events::Name).string_len(200).not_null())
                    .col(ColumnDef::new(Events::Slug).string_len(50).not_null())
                    .col(ColumnDef::new(Events::Currency).string_len(3).not_null())
                    .col(instant(Events::DateFrom).not_null())
                    .col(instant(Events::DateTo))
                    .col(instant(Events::PresaleStart))
                    .col(instant(Events::PresaleEnd))
                    .col(ColumnDef::new(Events::Location).string_len(500))
                    .col(ColumnDef::new(Events::TimeZone).string_len(64).not_null())
                    .col(flag(Events::Live))
                    .col(flag(Events::Testmode))
                    .col(flag(Events::HasSubevents))
                    .col(
                        ColumnDef::new(Events::SalesChannels)
                            .string_len(200)
                            .not_null()
                            .default("web"),
                    )
                    .col(
                        ColumnDef::new(Events::CartHoldMinutes)
                            .integer()
                            .not_null()
                            .default(30),
                    )
                    .col(timestamp(Events::CreatedAt))
                    .foreign_key(&mut foreign_key(
                        Events::Table,
                        Events::OrganizerId,
                        Organizers::Table,
                        ForeignKeyAction::Cascade,
                    ))
                    .to_owned(),
            )
            .await?;
        unique_index(manager, Events::Table, &["organizer_id", "slug"]).await?;

        manager
            .create_table(
                Table::create()
                    .table(SubEvents::Table)
                    .col(id(SubEvents::Id))
                    .col(ColumnDef::new(SubEvents::EventId).integer().not_null())
                    .col(ColumnDef::new(SubEvents::Name).string_len(200).not_null())
                    .col(flag(SubEvents::Active))
                    .col(flag(SubEvents::IsPublic))
                    .col(instant(SubEvents::DateFrom).not_null())
                    .col(instant(SubEvents::DateTo))
                    .col(instant(SubEvents::PresaleStart))
                    .col(instant(SubEvents::PresaleEnd))
                    .col(ColumnDef::new(SubEvents::Location).string_len(500))
                    .col(timestamp(SubEvents::CreatedAt))
                    .foreign_key(&mut foreign_key(
                        SubEvents::Table,
                        SubEvents::EventId,
                        Events::Table,
                        ForeignKeyAction::Cascade,
                    ))
                    .to_owned(),
            )
            .await?;
        index(manager, SubEvents::Table, &["event_id"]).await?;

        manager
            .create_table(
                Table::create()
                    .table(Teams::Table)
                    .col(id(Teams::Id))
                    .col(ColumnDef::new(Teams::OrganizerId).integer().not_null())
                    .col(ColumnDef::new(Teams::Name).string_len(200).not_null())
                    .col(flag(Teams::AllEvents))
                    .col(flag(Teams::CanCreateEvents))
                    .col(flag(Teams::CanChangeTeams))
                    .col(flag(Teams::CanManageCustomers))
                    .col(flag(Teams::CanChangeOrganizerSettings))
                    .col(flag(Teams::CanChangeEventSettings))
                    .col(flag(Teams::CanChangeItems))
                    .col(flag(Teams::CanViewOrders))
                    .col(flag(Teams::CanChangeOrders))
                    .col(flag(Teams::CanCheckinOrders))
                    .col(flag(Teams::CanViewVouchers))
                    .col(flag(Teams::CanChangeVouchers))
                    .col(timestamp(Teams::CreatedAt))
                    .foreign_key(&mut foreign_key(
                        Teams::Table,
                        Teams::OrganizerId,
                        Organizers::Table,
                        ForeignKeyAction::Cascade,
                    ))
                    .to_owned(),
            )
            .await?;
        index(manager, Teams::Table, &["organizer_id"]).await?;

        link_table(
            manager,
            TeamMembers::Table,
            Link {
                column: TeamMembers::TeamId,
                references: Teams::Table,
            },
            Link {
                column: TeamMembers::UserId,
                references: Users::Table,
            },
            TeamMembers::AddedAt,
        )
        .await?;
        link_table(
            manager,
            TeamEvents::Table,
            Link {
                column: TeamEvents::TeamId,
                references: Teams::Table,
            },
            Link {
                column: TeamEvents::EventId,
                references: Events::Table,
            },
            TeamEvents::AddedAt,
        )
        .await?;

        manager
            .create_table(
                Table::create()
                    .table(TeamApiTokens::Table)
                    .col(id(TeamApiTokens::Id))
                    .col(ColumnDef::new(TeamApiTokens::TeamId).integer().not_null())
                    .col(
                        ColumnDef::new(TeamApiTokens::Name)
                            .string_len(200)
                            .not_null(),
                    )
                    .col(
                        ColumnDef::new(TeamApiTokens::TokenHash)
                            .string_len(64)
                            .not_null(),
                    )
                    .col(flag(TeamApiTokens::Active))
                    .col(timestamp(TeamApiTokens::CreatedAt))
                    .foreign_key(&mut foreign_key(
                        TeamApiTokens::Table,
                        TeamApiTokens::TeamId,
                        Teams::Table,
                        ForeignKeyAction::Cascade,
                    ))
                    .to_owned(),
            )
            .await?;
        unique_index(manager, TeamApiTokens::Table, &["token_hash"]).await?;
        index(manager, TeamApiTokens::Table, &["team_id"]).await?;

        manager
            .create_table(
                Table::create()
                    .table(TicketingLog::Table)
                    .col(id(TicketingLog::Id))
                    .col(
                        ColumnDef::new(TicketingLog::OrganizerId)
                            .integer()
                            .not_null(),
                    )
                    .col(ColumnDef::new(TicketingLog::EventId).integer())
                    .col(ColumnDef::new(TicketingLog::UserId).integer())
                    .col(ColumnDef::new(TicketingLog::TeamApiTokenId).integer())
                    .col(
                        ColumnDef::new(TicketingLog::ActionType)
                            .string_len(100)
                            .not_null(),
                    )
                    .col(
                        ColumnDef::new(TicketingLog::ObjectType)
                            .string_len(50)
                            .not_null(),
                    )
                    .col(ColumnDef::new(TicketingLog::ObjectId).integer().not_null())
                    .col(ColumnDef::new(TicketingLog::Data).text().not_null())
                    .col(timestamp(TicketingLog::Datetime))
                    .foreign_key(&mut foreign_key(
                        TicketingLog::Table,
                        TicketingLog::OrganizerId,
                        Organizers::Table,
                        ForeignKeyAction::Cascade,
                    ))
                    .foreign_key(&mut foreign_key(
                        TicketingLog::Table,
                        TicketingLog::UserId,
                        Users::Table,
                        ForeignKeyAction::SetNull,
                    ))
                    .to_owned(),
            )
            .await?;
        index(manager, TicketingLog::Table, &["organizer_id", "event_id"]).await?;
        Ok(())
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        for table in [
            TicketingLog::Table.into_iden(),
            TeamApiTokens::Table.into_iden(),
            TeamEvents::Table.into_iden(),
            TeamMembers::Table.into_iden(),
            Teams::Table.into_iden(),
            SubEvents::Table.into_iden(),
            Events::Table.into_iden(),
            Organizers::Table.into_iden(),
        ] {
            manager
                .drop_table(Table::drop().table(table).to_owned())
                .await?;
        }
        Ok(())
    }
}
