//! The firmware API (staff): schedule an over-the-air update of a device,
//! give one up, and read the global policy. A device's own expected version
//! is edited with `updateDevice`.

use async_graphql::{Context, ID, InputObject, Object, Result, SimpleObject};

use super::commands_graphql::DeviceCommand;
use super::firmware;
use super::graphql::FirmwareUpdateStatus;
use super::inventory::{self, firmware_version};
use super::inventory_graphql::{DevicePayload, SupervisedDevice};
use crate::auth::guards::principal;
use crate::entities::RoleName;
use crate::graphql::ids::{self, Kind};
use crate::services::services;

#[derive(InputObject)]
pub struct ScheduleOtaInput {
    pub device_id: ID,
    /// The version to install; the device reports it once updated.
    pub target_version: String,
    /// Where the device downloads it: an `https://` address.
    pub url: String,
}

#[derive(SimpleObject)]
pub struct ScheduleOtaPayload {
    pub device: SupervisedDevice,
    /// The `ota_update` command, `PENDING` until the device answers.
    pub command: DeviceCommand,
}

#[derive(InputObject)]
pub struct SetFirmwareUpdateStatusInput {
    pub device_id: ID,
    /// `FAILED` (give an update up) or `UNKNOWN` (back to compliance read
    /// from the versions); the other statuses come from scheduling and the
    /// device.
    pub status: FirmwareUpdateStatus,
}

/// The fleet's firmware policy.
#[derive(SimpleObject)]
pub struct FirmwarePolicy {
    /// The version every device is expected to run unless its own
    /// `expectedFirmwareVersion` is set (`VOLTGATE_FIRMWARE_EXPECTED_VERSION`).
    pub expected_version: Option<String>,
    /// Minutes a device has to install an update and answer.
    pub ota_timeout_minutes: i64,
}

#[derive(Default)]
pub struct FirmwareQuery;

#[Object]
impl FirmwareQuery {
    /// Staff and technicians: the global firmware policy.
    async fn firmware_policy(&self, ctx: &Context<'_>) -> Result<FirmwarePolicy> {
        principal(ctx).require(RoleName::Technician)?;
        let settings = &services(ctx)?.firmware;
        Ok(FirmwarePolicy {
            expected_version: settings.expected_version.clone(),
            ota_timeout_minutes: settings.ota_timeout_minutes,
        })
    }
}

#[derive(Default)]
pub struct FirmwareMutation;

#[Object]
impl FirmwareMutation {
    /// Staff: schedules an over-the-air update of a device and sends it
    /// `ota_update` with the URL and version. Refused (`INVALID_TRANSITION`)
    /// while another update of the device is under way; when the device
    /// cannot be reached the update is `FAILED` with why and the error is
    /// `DEVICE_UNREACHABLE`.
    async fn schedule_ota(
        &self,
        ctx: &Context<'_>,
        input: ScheduleOtaInput,
    ) -> Result<ScheduleOtaPayload> {
        let staff = principal(ctx).staff()?.id;
        let services = services(ctx)?;
        let id = ids::decode(&input.device_id, Kind::DEVICE, "deviceId")?;
        let version = firmware_version(&input.target_version, "targetVersion")?;
        let url = firmware::update_url(&input.url)?;
        let command = firmware::schedule(services, id, version, url, staff).await?;
        let device = inventory::get(&services.db, principal(ctx), id).await?;
        Ok(ScheduleOtaPayload {
            device: SupervisedDevice(device),
            command: DeviceCommand(command),
        })
    }

    /// Staff: sets a device's update status by hand (`FAILED` or `UNKNOWN`).
    async fn set_firmware_update_status(
        &self,
        ctx: &Context<'_>,
        input: SetFirmwareUpdateStatusInput,
    ) -> Result<DevicePayload> {
        let staff = principal(ctx).staff()?.id;
        let services = services(ctx)?;
        let id = ids::decode(&input.device_id, Kind::DEVICE, "deviceId")?;
        firmware::set_status(&services.db, id, input.status.into()).await?;
        tracing::info!(device = id, staff, "firmware update status set by hand");
        let device = inventory::get(&services.db, principal(ctx), id).await?;
        Ok(DevicePayload {
            device: SupervisedDevice(device),
        })
    }
}
