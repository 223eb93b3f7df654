//! Devices on the bays: what they report over MQTT, the commands they are sent,
//! and the live view of it.
//!
//! `reports` applies device reports to storage (domain types in, no MQTT
//! types: `mqtt/` converts its wire structs), `state_batch` many state reports
//! in a few statements; `commands` names what a device can
//! be asked and is how services send it (a trait the MQTT edge implements);
//! `commands_log` is the command path every domain sends through (logged,
//! acknowledged by `command_id`, timed out by a job, the owning step told),
//! `commands_owners` lists those steps and `commands_graphql` is its staff API;
//! `credentials` issues, rotates, revokes and checks each device's broker login
//! and command key (`credentials_graphql` is its staff API); `inventory` registers, edits, retires and lists
//! devices with where they are installed (`inventory_graphql` is its API);
//! `firmware` is the firmware policy and over-the-air updates
//! (`firmware_graphql` is its staff API); `figures` counts devices; `graphql` exposes devices (their part of `Bay`) and the
//! `bayStatusChanged` subscription; `loaders` batches a bay's device.
//!
//! Invariant: a device's state is only ever replaced by a newer report (device
//! `ts`, then optional `seq`), enforced by one conditional `UPDATE`, so replicas
//! ingesting one device's messages out of order converge on its latest state.

pub mod commands;
pub mod commands_graphql;
pub mod commands_log;
pub mod commands_owners;
pub mod credentials;
pub mod credentials_graphql;
pub mod figures;
pub mod firmware;
pub mod firmware_graphql;
pub mod graphql;
pub mod inventory;
pub mod inventory_graphql;
pub mod loaders;
pub mod reports;
pub mod state_batch;
