//! Applying many state reports in a few statements.
//!
//! Ingestion applies what arrived together in one transaction. Written one by
//! one, each report costs four statements (find the bay, update the device,
//! update the bay, look for an alert), and those statements, not the commits,
//! then bound how many reports a second a replica takes. Here a batch costs two
//! lookups and two updates per *round*, whatever its size: a round holds at
//! most one report per device, in arrival order, so a device's second report
//! of the batch is compared with its first one's result, as it would be alone.
//!
//! A statement carries its rows as arms (`OR` for the lookup, `CASE` for the
//! updates) while they are few, and from [`SET_PARAMETER_FROM`] on as one JSON
//! parameter joined in (`json_each` on SQLite for the lookup;
//! `json_array_elements` and `json_to_recordset` on PostgreSQL, updates
//! included): the text of a large batch's statements then no longer grows with
//! it, and neither does the cost of sending and planning them.
//!
//! The rule is the one of [`super::reports::apply_state_report_in`], which is
//! this with one report: a report replaces the stored state only when it is
//! newer (device `ts`, then `seq`), decided by the `UPDATE`'s own condition, so
//! concurrent batches and replicas converge.

use std::collections::{HashMap, HashSet};

use chrono::{DateTime, Utc};
use sea_orm::sea_query::{Expr, ExprTrait};
use sea_orm::{
    ActiveEnum as _, ColumnTrait, Condition, ConnectionTrait as _, DatabaseTransaction, DbBackend,
    DbErr, EntityTrait, QueryFilter, Value,
};

use super::reports::{ClockSkew, ReportError, StateOutcome, StateReport};
use crate::bus::BayStatusChanged;
use crate::db::{SET_PARAMETER_FROM, per_row, takes_json_rows, with_json_rows};
use crate::entities::{DeviceStatus, LockState, bay, cabinet, device};

/// One state report to apply, with where it came from.
#[derive(Debug, Clone, Copy)]
pub struct StateInput<'a> {
    /// The cabinet's MQTT prefix.
    pub prefix: &'a str,
    /// The bay's number in its cabinet.
    pub number: i32,
    pub report: &'a StateReport,
    pub received_at: DateTime<Utc>,
}

/// What a batch of state reports did.
#[derive(Debug)]
pub struct StateBatch {
    /// What became of each report, in the order given.
    pub results: Vec<Result<StateOutcome, ReportError>>,
    /// The reporting devices whose stored status was `offline` before the
    /// batch: only they can have an offline alert for a report to end.
    pub offline_before: HashSet<i32>,
    /// The reporting devices whose bay's stored lock was `blocked` before the
    /// batch: only they can have a blocked-lock alert for a report to end.
    pub blocked_before: HashSet<i32>,
}

