//! Accounts (seed 002: `Utilisateur`, `ProfilUtilisateur`, `Role`, `UtilisateurRole`,
//! `Consentement`, `JournalSecurite`, `TypeAuth`, `Authentification`; pretix `User`)
//! and the refresh tokens of sessions.

use sea_orm_migration::prelude::*;

use crate::columns::{id, timestamp};
use crate::keys::{
    Link, drop_tables, foreign_key, index, link_table_statement, reference, unique_index,
    unique_index_where,
};

#[derive(DeriveMigrationName)]
pub struct Migration;

#[derive(DeriveIden, Clone)]
enum Users {
    Table,
    Id,
    Username,
    Email,
    PasswordHash,
    Status,
    IsActive,
    IsStaff,
    IsSuperuser,
    FailedAttempts,
    LockedUntil,
    LastLogin,
    DateJoined,
    FullName,
    Locale,
    Timezone,
    NeedsPasswordChange,
    AuthBackend,
    AuthBackendIdentifier,
    TokenVersion,
    DeletedAt,
    CreatedAt,
}

#[derive(DeriveIden, Clone)]
enum Profiles {
    Table,
    Id,
    UserId,
    Name,
    Phone,
    PhoneVerified,
}

#[derive(DeriveIden, Clone)]
enum Roles {
    Table,
    Id,
    Name,
    Description,
}

#[derive(DeriveIden, Clone)]
enum UserRoles {
    Table,
    UserId,
    RoleId,
    AssignedAt,
}

#[derive(DeriveIden, Clone)]
enum Consents {
    Table,
    Id,
    UserId,
    ConsentType,
    Status,
    ConsentedAt,
}

#[derive(DeriveIden, Clone)]
enum SecurityLogs {
    Table,
    Id,
    UserId,
    Action,
    Ip,
    Status,
    Detail,
    OccurredAt,
}

#[derive(DeriveIden, Clone)]
enum AuthTypes {
    Table,
    Id,
    Label,
    FactorLevel,
}

#[derive(DeriveIden, Clone)]
enum AuthMethods {
    Table,
    Id,
    UserId,
    AuthTypeId,
    ValueHash,
    DisplayValue,
    Metadata,
    ExpiresAt,
    IsActive,
    CreatedAt,
    RevokedAt,
}

