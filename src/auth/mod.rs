//! Identity: password hashing, tokens, the request's [`Principal`] and its
//! [`Scope`]s, guards and rate limits.
//!
//! Nothing here knows about HTTP or GraphQL except `guards`, which adapts the
//! checks to async-graphql resolvers, and nothing here knows a domain: roles
//! and the rows principals are built from are entities.

pub mod guards;
pub mod kiosk_access;
pub mod password;
pub mod principal;
pub mod rate_limit;
pub mod scope;
pub mod team_tokens;
pub mod tokens;

pub use crate::entities::RoleName;
pub use principal::{Kiosk, Person, Principal, Scanner, TeamPermission, TeamToken};
pub use scope::Scope;
