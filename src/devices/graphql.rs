//! GraphQL view of devices: the `Device` type, devices' part of `Bay` (its
//! device), devices' dashboard figures and the live `bayStatusChanged`
//! subscription.

use async_graphql::{Context, Enum, ID, Object, Result, Subscription};
use futures_util::{Stream, StreamExt};
use sea_orm::EntityTrait as _;

use super::loaders::DeviceOfBay;
use crate::bus::{DomainEvent, Topic};
use crate::charging::graphql::{BayStatus, LockState};
use crate::db::FindOr as _;
use crate::entities::{self, bay, device};
use crate::error::AppError;
use crate::graphql::ids::{self, Kind};
use crate::graphql::loaders::loader;
use crate::graphql::scalars::DateTime;
use crate::graphql::types::Bay;
use crate::realtime::follow::follow;
use crate::services::services;

impl Kind {
    pub const DEVICE: Self = Self::named("Device");
}

#[derive(Enum, Copy, Clone, Eq, PartialEq)]
#[graphql(remote = "entities::DeviceStatus")]
pub enum DeviceStatus {
    /// Registered, never heard from.
    Provisioned,
    Online,
    Idle,
    Offline,
    Charging,
    Error,
}

#[derive(Enum, Copy, Clone, Eq, PartialEq)]
#[graphql(remote = "entities::DeviceType")]
pub enum DeviceType {
    #[graphql(name = "ESP32")]
    Esp32,
}

#[derive(Enum, Copy, Clone, Eq, PartialEq)]
#[graphql(remote = "entities::FirmwareUpdateStatus")]
pub enum FirmwareUpdateStatus {
    Unknown,
    UpToDate,
    UpdateRequired,
    UpdateScheduled,
    Updating,
    Failed,
}

/// The controller installed on a bay. Network identity (MAC, IP), OTA and command
/// details are operator data, exposed to staff by the supervision API.
pub struct Device(pub device::Model);

#[Object]
impl Device {
    async fn id(&self) -> ID {
        ids::encode(Kind::DEVICE, self.0.id)
    }
    async fn device_type(&self) -> DeviceType {
        self.0.device_type.into()
    }
    async fn status(&self) -> DeviceStatus {
        self.0.status.into()
    }
    /// Firmware version the device last reported.
    async fn firmware_version(&self) -> Option<&str> {
        self.0.firmware_version.as_deref()
    }
    /// As `SupervisedDevice.firmwareUpdateStatus`.
    async fn firmware_update_status(
        &self,
        ctx: &async_graphql::Context<'_>,
    ) -> async_graphql::Result<FirmwareUpdateStatus> {
        Ok(crate::services::services(ctx)?
            .firmware
            .status(&self.0)
            .into())
    }
    /// Whether a vehicle is plugged in, as last reported.
    async fn plugged(&self) -> bool {
        self.0.plugged
    }
    /// When the device was last heard from (device clock).
    async fn last_seen(&self) -> Option<DateTime> {
        self.0.last_seen.map(Into::into)
    }
    /// Slot of the device in its cabinet: the bay's number.
    async fn slot_id(&self) -> i32 {
        self.0.slot_id
    }
}

/// Devices' part of a bay: the controller installed on it.
pub struct BayDevicePart {
    pub bay_id: i32,
}

#[Object]
impl BayDevicePart {
    /// The controller installed on the bay, if one is registered.
    async fn device(&self, ctx: &Context<'_>) -> Result<Option<Device>> {
        Ok(loader(ctx)?
            .load_one(DeviceOfBay(self.bay_id))
            .await?
            .map(Device))
    }
}

/// Devices' figures on the administration dashboard.
#[derive(Default)]
pub struct DeviceFigures;

#[Object]
impl DeviceFigures {
    /// Devices reporting in (online, idle or charging).
    async fn devices_online(&self, ctx: &Context<'_>) -> Result<u64> {
        Ok(super::figures::online(&services(ctx)?.db).await?)
    }
}

/// A change of a bay's lock or of its device's state.
pub struct BayStatusChange(pub crate::bus::BayStatusChanged, String);

#[Object]
impl BayStatusChange {
    /// This event's place in the subscription's stream: subscribe again with
    /// `after` set to the last cursor received to get what was missed since.
    async fn cursor(&self) -> &str {
        &self.1
    }
    async fn bay(&self) -> Bay {
        Bay::from(self.0.bay.clone())
    }
    async fn status(&self) -> BayStatus {
        self.0.bay.status.into()
    }
    async fn lock_state(&self) -> LockState {
        self.0.bay.lock_state.into()
    }
    async fn device_status(&self) -> Option<DeviceStatus> {
        self.0.device_status.map(Into::into)
    }
    /// When the change happened, by the device's clock.
    async fn changed_at(&self) -> DateTime {
        self.0.changed_at.into()
    }
}

#[derive(Default)]
pub struct BaySubscription;

#[Subscription]
impl BaySubscription {
    /// Bay lock and device state changes, live. Narrow it to one station or one bay;
    /// with neither, every bay of the network. With `after` (the last `cursor`
    /// received), the changes missed since are sent first, then live ones.
    async fn bay_status_changed(
        &self,
        ctx: &Context<'_>,
        station_id: Option<ID>,
        bay_id: Option<ID>,
        after: Option<String>,
    ) -> Result<impl Stream<Item = Result<BayStatusChange>> + use<>> {
        let services = services(ctx)?;
        let (db, bus) = (&services.db, &services.bus);
        let station_id = ids::decode_opt(station_id.as_ref(), Kind::STATION, "stationId")?;
        let bay_id = ids::decode_opt(bay_id.as_ref(), Kind::BAY, "bayId")?;

        let topic = match (station_id, bay_id) {
            (_, Some(bay_id)) => {
                let bay = bay::Entity::find_by_id(bay_id)
                    .one_or_not_found(db, "bay")
                    .await?;
                if station_id.is_some_and(|s| s != bay.station_id) {
                    return Err(
                        AppError::bad_input("bayId", "the bay is not in that station").into(),
                    );
                }
                Topic::Bay(bay_id)
            }
            (Some(station_id), None) => {
                entities::station::Entity::find_by_id(station_id)
                    .one_or_not_found(db, "station")
                    .await?;
                Topic::StationBays(station_id)
            }
            (None, None) => Topic::AllBays,
        };
        let steps = follow(bus.as_ref(), topic, after.as_deref()).await?;
        Ok(steps.filter_map(|step| async move {
            match step {
                Err(lagging) => Some(Err(lagging.into())),
                Ok(step) => match &step.event.envelope.event {
                    DomainEvent::BayStatusChanged(change) => {
                        Some(Ok(BayStatusChange(change.clone(), step.cursor)))
                    }
                    // Bay topics carry bay changes only.
                    _ => None,
                },
            }
        }))
    }
}
