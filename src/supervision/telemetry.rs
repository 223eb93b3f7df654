//! Charging telemetry: the current, voltage and energy a bay's device
//! measures during a session, stored in the ingestion's batch transactions
//! against the session open on the bay at the sample's time, and read back
//! over a time range, raw or downsampled into buckets.
//!
//! The session's energy is the largest total its samples reported (a meter
//! only grows, so samples applied out of order still leave the right total);
//! its current and voltage are those of its latest sample.

use chrono::{DateTime, TimeDelta, Utc};
use sea_orm::sea_query::{Expr, Func, OnConflict};
use sea_orm::{
    ActiveValue::NotSet, ColumnTrait, Condition, ConnectionTrait, DbErr, EntityTrait,
    FromQueryResult, QueryFilter, QueryOrder, QuerySelect, Set,
};

use super::alerts;
use super::rules::{Thresholds, Verdict, judge_sample};
use crate::auth::Principal;
use crate::bus::ChargeStateChanged;
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

/// Stores `sample` of `device` (on `bay`) against the session open on the bay
/// at its time, and raises the session's energy to its total.
///
/// # Errors
/// Database failures (the batch then fails).
pub async fn record(
    db: &impl ConnectionTrait,
    bay: &bay::Model,
    device: &device::Model,
    sample: &Sample,
    received_at: DateTime<Utc>,
    thresholds: &Thresholds,
) -> Result<Recorded, DbErr> {
    let Some(session) = session_at(db, bay.id, sample.ts).await? else {
        return Ok(Recorded::NoSession);
    };
    let inserted = session_telemetry::Entity::insert(session_telemetry::ActiveModel {
        id: NotSet,
        session_id: Set(session.id),
        device_id: Set(device.id),
        bay_id: Set(bay.id),
        current_a: Set(sample.current_a),
        voltage_v: Set(sample.voltage_v),
        energy_kwh: Set(sample.energy_kwh),
        ts: Set(sample.ts),
        ts_us: Set(sample.ts.timestamp_micros()),
        received_at: Set(received_at),
    })
    .on_conflict(
        OnConflict::columns([
            session_telemetry::Column::DeviceId,
            session_telemetry::Column::TsUs,
        ])
        .do_nothing()
        .to_owned(),
    )
    .exec_without_returning(db)
    .await?;
    if inserted == 0 {
        return Ok(Recorded::Redelivered);
    }
    charging_session::Entity::update_many()
        .col_expr(
            charging_session::Column::EnergyKwh,
            Expr::value(sample.energy_kwh),
        )
        .filter(charging_session::Column::Id.eq(session.id))
        .filter(
            Condition::any()
                .add(charging_session::Column::EnergyKwh.is_null())
                .add(charging_session::Column::EnergyKwh.lt(sample.energy_kwh)),
        )
        .exec(db)
        .await?;
    let energy_kwh = Some(
        session
            .energy_kwh
            .map_or(sample.energy_kwh, |e| e.max(sample.energy_kwh)),
    );
    let event = ChargeStateChanged {
        session_id: session.id,
        bay_id: bay.id,
        station_id: bay.station_id,
        user_id: session.user_id,
        state: session.state,
        energy_kwh,
        current_a: Some(sample.current_a),
        voltage_v: Some(sample.voltage_v),
        at: session.state_changed_at,
    };
    let alerts = judge(db, bay, device, sample, thresholds).await?;
    Ok(Recorded::Stored {
        event: Box::new(event),
        alerts,
    })
}

/// Raises, refreshes or ends the sample's over-current and voltage alerts.
/// Recovery asks once whether either alert is open, since nearly every
/// sample is within the limits and ends nothing.
async fn judge(
    db: &impl ConnectionTrait,
    bay: &bay::Model,
    device: &device::Model,
    sample: &Sample,
    thresholds: &Thresholds,
) -> Result<Vec<(crate::entities::alert::Model, alerts::Change)>, DbErr> {
    let condition = |kind, severity, message| alerts::Condition {
        kind,
        severity,
        message,
        station_id: bay.station_id,
        bay_id: Some(bay.id),
        device_id: Some(device.id),
        reading_id: None,
        session_id: None,
    };
    let mut changed = Vec::new();
    let mut recoveries = Vec::new();
    for verdict in judge_sample(sample.current_a, sample.voltage_v, thresholds) {
        match verdict {
            Verdict::Raise {
                kind,
                severity,
                message,
            } => changed
                .push(alerts::raise(db, &condition(kind, severity, message), sample.ts).await?),
            Verdict::Recover(kind) => {
                recoveries.push(condition(kind, AlertSeverity::Low, String::new()));
            }
            Verdict::Nothing => {}
        }
    }
    let open = alerts::open_among(db, &recoveries).await?;
    for (over, open) in recoveries.iter().zip(open) {
        if open && let Some(ended) = alerts::recover(db, over, sample.ts).await? {
            changed.push((ended, alerts::Change::Resolved));
        }
    }
    Ok(changed)
}

/// The newest session of the bay that was open at `ts`: not ended, or ended
/// after it (a late sample of a session that just stopped).
async fn session_at(
    db: &impl ConnectionTrait,
    bay_id: i32,
    ts: DateTime<Utc>,
) -> Result<Option<charging_session::Model>, DbErr> {
    charging_session::Entity::find()
        .filter(charging_session::Column::BayId.eq(bay_id))
        .filter(charging_session::Column::OpenedAt.lte(ts + CLOCK_GRACE))
        .filter(
            Condition::any()
                .add(
                    charging_session::Column::State
                        .is_not_in([SessionState::Stopped, SessionState::Error]),
                )
                .add(charging_session::Column::EndedAt.gte(ts)),
        )
        .order_by_desc(charging_session::Column::Id)
        .one(db)
        .await
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
