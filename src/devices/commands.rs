//! Commands to bay devices, as services send them: what to do, to which bay.
//! The transport (MQTT, `<prefix>/bays/<n>/cmd`) implements [`DeviceCommands`]
//! at the edge; services only see this trait, through the service context.

use async_trait::async_trait;
use uuid::Uuid;

/// What a device is asked to do.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DeviceAction {
    Unlock,
    Lock,
    StartCharge,
    StopCharge,
    OtaUpdate,
    Reboot,
}

/// A bay's device, as commands address it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BayAddress {
    /// The cabinet's MQTT prefix.
    pub prefix: String,
    /// The bay's number in its cabinet (the device's slot).
    pub number: i32,
}

/// Sends commands to devices; the answer is the command id the device will acknowledge.
#[async_trait]
pub trait DeviceCommands: Send + Sync + 'static {
    /// # Errors
    /// When the command cannot be handed to the transport.
    async fn send(
        &self,
        bay: &BayAddress,
        action: DeviceAction,
        params: serde_json::Map<String, serde_json::Value>,
    ) -> anyhow::Result<Uuid>;
}

/// No device link (MQTT disabled): every command fails.
pub struct Unavailable;

#[async_trait]
impl DeviceCommands for Unavailable {
    async fn send(
        &self,
        _bay: &BayAddress,
        action: DeviceAction,
        _params: serde_json::Map<String, serde_json::Value>,
    ) -> anyhow::Result<Uuid> {
        anyhow::bail!("cannot send {action:?}: MQTT is disabled")
    }
}
