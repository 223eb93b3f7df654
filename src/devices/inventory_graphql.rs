//! The device inventory's API: staff and technicians list and read devices
//! with where they are installed (technicians only those of their stations);
//! staff register, edit and retire them.
//!
//! `SupervisedDevice` shows the network identity (registered and reported
//! MAC, IP) that the public `Device` on a bay does not.

use async_graphql::{Context, ID, InputObject, Object, Result, SimpleObject};

use super::graphql::{DeviceStatus, DeviceType, FirmwareUpdateStatus};
use super::inventory::{self, DeviceChanges, DeviceFilter, Installed, MacAddress, NewDevice};
use crate::auth::guards::principal;
use crate::entities::RoleName;
use crate::error::AppError;
use crate::graphql::ids::{self, Kind};
use crate::graphql::pagination::{IdConnection, connection, page_request};
use crate::graphql::scalars::DateTime;
use crate::services::services;

/// A device as supervision sees it: identity, network, firmware, liveness and
/// where it is installed.
pub struct SupervisedDevice(pub Installed);

#[Object]
impl SupervisedDevice {
    /// The device's ID (the same as `Bay.device.id`).
    async fn id(&self) -> ID {
        ids::encode(Kind::DEVICE, self.0.device.id)
    }
    async fn device_type(&self) -> DeviceType {
        self.0.device.device_type.into()
    }
    async fn status(&self) -> DeviceStatus {
        self.0.device.status.into()
    }
    /// Slot of the device in its cabinet: its bay's number.
    async fn slot_id(&self) -> i32 {
        self.0.device.slot_id
    }
    /// The registered MAC: the only one whose messages are accepted on its bay.
    async fn mac_address(&self) -> &str {
        &self.0.device.mac_address
    }
    /// The MAC the device last reported.
    async fn hardware_mac(&self) -> Option<&str> {
        self.0.device.hardware_mac.as_deref()
    }
    async fn ip_address(&self) -> Option<&str> {
        self.0.device.ip_address.as_deref()
    }
    /// Firmware version the device last reported.
    async fn firmware_version(&self) -> Option<&str> {
        self.0.device.firmware_version.as_deref()
    }
    /// The version set for this device alone; null when the global policy
    /// (`VOLTGATE_FIRMWARE_EXPECTED_VERSION`) applies.
    async fn expected_firmware_version(&self) -> Option<&str> {
        self.0.device.expected_firmware_version.as_deref()
    }
    /// The version it is expected to run: its own, else the global policy.
    async fn effective_expected_firmware_version(
        &self,
        ctx: &Context<'_>,
    ) -> Result<Option<String>> {
        Ok(services(ctx)?
            .firmware
            .expected_for(&self.0.device)
            .map(str::to_owned))
    }
    /// Whether it should be updated: an expected version is set and the
    /// reported one differs or is not known yet.
    async fn firmware_update_required(&self, ctx: &Context<'_>) -> Result<bool> {
        Ok(services(ctx)?.firmware.update_required(&self.0.device))
    }
    /// Compliance (`UNKNOWN`, `UP_TO_DATE`, `UPDATE_REQUIRED`, read from the
    /// versions) or where an update stands (`UPDATE_SCHEDULED`, `UPDATING`,
    /// `FAILED`).
    async fn firmware_update_status(&self, ctx: &Context<'_>) -> Result<FirmwareUpdateStatus> {
        Ok(services(ctx)?.firmware.status(&self.0.device).into())
    }
    /// The version the last update scheduled targets.
    async fn ota_target_version(&self) -> Option<&str> {
        self.0.device.ota_target_version.as_deref()
    }
    /// Where the device downloads it.
    async fn ota_update_url(&self) -> Option<&str> {
        self.0.device.ota_update_url.as_deref()
    }
    async fn ota_requested_at(&self) -> Option<DateTime> {
        self.0.device.ota_requested_at.map(Into::into)
    }
    /// When the device came back with the target version.
    async fn ota_completed_at(&self) -> Option<DateTime> {
        self.0.device.ota_completed_at.map(Into::into)
    }
    /// Why the last update failed.
    async fn ota_last_error(&self) -> Option<&str> {
        self.0.device.ota_last_error.as_deref()
    }
    /// When the device was last heard from, by its own clock.
    async fn last_seen(&self) -> Option<DateTime> {
        self.0.device.last_seen.map(Into::into)
    }
    /// When the server last applied a report of the device (server clock;
    /// what the heartbeat timeout reads).
    async fn last_heard_at(&self) -> Option<DateTime> {
        self.0.device.last_heard_at.map(Into::into)
    }
    /// Whether the device holds MQTT credentials now.
    async fn has_credentials(&self) -> bool {
        self.0.device.mqtt_password_hash.is_some()
    }
    /// When staff retired it; null while in service.
    async fn retired_at(&self) -> Option<DateTime> {
        self.0.device.retired_at.map(Into::into)
    }
    async fn created_at(&self) -> DateTime {
        self.0.device.created_at.into()
    }
    async fn station_id(&self) -> ID {
        ids::encode(Kind::STATION, self.0.station.id)
    }
    async fn station_name(&self) -> &str {
        &self.0.station.name
    }
    async fn cabinet_id(&self) -> ID {
        ids::encode(Kind::CABINET, self.0.cabinet.id)
    }
    async fn cabinet_name(&self) -> &str {
        &self.0.cabinet.name
    }
    async fn cabinet_number(&self) -> i32 {
        self.0.cabinet.number
    }
    async fn bay_id(&self) -> ID {
        ids::encode(Kind::BAY, self.0.bay.id)
    }
    async fn bay_number(&self) -> i32 {
        self.0.bay.number
    }
    /// The cabinet's MQTT topic prefix; the device publishes under
    /// `<prefix>/bays/<slotId>/…`.
    async fn mqtt_prefix(&self) -> &str {
        &self.0.cabinet.mqtt_prefix
    }
}

