//! The MQTT edge: device protocol codecs, the ingesting client and the embedded broker.
//!
//! `topic`, `payload` and `command_auth` are pure and hold the whole device
//! protocol (version 1, `DESIGN.md` §5; `docs/mqtt-protocol.md`). `ingest` runs
//! the client loop and hands each message, converted to the devices domain's
//! types, to that domain; nothing a device sends can stop it: a message that
//! cannot be understood is counted by reason and dropped; `takeover` ingests
//! what the broker kept for a replica that died. `broker` and `gate`
//! are the embedded broker and the authenticating front listener devices reach
//! it through; `mosquitto` renders the equivalent password and ACL files for
//! Mosquitto.

#[cfg(feature = "embedded-broker")]
pub mod broker;
pub mod command_auth;
#[cfg(feature = "embedded-broker")]
pub mod gate;
pub mod ingest;
pub mod mosquitto;
pub mod payload;
mod takeover;
pub mod topic;

pub use ingest::{MqttHandle, MqttOptions};

/// MQTT v5 shared-subscription group: replicas in the group share the messages,
/// so each message is ingested by exactly one of them.
pub const SHARE_GROUP: &str = "voltgate";

/// Why a device message was dropped; the label of the dropped-messages counter.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DropReason {
    UnknownTopic,
    MalformedJson,
    InvalidPayload,
    UnsupportedVersion,
    UnknownBay,
    MacMismatch,
    /// Larger than `VOLTGATE_MQTT_MAX_PAYLOAD_BYTES`.
    PayloadTooLarge,
    /// Stamped further ahead of the receive time than `VOLTGATE_MQTT_MAX_CLOCK_SKEW_SECS`.
    ClockSkew,
    NotIngested,
    Internal,
}

impl DropReason {
    pub const fn as_str(self) -> &'static str {
        match self {
            Self::UnknownTopic => "unknown_topic",
            Self::MalformedJson => "malformed_json",
            Self::InvalidPayload => "invalid_payload",
            Self::UnsupportedVersion => "unsupported_version",
            Self::UnknownBay => "unknown_bay",
            Self::MacMismatch => "mac_mismatch",
            Self::PayloadTooLarge => "payload_too_large",
            Self::ClockSkew => "clock_skew",
            Self::NotIngested => "not_ingested",
            Self::Internal => "internal",
        }
    }
}
