//! Sensor readings, stored within the ingestion's batch transaction, and the
//! alerts they raise or end.

use std::collections::{HashMap, HashSet};

use chrono::{DateTime, Utc};
use sea_orm::sea_query::OnConflict;
use sea_orm::{ActiveValue::NotSet, ColumnTrait, ConnectionTrait, EntityTrait, QueryFilter, Set};

use super::alerts::{self, Change, Condition};
use super::rules::{Thresholds, Verdict, judge_reading};
use crate::entities::{AlertKind, alert, bay, device, sensor, sensor_reading};

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

/// A reading with the bay and device that sent it.
pub type Measured<'a> = super::Measured<'a, Reading>;

/// Stores a batch's readings in a few statements however many there are,
/// one outcome each in their order:
///
/// 1. the sensors of the batch's (device, kind) pairs are read in one query;
///    a device's first reading of a kind creates its sensor (one `INSERT`
///    for all new ones, and one read of them);
/// 2. the readings are inserted in one multi-row `INSERT` per
///    [`crate::db::INSERT_CHUNK`]: a reading already stored (same sensor and device
///    time, a QoS 1 redelivery), or a repeat within the batch, is skipped
///    and judged no further;
/// 3. each stored reading is judged in the batch's order; whether the alerts
///    the readings back to normal could end are open is read in one query,
///    and only those are ended, so a batch of normal readings (nearly all)
///    costs no statement per reading. A reading that raises an alert is one
///    upsert, as alone.
///
/// # Errors
/// Database failures (the batch then fails).
pub async fn record_all(
    db: &impl ConnectionTrait,
    measured: &[Measured<'_>],
    thresholds: &Thresholds,
) -> Result<Vec<Recorded>, sea_orm::DbErr> {
    let mut outcomes: Vec<Recorded> = measured.iter().map(|_| Recorded::default()).collect();
    if measured.is_empty() {
        return Ok(outcomes);
    }
    let sensors = sensors_of(db, measured).await?;
    let keys: Vec<(i32, i64)> = measured
        .iter()
        .map(|m| {
            let sensor_id = sensors[&(m.device.id, m.report.kind.as_str())];
            (sensor_id, m.report.ts.timestamp_micros())
        })
        .collect();

    // The first of a batch's readings of one sensor at one device time is
    // the one inserted; the others are redeliveries.
    let mut seen = HashSet::new();
    let rows = measured
        .iter()
        .zip(&keys)
        .filter(|(_, key)| seen.insert(**key))
        .map(|(m, &(sensor_id, ts_us))| sensor_reading::ActiveModel {
            id: NotSet,
            sensor_id: Set(sensor_id),
            value: Set(m.report.value),
            ts: Set(m.report.ts),
            ts_us: Set(ts_us),
            received_at: Set(m.received_at),
        })
        .collect();
    let mut inserted = insert_new(db, rows).await?;

    // Only the batch's first reading of a key was inserted: a repeat, or a
    // reading stored before, is a redelivery.
    let mut stored = Vec::new();
    for (index, (m, key)) in measured.iter().zip(&keys).enumerate() {
        if let Some(reading_id) = inserted.remove(key) {
            let reading = m.report;
            let verdict = judge_reading(&reading.kind, reading.value, &reading.unit, thresholds);
            stored.push((index, reading_id, verdict));
            outcomes[index].stored = true;
        }
    }

    let condition = |m: &Measured<'_>, kind, severity, message, reading_id| Condition {
        kind,
        severity,
        message,
        station_id: m.bay.station_id,
        bay_id: Some(m.bay.id),
        device_id: Some(m.device.id),
        reading_id,
        session_id: None,
    };
    // One condition per device and kind, however many readings ask.
    let mut asked = HashSet::new();
    let recoveries: Vec<Condition> = stored
        .iter()
        .filter_map(|(index, _, verdict)| match verdict {
            Verdict::Recover(kind) if asked.insert((measured[*index].device.id, *kind)) => {
                let low = crate::entities::AlertSeverity::Low;
                Some(condition(
                    &measured[*index],
                    *kind,
                    low,
                    String::new(),
                    None,
                ))
            }
            _ => None,
        })
        .collect();
    let mut open: HashSet<(i32, AlertKind)> = recoveries
        .iter()
        .zip(alerts::open_among(db, &recoveries).await?)
        .filter(|(_, open)| *open)
        .filter_map(|(condition, _)| Some((condition.device_id?, condition.kind)))
        .collect();

    for (index, reading_id, verdict) in stored {
        let m = &measured[index];
        // The reading that raised an alert is named by it.
        let condition =
            |kind, severity, message| condition(m, kind, severity, message, Some(reading_id));
        let at = m.report.ts;
        if let Some(change) =
            alerts::follow_verdict(db, verdict, m.device.id, condition, &mut open, at).await?
        {
            outcomes[index].alerts.push(change);
        }
    }
    Ok(outcomes)
}

