//! Event payloads and their versioned wire envelope.
//!
//! Envelopes are small JSON objects: `{"v":1,"id":"…","type":"…","data":{…}}`.
//! A replica that receives an envelope of a version it does not know drops it and
//! counts it, so mixed-version deployments degrade instead of failing.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use uuid::Uuid;

use crate::entities::{DeviceStatus, alert, bay};

use super::Topic;

pub const ENVELOPE_VERSION: u8 = 1;

/// Everything clients can watch change.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "type", content = "data", rename_all = "snake_case")]
pub enum DomainEvent {
    BayStatusChanged(BayStatusChanged),
    AlertChanged(AlertChanged),
    CheckinRecorded(crate::checkin::live::CheckinRecorded),
    AssignmentChanged(AssignmentChanged),
    ChargeStateChanged(ChargeStateChanged),
    AvailabilityChanged(crate::ticketing::live::AvailabilityChanged),
    KioskPairingChanged(KioskPairingChanged),
    KioskAccessChanged(KioskAccessChanged),
}

impl DomainEvent {
    /// The topics this event is delivered under: every event goes to its type's
    /// catch-all topic and to the narrower topics subscribers filter on.
    pub fn topics(&self) -> Vec<Topic> {
        match self {
            Self::BayStatusChanged(e) => vec![
                Topic::AllBays,
                Topic::StationBays(e.bay.station_id),
                Topic::Bay(e.bay.id),
            ],
            // One stream for every alert: subscribers filter by station and
            // severity, and by what their principal supervises.
            Self::AlertChanged(_) => vec![Topic::Alerts],
            // One stream per event: dashboards filter by list.
            Self::CheckinRecorded(e) => vec![Topic::Checkin(e.checkin.event_id)],
            // In the alerts' stream, so a technician's alert subscription
            // sees a revocation before any later alert of that station.
            Self::AssignmentChanged(_) => vec![Topic::Alerts],
            Self::ChargeStateChanged(e) => vec![
                Topic::ChargeSessions,
                Topic::ChargeSession(e.session_id),
                Topic::ChargeBay(e.bay_id),
            ],
            // One stream per event: storefronts filter by date.
            Self::AvailabilityChanged(e) => vec![Topic::Availability(e.event_id)],
            Self::KioskPairingChanged(e) => vec![Topic::KioskPairing(e.pairing_id)],
            Self::KioskAccessChanged(_) => vec![Topic::KioskAccess],
        }
    }

    /// For an event carrying the whole state of one row: that row, as a key
    /// of the bus, and the revision it carries. The bus drops such an event
    /// when it has already published a later revision of the row: events
    /// published after their commits may reach it out of their writes' order,
    /// and an older state must not be the last a subscriber sees.
    pub fn revision(&self) -> Option<(Row, i64)> {
        match self {
            Self::BayStatusChanged(e) => Some((Row("bay", e.bay.id), e.bay.revision)),
            Self::AlertChanged(e) => Some((Row("alert", e.alert.id), e.alert.revision)),
            Self::ChargeStateChanged(e) => Some((Row("session", e.session_id), e.revision)),
            _ => None,
        }
    }

    /// Whether this is a row's state announced again (see
    /// [`BayStatusChanged::repeat`]): the bus then drops it at the same
    /// revision as the last it published, not only at an older one.
    pub fn is_repeat(&self) -> bool {
        matches!(self, Self::BayStatusChanged(e) if e.repeat)
    }

    pub fn name(&self) -> &'static str {
        match self {
            Self::BayStatusChanged(_) => "bay_status_changed",
            Self::AlertChanged(_) => "alert_changed",
            Self::CheckinRecorded(_) => "checkin_recorded",
            Self::AssignmentChanged(_) => "assignment_changed",
            Self::ChargeStateChanged(_) => "charge_state_changed",
            Self::AvailabilityChanged(_) => "availability_changed",
            Self::KioskPairingChanged(_) => "kiosk_pairing_changed",
            Self::KioskAccessChanged(_) => "kiosk_access_changed",
        }
    }
}

/// A row whose events carry its whole state: its kind and id (`bay:7` as a
/// key name).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Row(pub &'static str, pub i32);

impl std::fmt::Display for Row {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}:{}", self.0, self.1)
    }
}

/// A bay's lock or device state changed. Carries the whole bay row so subscribers
/// resolve `bay { … }` without touching the database.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct BayStatusChanged {
    pub bay: bay::Model,
    pub device_status: Option<DeviceStatus>,
    pub changed_at: DateTime<Utc>,
    /// The bay's state announced again, not a change: a device report
    /// delivered again after its replica committed it, whose first
    /// announcement may never have been published (the replica died between
    /// its commit and its publish). The bus publishes it only when it has
    /// published no state of the bay as new, so a repeat of one it did
    /// publish reaches nobody.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub repeat: bool,
}

