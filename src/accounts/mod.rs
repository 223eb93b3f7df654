//! Accounts: registration, sessions, passwords, the security journal and staff
//! administration of users.
//!
//! Invariants: usernames and emails are stored normalized and unique; secrets
//! (passwords, refresh tokens) are stored only as hashes; every authentication
//! event is journaled; a refresh token works once, and presenting a spent one
//! revokes every token of its sign-in.

pub mod admin;
pub mod badges;
pub mod graphql;
pub mod journal;
pub mod loaders;
pub mod profile;
pub mod registration;
pub mod roles;
pub mod sessions;

/// What the edge knows about the request that services need for the journal.
#[derive(Debug, Clone, Default)]
pub struct RequestMeta {
    pub ip: Option<String>,
    pub user_agent: Option<String>,
    /// The refresh token a browser sent in its HttpOnly cookie.
    pub refresh_cookie: Option<String>,
    /// When the request arrived, by the service context's clock; decisions that
    /// depend on time (lockouts, token expiries) read it through [`Self::now`].
    pub at: Option<chrono::DateTime<chrono::Utc>>,
}

impl RequestMeta {
    /// The request's time; the system time where no edge stamped it (the CLI).
    pub fn now(&self) -> chrono::DateTime<chrono::Utc> {
        self.at.unwrap_or_else(chrono::Utc::now)
    }
}

/// The account `id`.
///
/// # Errors
/// `NOT_FOUND` when there is none.
pub async fn account(
    db: &impl sea_orm::ConnectionTrait,
    id: i32,
) -> crate::error::AppResult<crate::entities::user::Model> {
    use crate::db::FindOr as _;
    use sea_orm::EntityTrait as _;
    crate::entities::user::Entity::find_by_id(id)
        .one_or_not_found(db, "user")
        .await
}
