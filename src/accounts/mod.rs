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
}