/// The sensor of each (device, kind) of `measured`, created (as first seen
/// when its first reading was received) where missing.
async fn sensors_of<'m>(
    db: &impl ConnectionTrait,
    measured: &[Measured<'m>],
) -> Result<HashMap<(i32, &'m str), i32>, sea_orm::DbErr> {
    let mut wanted: Vec<(i32, &'m str)> = measured
        .iter()
        .map(|m| (m.device.id, m.report.kind.as_str()))
        .collect();
    wanted.sort_unstable();
    wanted.dedup();
    let mut found = HashMap::with_capacity(wanted.len());
    let keep = |rows: Vec<sensor::Model>, found: &mut HashMap<(i32, &'m str), i32>| {
        for row in rows {
            // SQLite's lookup may return pairs crossed between devices.
            if let Ok(at) = wanted.binary_search(&(row.device_id, row.kind.as_str())) {
                found.insert(wanted[at], row.id);
            }
        }
    };
    keep(by_pair(db, &wanted).await?, &mut found);
    let missing: Vec<(i32, &'m str)> = wanted
        .iter()
        .filter(|pair| !found.contains_key(*pair))
        .copied()
        .collect();
    if missing.is_empty() {
        return Ok(found);
    }
    let new = missing.iter().map(|&(device_id, kind)| {
        let first = measured
            .iter()
            .find(|m| m.device.id == device_id && m.report.kind == kind)
            .expect("a reading of each missing sensor");
        sensor::ActiveModel {
            id: NotSet,
            device_id: Set(device_id),
            kind: Set(kind.to_owned()),
            unit: Set(first.report.unit.chars().take(16).collect()),
            created_at: Set(first.received_at),
        }
    });
    sensor::Entity::insert_many(new)
        .on_conflict(
            OnConflict::columns([sensor::Column::DeviceId, sensor::Column::Kind])
                .do_nothing()
                .to_owned(),
        )
        .exec_without_returning(db)
        .await?;
    keep(by_pair(db, &missing).await?, &mut found);
    if found.len() != wanted.len() {
        return Err(sea_orm::DbErr::RecordNotFound(
            "a sensor just created".into(),
        ));
    }
    Ok(found)
}

/// The sensors of `pairs` (device, kind), by their key.
async fn by_pair(
    db: &impl ConnectionTrait,
    pairs: &[(i32, &str)],
) -> Result<Vec<sensor::Model>, sea_orm::DbErr> {
    crate::db::find_by_pairs::<sensor::Entity, _, _>(
        db,
        (sensor::Column::DeviceId, "integer"),
        (sensor::Column::Kind, "text"),
        pairs,
    )
    .await
}

/// Inserts the readings not stored yet; returns the id of each inserted one
/// by its (sensor, `ts_us`).
async fn insert_new(
    db: &impl ConnectionTrait,
    rows: Vec<sensor_reading::ActiveModel>,
) -> Result<HashMap<(i32, i64), i32>, sea_orm::DbErr> {
    use sensor_reading::Column as C;
    let mut inserted = HashMap::new();
    for row in crate::db::insert_skipping_conflicts::<sensor_reading::Entity>(
        db,
        rows,
        &[C::SensorId, C::TsUs],
        &[C::Id, C::SensorId, C::TsUs],
    )
    .await?
    {
        let id: i32 = row.try_get_by_index(0)?;
        inserted.insert((row.try_get_by_index(1)?, row.try_get_by_index(2)?), id);
    }
    Ok(inserted)
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

#[cfg(test)]
mod tests {
    use chrono::TimeDelta;
    use sea_orm::{PaginatorTrait as _, QueryOrder as _, TransactionTrait as _};

    use super::*;

    fn reading(kind: &str, value: f64, ts: DateTime<Utc>) -> Reading {
        Reading {
            kind: kind.to_owned(),
            value,
            unit: "C".to_owned(),
            ts,
        }
    }

    /// One batch: two devices' first readings of three kinds (their sensors
    /// created), a repeat within the batch, an alert raised and ended by the
    /// same batch; then a redelivery of a stored reading in another batch.
    #[tokio::test]
    async fn a_batch_of_readings_is_stored_once_each_and_judged_in_its_order() {
        let db = crate::db::testing::any_database().await;
        crate::seed::testing::one_cabinet(&db, 2).await;
        let bays: Vec<i32> = bay::Entity::find()
            .order_by_asc(bay::Column::Id)
            .all(&db)
            .await
            .expect("query")
            .into_iter()
            .map(|bay| bay.id)
            .collect();
        let (bay_a, device_a) = crate::seed::testing::bay_and_device(&db, bays[0]).await;
        let (bay_b, device_b) = crate::seed::testing::bay_and_device(&db, bays[1]).await;
        let t0 = Utc::now();
        let readings = [
            (0, reading("temperature", 20.0, t0)),
            (0, reading("temperature", 20.0, t0)),
            (0, reading("temperature", 70.0, t0 + TimeDelta::seconds(1))),
            (1, reading("smoke", 0.0, t0)),
            (0, reading("temperature", 30.0, t0 + TimeDelta::seconds(2))),
            (1, reading("temperature", 21.0, t0)),
        ];
        let places = [(&bay_a, &device_a), (&bay_b, &device_b)];
        let measured: Vec<Measured<'_>> = readings
            .iter()
            .map(|(place, reading)| Measured {
                bay: places[*place].0,
                device: places[*place].1,
                report: reading,
                received_at: t0,
            })
            .collect();
        let txn = db.begin().await.expect("a transaction");
        let recorded = record_all(&txn, &measured, &Thresholds::default())
            .await
            .expect("stored");
        txn.commit().await.expect("committed");

        let stored: Vec<bool> = recorded.iter().map(|r| r.stored).collect();
        assert_eq!(stored, [true, false, true, true, true, true]);
        let changes: Vec<Vec<(AlertKind, Change)>> = recorded
            .iter()
            .map(|r| r.alerts.iter().map(|(a, c)| (a.kind, *c)).collect())
            .collect();
        assert_eq!(changes[2], [(AlertKind::OverTemperature, Change::Raised)]);
        assert_eq!(changes[4], [(AlertKind::OverTemperature, Change::Resolved)]);
        assert!(
            [0, 1, 3, 5].iter().all(|&i| changes[i].is_empty()),
            "{changes:?}"
        );
        let raised = &recorded[2].alerts[0].0;
        assert!(raised.reading_id.is_some(), "the alert names its reading");
        assert_eq!(sensor::Entity::find().count(&db).await.expect("count"), 3);
        assert_eq!(
            sensor_reading::Entity::find()
                .count(&db)
                .await
                .expect("count"),
            5
        );

        // A QoS 1 redelivery in a later batch: stored once, judged no further.
        let again = [measured[2]];
        let txn = db.begin().await.expect("a transaction");
        let recorded = record_all(&txn, &again, &Thresholds::default())
            .await
            .expect("stored");
        txn.commit().await.expect("committed");
        assert!(!recorded[0].stored);
        assert!(recorded[0].alerts.is_empty(), "no alert raised again");
        assert_eq!(
            sensor_reading::Entity::find()
                .count(&db)
                .await
                .expect("count"),
            5
        );
    }
}
