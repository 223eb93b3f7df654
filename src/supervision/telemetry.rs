//! Charging telemetry: the current, voltage and energy a bay's device
//! measures during a session, stored in the ingestion's batch transactions
//! against the session open on the bay at the sample's time, and read back
//! over a time range, raw or downsampled into buckets.
//!
//! The session's energy is the largest total its samples reported (a meter
//! only grows, so samples applied out of order still leave the right total);
//! its current and voltage are those of its latest sample.

use std::collections::{HashMap, HashSet};

use chrono::{DateTime, TimeDelta, Utc};
use sea_orm::sea_query::{Expr, ExprTrait, Func, OnConflict, Query};
use sea_orm::{
    ActiveValue::NotSet, ColumnTrait, Condition, ConnectionTrait, DbErr, EntityTrait,
    FromQueryResult, QueryFilter, QueryOrder, QuerySelect, QueryTrait, Set,
};

use super::alerts;
use super::rules::{Thresholds, Verdict, judge_sample};
use crate::auth::Principal;
use crate::bus::ChargeStateChanged;
use crate::db::per_row;
use crate::entities::charging_session::{self, SessionState};
use crate::entities::{AlertSeverity, bay, device, session_telemetry};
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
        event: Box<ChargeStateChanged>,
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
#[derive(Debug, Clone, Copy)]
pub struct Measured<'a> {
    pub bay: &'a bay::Model,
    pub device: &'a device::Model,
    pub sample: &'a Sample,
    pub received_at: DateTime<Utc>,
}

/// Rows per multi-row `INSERT`, well under SQLite's bound on parameters.
const INSERT_CHUNK: usize = 500;

