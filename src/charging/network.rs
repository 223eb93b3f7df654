//! Administration of the network (staff): stations, cabinets and bays.
//!
//! Invariants kept here: a bay's `station_id` is its cabinet's (bays take it
//! from the cabinet, and moving a cabinet moves its bays in the same
//! transaction); numbers are unique within their parent and `mqtt_prefix`
//! across cabinets (checked first for a clear answer, and by unique indexes
//! when two requests race); something with upcoming reservations is not
//! deleted. Putting a station, cabinet or bay in maintenance cancels the
//! reservations that have not ended there, notifies each owner through the
//! outbox, and refreshes the bays' status; the caller publishes the returned
//! events after the commit.

use chrono::{DateTime, Utc};
use sea_orm::{
    ActiveModelTrait, ColumnTrait, ConnectionTrait, DatabaseConnection, EntityTrait,
    PaginatorTrait, QueryFilter, QuerySelect, Set, SqlErr, TransactionTrait,
};
use serde_json::json;

use super::bay_status;
use super::outbox::{self, template};
use crate::bus::DomainEvent;
use crate::entities::reservation::{self, ReservationStatus};
use crate::entities::{
    BayStatus, CabinetStatus, LockState, StationStatus, bay, bay_maintenance, cabinet, station,
};
use crate::error::{AppError, AppResult};

/// A changed row and the bay events to publish once committed.
pub type Changed<T> = (T, Vec<DomainEvent>);

/// Fields of a station; `None` leaves a field as it is on update.
#[derive(Debug, Default, Clone)]
pub struct StationFields {
    pub name: Option<String>,
    pub location_text: Option<String>,
    /// `Some(None)` clears the coordinates.
    pub coordinates: Option<Option<(f64, f64)>>,
    pub status: Option<StationStatus>,
}

#[derive(Debug, Default, Clone)]
pub struct CabinetFields {
    pub station_id: Option<i32>,
    pub number: Option<i32>,
    pub name: Option<String>,
    pub mqtt_prefix: Option<String>,
    pub status: Option<CabinetStatus>,
}

#[derive(Debug, Default, Clone)]
pub struct BayFields {
    pub number: Option<i32>,
    /// `Some(reason)` flags the bay for maintenance, `None` in `Some` lifts it.
    pub maintenance: Option<Option<String>>,
}

fn name(raw: &str, field: &'static str, max: usize) -> AppResult<String> {
    let name = raw.trim();
    if name.is_empty() || name.chars().count() > max {
        return Err(AppError::bad_input(
            field,
            format!("{field} must be 1 to {max} characters"),
        ));
    }
    Ok(name.to_owned())
}

/// Coordinates in range, both or neither.
pub fn coordinates(latitude: Option<f64>, longitude: Option<f64>) -> AppResult<Option<(f64, f64)>> {
    match (latitude, longitude) {
        (None, None) => Ok(None),
        (Some(lat), Some(lon)) => {
            if !(-90.0..=90.0).contains(&lat) {
                return Err(AppError::bad_input(
                    "latitude",
                    "latitude must be between -90 and 90",
                ));
            }
            if !(-180.0..=180.0).contains(&lon) {
                return Err(AppError::bad_input(
                    "longitude",
                    "longitude must be between -180 and 180",
                ));
            }
            Ok(Some((lat, lon)))
        }
        (Some(_), None) => Err(AppError::bad_input(
            "longitude",
            "give both latitude and longitude, or neither",
        )),
        (None, Some(_)) => Err(AppError::bad_input(
            "latitude",
            "give both latitude and longitude, or neither",
        )),
    }
}

fn number(value: i32, field: &'static str) -> AppResult<i32> {
    if (1..=999).contains(&value) {
        Ok(value)
    } else {
        Err(AppError::bad_input(field, "a number is between 1 and 999"))
    }
}

/// An MQTT topic prefix: segments of letters, digits, `_` and `-`, no wildcards.
pub fn mqtt_prefix(raw: &str) -> AppResult<String> {
    let prefix = raw.trim();
    let valid = !prefix.is_empty()
        && prefix.len() <= 200
        && prefix.split('/').all(|segment| {
            !segment.is_empty()
                && segment
                    .chars()
                    .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-')
        });
    if valid {
        Ok(prefix.to_owned())
    } else {
        Err(AppError::bad_input(
            "mqttPrefix",
            "an MQTT prefix is up to 200 characters: segments of letters, digits, '_' and '-' separated by '/'",
        ))
    }
}

