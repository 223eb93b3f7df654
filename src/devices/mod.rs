//! Devices on the bays: what they report over MQTT, the commands they are sent,
//! and the live view of it.
//!
//! `reports` applies device messages to storage (plain async, no MQTT types);
//! `commands` is how services address devices; `figures` counts them;
//! `graphql` exposes devices (their part of `Bay`) and the `bayStatusChanged`
//! subscription; `loaders` batches a bay's device.
//!
//! Invariant: a device's state is only ever replaced by a newer report (device
//! `ts`, then optional `seq`), enforced by one conditional `UPDATE`, so replicas
//! ingesting one device's messages out of order converge on its latest state.

pub mod commands;
pub mod figures;
pub mod graphql;
pub mod loaders;
pub mod reports;
