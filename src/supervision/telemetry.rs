//! Charging telemetry: the current, voltage and energy a bay's device
//! measures during a session, stored in the ingestion's batch transactions
//! against the session open on the bay at the sample's time, and read back
//! over a time range, raw or downsampled into buckets.
//!
//! The session's energy is the largest total its samples reported (a meter
//! only grows, so samples applied out of order still leave the right total);
//! its current and voltage are those of its latest sample.

use std::collections::{HashMap, HashSet};
use std::sync::Arc;

use chrono::{DateTime, SecondsFormat, TimeDelta, Utc};
use sea_orm::sea_query::{Expr, ExprTrait, Func, Order, Query};
use sea_orm::{
    ActiveModelTrait, ActiveValue::NotSet, ColumnTrait, Condition, ConnectionTrait, DbErr,
    EntityTrait, FromQueryResult, IntoActiveModel, QueryFilter, QueryOrder, QuerySelect,
};

use super::alerts;
use super::rules::{Thresholds, Verdict, judge_sample};
use super::telemetry_cache::TelemetryCache;
use crate::auth::Principal;
use crate::bus::ChargeStateChanged;
use crate::db::{per_row, takes_json_rows, with_json_rows};
use crate::entities::charging_session::{self, SessionState};
use crate::entities::{AlertKind, AlertSeverity, bay, session_telemetry};
use crate::error::{AppError, AppResult};

/// One sample as the device sent it.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Sample {
    pub current_a: f64,
    pub voltage_v: f64,
    /// The session's energy so far.
    pub energy_kwh: f64,
    /// The device's clock.
    pub ts: DateTime<Utc>,
}

/// What storing a sample did.
#[derive(Debug, Clone, PartialEq)]
pub enum Recorded {
    /// Stored; the session's change to announce after the commit.
    Stored {
        /// On the latest sample of its session in the batch only: the
        /// session's energy after the batch, with this sample's current and
        /// voltage.
        event: Option<Box<ChargeStateChanged>>,
        /// Alerts the sample raised, refreshed or ended.
        alerts: Vec<(crate::entities::alert::Model, super::alerts::Change)>,
    },
    /// A redelivery of a sample already stored.
    Redelivered,
    /// No session was open on the bay at the sample's time: not stored.
    NoSession,
}

/// How long before a session opened (server clock) a device's sample may be
/// stamped and still belong to it: device clocks lag a little.
const CLOCK_GRACE: TimeDelta = TimeDelta::seconds(60);

/// One sample to store, with the bay and device it came from.
pub type Measured<'a> = super::Measured<'a, Sample>;

/// Sessions per multi-row `UPDATE` (two parameters each per `CASE`).
const UPDATE_CHUNK: usize = 200;