fn unique_violation(err: sea_orm::DbErr, message: &str) -> AppError {
    match err.sql_err() {
        Some(SqlErr::UniqueConstraintViolation(_)) => AppError::Conflict(message.to_owned()),
        _ => AppError::from(err),
    }
}

/// Creates a station (active).
///
/// # Errors
/// `BAD_USER_INPUT` naming the field for a bad name or coordinates.
pub async fn create_station(
    db: &DatabaseConnection,
    fields: StationFields,
    now: DateTime<Utc>,
) -> AppResult<station::Model> {
    let name = name(fields.name.as_deref().unwrap_or(""), "name", 120)?;
    let location = fields.location_text.unwrap_or_default();
    if location.chars().count() > 255 {
        return Err(AppError::bad_input(
            "locationText",
            "locationText is at most 255 characters",
        ));
    }
    let coordinates = fields.coordinates.flatten();
    Ok(station::ActiveModel {
        name: Set(name),
        location_text: Set(location.trim().to_owned()),
        latitude: Set(coordinates.map(|c| c.0)),
        longitude: Set(coordinates.map(|c| c.1)),
        status: Set(fields.status.unwrap_or(StationStatus::Active)),
        created_at: Set(now),
        ..Default::default()
    }
    .insert(db)
    .await?)
}

/// Updates a station; leaving `ACTIVE` takes its bays out of service.
///
/// # Errors
/// `NOT_FOUND`, or `BAD_USER_INPUT` naming the field.
pub async fn update_station(
    db: &DatabaseConnection,
    id: i32,
    fields: StationFields,
    now: DateTime<Utc>,
) -> AppResult<Changed<station::Model>> {
    let name = fields
        .name
        .as_deref()
        .map(|n| name(n, "name", 120))
        .transpose()?;
    if let Some(location) = &fields.location_text
        && location.chars().count() > 255
    {
        return Err(AppError::bad_input(
            "locationText",
            "locationText is at most 255 characters",
        ));
    }
    let txn = db.begin().await?;
    let row = station::Entity::find_by_id(id)
        .one(&txn)
        .await?
        .ok_or(AppError::not_found("station"))?;
    let mut active: station::ActiveModel = row.into();
    if let Some(name) = name {
        active.name = Set(name);
    }
    if let Some(location) = fields.location_text {
        active.location_text = Set(location.trim().to_owned());
    }
    if let Some(coordinates) = fields.coordinates {
        active.latitude = Set(coordinates.map(|c| c.0));
        active.longitude = Set(coordinates.map(|c| c.1));
    }
    if let Some(status) = fields.status {
        active.status = Set(status);
    }
    let row = active.update(&txn).await?;
    let bays = bay_ids(&txn, bay::Column::StationId, id).await?;
    let mut events = Vec::new();
    if row.status != StationStatus::Active {
        cancel_for_maintenance(&txn, &bays, now).await?;
    }
    events.extend(bay_status::refresh(&txn, &bays, now).await?);
    txn.commit().await?;
    Ok((row, events))
}

/// Deletes a station with its cabinets and bays.
///
/// # Errors
/// `NOT_FOUND`; `CONFLICT` while one of its bays has a reservation that has not ended.
pub async fn delete_station(db: &DatabaseConnection, id: i32, now: DateTime<Utc>) -> AppResult<()> {
    let txn = db.begin().await?;
    station::Entity::find_by_id(id)
        .one(&txn)
        .await?
        .ok_or(AppError::not_found("station"))?;
    let bays = bay_ids(&txn, bay::Column::StationId, id).await?;
    refuse_if_reserved(&txn, &bays, now, "station").await?;
    station::Entity::delete_by_id(id).exec(&txn).await?;
    txn.commit().await?;
    Ok(())
}

