//! Sensor readings, stored within the ingestion's batch transaction, and the
//! alerts they raise or end.

use chrono::{DateTime, Utc};
use sea_orm::sea_query::OnConflict;
use sea_orm::{ActiveValue::NotSet, ColumnTrait, ConnectionTrait, EntityTrait, QueryFilter, Set};

use super::alerts::{self, Change, Condition};
use super::rules::{Thresholds, Verdict, judge_reading};
use crate::entities::{alert, bay, device, sensor, sensor_reading};

/// One reading as the device sent it.
#[derive(Debug, Clone, PartialEq)]
pub struct Reading {
    /// The sensor's kind, from its topic (`temperature`, `smoke`, …).
    pub kind: String,
    pub value: f64,
    pub unit: String,
    /// The device's clock.
    pub ts: DateTime<Utc>,
}

/// What storing a reading did.
#[derive(Debug, Default)]
pub struct Recorded {
    /// False for a redelivery of a reading already stored.
    pub stored: bool,
    pub alerts: Vec<(alert::Model, Change)>,
}

/// Stores `reading` of `device` (on `bay`): its sensor is created on the
/// device's first reading of that kind; a reading already stored (same
/// sensor and device time, a QoS 1 redelivery) is not stored again and
/// judged no further.
///
/// # Errors
/// Database failures (the batch then fails).
pub async fn record(
    db: &impl ConnectionTrait,
    bay: &bay::Model,
    device: &device::Model,
    reading: &Reading,
    received_at: DateTime<Utc>,
    thresholds: &Thresholds,
) -> Result<Recorded, sea_orm::DbErr> {
    let sensor_id = sensor_of(db, device.id, reading, received_at).await?;
    // One statement on the hot path: the id of a new row, or nothing for a redelivery.
    let inserted = sensor_reading::Entity::insert(sensor_reading::ActiveModel {
        id: NotSet,
        sensor_id: Set(sensor_id),
        value: Set(reading.value),
        ts: Set(reading.ts),
        ts_us: Set(reading.ts.timestamp_micros()),
        received_at: Set(received_at),
    })
    .on_conflict(
        OnConflict::columns([
            sensor_reading::Column::SensorId,
            sensor_reading::Column::TsUs,
        ])
        .do_nothing()
        .to_owned(),
    )
    .exec(db)
    .await;
    let reading_id = match inserted {
        Ok(row) => Some(row.last_insert_id),
        Err(sea_orm::DbErr::RecordNotInserted) => return Ok(Recorded::default()),
        Err(err) => return Err(err),
    };
    let condition = |kind, severity, message| Condition {
        kind,
        severity,
        message,
        station_id: bay.station_id,
        bay_id: Some(bay.id),
        device_id: Some(device.id),
        reading_id,
        session_id: None,
    };
    let mut recorded = Recorded {
        stored: true,
        alerts: Vec::new(),
    };
    match judge_reading(&reading.kind, reading.value, &reading.unit, thresholds) {
        Verdict::Raise {
            kind,
            severity,
            message,
        } => {
            let raised = alerts::raise(db, &condition(kind, severity, message), reading.ts).await?;
            recorded.alerts.push(raised);
        }
        Verdict::Recover(kind) => {
            let over = condition(kind, crate::entities::AlertSeverity::Low, String::new());
            if let Some(ended) = alerts::recover(db, &over, reading.ts).await? {
                recorded.alerts.push((ended, Change::Resolved));
            }
        }
        Verdict::Nothing => {}
    }
    Ok(recorded)
}

/// The id of `device`'s sensor of the reading's kind, created (as first seen
/// at `first_seen`) if need be.
async fn sensor_of(
    db: &impl ConnectionTrait,
    device_id: i32,
    reading: &Reading,
    first_seen: DateTime<Utc>,
) -> Result<i32, sea_orm::DbErr> {
    let find = || {
        sensor::Entity::find()
            .filter(sensor::Column::DeviceId.eq(device_id))
            .filter(sensor::Column::Kind.eq(reading.kind.clone()))
    };
    if let Some(existing) = find().one(db).await? {
        return Ok(existing.id);
    }
    sensor::Entity::insert(sensor::ActiveModel {
        id: NotSet,
        device_id: Set(device_id),
        kind: Set(reading.kind.clone()),
        unit: Set(reading.unit.chars().take(16).collect()),
        created_at: Set(first_seen),
    })
    .on_conflict(
        OnConflict::columns([sensor::Column::DeviceId, sensor::Column::Kind])
            .do_nothing()
            .to_owned(),
    )
    .exec_without_returning(db)
    .await?;
    find()
        .one(db)
        .await?
        .map(|s| s.id)
        .ok_or_else(|| sea_orm::DbErr::RecordNotFound("the sensor just created".into()))
}

/// Raises or ends the `DEVICE_OFFLINE` alert of `device` after a state report
/// said whether it is offline.
///
/// # Errors
/// Database failures.
pub async fn device_state(
    db: &impl ConnectionTrait,
    bay: &bay::Model,
    device_id: i32,
    offline: bool,
    at: DateTime<Utc>,
) -> Result<Option<(alert::Model, Change)>, sea_orm::DbErr> {
    alerts::raise_or_recover(db, &offline_condition(bay, device_id), offline, at).await
}

