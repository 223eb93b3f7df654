//! SeaORM entities, one module per table.
//!
//! Entities live together because foreign keys cross domains. They carry storage
//! concerns only: no GraphQL derives and no behaviour beyond what SeaORM needs.
//! Stored enum values are English and lowercase; `docs/model-map.tsv` maps them to
//! the documented (French) values.

pub mod bay;
pub mod cabinet;
pub mod device;
pub mod enums;
pub mod station;

pub use enums::*;
