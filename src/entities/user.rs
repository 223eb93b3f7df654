//! An account (`Utilisateur`, unified with pretix `User`).
//!
//! `username` and `email` are stored normalized (trimmed, lower-case) so unique
//! indexes make them unique case-insensitively. `token_version` is part of every
//! access token: bumping it (password change, suspension) invalidates them all
//! at once. A deleted account keeps its row, anonymized, so financial and audit
//! records stay attached to something.

use sea_orm::entity::prelude::*;

use super::UserStatus;

#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "users")]
pub struct Model {
    #[sea_orm(primary_key)]
    pub id: i32,
    #[sea_orm(unique)]
    pub username: String,
    #[sea_orm(unique)]
    pub email: String,
    pub password_hash: String,
    pub status: UserStatus,
    pub is_active: bool,
    pub is_staff: bool,
    pub is_superuser: bool,
    pub failed_attempts: i32,
    pub locked_until: Option<DateTimeUtc>,
    pub last_login: Option<DateTimeUtc>,
    pub date_joined: DateTimeUtc,
    pub full_name: String,
    pub locale: String,
    pub timezone: String,
    pub needs_password_change: bool,
    pub auth_backend: String,
    pub auth_backend_identifier: Option<String>,
    pub token_version: i32,
    pub deleted_at: Option<DateTimeUtc>,
    pub created_at: DateTimeUtc,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}

impl Model {
    /// Whether the account may sign in and use its tokens.
    pub fn can_sign_in(&self) -> bool {
        self.status == UserStatus::Active && self.is_active && self.deleted_at.is_none()
    }
}

impl Entity {
    /// The accounts whose private data `principal` may read: every account for staff, one's own otherwise.
    pub fn visible_to(principal: &crate::auth::Principal) -> Select<Self> {
        Self::find().filter(principal.accounts().on(Column::Id))
    }
}