/// Which of `devices` (each on its bay) have an open device-offline alert, in
/// one query: the reports of a batch that could end one (every report that is
/// not `offline`) ask together.
///
/// # Errors
/// Database failures.
pub async fn offline_alerted(
    db: &impl ConnectionTrait,
    devices: &[(&bay::Model, i32)],
) -> Result<std::collections::HashSet<i32>, sea_orm::DbErr> {
    if devices.is_empty() {
        return Ok(std::collections::HashSet::new());
    }
    let conditions: Vec<Condition> = devices
        .iter()
        .map(|(bay, device_id)| offline_condition(bay, *device_id))
        .collect();
    let open = alerts::open_among(db, &conditions).await?;
    Ok(devices
        .iter()
        .zip(open)
        .filter(|(_, open)| *open)
        .map(|((_, device_id), _)| *device_id)
        .collect())
}

fn offline_condition(bay: &bay::Model, device_id: i32) -> Condition {
    Condition {
        kind: crate::entities::AlertKind::DeviceOffline,
        severity: crate::entities::AlertSeverity::High,
        message: format!("the device of bay {} is offline", bay.number),
        station_id: bay.station_id,
        bay_id: Some(bay.id),
        device_id: Some(device_id),
        reading_id: None,
        session_id: None,
    }
}

/// Raises the `MAC_MISMATCH` security alert of the device registered on bay
/// `number` under `prefix` after a message from another MAC was rejected
/// there; a repeat refreshes the open alert (one per device) instead of
/// opening another. `None` when the bay has no device in service.
///
/// # Errors
/// Database failures.
pub async fn mac_mismatch(
    db: &impl ConnectionTrait,
    prefix: &str,
    number: i32,
    reported: &str,
    at: DateTime<Utc>,
) -> Result<Option<(alert::Model, Change)>, sea_orm::DbErr> {
    let (bay, device) = match crate::devices::reports::find_bay(db, prefix, number).await {
        Ok(found) => found,
        Err(crate::devices::reports::ReportError::Database(err)) => return Err(err),
        Err(_) => return Ok(None),
    };
    // The reported MAC is the sender's own claim: kept short in the message.
    let reported: String = reported.chars().take(32).collect();
    let condition = Condition {
        kind: crate::entities::AlertKind::MacMismatch,
        severity: crate::entities::AlertSeverity::Critical,
        message: format!(
            "a device reporting MAC {reported} published on bay {} registered to {}",
            bay.number, device.mac_address
        ),
        station_id: bay.station_id,
        bay_id: Some(bay.id),
        device_id: Some(device.id),
        reading_id: None,
        session_id: None,
    };
    alerts::raise(db, &condition, at).await.map(Some)
}

/// The sensors of `device_id`, if `principal` supervises its station.
///
/// # Errors
/// `NOT_FOUND` when the device is not theirs to see.
pub async fn of_device(
    db: &impl ConnectionTrait,
    principal: &crate::auth::Principal,
    device_id: i32,
) -> crate::error::AppResult<Vec<sensor::Model>> {
    use crate::db::FindOr as _;
    use sea_orm::QueryOrder as _;
    device::Entity::visible_to(principal)
        .filter(device::Column::Id.eq(device_id))
        .one_or_not_found(db, "device")
        .await?;
    Ok(sensor::Entity::find()
        .filter(sensor::Column::DeviceId.eq(device_id))
        .order_by_asc(sensor::Column::Kind)
        .all(db)
        .await?)
}

/// Readings of `sensor_id` measured in `[from, to)`, newest first, at most
/// `limit`, if `principal` supervises the sensor's station.
///
/// # Errors
/// `NOT_FOUND` when the sensor is not theirs to see.
pub async fn readings(
    db: &impl ConnectionTrait,
    principal: &crate::auth::Principal,
    sensor_id: i32,
    from: Option<DateTime<Utc>>,
    to: Option<DateTime<Utc>>,
    limit: u64,
) -> crate::error::AppResult<(sensor::Model, Vec<sensor_reading::Model>)> {
    use sea_orm::{QueryOrder as _, QuerySelect as _};
    let not_found = || crate::error::AppError::not_found("sensor");
    let found = sensor::Entity::find_by_id(sensor_id)
        .one(db)
        .await?
        .ok_or_else(not_found)?;
    let visible = device::Entity::visible_to(principal)
        .filter(device::Column::Id.eq(found.device_id))
        .one(db)
        .await?;
    if visible.is_none() {
        return Err(not_found());
    }
    let mut query =
        sensor_reading::Entity::find().filter(sensor_reading::Column::SensorId.eq(sensor_id));
    if let Some(from) = from {
        query = query.filter(sensor_reading::Column::TsUs.gte(from.timestamp_micros()));
    }
    if let Some(to) = to {
        query = query.filter(sensor_reading::Column::TsUs.lt(to.timestamp_micros()));
    }
    let rows = query
        .order_by_desc(sensor_reading::Column::TsUs)
        .limit(limit)
        .all(db)
        .await?;
    Ok((found, rows))
}
