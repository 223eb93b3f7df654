//! The public catalog: stations nearest a point, and which bays of a station
//! are free for a slot.

use chrono::{DateTime, Utc};
use sea_orm::{ColumnTrait, ConnectionTrait, EntityTrait, QueryFilter, QueryOrder};

use super::network::coordinates;
use super::reservations::slot;
use super::settings::ReservationSettings;
use crate::entities::reservation::{self, ReservationStatus};
use crate::entities::{CabinetStatus, StationStatus, bay, bay_maintenance, cabinet, station};
use crate::error::{AppError, AppResult};

/// Great-circle distance in kilometres (haversine, mean Earth radius).
pub fn distance_km(a: (f64, f64), b: (f64, f64)) -> f64 {
    const EARTH_RADIUS_KM: f64 = 6371.0088;
    let (lat1, lon1) = (a.0.to_radians(), a.1.to_radians());
    let (lat2, lon2) = (b.0.to_radians(), b.1.to_radians());
    let h = ((lat2 - lat1) / 2.0).sin().powi(2)
        + lat1.cos() * lat2.cos() * ((lon2 - lon1) / 2.0).sin().powi(2);
    2.0 * EARTH_RADIUS_KM * h.sqrt().asin()
}

/// Active stations with coordinates, nearest first, at most `limit` (1 to 50).
///
/// # Errors
/// `BAD_USER_INPUT` naming the field for coordinates out of range or a bad limit.
pub async fn nearest(
    db: &impl ConnectionTrait,
    latitude: f64,
    longitude: f64,
    limit: i32,
) -> AppResult<Vec<(station::Model, f64)>> {
    let origin = coordinates(Some(latitude), Some(longitude))?
        .ok_or(AppError::bad_input("latitude", "coordinates are required"))?;
    if !(1..=50).contains(&limit) {
        return Err(AppError::bad_input("first", "first is between 1 and 50"));
    }
    // Stations are few (physical sites): measured in memory.
    let mut found: Vec<(station::Model, f64)> = station::Entity::find()
        .filter(station::Column::Status.eq(StationStatus::Active))
        .filter(station::Column::Latitude.is_not_null())
        .filter(station::Column::Longitude.is_not_null())
        .all(db)
        .await?
        .into_iter()
        .filter_map(|s| {
            let at = (s.latitude?, s.longitude?);
            Some((s, distance_km(origin, at)))
        })
        .collect();
    found.sort_by(|a, b| a.1.total_cmp(&b.1));
    found.truncate(usize::try_from(limit).unwrap_or(1));
    Ok(found)
}

/// Whether a bay can be reserved for a slot, and if not why.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Availability {
    Free,
    Taken,
    OutOfService,
}

/// Each bay of a station, with its availability for the slot.
///
/// # Errors
/// `NOT_FOUND` station; `BAD_USER_INPUT` for a slot the configuration refuses.
pub async fn availability(
    db: &impl ConnectionTrait,
    settings: &ReservationSettings,
    station_id: i32,
    starts_at: DateTime<Utc>,
    duration_minutes: i64,
    now: DateTime<Utc>,
) -> AppResult<Vec<(bay::Model, Availability)>> {
    let (start, end) = slot(settings, starts_at, duration_minutes, now)?;
    let site = station::Entity::find_by_id(station_id)
        .one(db)
        .await?
        .ok_or(AppError::not_found("station"))?;
    let bays = bay::Entity::find()
        .filter(bay::Column::StationId.eq(station_id))
        .order_by_asc(bay::Column::CabinetId)
        .order_by_asc(bay::Column::Number)
        .all(db)
        .await?;
    let ids: Vec<i32> = bays.iter().map(|b| b.id).collect();
    let under_maintenance = super::maintenance_windows::blocking(
        db,
        settings.maintenance_window(),
        station_id,
        start,
        end,
    )
    .await?;
    let cabinets_down: Vec<i32> = cabinet::Entity::find()
        .filter(cabinet::Column::StationId.eq(station_id))
        .filter(cabinet::Column::Status.ne(CabinetStatus::Active))
        .all(db)
        .await?
        .into_iter()
        .map(|c| c.id)
        .collect();
    let flagged: Vec<i32> = bay_maintenance::Entity::find()
        .filter(bay_maintenance::Column::BayId.is_in(ids.clone()))
        .all(db)
        .await?
        .into_iter()
        .map(|m| m.bay_id)
        .collect();
    let taken: Vec<i32> = reservation::Entity::find()
        .filter(reservation::Column::BayId.is_in(ids))
        .filter(reservation::Column::Status.is_in(ReservationStatus::HOLDING))
        .filter(reservation::Column::StartsAtUs.lt(end))
        .filter(reservation::Column::EndsAtUs.gt(start))
        .all(db)
        .await?
        .into_iter()
        .map(|r| r.bay_id)
        .collect();
    Ok(bays
        .into_iter()
        .map(|b| {
            let state = if site.status != StationStatus::Active
                || under_maintenance
                || cabinets_down.contains(&b.cabinet_id)
                || flagged.contains(&b.id)
            {
                Availability::OutOfService
            } else if taken.contains(&b.id) {
                Availability::Taken
            } else {
                Availability::Free
            };
            (b, state)
        })
        .collect())
}
