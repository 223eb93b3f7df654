//! What can be asked of a device, and how it reports progress.
//!
//! These are domain words; their lowercase spelling is also the protocol's, which
//! is why they derive serde: `mqtt::payload` uses them in its wire structs.

use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum CommandAction {
    Unlock,
    Lock,
    StartCharge,
    StopCharge,
    OtaUpdate,
    Reboot,
}

impl CommandAction {
    pub const fn as_str(self) -> &'static str {
        match self {
            Self::Unlock => "unlock",
            Self::Lock => "lock",
            Self::StartCharge => "start_charge",
            Self::StopCharge => "stop_charge",
            Self::OtaUpdate => "ota_update",
            Self::Reboot => "reboot",
        }
    }
}

/// Progress of a command, reported by the device.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum AckStatus {
    Accepted,
    Done,
    Failed,
    Rejected,
}

impl AckStatus {
    pub const fn as_str(self) -> &'static str {
        match self {
            Self::Accepted => "accepted",
            Self::Done => "done",
            Self::Failed => "failed",
            Self::Rejected => "rejected",
        }
    }

    /// Whether the command has finished; a final status is never replaced by `accepted`.
    pub const fn is_final(self) -> bool {
        !matches!(self, Self::Accepted)
    }
}
