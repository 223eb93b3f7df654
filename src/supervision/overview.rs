//! The supervision overview (seed 002 `admin_supervision`,
//! `technician_supervision`): per station the caller supervises, its devices
//! by status and firmware, and its open alerts by severity, with the totals.
//! Staff see every station, a technician the stations of their active
//! assignments: both are read through the entities' `visible_to`.

use std::collections::BTreeMap;

use async_graphql::{Context, ID, Object, Result, SimpleObject};
use sea_orm::{ColumnTrait, ConnectionTrait, EntityTrait, QueryFilter, QuerySelect};

use crate::auth::Principal;
use crate::auth::guards::principal;
use crate::devices::firmware::FirmwareSettings;
use crate::entities::{
    AlertSeverity, DeviceStatus, FirmwareUpdateStatus, RoleName, alert, bay, device, station,
};
use crate::error::AppResult;
use crate::graphql::ids::{self, Kind};
use crate::services::services;

/// The supervision figures of one station, or of all of them.
#[derive(SimpleObject, Debug, Clone, Default, PartialEq, Eq)]
pub struct StationFigures {
    /// Devices in service.
    pub devices: u64,
    /// Reporting in: online, idle or charging.
    pub devices_online: u64,
    pub devices_offline: u64,
    pub devices_in_error: u64,
    /// Not heard from yet since they were registered.
    pub devices_provisioned: u64,
    /// Expected to run another firmware version than they report.
    pub firmware_update_required: u64,
    /// With an update scheduled or installing.
    pub firmware_updating: u64,
    pub firmware_update_failed: u64,
    /// Open alerts (new, active or in progress).
    pub open_alerts: u64,
    pub open_critical_alerts: u64,
    pub open_high_alerts: u64,
    pub open_medium_alerts: u64,
    pub open_low_alerts: u64,
}

impl StationFigures {
    fn count_device(&mut self, device: &device::Model, firmware: &FirmwareSettings) {
        self.devices += 1;
        match device.status {
            DeviceStatus::Online | DeviceStatus::Idle | DeviceStatus::Charging => {
                self.devices_online += 1;
            }
            DeviceStatus::Offline => self.devices_offline += 1,
            DeviceStatus::Error => self.devices_in_error += 1,
            DeviceStatus::Provisioned => self.devices_provisioned += 1,
        }
        if firmware.update_required(device) {
            self.firmware_update_required += 1;
        }
        match firmware.status(device) {
            FirmwareUpdateStatus::UpdateScheduled | FirmwareUpdateStatus::Updating => {
                self.firmware_updating += 1;
            }
            FirmwareUpdateStatus::Failed => self.firmware_update_failed += 1,
            _ => {}
        }
    }

    fn count_alert(&mut self, severity: AlertSeverity) {
        self.open_alerts += 1;
        match severity {
            AlertSeverity::Critical => self.open_critical_alerts += 1,
            AlertSeverity::High => self.open_high_alerts += 1,
            AlertSeverity::Medium => self.open_medium_alerts += 1,
            AlertSeverity::Low => self.open_low_alerts += 1,
        }
    }
}

/// One supervised station's figures.
pub struct StationSupervision {
    station: station::Model,
    figures: StationFigures,
}

#[Object]
impl StationSupervision {
    async fn station_id(&self) -> ID {
        ids::encode(Kind::STATION, self.station.id)
    }
    async fn station_name(&self) -> &str {
        &self.station.name
    }
    async fn figures(&self) -> &StationFigures {
        &self.figures
    }
}

/// What the caller supervises, at a glance.
pub struct SupervisionOverview {
    totals: StationFigures,
    stations: Vec<StationSupervision>,
}

#[Object]
impl SupervisionOverview {
    /// Over every station below.
    async fn totals(&self) -> &StationFigures {
        &self.totals
    }
    /// Each station the caller supervises, by name.
    async fn stations(&self) -> &[StationSupervision] {
        &self.stations
    }
}

/// The overview of the stations `principal` supervises (`station_id` alone
/// when given): devices in service and open alerts, counted per station.
///
/// # Errors
/// On database errors.
pub async fn overview(
    db: &impl ConnectionTrait,
    principal: &Principal,
    firmware: &FirmwareSettings,
    station_id: Option<i32>,
) -> AppResult<SupervisionOverview> {
    let mut stations = station::Entity::visible_to(principal);
    if let Some(id) = station_id {
        stations = stations.filter(station::Column::Id.eq(id));
    }
    let stations = stations.all(db).await?;
    let ids: Vec<i32> = stations.iter().map(|s| s.id).collect();
    let mut figures: BTreeMap<i32, StationFigures> = ids
        .iter()
        .map(|id| (*id, StationFigures::default()))
        .collect();

    let devices = device::Entity::find()
        .find_also_related(bay::Entity)
        .filter(bay::Column::StationId.is_in(ids.clone()))
        .filter(device::Column::RetiredAt.is_null())
        .all(db)
        .await?;
    for (device, bay) in devices {
        if let Some(f) = bay.and_then(|b| figures.get_mut(&b.station_id)) {
            f.count_device(&device, firmware);
        }
    }
    let open: Vec<(i32, AlertSeverity)> = alert::Entity::find()
        .select_only()
        .column(alert::Column::StationId)
        .column(alert::Column::Severity)
        .filter(alert::Column::StationId.is_in(ids))
        .filter(alert::Column::OpenKey.is_not_null())
        .into_tuple()
        .all(db)
        .await?;
    for (station, severity) in open {
        if let Some(f) = figures.get_mut(&station) {
            f.count_alert(severity);
        }
    }

    let mut totals = StationFigures::default();
    let mut rows = Vec::with_capacity(stations.len());
    for station in stations {
        let own = figures.remove(&station.id).unwrap_or_default();
        totals.add(&own);
        rows.push(StationSupervision {
            station,
            figures: own,
        });
    }
    rows.sort_by(|a, b| a.station.name.cmp(&b.station.name));
    Ok(SupervisionOverview {
        totals,
        stations: rows,
    })
}

impl StationFigures {
    fn add(&mut self, other: &Self) {
        self.devices += other.devices;
        self.devices_online += other.devices_online;
        self.devices_offline += other.devices_offline;
        self.devices_in_error += other.devices_in_error;
        self.devices_provisioned += other.devices_provisioned;
        self.firmware_update_required += other.firmware_update_required;
        self.firmware_updating += other.firmware_updating;
        self.firmware_update_failed += other.firmware_update_failed;
        self.open_alerts += other.open_alerts;
        self.open_critical_alerts += other.open_critical_alerts;
        self.open_high_alerts += other.open_high_alerts;
        self.open_medium_alerts += other.open_medium_alerts;
        self.open_low_alerts += other.open_low_alerts;
    }
}

#[derive(Default)]
pub struct SupervisionQuery;

#[Object]
impl SupervisionQuery {
    /// Staff and technicians: devices and open alerts per station the caller
    /// supervises (staff: all; technicians: their assigned stations), with
    /// the totals; one station with `stationId`.
    async fn supervision(
        &self,
        ctx: &Context<'_>,
        station_id: Option<ID>,
    ) -> Result<SupervisionOverview> {
        let principal = principal(ctx);
        principal.require(RoleName::Technician)?;
        let station = ids::decode_opt(station_id.as_ref(), Kind::STATION, "stationId")?;
        let services = services(ctx)?;
        Ok(overview(&services.db, principal, &services.firmware, station).await?)
    }
}