/// Creates a cabinet in a station.
///
/// # Errors
/// `NOT_FOUND` station, `BAD_USER_INPUT` naming the field, `CONFLICT` for a
/// number taken in the station or a prefix taken anywhere.
pub async fn create_cabinet(
    db: &DatabaseConnection,
    station_id: i32,
    fields: CabinetFields,
    now: DateTime<Utc>,
) -> AppResult<cabinet::Model> {
    let number = number(fields.number.unwrap_or(0), "number")?;
    let cabinet_name = fields
        .name
        .as_deref()
        .map(|n| name(n, "name", 120))
        .transpose()?
        .unwrap_or_default();
    let prefix = mqtt_prefix(fields.mqtt_prefix.as_deref().unwrap_or(""))?;
    let txn = db.begin().await?;
    station::Entity::find_by_id(station_id)
        .one(&txn)
        .await?
        .ok_or(AppError::not_found("station"))?;
    check_cabinet_unique(&txn, None, station_id, number, &prefix).await?;
    let row = cabinet::ActiveModel {
        station_id: Set(station_id),
        number: Set(number),
        name: Set(cabinet_name),
        mqtt_prefix: Set(prefix),
        status: Set(fields.status.unwrap_or(CabinetStatus::Active)),
        created_at: Set(now),
        ..Default::default()
    }
    .insert(&txn)
    .await
    .map_err(|e| unique_violation(e, "the number or MQTT prefix is taken"))?;
    txn.commit().await?;
    Ok(row)
}

async fn check_cabinet_unique(
    db: &impl ConnectionTrait,
    except: Option<i32>,
    station_id: i32,
    number: i32,
    prefix: &str,
) -> AppResult<()> {
    let others = |q: sea_orm::Select<cabinet::Entity>| match except {
        Some(id) => q.filter(cabinet::Column::Id.ne(id)),
        None => q,
    };
    let number_taken = others(cabinet::Entity::find())
        .filter(cabinet::Column::StationId.eq(station_id))
        .filter(cabinet::Column::Number.eq(number))
        .count(db)
        .await?
        > 0;
    if number_taken {
        return Err(AppError::Conflict(format!(
            "the station has a cabinet number {number} already"
        )));
    }
    let prefix_taken = others(cabinet::Entity::find())
        .filter(cabinet::Column::MqttPrefix.eq(prefix))
        .count(db)
        .await?
        > 0;
    if prefix_taken {
        return Err(AppError::Conflict(
            "another cabinet uses this MQTT prefix".to_owned(),
        ));
    }
    Ok(())
}

/// Updates a cabinet; moving it to another station moves its bays too, and
/// leaving `ACTIVE` takes its bays out of service.
///
/// # Errors
/// As [`create_cabinet`].
pub async fn update_cabinet(
    db: &DatabaseConnection,
    id: i32,
    fields: CabinetFields,
    now: DateTime<Utc>,
) -> AppResult<Changed<cabinet::Model>> {
    let number = fields.number.map(|n| number(n, "number")).transpose()?;
    let cabinet_name = fields
        .name
        .as_deref()
        .map(|n| name(n, "name", 120))
        .transpose()?;
    let prefix = fields.mqtt_prefix.as_deref().map(mqtt_prefix).transpose()?;
    let txn = db.begin().await?;
    let row = cabinet::Entity::find_by_id(id)
        .one(&txn)
        .await?
        .ok_or(AppError::not_found("cabinet"))?;
    let station_id = fields.station_id.unwrap_or(row.station_id);
    if station_id != row.station_id {
        station::Entity::find_by_id(station_id)
            .one(&txn)
            .await?
            .ok_or(AppError::not_found("station"))?;
    }
    check_cabinet_unique(
        &txn,
        Some(id),
        station_id,
        number.unwrap_or(row.number),
        prefix.as_deref().unwrap_or(&row.mqtt_prefix),
    )
    .await?;
    let moved = station_id != row.station_id;
    let mut active: cabinet::ActiveModel = row.into();
    active.station_id = Set(station_id);
    if let Some(number) = number {
        active.number = Set(number);
    }
    if let Some(name) = cabinet_name {
        active.name = Set(name);
    }
    if let Some(prefix) = prefix {
        active.mqtt_prefix = Set(prefix);
    }
    if let Some(status) = fields.status {
        active.status = Set(status);
    }
    let row = active
        .update(&txn)
        .await
        .map_err(|e| unique_violation(e, "the number or MQTT prefix is taken"))?;
    if moved {
        bay::Entity::update_many()
            .col_expr(
                bay::Column::StationId,
                sea_orm::sea_query::Expr::value(station_id),
            )
            .filter(bay::Column::CabinetId.eq(id))
            .exec(&txn)
            .await?;
    }
    let bays = bay_ids(&txn, bay::Column::CabinetId, id).await?;
    if row.status != CabinetStatus::Active {
        cancel_for_maintenance(&txn, &bays, now).await?;
    }
    let events = bay_status::refresh(&txn, &bays, now).await?;
    txn.commit().await?;
    Ok((row, events))
}