/// Stores each sample against the session open on its bay at its time and
/// raises the sessions' energy to their totals, in a few statements whatever
/// the number of samples: one lookup of the sessions, one multi-row insert
/// per [`INSERT_CHUNK`] samples (a redelivery, already stored, is skipped by
/// the unique device and `ts_us`), one update of the sessions' energy, one
/// lookup of the alerts the samples may end. Alerts are then raised or ended
/// in the samples' order. One outcome per sample, in order.
///
/// # Errors
/// Database failures (the batch then fails).
pub async fn record_all(
    db: &impl ConnectionTrait,
    measured: &[Measured<'_>],
    thresholds: &Thresholds,
) -> Result<Vec<Recorded>, DbErr> {
    let sessions = sessions_at(db, measured).await?;
    let mut outcomes: Vec<Option<Recorded>> = sessions
        .iter()
        .map(|session| session.is_none().then_some(Recorded::NoSession))
        .collect();

    // The first of a batch's samples with one device and `ts` is the one
    // inserted; the others are redeliveries.
    let mut keys = HashSet::new();
    let mut rows = Vec::new();
    for (index, (m, session)) in measured.iter().zip(&sessions).enumerate() {
        let Some(session) = session else { continue };
        let ts_us = m.sample.ts.timestamp_micros();
        if !keys.insert((m.device.id, ts_us)) {
            outcomes[index] = Some(Recorded::Redelivered);
            continue;
        }
        rows.push((
            index,
            session_telemetry::ActiveModel {
                id: NotSet,
                session_id: Set(session.id),
                device_id: Set(m.device.id),
                bay_id: Set(m.bay.id),
                current_a: Set(m.sample.current_a),
                voltage_v: Set(m.sample.voltage_v),
                energy_kwh: Set(m.sample.energy_kwh),
                ts: Set(m.sample.ts),
                ts_us: Set(ts_us),
                received_at: Set(m.received_at),
            },
        ));
    }
    let inserted = insert_new(db, rows.iter().map(|(_, row)| row.clone())).await?;
    let mut stored = Vec::new();
    for (index, _) in &rows {
        let m = &measured[*index];
        if inserted.contains(&(m.device.id, m.sample.ts.timestamp_micros())) {
            stored.push(*index);
        } else {
            outcomes[*index] = Some(Recorded::Redelivered);
        }
    }

    // Each session's energy: the largest total among what it had and its
    // samples so far; each event carries it as of its sample, the update the last.
    let mut energy: HashMap<i32, f64> = HashMap::new();
    let as_of: Vec<f64> = stored
        .iter()
        .map(|&index| {
            let session = sessions[index]
                .as_ref()
                .expect("stored samples have a session");
            let total = energy
                .entry(session.id)
                .or_insert(session.energy_kwh.unwrap_or(f64::NEG_INFINITY));
            *total = total.max(measured[index].sample.energy_kwh);
            *total
        })
        .collect();
    raise_energy(db, &energy).await?;

    let verdicts: Vec<_> = stored
        .iter()
        .map(|&index| {
            let sample = measured[index].sample;
            judge_sample(sample.current_a, sample.voltage_v, thresholds)
        })
        .collect();
    let recoveries: Vec<alerts::Condition> = stored
        .iter()
        .zip(&verdicts)
        .flat_map(|(&index, verdicts)| {
            verdicts.iter().filter_map(move |verdict| match verdict {
                Verdict::Recover(kind) => Some(condition(
                    &measured[index],
                    *kind,
                    AlertSeverity::Low,
                    String::new(),
                )),
                _ => None,
            })
        })
        .collect();
    let mut open: HashSet<String> = alerts::open_among(db, &recoveries)
        .await?
        .into_iter()
        .zip(&recoveries)
        .filter(|&(open, _)| open)
        .map(|(_, condition)| condition.open_key())
        .collect();

    for ((&index, verdicts), total) in stored.iter().zip(verdicts).zip(as_of) {
        let m = &measured[index];
        let session = sessions[index]
            .as_ref()
            .expect("stored samples have a session");
        let mut changed = Vec::new();
        for verdict in verdicts {
            match verdict {
                Verdict::Raise {
                    kind,
                    severity,
                    message,
                } => {
                    let raised = condition(m, kind, severity, message);
                    open.insert(raised.open_key());
                    changed.push(alerts::raise(db, &raised, m.sample.ts).await?);
                }
                Verdict::Recover(kind) => {
                    let over = condition(m, kind, AlertSeverity::Low, String::new());
                    if open.remove(&over.open_key())
                        && let Some(ended) = alerts::recover(db, &over, m.sample.ts).await?
                    {
                        changed.push((ended, alerts::Change::Resolved));
                    }
                }
                Verdict::Nothing => {}
            }
        }
        let event = ChargeStateChanged {
            session_id: session.id,
            bay_id: m.bay.id,
            station_id: m.bay.station_id,
            user_id: session.user_id,
            state: session.state,
            energy_kwh: Some(total),
            current_a: Some(m.sample.current_a),
            voltage_v: Some(m.sample.voltage_v),
            at: session.state_changed_at,
        };
        outcomes[index] = Some(Recorded::Stored {
            event: Box::new(event),
            alerts: changed,
        });
    }
    Ok(outcomes
        .into_iter()
        .map(|outcome| outcome.expect("every sample has an outcome"))
        .collect())
}

/// The condition of an alert a sample raises or ends.
fn condition(
    m: &Measured<'_>,
    kind: crate::entities::AlertKind,
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
async fn insert_new(
    db: &impl ConnectionTrait,
    rows: impl Iterator<Item = session_telemetry::ActiveModel>,
) -> Result<HashSet<(i32, i64)>, DbErr> {
    let rows: Vec<_> = rows.collect();
    let mut inserted = HashSet::new();
    for chunk in rows.chunks(INSERT_CHUNK) {
        let mut insert = session_telemetry::Entity::insert_many(chunk.iter().cloned())
            .on_conflict(
                OnConflict::columns([
                    session_telemetry::Column::DeviceId,
                    session_telemetry::Column::TsUs,
                ])
                .do_nothing()
                .to_owned(),
            )
            .into_query();
        insert.returning(Query::returning().columns([
            session_telemetry::Column::DeviceId,
            session_telemetry::Column::TsUs,
        ]));
        for row in db.query_all(&insert).await? {
            inserted.insert((row.try_get_by_index(0)?, row.try_get_by_index(1)?));
        }
    }
    Ok(inserted)
}

/// Raises each session's energy to its total where that is more than stored,
/// in one statement.
async fn raise_energy(db: &impl ConnectionTrait, totals: &HashMap<i32, f64>) -> Result<(), DbErr> {
    if totals.is_empty() {
        return Ok(());
    }
    let total = || {
        per_row(
            charging_session::Column::Id,
            totals.iter().map(|(&id, &kwh)| (id, kwh.into())).collect(),
            Expr::col(charging_session::Column::EnergyKwh),
        )
    };
    charging_session::Entity::update_many()
        .col_expr(charging_session::Column::EnergyKwh, total())
        .filter(charging_session::Column::Id.is_in(totals.keys().copied()))
        .filter(
            Condition::any()
                .add(charging_session::Column::EnergyKwh.is_null())
                .add(Expr::col(charging_session::Column::EnergyKwh).lt(total())),
        )
        .exec(db)
        .await?;
    Ok(())
}

/// For each sample, the newest session of its bay that was open at its
/// time: not ended, or ended after it (a late sample of a session that just
/// stopped), and opened before it (with [`CLOCK_GRACE`]). One query for all.
async fn sessions_at(
    db: &impl ConnectionTrait,
    measured: &[Measured<'_>],
) -> Result<Vec<Option<charging_session::Model>>, DbErr> {
    let Some(earliest) = measured.iter().map(|m| m.sample.ts).min() else {
        return Ok(Vec::new());
    };
    let bays: HashSet<i32> = measured.iter().map(|m| m.bay.id).collect();
    // Newest first, as the pick below wants.
    let candidates = charging_session::Entity::find()
        .filter(charging_session::Column::BayId.is_in(bays))
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
    let ended = |session: &charging_session::Model| {
        matches!(session.state, SessionState::Stopped | SessionState::Error)
    };
    Ok(measured
        .iter()
        .map(|m| {
            let ts = m.sample.ts;
            candidates
                .iter()
                .find(|session| {
                    session.bay_id == m.bay.id
                        && session.opened_at <= ts + CLOCK_GRACE
                        && (!ended(session) || session.ended_at.is_some_and(|at| at >= ts))
                })
                .cloned()
        })
        .collect())
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
/// only, when given) that has any.
///
/// # Errors
/// Database failures.
pub async fn latest_per_bay(
    db: &impl ConnectionTrait,
    principal: &Principal,
    station_id: Option<i32>,
) -> Result<Vec<session_telemetry::Model>, DbErr> {
    use sea_orm::{JoinType, RelationTrait as _};
    let mut newest = session_telemetry::Entity::find()
        .select_only()
        .column_as(session_telemetry::Column::Id.max(), "id")
        .join(JoinType::InnerJoin, session_telemetry::Relation::Bay.def())
        .filter(principal.stations().on(bay::Column::StationId))
        .group_by(session_telemetry::Column::BayId);
    if let Some(station) = station_id {
        newest = newest.filter(bay::Column::StationId.eq(station));
    }
    let ids: Vec<i64> = newest.into_tuple::<i64>().all(db).await?;
    if ids.is_empty() {
        return Ok(Vec::new());
    }
    session_telemetry::Entity::find()
        .filter(session_telemetry::Column::Id.is_in(ids))
        .order_by_asc(session_telemetry::Column::BayId)
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

/// Deletes up to `limit` samples measured before `cutoff`; how many it deleted.
///
/// # Errors
/// Database failures.
pub async fn prune(
    db: &impl ConnectionTrait,
    cutoff: DateTime<Utc>,
    limit: u64,
) -> Result<u64, DbErr> {
    let old: Vec<i64> = session_telemetry::Entity::find()
        .select_only()
        .column(session_telemetry::Column::Id)
        .filter(session_telemetry::Column::TsUs.lt(cutoff.timestamp_micros()))
        .order_by_asc(session_telemetry::Column::TsUs)
        .limit(limit)
        .into_tuple()
        .all(db)
        .await?;
    if old.is_empty() {
        return Ok(0);
    }
    // Deleting by id is idempotent: replicas overlapping on a batch delete it once.
    let deleted = session_telemetry::Entity::delete_many()
        .filter(session_telemetry::Column::Id.is_in(old))
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
        // A bounded number of statements per run; the next run goes on.
        for _ in 0..20 {
            if prune(&services.db, cutoff, PRUNE_BATCH).await? < PRUNE_BATCH {
                break;
            }
        }
        Ok(())
    }
}
