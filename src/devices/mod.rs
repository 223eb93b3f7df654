//! Devices on the bays: what they report over MQTT, and the live view of it.
//!
//! `reports` applies device messages to storage (plain async, no MQTT types);
//! `graphql` exposes devices and the `bayStatusChanged` subscription.
//!
//! Invariant: a device's state is only ever replaced by a newer report (device
//! `ts`, then optional `seq`), enforced by one conditional `UPDATE`, so replicas
//! ingesting one device's messages out of order converge on its latest state.

pub mod graphql;
pub mod reports;