/// Stores each sample against the session open on its bay at its time and
/// raises the sessions' energy to their totals, in two statements whatever
/// the number of samples when the replica's [`TelemetryCache`] knows the
/// bays' sessions and open alerts:
///
/// 1. one `UPDATE … RETURNING` of the batch's sessions raises each one's
///    energy and reads it back, which confirms that each picked session was
///    still open at its samples' times (a remembered session that ended
///    before them is not changed, and their sessions are read from the
///    database instead);
/// 2. one multi-row `INSERT … ON CONFLICT DO NOTHING RETURNING` per
///    [`crate::db::INSERT_CHUNK`] samples: a redelivery, already stored, is skipped by
///    the unique session, `ts_us` and device (a redelivery picks the session
///    its first delivery did: the one open on its bay at its time).
///
/// Bays whose sessions are not remembered cost one query for all of them,
/// and devices whose open alerts are not, another. Alerts are then raised
/// or ended in the samples' order. One outcome per sample, in order; each
/// session with stored samples has one `chargeStateChanged`, on its latest
/// sample of the batch.
///
/// # Errors
/// Database failures (the batch then fails).
pub async fn record_all(
    db: &impl ConnectionTrait,
    measured: &[Measured<'_>],
    thresholds: &Thresholds,
    cache: &TelemetryCache,
) -> Result<Vec<Recorded>, DbErr> {
    // Each sample's session: remembered, else read with the others missing.
    let mut picked: Vec<Option<i32>> = vec![None; measured.len()];
    let mut unresolved = Vec::new();
    for (index, m) in measured.iter().enumerate() {
        match cache
            .sessions(m.bay.id)
            .and_then(|sessions| pick(&sessions, m))
        {
            Some(session) => picked[index] = Some(session),
            None => unresolved.push(index),
        }
    }
    resolve(db, measured, &unresolved, cache, &mut picked).await?;

    // Raise the sessions' energy and read them back; a remembered session
    // that had ended before its samples is left as it was, and their
    // sessions are read again.
    let mut sessions = update_sessions(db, measured, &picked).await?;
    let stale: Vec<usize> = (0..measured.len())
        .filter(|&index| {
            picked[index].is_some_and(|id| {
                !sessions
                    .get(&id)
                    .is_some_and(|session| open_at(session, measured[index].report.ts))
            })
        })
        .collect();
    if !stale.is_empty() {
        let mut repicked: Vec<Option<i32>> = vec![None; measured.len()];
        for &index in &stale {
            cache.forget_sessions(measured[index].bay.id);
            picked[index] = None;
        }
        resolve(db, measured, &stale, cache, &mut repicked).await?;
        // Read in this transaction: taken as they are.
        sessions.extend(update_sessions(db, measured, &repicked).await?);
        for index in stale {
            picked[index] = repicked[index];
        }
    }

    let mut outcomes: Vec<Option<Recorded>> = picked
        .iter()
        .map(|session| session.is_none().then_some(Recorded::NoSession))
        .collect();
    // The first of a batch's samples with one device and `ts` is the one
    // inserted; the others are redeliveries.
    let mut keys = HashSet::new();
    let mut indices = Vec::new();
    let mut rows = Vec::new();
    for (index, (m, session)) in measured.iter().zip(&picked).enumerate() {
        let Some(session) = *session else { continue };
        let ts_us = m.report.ts.timestamp_micros();
        if !keys.insert((m.device.id, ts_us)) {
            outcomes[index] = Some(Recorded::Redelivered);
            continue;
        }
        indices.push(index);
        rows.push(session_telemetry::Model {
            id: 0,
            session_id: session,
            device_id: m.device.id,
            bay_id: m.bay.id,
            current_a: m.report.current_a,
            voltage_v: m.report.voltage_v,
            energy_kwh: m.report.energy_kwh,
            ts: m.report.ts,
            ts_us,
            received_at: m.received_at,
        });
    }
    let inserted = insert_new(db, &rows).await?;
    let mut stored = Vec::new();
    for (&index, row) in indices.iter().zip(&rows) {
        if inserted.contains(&(row.device_id, row.ts_us)) {
            stored.push(index);
        } else {
            outcomes[index] = Some(Recorded::Redelivered);
        }
    }

    // Each session's latest stored sample of the batch carries its event.
    let mut latest: HashMap<i32, usize> = HashMap::new();
    for &index in &stored {
        let Some(session) = picked[index] else {
            continue;
        };
        let ts = measured[index].report.ts;
        latest
            .entry(session)
            .and_modify(|at| {
                if measured[*at].report.ts <= ts {
                    *at = index;
                }
            })
            .or_insert(index);
    }

    let verdicts: Vec<_> = stored
        .iter()
        .map(|&index| {
            let sample = measured[index].report;
            judge_sample(sample.current_a, sample.voltage_v, thresholds)
        })
        .collect();
    let recoveries: Vec<(i32, AlertKind)> = stored
        .iter()
        .zip(&verdicts)
        .flat_map(|(&index, verdicts)| {
            verdicts.iter().filter_map(move |verdict| match verdict {
                Verdict::Recover(kind) => Some((measured[index].device.id, *kind)),
                _ => None,
            })
        })
        .collect();
    let mut open = cache.open_among(db, &recoveries).await?;

    for (&index, verdicts) in stored.iter().zip(verdicts) {
        let m = &measured[index];
        let mut changed = Vec::new();
        for verdict in verdicts {
            let condition = |kind, severity, message| condition(m, kind, severity, message);
            let at = m.report.ts;
            if let Some(change) =
                alerts::follow_verdict(db, verdict, m.device.id, condition, &mut open, at).await?
            {
                changed.push(change);
            }
        }
        let event = picked[index]
            .filter(|session| latest.get(session) == Some(&index))
            .and_then(|session| sessions.get(&session))
            .map(|session| {
                Box::new(ChargeStateChanged {
                    session_id: session.id,
                    bay_id: m.bay.id,
                    station_id: m.bay.station_id,
                    user_id: session.user_id,
                    state: session.state,
                    energy_kwh: session.energy_kwh,
                    current_a: Some(m.report.current_a),
                    voltage_v: Some(m.report.voltage_v),
                    at: session.state_changed_at,
                    revision: session.revision,
                })
            });
        outcomes[index] = Some(Recorded::Stored {
            event,
            alerts: changed,
        });
    }
    Ok(outcomes
        .into_iter()
        .map(|outcome| outcome.unwrap_or(Recorded::NoSession))
        .collect())
}

/// The condition of an alert a sample raises or ends.
fn condition(
    m: &Measured<'_>,
    kind: AlertKind,
    severity: AlertSeverity,
    message: String,
) -> alerts::Condition {
    alerts::Condition {
        kind,
        severity,
        message,
        station_id: m.bay.station_id,
        bay_id: Some(m.bay.id),
        device_id: Some(m.device.id),
        reading_id: None,
        session_id: None,
    }
}

/// Inserts the rows that are not stored yet; returns the (device, `ts_us`)
/// of those inserted.
///
/// On PostgreSQL, from [`SET_PARAMETER_FROM`](crate::db::SET_PARAMETER_FROM) rows on, the rows are one JSON
/// parameter: the statement's text, and so its prepared statement, is the
/// same for every batch, where a `VALUES` list's text (nine parameters a row)
/// differs with every batch size and is parsed and planned anew each time.
async fn insert_new(
    db: &impl ConnectionTrait,
    rows: &[session_telemetry::Model],
) -> Result<HashSet<(i32, i64)>, DbErr> {
    let mut inserted = HashSet::new();
    if takes_json_rows(db.get_database_backend(), rows.len()) {
        const SQL: &str = r#"INSERT INTO "session_telemetry"
            ("session_id", "device_id", "bay_id", "current_a", "voltage_v", "energy_kwh",
             "ts", "ts_us", "received_at")
        SELECT session_id, device_id, bay_id, current_a, voltage_v, energy_kwh, ts, ts_us, received_at
        FROM json_to_recordset($1::json) AS v(
            session_id integer, device_id integer, bay_id integer, current_a double precision,
            voltage_v double precision, energy_kwh double precision, ts timestamptz,
            ts_us bigint, received_at timestamptz)
        ON CONFLICT ("session_id", "ts_us", "device_id") DO NOTHING
        RETURNING "device_id", "ts_us""#;
        let rows = rows.iter().map(|row| {
            serde_json::json!({
                "session_id": row.session_id,
                "device_id": row.device_id,
                "bay_id": row.bay_id,
                "current_a": row.current_a,
                "voltage_v": row.voltage_v,
                "energy_kwh": row.energy_kwh,
                "ts": json_time(row.ts),
                "ts_us": row.ts_us,
                "received_at": json_time(row.received_at),
            })
        });
        for row in db.query_all_raw(with_json_rows(SQL, rows)).await? {
            inserted.insert((row.try_get_by_index(0)?, row.try_get_by_index(1)?));
        }
        return Ok(inserted);
    }
    let active = rows
        .iter()
        .map(|row| {
            let mut active = row.clone().into_active_model().reset_all();
            active.id = NotSet;
            active
        })
        .collect();
    use session_telemetry::Column as C;
    let key = [C::SessionId, C::TsUs, C::DeviceId];
    let returning = [C::DeviceId, C::TsUs];
    for row in crate::db::insert_skipping_conflicts::<session_telemetry::Entity>(
        db, active, &key, &returning,
    )
    .await?
    {
        inserted.insert((row.try_get_by_index(0)?, row.try_get_by_index(1)?));
    }
    Ok(inserted)
}

/// A time as PostgreSQL reads it from JSON, to the microsecond it stores.
fn json_time(at: DateTime<Utc>) -> String {
    at.to_rfc3339_opts(SecondsFormat::Micros, true)
}

/// Raises each picked session's energy to the largest total of its samples
/// where that is more than stored, and reads the sessions back, in one
/// statement per [`UPDATE_CHUNK`] sessions (on PostgreSQL from
/// [`SET_PARAMETER_FROM`](crate::db::SET_PARAMETER_FROM) sessions on, one statement with the sessions as a
/// JSON parameter). A session that ended before the latest of its samples is
/// read back unchanged.
async fn update_sessions(
    db: &impl ConnectionTrait,
    measured: &[Measured<'_>],
    picked: &[Option<i32>],
) -> Result<HashMap<i32, charging_session::Model>, DbErr> {
    // Per session: its samples' largest total and latest time.
    let mut batch: HashMap<i32, (f64, DateTime<Utc>)> = HashMap::new();
    for (m, session) in measured.iter().zip(picked) {
        let Some(session) = *session else { continue };
        let (total, latest) = batch
            .entry(session)
            .or_insert((m.report.energy_kwh, m.report.ts));
        *total = total.max(m.report.energy_kwh);
        *latest = Ord::max(*latest, m.report.ts);
    }
    let batch: Vec<(i32, (f64, DateTime<Utc>))> = batch.into_iter().collect();
    let mut sessions = HashMap::with_capacity(batch.len());
    if takes_json_rows(db.get_database_backend(), batch.len()) {
        // The condition of the `CASE` below, on each session's own values;
        // each session sampled is announced, so its revision is raised too.
        const SQL: &str = r#"UPDATE "charging_sessions" AS s SET "energy_kwh" = CASE
            WHEN (s."state" NOT IN ('stopped', 'error') OR s."ended_at" >= v.latest)
                AND (s."energy_kwh" IS NULL OR s."energy_kwh" < v.total)
            THEN v.total ELSE s."energy_kwh" END,
            "revision" = s."revision" + 1
        FROM json_to_recordset($1::json) AS v(id integer, total double precision, latest timestamptz)
        WHERE s."id" = v.id
        RETURNING s.*"#;
        let rows = batch.iter().map(|&(id, (total, latest))| {
            serde_json::json!({ "id": id, "total": total, "latest": json_time(latest) })
        });
        let updated = charging_session::Entity::find()
            .from_raw_sql(with_json_rows(SQL, rows))
            .all(db)
            .await?;
        sessions.extend(updated.into_iter().map(|session| (session.id, session)));
        return Ok(sessions);
    }
    for chunk in batch.chunks(UPDATE_CHUNK) {
        use charging_session::Column as C;
        let total = || {
            per_row(
                C::Id,
                chunk
                    .iter()
                    .map(|&(id, (kwh, _))| (id, kwh.into()))
                    .collect(),
                Expr::col(C::EnergyKwh),
            )
        };
        let latest = per_row(
            C::Id,
            chunk.iter().map(|&(id, (_, ts))| (id, ts.into())).collect(),
            Expr::col(C::EndedAt),
        );
        let open_then = Condition::any()
            .add(C::State.is_not_in([SessionState::Stopped, SessionState::Error]))
            .add(Expr::col(C::EndedAt).gte(latest));
        let raise = Condition::all().add(open_then).add(
            Condition::any()
                .add(C::EnergyKwh.is_null())
                .add(Expr::col(C::EnergyKwh).lt(total())),
        );
        let updated = charging_session::Entity::update_many()
            .col_expr(
                C::EnergyKwh,
                Expr::case(raise, total())
                    .finally(Expr::col(C::EnergyKwh))
                    .into(),
            )
            // Each session sampled is announced: the announcement is then
            // newer than any made of it before.
            .col_expr(C::Revision, charging_session::next_revision())
            .filter(C::Id.is_in(chunk.iter().map(|(id, _)| *id)))
            .exec_with_returning(db)
            .await?;
        sessions.extend(updated.into_iter().map(|session| (session.id, session)));
    }
    Ok(sessions)
}

/// Whether `session` was open at `ts`: not over, or over after it.
fn open_at(session: &charging_session::Model, ts: DateTime<Utc>) -> bool {
    !session.state.is_final() || session.ended_at.is_some_and(|at| at >= ts)
}

/// The newest of a bay's `sessions` (newest first) open at the sample's
/// time and opened before it (with [`CLOCK_GRACE`]).
fn pick(sessions: &[charging_session::Model], m: &Measured<'_>) -> Option<i32> {
    let ts = m.report.ts;
    sessions
        .iter()
        .find(|session| {
            session.bay_id == m.bay.id
                && session.opened_at <= ts + CLOCK_GRACE
                && open_at(session, ts)
        })
        .map(|session| session.id)
}

/// Reads the sessions of the bays of the samples at `indices`, in one
/// query: not ended, or ended after the earliest of those samples (a late
/// sample of a session that just stopped). Picks each one's session into
/// `picked` and keeps each bay's sessions in `cache`.
async fn resolve(
    db: &impl ConnectionTrait,
    measured: &[Measured<'_>],
    indices: &[usize],
    cache: &TelemetryCache,
    picked: &mut [Option<i32>],
) -> Result<(), DbErr> {
    let Some(earliest) = indices.iter().map(|&i| measured[i].report.ts).min() else {
        return Ok(());
    };
    let bays: HashSet<i32> = indices.iter().map(|&i| measured[i].bay.id).collect();
    // Newest first, as the pick wants.
    let candidates = charging_session::Entity::find()
        .filter(charging_session::Column::BayId.is_in(bays.iter().copied()))
        .filter(
            Condition::any()
                .add(
                    charging_session::Column::State
                        .is_not_in([SessionState::Stopped, SessionState::Error]),
                )
                .add(charging_session::Column::EndedAt.gte(earliest)),
        )
        .order_by_desc(charging_session::Column::Id)
        .all(db)
        .await?;
    let mut by_bay: HashMap<i32, Vec<charging_session::Model>> =
        bays.iter().map(|&bay| (bay, Vec::new())).collect();
    for session in candidates {
        by_bay.entry(session.bay_id).or_default().push(session);
    }
    for &index in indices {
        let m = &measured[index];
        picked[index] = by_bay.get(&m.bay.id).and_then(|sessions| pick(sessions, m));
    }
    for (bay, sessions) in by_bay {
        cache.keep_sessions(bay, Arc::from(sessions));
    }
    Ok(())
}

/// A session `principal` may read the telemetry of: its customer's, or one
/// on a station they supervise (staff: all; technicians: their stations).
///
/// # Errors
/// `NOT_FOUND` otherwise.
pub async fn readable_session(
    db: &impl ConnectionTrait,
    principal: &Principal,
    session_id: i32,
) -> AppResult<charging_session::Model> {
    let not_found = || AppError::not_found("charging session");
    let session = charging_session::Entity::find_by_id(session_id)
        .one(db)
        .await?
        .ok_or_else(not_found)?;
    let own = principal.person().is_ok_and(|p| p.id == session.user_id);
    let supervised = bay::Entity::find_by_id(session.bay_id)
        .one(db)
        .await?
        .is_some_and(|b| principal.stations().allows(b.station_id));
    if own || supervised {
        Ok(session)
    } else {
        Err(not_found())
    }
}

/// A point of a series: one sample, or the summary of a bucket of them.
#[derive(Debug, Clone, PartialEq, FromQueryResult)]
pub struct Point {
    /// Start of the bucket (or the sample's time), in microseconds.
    pub at_us: i64,
    pub samples: i64,
    pub current_avg: f64,
    pub current_min: f64,
    pub current_max: f64,
    pub voltage_avg: f64,
    pub voltage_min: f64,
    pub voltage_max: f64,
    /// The session's energy at the end of the bucket.
    pub energy_kwh: f64,
}

impl Point {
    pub fn at(&self) -> DateTime<Utc> {
        DateTime::from_timestamp_micros(self.at_us).unwrap_or_default()
    }
}

/// Which part of a session's series to read.
#[derive(Debug, Clone, Copy)]
pub struct Window {
    pub from: Option<DateTime<Utc>>,
    pub to: Option<DateTime<Utc>>,
    /// Bucket length; `None` reads raw samples.
    pub bucket: Option<TimeDelta>,
    /// Most points returned, oldest first.
    pub limit: u64,
}

/// The telemetry of `session_id` within `window`, oldest first: raw samples,
/// or one point per bucket (average, least and greatest current and voltage,
/// energy at its end), computed by the database.
///
/// # Errors
/// Database failures.
pub async fn series(
    db: &impl ConnectionTrait,
    session_id: i32,
    window: Window,
) -> Result<Vec<Point>, DbErr> {
    use session_telemetry::Column as C;
    let mut query = session_telemetry::Entity::find()
        .select_only()
        .filter(C::SessionId.eq(session_id));
    if let Some(from) = window.from {
        query = query.filter(C::TsUs.gte(from.timestamp_micros()));
    }
    if let Some(to) = window.to {
        query = query.filter(C::TsUs.lt(to.timestamp_micros()));
    }
    let col = |c: C| Expr::col((session_telemetry::Entity, c));
    let call = |f: sea_orm::sea_query::FunctionCall| -> Expr { f.into() };
    let query = match window.bucket.and_then(|b| b.num_microseconds()) {
        Some(bucket_us) if bucket_us > 0 => {
            // Integer division on both databases: the bucket's start. Inlined
            // (an integer, not input) so that PostgreSQL sees the grouped
            // expression and the selected one as the same.
            let bucket = Expr::cust(format!(
                "(\"session_telemetry\".\"ts_us\" / {bucket_us} * {bucket_us})"
            ));
            query
                .column_as(bucket.clone(), "at_us")
                .column_as(call(Func::count(col(C::Id))), "samples")
                .column_as(call(Func::avg(col(C::CurrentA))), "current_avg")
                .column_as(call(Func::min(col(C::CurrentA))), "current_min")
                .column_as(call(Func::max(col(C::CurrentA))), "current_max")
                .column_as(call(Func::avg(col(C::VoltageV))), "voltage_avg")
                .column_as(call(Func::min(col(C::VoltageV))), "voltage_min")
                .column_as(call(Func::max(col(C::VoltageV))), "voltage_max")
                .column_as(call(Func::max(col(C::EnergyKwh))), "energy_kwh")
                .group_by(bucket.clone())
                .order_by_asc(bucket)
        }
        _ => query
            .column_as(col(C::TsUs), "at_us")
            .column_as(Expr::value(1_i64), "samples")
            .column_as(col(C::CurrentA), "current_avg")
            .column_as(col(C::CurrentA), "current_min")
            .column_as(col(C::CurrentA), "current_max")
            .column_as(col(C::VoltageV), "voltage_avg")
            .column_as(col(C::VoltageV), "voltage_min")
            .column_as(col(C::VoltageV), "voltage_max")
            .column_as(col(C::EnergyKwh), "energy_kwh")
            .order_by_asc(C::TsUs),
    };
    query
        .limit(window.limit)
        .into_model::<Point>()
        .all(db)
        .await
}

/// The latest sample of each bay `principal` supervises (of `station_id`
/// only, when given) that has any: of its newest session with samples, the
/// latest by device time. Each bay walks its sessions newest first, one
/// lookup of the samples' key each, and stops at the first with samples.
///
/// # Errors
/// Database failures.
pub async fn latest_per_bay(
    db: &impl ConnectionTrait,
    principal: &Principal,
    station_id: Option<i32>,
) -> Result<Vec<session_telemetry::Model>, DbErr> {
    use sea_orm::sea_query::{Alias, SelectStatement, SubQueryStatement};
    use session_telemetry::Column as T;
    let scalar = |query: SelectStatement| {
        Expr::SubQuery(None, Box::new(SubQueryStatement::SelectStatement(query)))
    };
    // Nested rather than one join of sessions and samples, which PostgreSQL
    // may plan as a merge over every sample: each level is one walk of an
    // index, newest first, that stops at its first row.
    let (session, sample, any) = (Alias::new("s"), Alias::new("t"), Alias::new("u"));
    let latest_of_session = Query::select()
        .column((sample.clone(), T::Id))
        .from_as(session_telemetry::Entity, sample.clone())
        .and_where(
            Expr::col((sample.clone(), T::SessionId))
                .equals((session.clone(), charging_session::Column::Id)),
        )
        .order_by((sample, T::TsUs), Order::Desc)
        .limit(1)
        .to_owned();
    let sampled = Query::select()
        .expr(Expr::val(1))
        .from_as(session_telemetry::Entity, any.clone())
        .and_where(
            Expr::col((any, T::SessionId)).equals((session.clone(), charging_session::Column::Id)),
        )
        .to_owned();
    let latest_of_bay = Query::select()
        .expr(scalar(latest_of_session))
        .from_as(charging_session::Entity, session.clone())
        .and_where(
            Expr::col((session.clone(), charging_session::Column::BayId))
                .equals((bay::Entity, bay::Column::Id)),
        )
        .and_where(Expr::exists(sampled))
        .order_by((session, charging_session::Column::Id), Order::Desc)
        .limit(1)
        .to_owned();
    let mut bays = bay::Entity::find()
        .select_only()
        .expr_as(scalar(latest_of_bay), "id")
        .filter(principal.stations().on(bay::Column::StationId));
    if let Some(station) = station_id {
        bays = bays.filter(bay::Column::StationId.eq(station));
    }
    let ids: Vec<i64> = bays
        .into_tuple::<Option<i64>>()
        .all(db)
        .await?
        .into_iter()
        .flatten()
        .collect();
    if ids.is_empty() {
        return Ok(Vec::new());
    }
    session_telemetry::Entity::find()
        .filter(T::Id.is_in(ids))
        .order_by_asc(T::BayId)
        .all(db)
        .await
}

/// The latest sample of a session, if any (its live current and voltage).
///
/// # Errors
/// Database failures.
pub async fn latest_of_session(
    db: &impl ConnectionTrait,
    session_id: i32,
) -> Result<Option<session_telemetry::Model>, DbErr> {
    session_telemetry::Entity::find()
        .filter(session_telemetry::Column::SessionId.eq(session_id))
        .order_by_desc(session_telemetry::Column::TsUs)
        .one(db)
        .await
}

/// Deletes, of the `limit` samples stored first, those measured before
/// `cutoff`; how many it deleted. Samples are taken in the order they were
/// stored (their primary key), which is their devices' time order but for
/// samples delivered late: such a sample is deleted once those stored before
/// it are, later than its own time says by as much as it was late.
///
/// # Errors
/// Database failures.
pub async fn prune(
    db: &impl ConnectionTrait,
    cutoff: DateTime<Utc>,
    limit: u64,
) -> Result<u64, DbErr> {
    let first = Query::select()
        .column(session_telemetry::Column::Id)
        .from(session_telemetry::Entity)
        .order_by(session_telemetry::Column::Id, Order::Asc)
        .limit(limit)
        .to_owned();
    // Deleting by id is idempotent: replicas overlapping on a batch delete it once.
    let deleted = session_telemetry::Entity::delete_many()
        .filter(session_telemetry::Column::Id.in_subquery(first))
        .filter(session_telemetry::Column::TsUs.lt(cutoff.timestamp_micros()))
        .exec(db)
        .await?;
    Ok(deleted.rows_affected)
}

/// Samples deleted per statement: a large backlog is pruned over several
/// statements (and runs) instead of one long transaction.
const PRUNE_BATCH: u64 = 5000;

/// Deletes raw telemetry older than the configured retention. Each run is
/// claimed by one replica, and deleting by id is idempotent, so replicas
/// never conflict.
pub struct PruneTelemetry;

#[async_trait::async_trait]
impl crate::jobs::Job for PruneTelemetry {
    fn name(&self) -> &'static str {
        "prune_telemetry"
    }

    fn every(&self) -> TimeDelta {
        TimeDelta::minutes(1)
    }

    async fn run(&self, services: &crate::services::ServiceContext) -> anyhow::Result<()> {
        let Some(retention) = services.supervision.telemetry_retention() else {
            return Ok(());
        };
        let cutoff = services.now() - retention;
        // A bounded number of statements per run; the next run goes on. A
        // round that finds nothing old among the first samples is the end:
        // those after them were stored later.
        for _ in 0..20 {
            if prune(&services.db, cutoff, PRUNE_BATCH).await? == 0 {
                break;
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use sea_orm::{ActiveModelTrait as _, IntoActiveModel as _, Set};

    use super::*;

    /// Every session a batch samples is read back with its revision raised
    /// and its energy up to date, whichever form the statement takes: a few
    /// sessions, or (on PostgreSQL) enough to take them as one JSON parameter.
    #[tokio::test]
    async fn every_sampled_session_comes_back_with_its_revision_raised() {
        let db = crate::db::testing::any_database().await;
        crate::seed::testing::one_cabinet_charging(&db, 4).await;
        let template = charging_session::Entity::find()
            .one(&db)
            .await
            .expect("query")
            .expect("the demo's session");
        let (bay, meter) = crate::seed::testing::bay_and_device(&db, template.bay_id).await;
        let now = Utc::now();
        let sessions = crate::db::SET_PARAMETER_FROM + 2;
        // Sessions stopped after the samples' time: still sampled.
        let mut ids = Vec::new();
        for _ in 0..sessions {
            let mut row = template.clone().into_active_model();
            row.id = sea_orm::ActiveValue::NotSet;
            row.state = Set(SessionState::Stopped);
            row.ended_at = Set(Some(now + TimeDelta::hours(1)));
            row.energy_kwh = Set(Some(1.0));
            row.revision = Set(0);
            row.start_command_id = Set(None);
            ids.push(row.insert(&db).await.expect("inserted").id);
        }
        let sample = Sample {
            current_a: 16.0,
            voltage_v: 230.0,
            energy_kwh: 2.5,
            ts: now,
        };
        let measured = Measured {
            bay: &bay,
            device: &meter,
            report: &sample,
            received_at: now,
        };
        let sample_all = |batch: &[i32]| {
            let picked: Vec<Option<i32>> = batch.iter().copied().map(Some).collect();
            let all = vec![measured; batch.len()];
            let db = db.clone();
            async move { update_sessions(&db, &all, &picked).await.expect("updated") }
        };
        // A few sessions, then all of them.
        let first = sample_all(&ids[..2]).await;
        let all = sample_all(&ids).await;
        for id in &ids[..2] {
            assert_eq!((first[id].revision, first[id].energy_kwh), (1, Some(2.5)));
        }
        assert_eq!(all.len(), ids.len());
        for id in &ids {
            let expected = if ids[..2].contains(id) { 2 } else { 1 };
            assert_eq!(
                (all[id].revision, all[id].energy_kwh),
                (expected, Some(2.5)),
                "session {id}"
            );
        }
    }
}