#[derive(DeriveIden, Clone)]
enum RefreshTokens {
    Table,
    Id,
    UserId,
    FamilyId,
    TokenHash,
    IssuedAt,
    ExpiresAt,
    UsedAt,
    RevokedAt,
    Ip,
    UserAgent,
}

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .create_table(
                Table::create()
                    .table(Users::Table)
                    .col(id(Users::Id))
                    .col(ColumnDef::new(Users::Username).string_len(150).not_null())
                    .col(ColumnDef::new(Users::Email).string_len(254).not_null())
                    .col(
                        ColumnDef::new(Users::PasswordHash)
                            .string_len(255)
                            .not_null(),
                    )
                    .col(
                        ColumnDef::new(Users::Status)
                            .string_len(16)
                            .not_null()
                            .default("active"),
                    )
                    .col(
                        ColumnDef::new(Users::IsActive)
                            .boolean()
                            .not_null()
                            .default(true),
                    )
                    .col(
                        ColumnDef::new(Users::IsStaff)
                            .boolean()
                            .not_null()
                            .default(false),
                    )
                    .col(
                        ColumnDef::new(Users::IsSuperuser)
                            .boolean()
                            .not_null()
                            .default(false),
                    )
                    .col(
                        ColumnDef::new(Users::FailedAttempts)
                            .integer()
                            .not_null()
                            .default(0),
                    )
                    .col(ColumnDef::new(Users::LockedUntil).timestamp_with_time_zone())
                    .col(ColumnDef::new(Users::LastLogin).timestamp_with_time_zone())
                    .col(timestamp(Users::DateJoined))
                    .col(
                        ColumnDef::new(Users::FullName)
                            .string_len(255)
                            .not_null()
                            .default(""),
                    )
                    .col(
                        ColumnDef::new(Users::Locale)
                            .string_len(16)
                            .not_null()
                            .default("fr"),
                    )
                    .col(
                        ColumnDef::new(Users::Timezone)
                            .string_len(64)
                            .not_null()
                            .default("Europe/Paris"),
                    )
                    .col(
                        ColumnDef::new(Users::NeedsPasswordChange)
                            .boolean()
                            .not_null()
                            .default(false),
                    )
                    .col(
                        ColumnDef::new(Users::AuthBackend)
                            .string_len(32)
                            .not_null()
                            .default("native"),
                    )
                    .col(ColumnDef::new(Users::AuthBackendIdentifier).string_len(190))
                    .col(
                        ColumnDef::new(Users::TokenVersion)
                            .integer()
                            .not_null()
                            .default(0),
                    )
                    .col(ColumnDef::new(Users::DeletedAt).timestamp_with_time_zone())
                    .col(timestamp(Users::CreatedAt))
                    .to_owned(),
            )
            .await?;
        // Usernames and emails are stored normalized (trimmed, lower-case), so plain
        // unique indexes make them unique case-insensitively on every database.
        unique_index(manager, Users::Table, &["username"]).await?;
        unique_index(manager, Users::Table, &["email"]).await?;
        index(manager, Users::Table, &["status"]).await?;

        manager
            .create_table(
                Table::create()
                    .table(Profiles::Table)
                    .col(id(Profiles::Id))
                    .col(reference(Profiles::UserId))
                    .col(
                        ColumnDef::new(Profiles::Name)
                            .string_len(150)
                            .not_null()
                            .default(""),
                    )
                    .col(ColumnDef::new(Profiles::Phone).string_len(32))
                    .col(
                        ColumnDef::new(Profiles::PhoneVerified)
                            .boolean()
                            .not_null()
                            .default(false),
                    )
                    .foreign_key(&mut foreign_key(
                        Profiles::Table,
                        Profiles::UserId,
                        Users::Table,
                        ForeignKeyAction::Cascade,
                    ))
                    .to_owned(),
            )
            .await?;
        unique_index(manager, Profiles::Table, &["user_id"]).await?;

        manager
            .create_table(
                Table::create()
                    .table(Roles::Table)
                    .col(id(Roles::Id))
                    .col(ColumnDef::new(Roles::Name).string_len(50).not_null())
                    .col(
                        ColumnDef::new(Roles::Description)
                            .string_len(255)
                            .not_null()
                            .default(""),
                    )
                    .to_owned(),
            )
            .await?;
        unique_index(manager, Roles::Table, &["name"]).await?;

        // Looked up from the user's side only: no index on `role_id`.
        manager
            .create_table(link_table_statement(
                UserRoles::Table,
                Link {
                    column: UserRoles::UserId,
                    references: Users::Table,
                },
                Link {
                    column: UserRoles::RoleId,
                    references: Roles::Table,
                },
                UserRoles::AssignedAt,
            ))
            .await?;

        manager
            .create_table(
                Table::create()
                    .table(Consents::Table)
                    .col(id(Consents::Id))
                    .col(reference(Consents::UserId))
                    .col(
                        ColumnDef::new(Consents::ConsentType)
                            .string_len(32)
                            .not_null(),
                    )
                    .col(ColumnDef::new(Consents::Status).string_len(16).not_null())
                    .col(timestamp(Consents::ConsentedAt))
                    .foreign_key(&mut foreign_key(
                        Consents::Table,
                        Consents::UserId,
                        Users::Table,
                        ForeignKeyAction::Cascade,
                    ))
                    .to_owned(),
            )
            .await?;
        index(manager, Consents::Table, &["user_id", "consent_type"]).await?;

        manager
            .create_table(
                Table::create()
                    .table(SecurityLogs::Table)
                    .col(id(SecurityLogs::Id))
                    .col(ColumnDef::new(SecurityLogs::UserId).integer())
                    .col(
                        ColumnDef::new(SecurityLogs::Action)
                            .string_len(64)
                            .not_null(),
                    )
                    .col(ColumnDef::new(SecurityLogs::Ip).string_len(45))
                    .col(
                        ColumnDef::new(SecurityLogs::Status)
                            .string_len(16)
                            .not_null(),
                    )
                    .col(
                        ColumnDef::new(SecurityLogs::Detail)
                            .string_len(255)
                            .not_null()
                            .default(""),
                    )
                    .col(timestamp(SecurityLogs::OccurredAt))
                    .foreign_key(&mut foreign_key(
                        SecurityLogs::Table,
                        SecurityLogs::UserId,
                        Users::Table,
                        ForeignKeyAction::SetNull,
                    ))
                    .to_owned(),
            )
            .await?;
        index(manager, SecurityLogs::Table, &["user_id", "occurred_at"]).await?;

        manager
            .create_table(
                Table::create()
                    .table(AuthTypes::Table)
                    .col(id(AuthTypes::Id))
                    .col(ColumnDef::new(AuthTypes::Label).string_len(32).not_null())
                    .col(
                        ColumnDef::new(AuthTypes::FactorLevel)
                            .integer()
                            .not_null()
                            .default(1),
                    )
                    .to_owned(),
            )
            .await?;
        unique_index(manager, AuthTypes::Table, &["label"]).await?;
        let seed = Query::insert()
            .into_table(AuthTypes::Table)
            .columns([AuthTypes::Label, AuthTypes::FactorLevel])
            .values_panic(["rfid".into(), 1.into()])
            .values_panic(["qr".into(), 1.into()])
            .values_panic(["code".into(), 1.into()])
            .to_owned();
        manager.exec_stmt(seed).await?;
        let roles = Query::insert()
            .into_table(Roles::Table)
            .columns([Roles::Name, Roles::Description])
            .values_panic([
                "administrator".into(),
                "Staff: manages the whole platform".into(),
            ])
            .values_panic([
                "customer".into(),
                "Reserves bays, charges, buys tickets".into(),
            ])
            .values_panic([
                "technician".into(),
                "Supervises and maintains assigned stations".into(),
            ])
            .values_panic(["kiosk".into(), "A cabinet or door terminal".into()])
            .values_panic(["organizer".into(), "Member of an organizer's team".into()])
            .to_owned();
        manager.exec_stmt(roles).await?;

        manager
            .create_table(
                Table::create()
                    .table(AuthMethods::Table)
                    .col(id(AuthMethods::Id))
                    .col(reference(AuthMethods::UserId))
                    .col(reference(AuthMethods::AuthTypeId))
                    .col(
                        ColumnDef::new(AuthMethods::ValueHash)
                            .string_len(64)
                            .not_null(),
                    )
                    .col(
                        ColumnDef::new(AuthMethods::DisplayValue)
                            .string_len(32)
                            .not_null(),
                    )
                    .col(
                        ColumnDef::new(AuthMethods::Metadata)
                            .json()
                            .not_null()
                            .default("{}"),
                    )
                    .col(ColumnDef::new(AuthMethods::ExpiresAt).timestamp_with_time_zone())
                    .col(
                        ColumnDef::new(AuthMethods::IsActive)
                            .boolean()
                            .not_null()
                            .default(true),
                    )
                    .col(timestamp(AuthMethods::CreatedAt))
                    .col(ColumnDef::new(AuthMethods::RevokedAt).timestamp_with_time_zone())
                    .foreign_key(&mut foreign_key(
                        AuthMethods::Table,
                        AuthMethods::UserId,
                        Users::Table,
                        ForeignKeyAction::Cascade,
                    ))
                    .foreign_key(&mut foreign_key(
                        AuthMethods::Table,
                        AuthMethods::AuthTypeId,
                        AuthTypes::Table,
                        ForeignKeyAction::Restrict,
                    ))
                    .to_owned(),
            )
            .await?;
        index(manager, AuthMethods::Table, &["user_id"]).await?;
        // One active credential per value (a badge belongs to one person at a time);
        // revoked rows keep their history.
        unique_index_where(
            manager,
            AuthMethods::Table,
            &["auth_type_id", "value_hash"],
            Expr::col(AuthMethods::IsActive),
        )
        .await?;

        manager
            .create_table(
                Table::create()
                    .table(RefreshTokens::Table)
                    .col(id(RefreshTokens::Id))
                    .col(reference(RefreshTokens::UserId))
                    .col(ColumnDef::new(RefreshTokens::FamilyId).uuid().not_null())
                    .col(
                        ColumnDef::new(RefreshTokens::TokenHash)
                            .string_len(64)
                            .not_null(),
                    )
                    .col(timestamp(RefreshTokens::IssuedAt))
                    .col(
                        ColumnDef::new(RefreshTokens::ExpiresAt)
                            .timestamp_with_time_zone()
                            .not_null(),
                    )
                    .col(ColumnDef::new(RefreshTokens::UsedAt).timestamp_with_time_zone())
                    .col(ColumnDef::new(RefreshTokens::RevokedAt).timestamp_with_time_zone())
                    .col(ColumnDef::new(RefreshTokens::Ip).string_len(45))
                    .col(ColumnDef::new(RefreshTokens::UserAgent).string_len(255))
                    .foreign_key(&mut foreign_key(
                        RefreshTokens::Table,
                        RefreshTokens::UserId,
                        Users::Table,
                        ForeignKeyAction::Cascade,
                    ))
                    .to_owned(),
            )
            .await?;
        unique_index(manager, RefreshTokens::Table, &["token_hash"]).await?;
        index(manager, RefreshTokens::Table, &["family_id"]).await?;
        Ok(())
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        drop_tables(
            manager,
            vec![
                RefreshTokens::Table.into_iden(),
                AuthMethods::Table.into_iden(),
                AuthTypes::Table.into_iden(),
                SecurityLogs::Table.into_iden(),
                Consents::Table.into_iden(),
                UserRoles::Table.into_iden(),
                Roles::Table.into_iden(),
                Profiles::Table.into_iden(),
                Users::Table.into_iden(),
            ],
        )
        .await
    }
}