#[derive(InputObject, Default)]
pub struct DeviceFilterInput {
    pub station_id: Option<ID>,
    pub cabinet_id: Option<ID>,
    pub statuses: Option<Vec<DeviceStatus>>,
    /// Retired devices instead of those in service (default false).
    #[graphql(default)]
    pub retired: bool,
    /// Part of the registered MAC address, with or without separators.
    #[graphql(validator(max_length = 17))]
    pub mac_contains: Option<String>,
}

#[derive(Default)]
pub struct DeviceInventoryQuery;

#[Object]
impl DeviceInventoryQuery {
    /// Devices of the stations the caller supervises (staff: all; technicians:
    /// their stations, read-only), in registration order.
    #[graphql(complexity = "first.unwrap_or(20).max(0) as usize * child_complexity + 1")]
    async fn devices(
        &self,
        ctx: &Context<'_>,
        filter: Option<DeviceFilterInput>,
        first: Option<i32>,
        after: Option<String>,
    ) -> Result<IdConnection<SupervisedDevice>> {
        let principal = principal(ctx);
        principal.require(RoleName::Technician)?;
        let page = page_request(first, after.as_deref())?;
        let input = filter.unwrap_or_default();
        let filter = DeviceFilter {
            station_id: ids::decode_opt(input.station_id.as_ref(), Kind::STATION, "stationId")?,
            cabinet_id: ids::decode_opt(input.cabinet_id.as_ref(), Kind::CABINET, "cabinetId")?,
            statuses: input
                .statuses
                .unwrap_or_default()
                .into_iter()
                .map(Into::into)
                .collect(),
            retired: input.retired,
            mac_contains: input.mac_contains,
        };
        let rows = inventory::list(&services(ctx)?.db, principal, &filter, page).await?;
        Ok(connection(
            page,
            rows,
            |row| row.device.id,
            SupervisedDevice,
        ))
    }

    /// One device the caller supervises; null otherwise.
    async fn device(&self, ctx: &Context<'_>, id: ID) -> Result<Option<SupervisedDevice>> {
        let principal = principal(ctx);
        principal.require(RoleName::Technician)?;
        let id = ids::decode(&id, Kind::DEVICE, "id")?;
        match inventory::get(&services(ctx)?.db, principal, id).await {
            Ok(found) => Ok(Some(SupervisedDevice(found))),
            Err(AppError::NotFound { .. }) => Ok(None),
            Err(err) => Err(err.into()),
        }
    }
}