/// Applies `inputs` within `txn`, in order per device.
///
/// # Errors
/// A database error, which fails the whole batch (the caller's transaction is
/// then dropped, so nothing of it is kept). Refusals (unknown bay, another
/// device's MAC, a clock running ahead) are per-report results.
pub async fn apply_state_reports_in(
    txn: &DatabaseTransaction,
    inputs: &[StateInput<'_>],
    skew: ClockSkew,
) -> Result<StateBatch, DbErr> {
    let mut results: Vec<Option<Result<StateOutcome, ReportError>>> =
        inputs.iter().map(|_| None).collect();
    for (slot, input) in results.iter_mut().zip(inputs) {
        if input.report.ts > skew.latest_accepted(input.received_at) {
            *slot = Some(Err(ReportError::FromTheFuture {
                ts: input.report.ts,
            }));
        }
    }

    let places = inputs
        .iter()
        .zip(&results)
        .filter(|(_, result)| result.is_none())
        .map(|(input, _)| (input.prefix, input.number))
        .collect();
    let mut bays = find_bays(txn, places).await?;
    // Per device, its reports' positions in arrival order: the k-th report of
    // every device goes in round k.
    let mut rounds: Vec<Vec<Pending<'_>>> = Vec::new();
    let mut seen: HashMap<i32, usize> = HashMap::new();
    for (index, input) in inputs.iter().enumerate() {
        if results[index].is_some() {
            continue;
        }
        let Some((bay, registered)) = bays.get(&(input.prefix, input.number)) else {
            results[index] = Some(Err(ReportError::UnknownBay {
                prefix: input.prefix.to_owned(),
                number: input.number,
            }));
            continue;
        };
        if !registered
            .mac_address
            .eq_ignore_ascii_case(&input.report.mac)
        {
            results[index] = Some(Err(ReportError::MacMismatch {
                registered: registered.mac_address.clone(),
                reported: input.report.mac.clone(),
            }));
            continue;
        }
        let round = seen.entry(registered.id).or_default();
        if rounds.len() <= *round {
            rounds.push(Vec::new());
        }
        rounds[*round].push(Pending::new(index, input, registered.id, bay.id, skew));
        *round += 1;
    }

    let blocked_before = bays
        .values()
        .filter(|(bay, _)| bay.lock_state == LockState::Blocked)
        .map(|(_, device)| device.id)
        .collect();
    for round in &rounds {
        let applied = update_devices(txn, round).await?;
        // A device back with the version its update targets has finished it.
        let versions: Vec<i32> = round
            .iter()
            .filter(|p| p.report.fw.is_some() && applied.contains(&p.device_id))
            .map(|p| p.device_id)
            .collect();
        if let Some(at) = round.iter().map(|p| p.received_at).max() {
            crate::devices::firmware::versions_reported(txn, &versions, at).await?;
        }
        let changed: Vec<(i32, Option<LockState>)> = round
            .iter()
            .filter(|p| applied.contains(&p.device_id))
            .map(|p| (p.bay_id, p.report.lock))
            .collect();
        let mut written = update_bays(txn, changed).await?;
        for pending in round {
            let input = &inputs[pending.index];
            let outcome = if applied.contains(&pending.device_id) {
                let (bay, _) = bays
                    .get_mut(&(input.prefix, input.number))
                    .expect("a pending report's bay was found");
                // As written: its current status (a request may have changed
                // it since the lookup) and its new revision.
                if let Some(row) = written.remove(&bay.id) {
                    *bay = row;
                }
                StateOutcome::Applied(
                    BayStatusChanged {
                        bay: bay.clone(),
                        device_status: Some(input.report.status),
                        changed_at: pending.order_at,
                        repeat: false,
                    },
                    pending.device_id,
                )
            } else {
                let (bay, device) = &bays[&(input.prefix, input.number)];
                if pending.is_stored_by(device) {
                    StateOutcome::Repeated(BayStatusChanged {
                        bay: bay.clone(),
                        device_status: Some(input.report.status),
                        changed_at: pending.order_at,
                        repeat: true,
                    })
                } else {
                    StateOutcome::Stale
                }
            };
            results[pending.index] = Some(Ok(outcome));
        }
    }
    let offline_before = bays
        .values()
        .filter(|(_, device)| device.status == DeviceStatus::Offline)
        .map(|(_, device)| device.id)
        .collect();
    Ok(StateBatch {
        results: results
            .into_iter()
            .map(|result| result.expect("every report has a result"))
            .collect(),
        offline_before,
        blocked_before,
    })
}

/// A report that passed the checks, waiting for its round's update.
struct Pending<'a> {
    index: usize,
    report: &'a StateReport,
    received_at: DateTime<Utc>,
    device_id: i32,
    bay_id: i32,
    /// The instant the report is ordered by.
    order_at: DateTime<Utc>,
    order_us: i64,
    seq: i64,
    /// The device time beyond which a stored order counts as a clock that ran
    /// ahead, which any valid report overtakes.
    latest_us: i64,
}

impl<'a> Pending<'a> {
    /// Whether `device`'s stored state, as the batch read it, came from
    /// this very report.
    fn is_stored_by(&self, device: &device::Model) -> bool {
        device.state_order_us == Some(self.order_us) && device.state_seq == Some(self.seq)
    }

    fn new(
        index: usize,
        input: &StateInput<'a>,
        device_id: i32,
        bay_id: i32,
        skew: ClockSkew,
    ) -> Self {
        // An `offline` report (usually the Last Will, whose `ts` is from when the
        // device connected) is ordered by the later of its `ts` and its arrival,
        // so it wins over the reports the device sent before it went away.
        let order_at = match input.report.status {
            DeviceStatus::Offline => Ord::max(input.report.ts, input.received_at),
            _ => input.report.ts,
        };
        Self {
            index,
            report: input.report,
            received_at: input.received_at,
            device_id,
            bay_id,
            order_at,
            order_us: order_at.timestamp_micros(),
            // Reports without `seq` rank below any numbered one at the same
            // instant; the stored `state_seq` is never null once
            // `state_order_us` is set.
            seq: input.report.seq.unwrap_or(-1),
            latest_us: skew.latest_accepted(input.received_at).timestamp_micros(),
        }
    }
}

