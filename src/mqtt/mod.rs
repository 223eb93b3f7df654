//! The MQTT edge: device protocol codecs, the ingesting client and the embedded broker.
//!
//! `topic` and `payload` are pure and hold the whole device protocol (version 1,
//! `DESIGN.md` §5). `ingest` runs the client loop and hands each message to the
//! devices domain; nothing a device sends can stop it: a message that cannot be
//! understood is counted by reason and dropped.

#[cfg(feature = "embedded-broker")]
pub mod broker;
pub mod ingest;
pub mod payload;
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
            Self::NotIngested => "not_ingested",
            Self::Internal => "internal",
        }
    }
}