#[derive(InputObject)]
pub struct RegisterDeviceInput {
    pub bay_id: ID,
    /// The controller's MAC address; its messages are accepted only from it.
    pub mac_address: String,
    #[graphql(default_with = "DeviceType::Esp32")]
    pub device_type: DeviceType,
    pub expected_firmware_version: Option<String>,
}

#[derive(InputObject)]
pub struct UpdateDeviceInput {
    pub device_id: ID,
    /// A replacement controller on the same bay: its MAC address.
    pub mac_address: Option<String>,
    pub device_type: Option<DeviceType>,
    /// The version the device is expected to run; an empty string clears it.
    pub expected_firmware_version: Option<String>,
}

#[derive(InputObject)]
pub struct RetireDeviceInput {
    pub device_id: ID,
}

#[derive(SimpleObject)]
pub struct DevicePayload {
    pub device: SupervisedDevice,
}

#[derive(Default)]
pub struct DeviceInventoryMutation;

#[Object]
impl DeviceInventoryMutation {
    /// Staff: registers the device of a bay (then issue its credentials with
    /// `issueDeviceCredentials`).
    async fn register_device(
        &self,
        ctx: &Context<'_>,
        input: RegisterDeviceInput,
    ) -> Result<DevicePayload> {
        principal(ctx).staff()?;
        let services = services(ctx)?;
        let new = NewDevice {
            bay_id: ids::decode(&input.bay_id, Kind::BAY, "bayId")?,
            mac: MacAddress::parse(&input.mac_address, "macAddress")?,
            device_type: input.device_type.into(),
            expected_firmware_version: input
                .expected_firmware_version
                .as_deref()
                .map(|v| inventory::firmware_version(v, "expectedFirmwareVersion"))
                .transpose()?,
        };
        let device = inventory::register(&services.db, new, services.now()).await?;
        tracing::info!(device = device.device.id, mac = %device.device.mac_address, security = true, "device registered");
        Ok(DevicePayload {
            device: SupervisedDevice(device),
        })
    }

    /// Staff: edits a device's registration (a replacement controller's MAC,
    /// its type, the firmware version it is expected to run).
    async fn update_device(
        &self,
        ctx: &Context<'_>,
        input: UpdateDeviceInput,
    ) -> Result<DevicePayload> {
        principal(ctx).staff()?;
        let services = services(ctx)?;
        let id = ids::decode(&input.device_id, Kind::DEVICE, "deviceId")?;
        let changes = DeviceChanges {
            mac: input
                .mac_address
                .as_deref()
                .map(|mac| MacAddress::parse(mac, "macAddress"))
                .transpose()?,
            device_type: input.device_type.map(Into::into),
            expected_firmware_version: input
                .expected_firmware_version
                .as_deref()
                .map(|v| {
                    if v.trim().is_empty() {
                        Ok(None)
                    } else {
                        inventory::firmware_version(v, "expectedFirmwareVersion").map(Some)
                    }
                })
                .transpose()?,
        };
        let mac_changed = changes.mac.is_some();
        let device = inventory::update(&services.db, id, changes).await?;
        if mac_changed {
            tracing::info!(device = id, mac = %device.device.mac_address, security = true, "device MAC changed");
        }
        Ok(DevicePayload {
            device: SupervisedDevice(device),
        })
    }

    /// Staff: takes a device out of service. Its credentials are revoked and
    /// its messages refused; its readings and alerts stay on record.
    async fn retire_device(
        &self,
        ctx: &Context<'_>,
        input: RetireDeviceInput,
    ) -> Result<DevicePayload> {
        principal(ctx).staff()?;
        let services = services(ctx)?;
        let id = ids::decode(&input.device_id, Kind::DEVICE, "deviceId")?;
        let device = inventory::retire(&services.db, id, services.now()).await?;
        tracing::info!(device = id, security = true, "device retired");
        Ok(DevicePayload {
            device: SupervisedDevice(device),
        })
    }
}