/// Bays with their (current) device, by MQTT prefix and bay number.
pub type Found<'a> = HashMap<(&'a str, i32), (bay::Model, device::Model)>;

/// The bays (with their device) at `places` (MQTT prefix, bay number), in
/// one query. A place without a bay or a current device is missing.
///
/// # Errors
/// Database failures.
pub async fn find_bays<'a>(
    txn: &DatabaseTransaction,
    mut places: Vec<(&'a str, i32)>,
) -> Result<Found<'a>, DbErr> {
    places.sort_unstable();
    places.dedup();
    if places.is_empty() {
        return Ok(HashMap::new());
    }
    let wanted = if places.len() < SET_PARAMETER_FROM {
        places
            .iter()
            .fold(Condition::any(), |any, (prefix, number)| {
                any.add(
                    Condition::all()
                        .add(cabinet::Column::MqttPrefix.eq(*prefix))
                        .add(bay::Column::Number.eq(*number)),
                )
            })
    } else {
        Condition::all().add(places_condition(txn.get_database_backend(), &places))
    };
    let rows = bay::Entity::find()
        .find_also_related(cabinet::Entity)
        .find_also_related(device::Entity)
        .filter(wanted)
        // A retired device's messages are refused as if the bay had none.
        .filter(device::Column::RetiredAt.is_null())
        .all(txn)
        .await?;
    Ok(rows
        .into_iter()
        .filter_map(|(bay, cabinet, device)| {
            let (cabinet, device) = (cabinet?, device?);
            // The key borrows the report's prefix, which outlives the batch.
            let found = places
                .binary_search_by(|&(prefix, number)| {
                    (prefix, number).cmp(&(cabinet.mqtt_prefix.as_str(), bay.number))
                })
                .ok()?;
            let (prefix, _) = places[found];
            Some(((prefix, bay.number), (bay, device)))
        })
        .collect())
}

/// Writes the bays of a round's applied reports: the lock state a report
/// carries, and a new revision for each (the bay's announcement is then newer
/// than any made before). Returns the rows as written, locked until the
/// batch commits.
async fn update_bays(
    txn: &DatabaseTransaction,
    changed: Vec<(i32, Option<LockState>)>,
) -> Result<HashMap<i32, bay::Model>, DbErr> {
    if changed.is_empty() {
        return Ok(HashMap::new());
    }
    let rows = if takes_json_rows(txn.get_database_backend(), changed.len()) {
        // One statement text for any number of bays, as in `update_devices_from_json`.
        const SQL: &str = r#"UPDATE "bays" AS b
            SET "lock_state" = COALESCE(v.lock, b."lock_state"), "revision" = b."revision" + 1
            FROM json_to_recordset($1::json) AS v(id integer, lock text) WHERE b."id" = v.id
            RETURNING b.*"#;
        let changed = changed.iter().map(
            |(id, lock)| serde_json::json!({ "id": id, "lock": lock.map(|lock| lock.to_value()) }),
        );
        bay::Entity::find()
            .from_raw_sql(with_json_rows(SQL, changed))
            .all(txn)
            .await?
    } else {
        let ids: Vec<i32> = changed.iter().map(|(id, _)| *id).collect();
        let locks = changed
            .into_iter()
            .filter_map(|(id, lock)| Some((id, lock?.into())))
            .collect();
        bay::Entity::update_many()
            .col_expr(
                bay::Column::LockState,
                per_row(bay::Column::Id, locks, Expr::col(bay::Column::LockState)),
            )
            .col_expr(bay::Column::Revision, bay::next_revision())
            .filter(bay::Column::Id.is_in(ids))
            .exec_with_returning(txn)
            .await?
    };
    Ok(rows.into_iter().map(|row| (row.id, row)).collect())
}

