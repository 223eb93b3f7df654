//! Staff API of the device command path: the commands a bay's device was sent
//! and what became of them, and sending a maintenance command by hand.
//!
//! Charging commands (`start_charge`, `stop_charge`) belong to charging
//! sessions and firmware updates to supervision, so a person can send only
//! `unlock`, `lock` and `reboot` here.

use async_graphql::{Context, Enum, ID, InputObject, Object, Result, SimpleObject};

use super::commands::CommandAction;
use super::commands_log::{self, Owner, SendOptions};
use crate::auth::guards::principal;
use crate::entities::device_command;
use crate::graphql::ids::{self, Kind};
use crate::graphql::scalars::DateTime;
use crate::services::services;

impl Kind {
    pub const DEVICE_COMMAND: Self = Self::named("DeviceCommand");
}

/// Where a device command stands.
#[derive(Enum, Copy, Clone, Eq, PartialEq)]
#[graphql(remote = "device_command::CommandStatus")]
pub enum DeviceCommandStatus {
    /// Sent, not yet acknowledged.
    Pending,
    /// The device took it and is working on it.
    Accepted,
    Done,
    Failed,
    Rejected,
    /// The device did not finish it in time.
    TimedOut,
    /// It never left: the device could not be reached.
    Unsent,
}

/// What staff may ask of a device by hand.
#[derive(Enum, Copy, Clone, Eq, PartialEq)]
pub enum ManualDeviceAction {
    Unlock,
    Lock,
    Reboot,
}

impl From<ManualDeviceAction> for CommandAction {
    fn from(action: ManualDeviceAction) -> Self {
        match action {
            ManualDeviceAction::Unlock => Self::Unlock,
            ManualDeviceAction::Lock => Self::Lock,
            ManualDeviceAction::Reboot => Self::Reboot,
        }
    }
}

/// A command sent to a bay's device (`device_command_log`).
pub struct DeviceCommand(pub device_command::Model);

#[Object]
impl DeviceCommand {
    async fn id(&self) -> ID {
        ids::encode(Kind::DEVICE_COMMAND, self.0.id)
    }
    /// The UUID the device acknowledges (`command_id` in MQTT).
    async fn command_id(&self) -> &str {
        &self.0.command_id
    }
    async fn bay_id(&self) -> ID {
        ids::encode(Kind::BAY, self.0.bay_id)
    }
    /// The protocol's action: `unlock`, `start_charge`, …
    async fn action(&self) -> &str {
        &self.0.action
    }
    async fn status(&self) -> DeviceCommandStatus {
        self.0.status.into()
    }
    async fn sent_at(&self) -> DateTime {
        self.0.sent_at.into()
    }
    /// When the device's latest acknowledgement that moved it arrived.
    async fn acked_at(&self) -> Option<DateTime> {
        self.0.acked_at.map(Into::into)
    }
    /// When it times out if still open.
    async fn deadline(&self) -> Option<DateTime> {
        chrono::DateTime::from_timestamp_micros(self.0.deadline_us).map(Into::into)
    }
    /// The device's message on failure, or why it timed out or was not sent.
    async fn error(&self) -> Option<&str> {
        self.0.error.as_deref()
    }
    /// Which step sent it (`charging_session:42`), if any.
    async fn owner(&self) -> Option<&str> {
        self.0.owner.as_deref()
    }
    /// Acknowledgements that came after the final one (redeliveries, late answers).
    async fn ignored_acks(&self) -> i32 {
        self.0.ignored_acks
    }
}

#[derive(Default)]
pub struct DeviceCommandQuery;

#[Object]
impl DeviceCommandQuery {
    /// Staff: the latest commands sent to a bay's device, newest first.
    async fn device_commands(
        &self,
        ctx: &Context<'_>,
        bay_id: ID,
        #[graphql(default = 10)] last: i32,
    ) -> Result<Vec<DeviceCommand>> {
        principal(ctx).staff()?;
        let bay = ids::decode(&bay_id, Kind::BAY, "bayId")?;
        let last = u64::try_from(last)
            .ok()
            .filter(|n| (1..=100).contains(n))
            .ok_or_else(|| crate::error::AppError::bad_input("last", "between 1 and 100"))?;
        let rows = commands_log::latest(&services(ctx)?.db, bay, last).await?;
        Ok(rows.into_iter().map(DeviceCommand).collect())
    }
}

#[derive(InputObject)]
pub struct SendDeviceCommandInput {
    pub bay_id: ID,
    pub action: ManualDeviceAction,
}

#[derive(SimpleObject)]
pub struct SendDeviceCommandPayload {
    /// `PENDING` until the device acknowledges it; follow it with `deviceCommands`.
    pub command: DeviceCommand,
}

#[derive(Default)]
pub struct DeviceCommandMutation;

#[Object]
impl DeviceCommandMutation {
    /// Staff: sends `unlock`, `lock` or `reboot` to a bay's device.
    async fn send_device_command(
        &self,
        ctx: &Context<'_>,
        input: SendDeviceCommandInput,
    ) -> Result<SendDeviceCommandPayload> {
        let staff = principal(ctx).staff()?.id;
        let bay = ids::decode(&input.bay_id, Kind::BAY, "bayId")?;
        let action = CommandAction::from(input.action);
        let sent = commands_log::send(
            services(ctx)?,
            bay,
            action,
            serde_json::Map::new(),
            SendOptions {
                owner: Some(Owner {
                    kind: "staff",
                    id: i64::from(staff),
                }),
                timeout: None,
            },
        )
        .await?;
        tracing::info!(bay, staff, action = action.as_str(), command = %sent.command_id, "device command sent by staff");
        Ok(SendDeviceCommandPayload {
            command: DeviceCommand(sent),
        })
    }
}

/// Unused statuses are still part of the GraphQL enum; this keeps the remote
/// mapping checked in both directions.
#[cfg(test)]
mod tests {
    use super::*;
    use crate::entities::device_command::CommandStatus;
    use sea_orm::Iterable;

    #[test]
    fn every_status_maps() {
        for status in CommandStatus::iter() {
            let shown: DeviceCommandStatus = status.into();
            let back: CommandStatus = shown.into();
            assert_eq!(back, status);
        }
    }
}
