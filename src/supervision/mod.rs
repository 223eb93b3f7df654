//! Supervision: sensors and their readings, operational alerts and the rules
//! that raise them, for staff and the technicians of each station.
//!
//! Readings come from the MQTT ingestion in its batch transactions
//! (`sensors::record_all`), and so do the alerts they raise (`alerts::raise`,
//! `alerts::recover`): an alert and the reading or report that raised it are
//! stored together, and their events leave after the commit. An open alert's
//! condition (`<subject>:<kind>`) is unique, so a condition seen again updates
//! the open alert instead of opening another, whichever replica sees it.
//! Lifecycle: `NEW` when raised, `ACTIVE` once its condition is seen again,
//! `IN_PROGRESS` when a technician takes it in charge, `RESOLVED` (by a
//! technician, or by itself where the rule says recovery ends it), `CLOSED`
//! by staff.
//!
//! A device is offline when its state says so (its Last Will included) or
//! when it stays silent past the heartbeat timeout (`heartbeat`, a job);
//! `settings` holds the timeout. `overview` counts devices and open alerts
//! per supervised station (the staff and technician supervision views).

pub mod alerts;
pub mod graphql;
pub mod heartbeat;
pub mod incidents;
pub mod maintenance;
pub mod maintenance_graphql;
pub mod notifications;
pub mod overview;
pub mod rules;
pub mod sensors;
pub mod settings;
pub mod technicians;
pub mod technicians_graphql;
pub mod telemetry;
pub mod telemetry_cache;
pub mod telemetry_graphql;

use chrono::{DateTime, Utc};

use crate::entities::{bay, device};

/// A device's report to store (a telemetry sample, a sensor reading) with
/// the bay and device that sent it.
#[derive(Debug)]
pub struct Measured<'a, T> {
    pub bay: &'a bay::Model,
    pub device: &'a device::Model,
    pub report: &'a T,
    pub received_at: DateTime<Utc>,
}

// Copied by hand: a derive would ask `T: Copy` of the borrowed report.
impl<T> Clone for Measured<'_, T> {
    fn clone(&self) -> Self {
        *self
    }
}

impl<T> Copy for Measured<'_, T> {}
