//! What can be asked of a device, how it reports progress, and how services
//! send commands.
//!
//! These are domain words; their lowercase spelling is also the protocol's, which
//! is why they derive serde: `mqtt::payload` uses them in its wire structs.
//! Services send commands through `commands_log::send`, which logs them and
//! hands them to [`DeviceCommands`], which the MQTT edge implements
//! (`<prefix>/bays/<n>/cmd`) and the service context carries.

use async_trait::async_trait;
use serde::{Deserialize, Serialize};
use uuid::Uuid;

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

/// A bay's device, as commands address it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BayAddress {
    /// The cabinet's MQTT prefix.
    pub prefix: String,
    /// The bay's number in its cabinet (the device's slot).
    pub number: i32,
    /// The device's login, read with the address so that signing a command
    /// needs no lookup; `None` when it has no live credentials (nothing can be
    /// signed for it).
    pub login: Option<DeviceLogin>,
}

/// What a device's command key derives from: its username and credential
/// generation (`devices::credentials`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DeviceLogin {
    pub username: String,
    pub generation: i32,
}

/// Sends commands to devices; the answer is the command id the device will acknowledge.
#[async_trait]
pub trait DeviceCommands: Send + Sync + 'static {
    /// Sends the command under `command_id`, which the caller logged first
    /// (`commands_log::send`), so no acknowledgement can outrun the log.
    ///
    /// # Errors
    /// When the command cannot be handed to the transport.
    async fn send(
        &self,
        bay: &BayAddress,
        command_id: Uuid,
        action: CommandAction,
        params: serde_json::Map<String, serde_json::Value>,
    ) -> anyhow::Result<()>;
}

/// No device link (MQTT disabled): every command fails.
pub struct Unavailable;

#[async_trait]
impl DeviceCommands for Unavailable {
    async fn send(
        &self,
        _bay: &BayAddress,
        _command_id: Uuid,
        action: CommandAction,
        _params: serde_json::Map<String, serde_json::Value>,
    ) -> anyhow::Result<()> {
        anyhow::bail!("cannot send {}: MQTT is disabled", action.as_str())
    }
}
