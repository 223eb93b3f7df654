//! Identity: password hashing, tokens, the request's [`Principal`], guards and rate limits.
//!
//! Nothing here knows about HTTP or GraphQL except `guards`, which adapts the
//! checks to async-graphql resolvers.

pub mod guards;
pub mod password;
pub mod principal;
pub mod rate_limit;
pub mod tokens;

pub use principal::{Principal, RoleName, UserPrincipal};