/// Deletes a cabinet with its bays.
///
/// # Errors
/// `NOT_FOUND`; `CONFLICT` while one of its bays has a reservation that has not ended.
pub async fn delete_cabinet(db: &DatabaseConnection, id: i32, now: DateTime<Utc>) -> AppResult<()> {
    let txn = db.begin().await?;
    cabinet::Entity::find_by_id(id)
        .one(&txn)
        .await?
        .ok_or(AppError::not_found("cabinet"))?;
    let bays = bay_ids(&txn, bay::Column::CabinetId, id).await?;
    refuse_if_reserved(&txn, &bays, now, "cabinet").await?;
    cabinet::Entity::delete_by_id(id).exec(&txn).await?;
    txn.commit().await?;
    Ok(())
}

/// Creates a bay in a cabinet, in the cabinet's station.
///
/// # Errors
/// `NOT_FOUND` cabinet, `BAD_USER_INPUT` number, `CONFLICT` for a number taken in the cabinet.
pub async fn create_bay(
    db: &DatabaseConnection,
    cabinet_id: i32,
    fields: BayFields,
    now: DateTime<Utc>,
) -> AppResult<Changed<bay::Model>> {
    let number = number(fields.number.unwrap_or(0), "number")?;
    let txn = db.begin().await?;
    let parent = cabinet::Entity::find_by_id(cabinet_id)
        .one(&txn)
        .await?
        .ok_or(AppError::not_found("cabinet"))?;
    check_bay_unique(&txn, None, cabinet_id, number).await?;
    let row = bay::ActiveModel {
        station_id: Set(parent.station_id),
        cabinet_id: Set(cabinet_id),
        number: Set(number),
        status: Set(BayStatus::Available),
        lock_state: Set(LockState::Locked),
        ..Default::default()
    }
    .insert(&txn)
    .await
    .map_err(|e| unique_violation(e, "the cabinet has a bay with this number already"))?;
    if let Some(Some(reason)) = fields.maintenance {
        flag(&txn, row.id, &reason, now).await?;
    }
    let events = bay_status::refresh(&txn, &[row.id], now).await?;
    let row = bay::Entity::find_by_id(row.id)
        .one(&txn)
        .await?
        .unwrap_or(row);
    txn.commit().await?;
    Ok((row, events))
}

async fn check_bay_unique(
    db: &impl ConnectionTrait,
    except: Option<i32>,
    cabinet_id: i32,
    number: i32,
) -> AppResult<()> {
    let mut query = bay::Entity::find()
        .filter(bay::Column::CabinetId.eq(cabinet_id))
        .filter(bay::Column::Number.eq(number));
    if let Some(id) = except {
        query = query.filter(bay::Column::Id.ne(id));
    }
    if query.count(db).await? > 0 {
        return Err(AppError::Conflict(format!(
            "the cabinet has a bay number {number} already"
        )));
    }
    Ok(())
}

async fn flag(
    db: &impl ConnectionTrait,
    bay_id: i32,
    reason: &str,
    now: DateTime<Utc>,
) -> AppResult<()> {
    if reason.chars().count() > 255 {
        return Err(AppError::bad_input(
            "maintenanceReason",
            "a reason is at most 255 characters",
        ));
    }
    bay_maintenance::Entity::delete_by_id(bay_id)
        .exec(db)
        .await?;
    bay_maintenance::ActiveModel {
        bay_id: Set(bay_id),
        reason: Set(reason.trim().to_owned()),
        created_at: Set(now),
    }
    .insert(db)
    .await?;
    Ok(())
}

