//! SeaORM entities, one module per table.
//!
//! Entities live together because foreign keys cross domains. They carry storage
//! concerns only: no GraphQL derives and no behaviour beyond what SeaORM needs.
//! Stored enum values are English and lowercase; `docs/model-map.tsv` maps them to
//! the documented (French) values.

pub mod auth_method;
pub mod auth_type;
pub mod bay;
pub mod cabinet;
pub mod consent;
pub mod device;
pub mod enums;
pub mod profile;
pub mod refresh_token;
pub mod role;
pub mod security_log;
pub mod server_secret;
pub mod station;
pub mod user;
pub mod user_role;

pub use enums::*;
