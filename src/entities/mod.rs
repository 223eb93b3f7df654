//! SeaORM entities, one module per table.
//!
//! Entities live together because foreign keys cross domains. They carry storage
//! concerns only: no GraphQL derives. Beside SeaORM's derives they hold the
//! queries every domain needs the same way: stored names (`RoleName`) and
//! scoped queries (`visible_to(&principal)`), which apply a principal's scope
//! to the entity once, for every resolver that reads it.
//! Stored enum values are English and lowercase; `docs/model-map.tsv` maps them to
//! the documented (French) values.

pub mod auth_method;
pub mod auth_type;
pub mod bay;
pub mod bay_maintenance;
pub mod cabinet;
pub mod consent;
pub mod device;
pub mod enums;
pub mod notification_outbox;
pub mod profile;
pub mod refresh_token;
pub mod reservation;
pub mod role;
pub mod scheduled_job;
pub mod security_log;
pub mod server_secret;
pub mod station;
pub mod station_assignment;
pub mod user;
pub mod user_role;

pub use enums::*;
pub use role::RoleName;
