//! The device inventory: the controller registered on each bay, listed and
//! shown with where it is installed, registered, edited and retired by staff.
//!
//! A device's registered MAC is its identity: the MQTT ingestion accepts a
//! bay's messages only from it. A bay holds one device record; retiring a
//! device takes it out of service (its credentials are revoked and its
//! messages refused) while its history (readings, alerts) stays.

use chrono::{DateTime, Utc};
use sea_orm::sea_query::{Expr, ExprTrait as _};
use sea_orm::{
    ActiveModelTrait as _, ActiveValue::NotSet, ColumnTrait, ConnectionTrait, DatabaseConnection,
    EntityTrait, QueryFilter, Set, SqlErr, TransactionTrait,
};

use crate::auth::Principal;
use crate::db::FindOr as _;
use crate::entities::{
    DeviceStatus, DeviceType, FirmwareUpdateStatus, bay, cabinet, device, station,
};
use crate::error::{AppError, AppResult, Reason};
use crate::pagination::{Page, PageRequest};

/// A MAC address in its one stored form: upper-case, colon-separated.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MacAddress(String);

impl MacAddress {
    /// Accepts `aa:bb:cc:dd:ee:ff`, `AA-BB-…` and `aabb.ccdd.eeff` alike.
    ///
    /// # Errors
    /// `BAD_USER_INPUT` on `field` when it is not 12 hexadecimal digits.
    pub fn parse(text: &str, field: &'static str) -> AppResult<Self> {
        let hex: String = text
            .trim()
            .chars()
            .filter(|c| !matches!(c, ':' | '-' | '.'))
            .collect();
        if hex.len() != 12 || !hex.chars().all(|c| c.is_ascii_hexdigit()) {
            return Err(AppError::bad_input(
                field,
                "a MAC address has 12 hexadecimal digits",
            ));
        }
        let upper = hex.to_ascii_uppercase();
        let pairs: Vec<&str> = (0..6).map(|i| &upper[i * 2..i * 2 + 2]).collect();
        Ok(Self(pairs.join(":")))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// A firmware version as staff type it: 1 to 64 printable characters.
///
/// # Errors
/// `BAD_USER_INPUT` on `field` otherwise.
pub fn firmware_version(text: &str, field: &'static str) -> AppResult<String> {
    let text = text.trim();
    if text.is_empty() || text.len() > 64 || text.chars().any(char::is_control) {
        return Err(AppError::bad_input(
            field,
            "a firmware version has 1 to 64 printable characters",
        ));
    }
    Ok(text.to_owned())
}

/// A device with where it is installed.
#[derive(Debug, Clone)]
pub struct Installed {
    pub device: device::Model,
    pub bay: bay::Model,
    pub cabinet: cabinet::Model,
    pub station: station::Model,
}

/// Which devices a list shows.
#[derive(Debug, Clone, Default)]
pub struct DeviceFilter {
    pub station_id: Option<i32>,
    pub cabinet_id: Option<i32>,
    /// Only these statuses (all when empty).
    pub statuses: Vec<DeviceStatus>,
    /// Retired devices instead of those in service.
    pub retired: bool,
    /// Part of the registered MAC address.
    pub mac_contains: Option<String>,
}

/// The devices `principal` supervises, in registration order.
///
/// # Errors
/// Database failures.
pub async fn list(
    db: &impl ConnectionTrait,
    principal: &Principal,
    filter: &DeviceFilter,
    page: PageRequest,
) -> AppResult<Page<Installed>> {
    let mut query = device::Entity::visible_to(principal);
    if let Some(station_id) = filter.station_id {
        query = query.filter(bay::Column::StationId.eq(station_id));
    }
    if let Some(cabinet_id) = filter.cabinet_id {
        query = query.filter(bay::Column::CabinetId.eq(cabinet_id));
    }
    if !filter.statuses.is_empty() {
        query = query.filter(device::Column::Status.is_in(filter.statuses.clone()));
    }
    query = if filter.retired {
        query.filter(device::Column::RetiredAt.is_not_null())
    } else {
        query.filter(device::Column::RetiredAt.is_null())
    };
    if let Some(part) = &filter.mac_contains {
        let part: String = part
            .chars()
            .filter(char::is_ascii_hexdigit)
            .collect::<String>()
            .to_ascii_uppercase();
        // Stored MACs are colon-separated: compare without the colons.
        query = query
            .filter(Expr::cust("REPLACE(devices.mac_address, ':', '')").like(format!("%{part}%")));
    }
    let page = crate::db::page_by_id(db, query, device::Column::Id, page).await?;
    let items = installed(db, page.items).await?;
    Ok(Page {
        items,
        has_next_page: page.has_next_page,
        total_count: page.total_count,
    })
}

/// One device `principal` supervises.
///
/// # Errors
/// `NOT_FOUND` when it does not exist or is outside their stations.
pub async fn get(
    db: &impl ConnectionTrait,
    principal: &Principal,
    id: i32,
) -> AppResult<Installed> {
    let found = device::Entity::visible_to(principal)
        .filter(device::Column::Id.eq(id))
        .one_or_not_found(db, "device")
        .await?;
    installed(db, vec![found])
        .await?
        .pop()
        .ok_or(AppError::not_found("device"))
}

/// Joins devices to their bay, cabinet and station: three queries for a page.
async fn installed(
    db: &impl ConnectionTrait,
    devices: Vec<device::Model>,
) -> AppResult<Vec<Installed>> {
    let bays = bay::Entity::find()
        .filter(bay::Column::Id.is_in(devices.iter().map(|d| d.bay_id)))
        .all(db)
        .await?;
    let cabinets = cabinet::Entity::find()
        .filter(cabinet::Column::Id.is_in(bays.iter().map(|b| b.cabinet_id)))
        .all(db)
        .await?;
    let stations = station::Entity::find()
        .filter(station::Column::Id.is_in(bays.iter().map(|b| b.station_id)))
        .all(db)
        .await?;
    let mut out = Vec::with_capacity(devices.len());
    for device in devices {
        let bay = bays.iter().find(|b| b.id == device.bay_id);
        let cabinet = bay.and_then(|b| cabinets.iter().find(|c| c.id == b.cabinet_id));
        let station = bay.and_then(|b| stations.iter().find(|s| s.id == b.station_id));
        // A bay always has its cabinet and station (foreign keys); a device
        // deleted along with its bay meanwhile is simply left out.
        if let (Some(bay), Some(cabinet), Some(station)) = (bay, cabinet, station) {
            out.push(Installed {
                bay: bay.clone(),
                cabinet: cabinet.clone(),
                station: station.clone(),
                device,
            });
        }
    }
    Ok(out)
}

/// A device to register on a bay.
#[derive(Debug, Clone)]
pub struct NewDevice {
    pub bay_id: i32,
    pub mac: MacAddress,
    pub device_type: DeviceType,
    pub expected_firmware_version: Option<String>,
}

/// Registers a device on a bay; its slot is the bay's number.
///
/// # Errors
/// `NOT_FOUND` for an unknown bay; `CONFLICT` (`BAY_HAS_DEVICE`) when the bay
/// has a device record already, (`MAC_TAKEN`) when another device has the MAC.
pub async fn register(
    db: &DatabaseConnection,
    new: NewDevice,
    now: DateTime<Utc>,
) -> AppResult<Installed> {
    let txn = db.begin().await?;
    let bay = bay::Entity::find_by_id(new.bay_id)
        .one_or_not_found(&txn, "bay")
        .await?;
    let taken = device::Entity::find()
        .filter(device::Column::BayId.eq(bay.id))
        .one(&txn)
        .await?;
    if taken.is_some() {
        return Err(bay_has_device());
    }
    let inserted = device::ActiveModel {
        id: NotSet,
        bay_id: Set(bay.id),
        device_type: Set(new.device_type),
        expected_firmware_version: Set(new.expected_firmware_version),
        firmware_update_status: Set(FirmwareUpdateStatus::Unknown),
        slot_id: Set(bay.number),
        mac_address: Set(new.mac.as_str().to_owned()),
        status: Set(DeviceStatus::Provisioned),
        plugged: Set(false),
        mqtt_key_generation: Set(0),
        created_at: Set(now),
        ..Default::default()
    }
    .insert(&txn)
    .await
    .map_err(conflict)?;
    txn.commit().await?;
    installed(db, vec![inserted])
        .await?
        .pop()
        .ok_or(AppError::not_found("device"))
}

/// What staff change on a device; `None` leaves a field as it is.
#[derive(Debug, Clone, Default)]
pub struct DeviceChanges {
    /// A replacement controller on the same bay gets the new MAC.
    pub mac: Option<MacAddress>,
    pub device_type: Option<DeviceType>,
    /// `Some(None)` clears the expected version.
    pub expected_firmware_version: Option<Option<String>>,
}

/// Device `id`, if it is in service.
///
/// # Errors
/// `NOT_FOUND`; `CONFLICT` with `INVALID_TRANSITION` for a retired device.
pub async fn in_service(db: &impl ConnectionTrait, id: i32) -> AppResult<device::Model> {
    let found = device::Entity::find_by_id(id)
        .one_or_not_found(db, "device")
        .await?;
    if found.retired_at.is_some() {
        return Err(AppError::refused(
            Reason::InvalidTransition,
            "the device is retired: it cannot be changed",
        ));
    }
    Ok(found)
}

/// Edits a device's registration.
///
/// # Errors
/// `NOT_FOUND`; `CONFLICT` (`MAC_TAKEN`); `INVALID_TRANSITION` for a retired device.
pub async fn update(
    db: &DatabaseConnection,
    id: i32,
    changes: DeviceChanges,
) -> AppResult<Installed> {
    let txn = db.begin().await?;
    let found = in_service(&txn, id).await?;
    let mut active: device::ActiveModel = found.into();
    if let Some(mac) = changes.mac {
        active.mac_address = Set(mac.as_str().to_owned());
    }
    if let Some(device_type) = changes.device_type {
        active.device_type = Set(device_type);
    }
    if let Some(expected) = changes.expected_firmware_version {
        active.expected_firmware_version = Set(expected);
    }
    let updated = active.update(&txn).await.map_err(conflict)?;
    txn.commit().await?;
    installed(db, vec![updated])
        .await?
        .pop()
        .ok_or(AppError::not_found("device"))
}

/// Takes a device out of service: retired now, MQTT credentials revoked (its
/// connection ends), messages refused from then on.
///
/// # Errors
/// `NOT_FOUND`; `INVALID_TRANSITION` when it is retired already.
pub async fn retire(db: &DatabaseConnection, id: i32, now: DateTime<Utc>) -> AppResult<Installed> {
    let txn = db.begin().await?;
    device::Entity::find_by_id(id)
        .one_or_not_found(&txn, "device")
        .await?;
    let retired = device::Entity::update_many()
        .col_expr(device::Column::RetiredAt, Expr::value(now))
        .col_expr(device::Column::Status, Expr::value(DeviceStatus::Offline))
        .filter(device::Column::Id.eq(id))
        .filter(device::Column::RetiredAt.is_null())
        .exec(&txn)
        .await?;
    if retired.rows_affected == 0 {
        return Err(AppError::refused(
            Reason::InvalidTransition,
            "the device is retired already",
        ));
    }
    let device = super::credentials::revoke(&txn, id).await?;
    txn.commit().await?;
    installed(db, vec![device])
        .await?
        .pop()
        .ok_or(AppError::not_found("device"))
}

fn bay_has_device() -> AppError {
    AppError::refused(
        Reason::BayHasDevice,
        "the bay has a device registered already",
    )
}

/// Turns a unique index violation into the refusal it stands for.
fn conflict(err: sea_orm::DbErr) -> AppError {
    match err.sql_err() {
        Some(SqlErr::UniqueConstraintViolation(message)) if message.contains("bay_id") => {
            bay_has_device()
        }
        Some(SqlErr::UniqueConstraintViolation(_)) => AppError::refused(
            Reason::MacTaken,
            "another device is registered with this MAC address",
        ),
        _ => err.into(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn macs_are_stored_in_one_form() {
        for text in ["aa:bb:cc:dd:ee:0f", "AA-BB-CC-DD-EE-0F", "aabb.ccdd.ee0f"] {
            assert_eq!(
                MacAddress::parse(text, "mac").map(|m| m.0).ok().as_deref(),
                Some("AA:BB:CC:DD:EE:0F"),
                "{text}"
            );
        }
        for text in [
            "",
            "aa:bb:cc:dd:ee",
            "gg:bb:cc:dd:ee:ff",
            "aa:bb:cc:dd:ee:ff:00",
        ] {
            assert!(MacAddress::parse(text, "mac").is_err(), "{text}");
        }
    }

    #[test]
    fn firmware_versions_are_short_printable_text() {
        assert_eq!(
            firmware_version(" 1.5.0 ", "v").ok().as_deref(),
            Some("1.5.0")
        );
        assert!(firmware_version("", "v").is_err());
        assert!(firmware_version("1.\n0", "v").is_err());
        assert!(firmware_version(&"9".repeat(65), "v").is_err());
    }
}