/// Renumbers a bay or flags it for maintenance (or lifts the flag).
///
/// # Errors
/// `NOT_FOUND`, `BAD_USER_INPUT` naming the field, `CONFLICT` for a number taken.
pub async fn update_bay(
    db: &DatabaseConnection,
    id: i32,
    fields: BayFields,
    now: DateTime<Utc>,
) -> AppResult<Changed<bay::Model>> {
    let number = fields.number.map(|n| number(n, "number")).transpose()?;
    let txn = db.begin().await?;
    let row = bay::Entity::find_by_id(id)
        .one(&txn)
        .await?
        .ok_or(AppError::not_found("bay"))?;
    if let Some(number) = number {
        check_bay_unique(&txn, Some(id), row.cabinet_id, number).await?;
        bay::Entity::update(bay::ActiveModel {
            id: Set(id),
            number: Set(number),
            ..Default::default()
        })
        .exec(&txn)
        .await
        .map_err(|e| unique_violation(e, "the cabinet has a bay with this number already"))?;
    }
    match fields.maintenance {
        Some(Some(reason)) => {
            flag(&txn, id, &reason, now).await?;
            cancel_for_maintenance(&txn, &[id], now).await?;
        }
        Some(None) => {
            bay_maintenance::Entity::delete_by_id(id).exec(&txn).await?;
        }
        None => {}
    }
    let events = bay_status::refresh(&txn, &[id], now).await?;
    let row = bay::Entity::find_by_id(id)
        .one(&txn)
        .await?
        .ok_or(AppError::not_found("bay"))?;
    txn.commit().await?;
    Ok((row, events))
}

/// Whether a bay is flagged for maintenance, and why.
pub async fn maintenance_reason(
    db: &impl ConnectionTrait,
    bay_id: i32,
) -> AppResult<Option<String>> {
    Ok(bay_maintenance::Entity::find_by_id(bay_id)
        .one(db)
        .await?
        .map(|m| m.reason))
}

/// Deletes a bay.
///
/// # Errors
/// `NOT_FOUND`; `CONFLICT` while it has a reservation that has not ended.
pub async fn delete_bay(db: &DatabaseConnection, id: i32, now: DateTime<Utc>) -> AppResult<()> {
    let txn = db.begin().await?;
    bay::Entity::find_by_id(id)
        .one(&txn)
        .await?
        .ok_or(AppError::not_found("bay"))?;
    refuse_if_reserved(&txn, &[id], now, "bay").await?;
    bay::Entity::delete_by_id(id).exec(&txn).await?;
    txn.commit().await?;
    Ok(())
}

async fn bay_ids(
    db: &impl ConnectionTrait,
    parent: bay::Column,
    parent_id: i32,
) -> AppResult<Vec<i32>> {
    Ok(bay::Entity::find()
        .select_only()
        .column(bay::Column::Id)
        .filter(parent.eq(parent_id))
        .into_tuple()
        .all(db)
        .await?)
}

/// Reservations of `bays` that hold them and have not ended.
fn not_ended(bays: &[i32], now: DateTime<Utc>) -> sea_orm::Select<reservation::Entity> {
    reservation::Entity::find()
        .filter(reservation::Column::BayId.is_in(bays.iter().copied()))
        .filter(reservation::Column::Status.is_in(ReservationStatus::HOLDING))
        .filter(reservation::Column::EndsAtUs.gt(now.timestamp_micros()))
}

async fn refuse_if_reserved(
    db: &impl ConnectionTrait,
    bays: &[i32],
    now: DateTime<Utc>,
    what: &str,
) -> AppResult<()> {
    if bays.is_empty() {
        return Ok(());
    }
    let upcoming = not_ended(bays, now).count(db).await?;
    if upcoming > 0 {
        return Err(AppError::Conflict(format!(
            "the {what} has {upcoming} upcoming or ongoing reservation(s); cancel them or put it in maintenance first"
        )));
    }
    Ok(())
}

/// Cancels the reservations of `bays` that have not ended and queues a
/// notification to each owner.
async fn cancel_for_maintenance(
    db: &impl ConnectionTrait,
    bays: &[i32],
    now: DateTime<Utc>,
) -> AppResult<()> {
    if bays.is_empty() {
        return Ok(());
    }
    for row in not_ended(bays, now).all(db).await? {
        let cancelled = reservation::Entity::update_many()
            .col_expr(
                reservation::Column::Status,
                sea_orm::sea_query::Expr::value(ReservationStatus::Cancelled),
            )
            .col_expr(
                reservation::Column::CancelledAtUs,
                sea_orm::sea_query::Expr::value(now.timestamp_micros()),
            )
            .filter(reservation::Column::Id.eq(row.id))
            .filter(reservation::Column::Status.is_in(ReservationStatus::HOLDING))
            .exec(db)
            .await?;
        if cancelled.rows_affected == 1 {
            super::reservations::revoke_access(db, &row, now).await?;
            outbox::queue(
                db,
                row.user_id,
                template::RESERVATION_CANCELLED,
                &json!({ "reference": row.reference_code, "reason": "maintenance" }),
            )
            .await?;
        }
    }
    Ok(())
}