/// `(prefix, number)` is one of `places`, with the places passed as one JSON
/// parameter: the statement's text is the same whatever their number, so the
/// database plans it once per connection rather than once per batch, and its
/// cost grows with the places instead of with an `OR` arm per place.
fn places_condition(backend: DbBackend, places: &[(&str, i32)]) -> Expr {
    let places = serde_json::to_string(places).unwrap_or_else(|_| "[]".to_owned());
    let sql = match backend {
        DbBackend::Postgres => {
            r#"("cabinets"."mqtt_prefix", "bays"."number") IN (SELECT w ->> 0, (w ->> 1)::integer FROM json_array_elements($1::json) AS w)"#
        }
        _ => {
            r#"("cabinets"."mqtt_prefix", "bays"."number") IN (SELECT w.value ->> 0, w.value ->> 1 FROM json_each(?) AS w)"#
        }
    };
    Expr::cust_with_values(sql, [places])
}

/// Writes a round's reports to their devices where newer than what is
/// stored; returns the devices that took their report.
async fn update_devices(
    txn: &DatabaseTransaction,
    round: &[Pending<'_>],
) -> Result<HashSet<i32>, DbErr> {
    if takes_json_rows(txn.get_database_backend(), round.len()) {
        update_devices_from_json(txn, round).await
    } else {
        update_devices_per_row(txn, round).await
    }
}

/// [`update_devices`] on PostgreSQL: the round's reports are one JSON
/// parameter joined to the devices, so the statement's text, and its plan,
/// are the same for every round. The condition is
/// [`update_devices_per_row`]'s, on each report's own values.
async fn update_devices_from_json(
    txn: &DatabaseTransaction,
    round: &[Pending<'_>],
) -> Result<HashSet<i32>, DbErr> {
    const SQL: &str = r#"UPDATE "devices" AS d SET
        "status" = v.status,
        "hardware_mac" = v.mac,
        "last_seen" = v.order_at,
        "last_heard_at" = v.received_at,
        "firmware_version" = COALESCE(v.fw, d."firmware_version"),
        "ip_address" = COALESCE(v.ip, d."ip_address"),
        "plugged" = COALESCE(v.plugged, d."plugged"),
        "state_order_us" = v.order_us,
        "state_seq" = v.seq
    FROM json_to_recordset($1::json) AS v(
        id integer, status text, mac text, order_at timestamptz, received_at timestamptz,
        fw text, ip text, plugged boolean, order_us bigint, seq bigint, latest_us bigint)
    WHERE d."id" = v.id AND (
        d."state_order_us" IS NULL
        OR d."state_order_us" > v.latest_us
        OR d."state_order_us" < v.order_us
        OR (d."state_order_us" = v.order_us AND d."state_seq" < v.seq))
    RETURNING d."id""#;
    let reports = round.iter().map(|p| {
        serde_json::json!({
            "id": p.device_id,
            "status": p.report.status.to_value(),
            "mac": p.report.mac,
            "order_at": p.order_at,
            "received_at": p.received_at,
            "fw": p.report.fw,
            "ip": p.report.ip.map(|ip| ip.to_string()),
            "plugged": p.report.plugged,
            "order_us": p.order_us,
            "seq": p.seq,
            "latest_us": p.latest_us,
        })
    });
    let rows = txn.query_all_raw(with_json_rows(SQL, reports)).await?;
    rows.iter()
        .map(|row| row.try_get::<i32>("", "id"))
        .collect()
}

/// [`update_devices`] with a `CASE` per column and one arm per report (SQLite,
/// and rounds smaller than [`SET_PARAMETER_FROM`]).
async fn update_devices_per_row(
    txn: &DatabaseTransaction,
    round: &[Pending<'_>],
) -> Result<HashSet<i32>, DbErr> {
    let column = |value: &dyn Fn(&Pending<'_>) -> Option<Value>, otherwise: Expr| {
        per_row(
            device::Column::Id,
            round
                .iter()
                .filter_map(|p| Some((p.device_id, value(p)?)))
                .collect(),
            otherwise,
        )
    };
    let none = || Expr::value(Option::<i64>::None);
    let order_us = column(&|p| Some(p.order_us.into()), none());
    let seq = column(&|p| Some(p.seq.into()), none());
    let latest_us = column(&|p| Some(p.latest_us.into()), none());
    let newer = Condition::any()
        .add(device::Column::StateOrderUs.is_null())
        .add(Expr::col(device::Column::StateOrderUs).gt(latest_us))
        .add(Expr::col(device::Column::StateOrderUs).lt(order_us.clone()))
        .add(
            Condition::all()
                .add(Expr::col(device::Column::StateOrderUs).eq(order_us.clone()))
                .add(Expr::col(device::Column::StateSeq).lt(seq.clone())),
        );
    // Optional fields keep the stored value when a report leaves them out.
    let kept = |col: device::Column| Expr::col(col);
    let updated = device::Entity::update_many()
        .col_expr(
            device::Column::Status,
            column(
                &|p| Some(p.report.status.into()),
                kept(device::Column::Status),
            ),
        )
        .col_expr(
            device::Column::HardwareMac,
            column(
                &|p| Some(p.report.mac.clone().into()),
                kept(device::Column::HardwareMac),
            ),
        )
        .col_expr(
            device::Column::LastSeen,
            column(&|p| Some(p.order_at.into()), kept(device::Column::LastSeen)),
        )
        // When this server heard it: what the heartbeat timeout measures.
        .col_expr(
            device::Column::LastHeardAt,
            column(
                &|p| Some(p.received_at.into()),
                kept(device::Column::LastHeardAt),
            ),
        )
        .col_expr(
            device::Column::FirmwareVersion,
            column(
                &|p| p.report.fw.clone().map(Into::into),
                kept(device::Column::FirmwareVersion),
            ),
        )
        .col_expr(
            device::Column::IpAddress,
            column(
                &|p| p.report.ip.map(|ip| ip.to_string().into()),
                kept(device::Column::IpAddress),
            ),
        )
        .col_expr(
            device::Column::Plugged,
            column(
                &|p| p.report.plugged.map(Into::into),
                kept(device::Column::Plugged),
            ),
        )
        .col_expr(device::Column::StateOrderUs, order_us)
        .col_expr(device::Column::StateSeq, seq)
        .filter(device::Column::Id.is_in(round.iter().map(|p| p.device_id)))
        .filter(newer)
        .exec_with_returning(txn)
        .await?;
    Ok(updated.into_iter().map(|device| device.id).collect())
}

#[cfg(test)]
mod tests {
    use chrono::TimeDelta;
    use sea_orm::{ConnectOptions, Database, DatabaseConnection, TransactionTrait};

    use super::*;
    use crate::entities::{BayStatus, LockState};
    use crate::seed::demo_mac;

    /// A database with one cabinet of two bays (ids 1 and 2), each with its device.
    async fn network() -> (DatabaseConnection, String) {
        let mut options = ConnectOptions::new("sqlite::memory:");
        options.max_connections(1).min_connections(1);
        let db = Database::connect(options).await.expect("a database");
        seeded(db, 2).await
    }

    /// Migrates `db` and seeds one cabinet of `bays` bays with their devices.
    async fn seeded(db: DatabaseConnection, bays: u32) -> (DatabaseConnection, String) {
        let prefix = crate::seed::testing::one_cabinet(&db, bays).await;
        (db, prefix)
    }

    fn report(bay: i32, ts_ms: i64, lock: LockState) -> StateReport {
        StateReport {
            ts: DateTime::from_timestamp_millis(ts_ms).expect("a time"),
            mac: demo_mac(bay),
            fw: None,
            ip: None,
            status: DeviceStatus::Online,
            lock: Some(lock),
            plugged: None,
            seq: None,
        }
    }

    /// Applies `inputs` in one committed transaction; each outcome described.
    async fn applied(
        db: &DatabaseConnection,
        inputs: &[StateInput<'_>],
        skew: ClockSkew,
    ) -> Vec<String> {
        let txn = db.begin().await.expect("a transaction");
        let results = apply_state_reports_in(&txn, inputs, skew)
            .await
            .expect("applied")
            .results;
        txn.commit().await.expect("committed");
        results.iter().map(describe).collect()
    }

    fn describe(result: &Result<StateOutcome, ReportError>) -> String {
        match result {
            Ok(StateOutcome::Applied(change, _)) => {
                format!("applied {} {:?}", change.bay.id, change.bay.lock_state)
            }
            Ok(StateOutcome::Repeated(change)) => format!(
                "repeated {} {:?} r{} {}",
                change.bay.id, change.bay.lock_state, change.bay.revision, change.repeat
            ),
            Ok(StateOutcome::Stale) => "stale".into(),
            Err(ReportError::UnknownBay { .. }) => "unknown bay".into(),
            Err(ReportError::MacMismatch { .. }) => "mac mismatch".into(),
            Err(ReportError::FromTheFuture { .. }) => "from the future".into(),
            Err(ReportError::NoSession { .. }) => "no session".into(),
            Err(ReportError::Database(err)) => format!("database: {err}"),
        }
    }

    /// The report a device's state came from, delivered again in a later
    /// batch (its replica may have died before publishing), announces the
    /// bay's state again, marked as a repeat; an older one stays stale.
    #[tokio::test]
    async fn the_report_stored_delivered_again_announces_its_bay_again() {
        let (db, prefix) = network().await;
        let now = Utc::now();
        let at = |ms: i64| {
            (now - TimeDelta::seconds(60) + TimeDelta::milliseconds(ms)).timestamp_millis()
        };
        let older = report(1, at(10), LockState::Locked);
        let stored = report(1, at(20), LockState::Unlocked);
        let skew = ClockSkew(TimeDelta::seconds(30));
        let input = |report| StateInput {
            prefix: &prefix,
            number: 1,
            report,
            received_at: now,
        };
        assert_eq!(
            applied(&db, &[input(&stored)], skew).await,
            ["applied 1 Unlocked"]
        );
        assert_eq!(
            applied(&db, &[input(&stored), input(&older)], skew).await,
            ["repeated 1 Unlocked r1 true", "stale"]
        );
    }

    #[tokio::test]
    async fn a_batch_applies_each_devices_reports_in_order_and_refuses_the_bad_ones() {
        let (db, prefix) = network().await;
        let now = Utc::now();
        let at = |ms: i64| now - TimeDelta::seconds(60) + TimeDelta::milliseconds(ms);
        let a1 = report(1, at(10).timestamp_millis(), LockState::Unlocked);
        let b1 = report(2, at(10).timestamp_millis(), LockState::Unlocked);
        let a_older = report(1, at(5).timestamp_millis(), LockState::Locked);
        let a2 = report(1, at(20).timestamp_millis(), LockState::Locked);
        let a2_again = a2.clone();
        let mut impostor = report(2, at(30).timestamp_millis(), LockState::Locked);
        impostor.mac = demo_mac(99);
        let ahead = report(
            1,
            (now + TimeDelta::hours(1)).timestamp_millis(),
            LockState::Unlocked,
        );
        let input = |number, report| StateInput {
            prefix: &prefix,
            number,
            report,
            received_at: now,
        };
        let inputs = [
            input(1, &a1),
            input(2, &b1),
            input(1, &a_older),
            input(1, &a2),
            input(1, &a2_again),
            input(9, &a1),
            input(2, &impostor),
            input(1, &ahead),
        ];
        let skew = ClockSkew(TimeDelta::seconds(30));
        assert_eq!(
            applied(&db, &inputs, skew).await,
            [
                "applied 1 Unlocked",
                "applied 2 Unlocked",
                "stale",
                "applied 1 Locked",
                "stale",
                "unknown bay",
                "mac mismatch",
                "from the future",
            ]
        );
        let stored = device::Entity::find()
            .filter(device::Column::BayId.eq(1))
            .one(&db)
            .await
            .expect("query")
            .expect("the device");
        assert_eq!(stored.state_order_us, Some(a2.ts.timestamp_micros()));
        assert_eq!(stored.status, DeviceStatus::Online);
        let bay = bay::Entity::find_by_id(1)
            .one(&db)
            .await
            .expect("query")
            .expect("the bay");
        assert_eq!(
            bay.lock_state,
            LockState::Locked,
            "the newest report's lock"
        );
    }

    /// A report's announcement carries its bay as written, not as the batch
    /// first read it: with the status a request committed meanwhile (on
    /// PostgreSQL the batch waits for that request on the bay's lock) and the
    /// bay's next revision, so the bus can tell the two announcements' order.
    #[tokio::test]
    async fn an_applied_reports_event_carries_its_bay_as_written_with_its_next_revision() {
        let (db, prefix) = seeded(crate::db::testing::any_database().await, 1).await;
        let now = Utc::now();
        let apply = |db: DatabaseConnection, prefix: String, ms: i64| async move {
            let report = report(
                1,
                (now - TimeDelta::seconds(60)).timestamp_millis() + ms,
                LockState::Unlocked,
            );
            let input = StateInput {
                prefix: &prefix,
                number: 1,
                report: &report,
                received_at: now,
            };
            let txn = db.begin().await.expect("a transaction");
            let mut results =
                apply_state_reports_in(&txn, &[input], ClockSkew(TimeDelta::seconds(30)))
                    .await
                    .expect("applied")
                    .results;
            txn.commit().await.expect("committed");
            match results.pop() {
                Some(Ok(StateOutcome::Applied(change, _))) => change.bay,
                other => panic!("applied, not {other:?}"),
            }
        };
        let first = apply(db.clone(), prefix.clone(), 10).await;
        assert_eq!((first.status, first.revision), (BayStatus::Available, 1));

        // A request changes the bay's status and holds its lock until it commits.
        let request = db.begin().await.expect("a transaction");
        bay::Entity::update_many()
            .col_expr(bay::Column::Status, Expr::value(BayStatus::Occupied))
            .col_expr(bay::Column::Revision, bay::next_revision())
            .filter(bay::Column::Id.eq(1))
            .exec(&request)
            .await
            .expect("updated");
        let second = if db.get_database_backend() == DbBackend::Postgres {
            let batch = tokio::spawn(apply(db.clone(), prefix.clone(), 20));
            // The batch read the bay before the request committed, and now
            // waits for its lock.
            crate::db::testing::until_a_session_waits_for_a_lock(&db).await;
            request.commit().await.expect("committed");
            batch.await.expect("the batch ran")
        } else {
            // SQLite has one writer: the request commits before the batch runs.
            request.commit().await.expect("committed");
            apply(db.clone(), prefix.clone(), 20).await
        };
        assert_eq!((second.status, second.revision), (BayStatus::Occupied, 3));
        let stored = bay::Entity::find_by_id(1)
            .one(&db)
            .await
            .expect("query")
            .expect("the bay");
        assert_eq!(stored, second, "the announcement is the row as stored");
    }

    /// Rounds of [`SET_PARAMETER_FROM`] reports or more take the statements
    /// whose rows come as one JSON parameter; the rule is the same.
    #[tokio::test]
    async fn a_large_batch_follows_the_same_rule() {
        let bays = i32::try_from(SET_PARAMETER_FROM).expect("small") + 6;
        let (db, prefix) = seeded(
            crate::db::testing::any_database().await,
            bays.unsigned_abs(),
        )
        .await;
        let now = Utc::now();
        let at = |ms: i64| {
            (now - TimeDelta::seconds(60) + TimeDelta::milliseconds(ms)).timestamp_millis()
        };
        let newer: Vec<StateReport> = (1..=bays)
            .map(|bay| report(bay, at(20), LockState::Unlocked))
            .collect();
        let older: Vec<StateReport> = (1..=bays)
            .map(|bay| report(bay, at(10), LockState::Blocked))
            .collect();
        let mut inputs: Vec<StateInput<'_>> = Vec::new();
        for (number, report) in (1..).zip(newer.iter()).chain((1..).zip(older.iter())) {
            inputs.push(StateInput {
                prefix: &prefix,
                number,
                report,
                received_at: now,
            });
        }
        inputs.push(StateInput {
            prefix: &prefix,
            number: bays + 1,
            report: &newer[0],
            received_at: now,
        });
        let txn = db.begin().await.expect("a transaction");
        let results = apply_state_reports_in(&txn, &inputs, ClockSkew(TimeDelta::seconds(30)))
            .await
            .expect("applied")
            .results;
        txn.commit().await.expect("committed");

        let described: Vec<String> = results.iter().map(describe).collect();
        let count = |what: &str| described.iter().filter(|d| d.starts_with(what)).count();
        let bays = usize::try_from(bays).expect("positive");
        assert_eq!(count("applied"), bays, "{described:?}");
        assert!(described[..bays].iter().all(|d| d.ends_with("Unlocked")));
        assert_eq!(count("stale"), bays, "the older report of each device");
        assert_eq!(count("unknown bay"), 1);
        let stored = device::Entity::find().all(&db).await.expect("query");
        assert!(
            stored.iter().all(
                |d| d.state_order_us == Some(at(20) * 1000) && d.status == DeviceStatus::Online
            ),
            "every device took its newer report"
        );
        let locks = bay::Entity::find().all(&db).await.expect("query");
        assert!(locks.iter().all(|b| b.lock_state == LockState::Unlocked));
    }
}