/// An alert was raised, seen again, taken in charge, resolved or closed. It
/// carries the alert row, which is not public: subscriptions deliver it only
/// to principals who supervise its station.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct AlertChanged {
    pub alert: alert::Model,
    pub change: AlertChange,
}

/// A technician's station assignment changed. `revoked`: it no longer gives
/// them the station (removed or deactivated), so their live subscriptions
/// scoped to it end. Carries ids only.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AssignmentChanged {
    pub user_id: i32,
    pub station_id: i32,
    pub revoked: bool,
}

/// A charging session changed state. Not public: `chargeStateChanged` delivers
/// it only to the session's customer, staff and the station's technicians.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ChargeStateChanged {
    pub session_id: i32,
    pub bay_id: i32,
    pub station_id: i32,
    pub user_id: i32,
    pub state: crate::entities::charging_session::SessionState,
    pub energy_kwh: Option<f64>,
    pub current_a: Option<f64>,
    pub voltage_v: Option<f64>,
    pub at: DateTime<Utc>,
    /// The session's revision (see [`DomainEvent::revision`]). (Events of
    /// earlier versions have none.)
    #[serde(default)]
    pub revision: i64,
}

/// A kiosk's mobile pairing changed state. Not public: `terminalPairingChanged`
/// delivers it only to the kiosk of its cabinet; it names no customer.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct KioskPairingChanged {
    pub pairing_id: i32,
    pub cabinet_id: i32,
    pub state: crate::entities::kiosk_pairing::PairingState,
    /// The session it opened, once consumed.
    pub session_id: Option<i32>,
    pub at: DateTime<Utc>,
}

/// A kiosk credential was issued or revoked, or a cabinet (or a station)
/// changed: replicas forget whether that cabinet's kiosk tokens stand. No
/// client sees it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct KioskAccessChanged {
    /// The cabinet; none for every cabinet.
    pub cabinet_id: Option<i32>,
}

/// What happened to an alert.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum AlertChange {
    Raised,
    /// Its condition was seen again.
    Updated,
    Acknowledged,
    Resolved,
    Closed,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Envelope {
    pub v: u8,
    pub id: Uuid,
    #[serde(flatten)]
    pub event: DomainEvent,
}

impl Envelope {
    pub fn new(event: DomainEvent) -> Self {
        Self {
            v: ENVELOPE_VERSION,
            id: Uuid::new_v4(),
            event,
        }
    }

    /// Decodes an envelope, refusing versions this build does not understand.
    ///
    /// # Errors
    /// On malformed JSON, an unknown event type or an unsupported version.
    pub fn decode(bytes: &[u8]) -> anyhow::Result<Self> {
        #[derive(Deserialize)]
        struct Version {
            v: u8,
        }
        let Version { v } = serde_json::from_slice(bytes)?;
        anyhow::ensure!(v == ENVELOPE_VERSION, "unsupported envelope version {v}");
        Ok(serde_json::from_slice(bytes)?)
    }
}

/// Events for the bus's unit tests.
#[cfg(test)]
pub mod fixtures {
    use super::*;
    use crate::entities::{BayStatus, LockState};

    /// A change of bay `bay_id` (number `number`) in station `station_id`.
    pub fn bay_change(station_id: i32, bay_id: i32, number: i32) -> DomainEvent {
        DomainEvent::BayStatusChanged(BayStatusChanged {
            bay: bay::Model {
                id: bay_id,
                station_id,
                cabinet_id: 3,
                number,
                status: BayStatus::Available,
                lock_state: LockState::Unlocked,
                revision: 1,
            },
            device_status: Some(DeviceStatus::Idle),
            changed_at: "2026-11-22T10:00:00.123456Z".parse().unwrap_or_default(),
            repeat: false,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample() -> DomainEvent {
        fixtures::bay_change(2, 7, 1)
    }

    #[test]
    fn envelopes_round_trip_with_their_version() {
        let envelope = Envelope::new(sample());
        let bytes = serde_json::to_vec(&envelope).unwrap_or_default();
        let text = String::from_utf8_lossy(&bytes);
        assert!(
            text.contains(r#""v":1"#) && text.contains(r#""type":"bay_status_changed""#),
            "{text}"
        );
        let decoded = Envelope::decode(&bytes).ok();
        assert_eq!(decoded, Some(envelope));
    }

    #[test]
    fn unknown_versions_are_refused() {
        let text = serde_json::to_string(&Envelope::new(sample()))
            .unwrap_or_default()
            .replace(r#""v":1"#, r#""v":2"#);
        assert!(Envelope::decode(text.as_bytes()).is_err());
    }

    #[test]
    fn bay_events_reach_the_station_and_bay_topics() {
        assert_eq!(
            sample().topics(),
            vec![Topic::AllBays, Topic::StationBays(2), Topic::Bay(7)]
        );
    }
}
