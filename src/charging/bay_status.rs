//! A bay's `status` follows its maintenance and its reservations:
//! `MAINTENANCE` when the bay is flagged or its cabinet or station is not
//! active; otherwise `OCCUPIED` while a reservation of it is `ACTIVE` (a
//! charging session runs), `RESERVED` while a holding reservation's window
//! covers the present, `AVAILABLE` otherwise.
//!
//! Whoever changes one of those inputs calls [`refresh`] in the same
//! transaction; it locks the bays, reads their inputs, writes the bays whose
//! status changed (raising their revision) and returns their
//! `BayStatusChanged` events, which the caller publishes after the commit.
//! The `RefreshBayStatuses` job does the same as time passes (a slot starting
//! or ending changes no row), for those of the bays a slot covers now and the
//! bays shown busy whose status is out of date.

use std::collections::HashMap;

use chrono::{DateTime, Utc};
use sea_orm::sea_query::{Expr, ExprTrait, LockType};
use sea_orm::{
    ActiveEnum, ColumnTrait, Condition, ConnectionTrait, DbBackend, EntityTrait, JoinType,
    QueryFilter, QueryOrder, QuerySelect, RelationTrait,
};

use crate::bus::{BayStatusChanged, DomainEvent};
use crate::db::per_row;
use crate::entities::reservation::{self, ReservationStatus};
use crate::entities::{
    BayStatus, CabinetStatus, DeviceStatus, StationStatus, bay, bay_maintenance, cabinet, device,
    station,
};
use crate::error::AppResult;
use crate::services::ServiceContext;

/// Of a reservation holding a bay, what its status depends on.
#[derive(Debug, Clone, Copy)]
pub struct Holding {
    pub status: ReservationStatus,
    pub starts_at_us: i64,
    pub ends_at_us: i64,
}

/// What a bay's status should be now, from its inputs.
pub fn derive(in_maintenance: bool, holding: &[Holding], now: DateTime<Utc>) -> BayStatus {
    let now = now.timestamp_micros();
    if in_maintenance {
        BayStatus::Maintenance
    } else if holding
        .iter()
        .any(|r| r.status == ReservationStatus::Active)
    {
        BayStatus::Occupied
    } else if holding
        .iter()
        .any(|r| r.starts_at_us <= now && now < r.ends_at_us)
    {
        BayStatus::Reserved
    } else {
        BayStatus::Available
    }
}

/// Whether the bay, its cabinet or its station is out of service.
pub async fn out_of_service(db: &impl ConnectionTrait, bay: &bay::Model) -> AppResult<bool> {
    let flagged = bay_maintenance::Entity::find_by_id(bay.id)
        .one(db)
        .await?
        .is_some();
    if flagged {
        return Ok(true);
    }
    // The cabinet's station is the bay's: a cabinet moves with its bays.
    let in_service = cabinet::Entity::find_by_id(bay.cabinet_id)
        .find_also_related(station::Entity)
        .one(db)
        .await?
        .is_some_and(|(cabinet, station)| {
            station.is_some_and(|station| in_service(cabinet.status, station.status))
        });
    Ok(!in_service)
}

/// Whether a cabinet and its station take reservations.
fn in_service(cabinet: CabinetStatus, station: StationStatus) -> bool {
    cabinet == CabinetStatus::Active && station == StationStatus::Active
}

/// Brings the status of `bay_ids` up to date; the events of those that
/// changed. A few statements whatever the number of bays: on PostgreSQL one
/// locks the bays, one reads each bay's status, its maintenance flag, its cabinet's and station's status,
/// its device's and its holding reservations; then one `UPDATE` writes
/// (and locks) only the bays whose status changes.
///
/// # Errors
/// On database errors.
pub async fn refresh(
    db: &impl ConnectionTrait,
    bay_ids: &[i32],
    now: DateTime<Utc>,
) -> AppResult<Vec<DomainEvent>> {
    refresh_with(db, bay_ids, now, Locks::Take).await
}

/// [`refresh`] in a transaction that holds the bays' locks already (on
/// PostgreSQL a `FOR NO KEY UPDATE` or stronger, or an `UPDATE`, of each bay,
/// taken in the same transaction): one statement fewer.
///
/// # Errors
/// On database errors.
pub async fn refresh_locked(
    db: &impl ConnectionTrait,
    bay_ids: &[i32],
    now: DateTime<Utc>,
) -> AppResult<Vec<DomainEvent>> {
    refresh_with(db, bay_ids, now, Locks::Held).await
}

/// Whether a refresh takes its bays' locks or its transaction holds them.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Locks {
    Take,
    Held,
}

async fn refresh_with(
    db: &impl ConnectionTrait,
    bay_ids: &[i32],
    now: DateTime<Utc>,
    locks: Locks,
) -> AppResult<Vec<DomainEvent>> {
    // In ascending order, so that concurrent refreshes lock bays in one order.
    let mut sorted = bay_ids.to_vec();
    sorted.sort_unstable();
    sorted.dedup();
    let mut events = Vec::new();
    for chunk in sorted.chunks(REFRESH_CHUNK) {
        events.extend(refresh_chunk(db, chunk, now, locks).await?);
    }
    // In the order asked for, as one bay at a time would give them.
    let mut place: HashMap<i32, usize> = HashMap::new();
    for (i, id) in bay_ids.iter().enumerate() {
        place.entry(*id).or_insert(i);
    }
    events.sort_by_key(|event| match event {
        DomainEvent::BayStatusChanged(change) => place.get(&change.bay.id).copied(),
        _ => None,
    });
    Ok(events)
}

/// Bays per round of [`refresh`], well under SQLite's bound on parameters.
const REFRESH_CHUNK: usize = 500;

/// A bay's inputs and one of its holding reservations (status, start, end),
/// if any: one row per bay and reservation.
type BayRow = (
    i32,
    BayStatus,
    Option<i32>,
    CabinetStatus,
    StationStatus,
    Option<DeviceStatus>,
    Option<ReservationStatus>,
    Option<i64>,
    Option<i64>,
);

/// A bay's inputs, its reservations gathered.
struct BayInputs {
    stored: BayStatus,
    in_maintenance: bool,
    device: Option<DeviceStatus>,
    holding: Vec<Holding>,
}

impl BayInputs {
    /// The status the bay should show now, when it is not the stored one.
    fn out_of_date(&self, now: DateTime<Utc>) -> Option<BayStatus> {
        let status = derive(self.in_maintenance, &self.holding, now);
        (status != self.stored).then_some(status)
    }
}

async fn refresh_chunk(
    db: &impl ConnectionTrait,
    bay_ids: &[i32],
    now: DateTime<Utc>,
    locks: Locks,
) -> AppResult<Vec<DomainEvent>> {
    if locks == Locks::Take && db.get_database_backend() == DbBackend::Postgres {
        // The bays' locks before their inputs are read: a refresh that waits
        // for another transaction's change of a bay then reads what that one
        // committed (each statement of READ COMMITTED sees the commits before
        // it) instead of deciding on inputs read before and writing over the
        // other's status. `NO KEY UPDATE`, as the `UPDATE` below takes: rows
        // referencing a bay being inserted meanwhile (their key checks) do not
        // conflict with it. SQLite's single writer serializes refreshes.
        bay::Entity::find()
            .select_only()
            .column(bay::Column::Id)
            .filter(bay::Column::Id.is_in(bay_ids.iter().copied()))
            .order_by_asc(bay::Column::Id)
            .lock(LockType::NoKeyUpdate)
            .into_tuple::<i32>()
            .all(db)
            .await?;
    }
    let bays = inputs(db, bay_ids, now).await?;
    let mut changes: Vec<(i32, sea_orm::Value)> = Vec::new();
    let mut device_status = HashMap::new();
    for (bay_id, inputs) in bays {
        if let Some(status) = inputs.out_of_date(now) {
            changes.push((bay_id, status.into()));
            device_status.insert(bay_id, inputs.device);
        }
    }
    if changes.is_empty() {
        return Ok(Vec::new());
    }
    // One statement for every bay whatever its new status: concurrent
    // refreshes then take the rows' locks in one order, and never deadlock.
    let ids: Vec<i32> = changes.iter().map(|(id, _)| *id).collect();
    let updated = bay::Entity::update_many()
        .col_expr(
            bay::Column::Status,
            per_row(bay::Column::Id, changes, Expr::col(bay::Column::Status)),
        )
        .col_expr(bay::Column::Revision, bay::next_revision())
        .filter(bay::Column::Id.is_in(ids))
        .exec_with_returning(db)
        .await?;
    let events = updated
        .into_iter()
        .map(|bay| {
            DomainEvent::BayStatusChanged(BayStatusChanged {
                device_status: device_status.get(&bay.id).copied().flatten(),
                bay,
                changed_at: now,
                repeat: false,
            })
        })
        .collect();
    Ok(events)
}

/// Of `bay_ids`, those whose stored status is not what their inputs give
/// now, read without locks: what a [`refresh`] of them would change unless
/// another transaction changes them first.
async fn out_of_date(
    db: &impl ConnectionTrait,
    bay_ids: &[i32],
    now: DateTime<Utc>,
) -> AppResult<Vec<i32>> {
    let mut stale = Vec::new();
    for chunk in bay_ids.chunks(REFRESH_CHUNK) {
        stale.extend(
            inputs(db, chunk, now)
                .await?
                .into_iter()
                .filter(|(_, inputs)| inputs.out_of_date(now).is_some())
                .map(|(id, _)| id),
        );
    }
    Ok(stale)
}

/// The inputs of each of `bay_ids` (at most [`REFRESH_CHUNK`]).
async fn inputs(
    db: &impl ConnectionTrait,
    bay_ids: &[i32],
    now: DateTime<Utc>,
) -> AppResult<HashMap<i32, BayInputs>> {
    let now_us = now.timestamp_micros();
    // One statement: each bay with its maintenance flag, cabinet, station and
    // device, and its holding reservations not over yet (joined on those
    // conditions, so a bay without any still gives its row). The cabinet's
    // station is the bay's: a cabinet moves with its bays.
    let holding = reservation::Relation::Bay
        .def()
        .rev()
        .on_condition(move |_, reservations| {
            Condition::all()
                .add(
                    Expr::col((reservations.clone(), reservation::Column::Status))
                        .is_in(ReservationStatus::HOLDING.map(|status| status.to_value())),
                )
                .add(Expr::col((reservations, reservation::Column::EndsAtUs)).gt(now_us))
        });
    let rows: Vec<BayRow> = bay::Entity::find()
        .select_only()
        .column(bay::Column::Id)
        .column(bay::Column::Status)
        .column(bay_maintenance::Column::BayId)
        .column(cabinet::Column::Status)
        .column(station::Column::Status)
        .column(device::Column::Status)
        .column(reservation::Column::Status)
        .column(reservation::Column::StartsAtUs)
        .column(reservation::Column::EndsAtUs)
        .join(JoinType::InnerJoin, bay::Relation::Cabinet.def())
        .join(JoinType::InnerJoin, cabinet::Relation::Station.def())
        .join(
            JoinType::LeftJoin,
            bay_maintenance::Relation::Bay.def().rev(),
        )
        .join(JoinType::LeftJoin, bay::Relation::Device.def())
        .join(JoinType::LeftJoin, holding)
        .filter(bay::Column::Id.is_in(bay_ids.iter().copied()))
        .into_tuple()
        .all(db)
        .await?;
    let mut bays: HashMap<i32, BayInputs> = HashMap::new();
    for (bay_id, stored, flagged, cabinet, station, device, status, starts, ends) in rows {
        let inputs = bays.entry(bay_id).or_insert_with(|| BayInputs {
            stored,
            in_maintenance: flagged.is_some() || !in_service(cabinet, station),
            device,
            holding: Vec::new(),
        });
        if let (Some(status), Some(starts_at_us), Some(ends_at_us)) = (status, starts, ends) {
            inputs.holding.push(Holding {
                status,
                starts_at_us,
                ends_at_us,
            });
        }
    }
    Ok(bays)
}

/// Publishes events of a committed change. The change is stored, so a failed
/// publish is logged, not returned: subscribers see the bay's next change.
pub async fn publish(services: &ServiceContext, events: Vec<DomainEvent>) {
    if events.is_empty() {
        return;
    }
    if let Err(err) = services.bus.publish_all(events).await {
        tracing::warn!(
            error = format!("{err:#}"),
            "bay status events not published"
        );
    }
}

/// Keeps bay statuses current as slots start and end.
pub struct RefreshBayStatuses;

#[async_trait::async_trait]
impl crate::jobs::Job for RefreshBayStatuses {
    fn name(&self) -> &'static str {
        "refresh_bay_statuses"
    }

    fn every(&self) -> chrono::TimeDelta {
        chrono::TimeDelta::seconds(15)
    }

    async fn run(&self, services: &ServiceContext) -> anyhow::Result<()> {
        let events = catch_up(&services.db, services.now()).await?;
        publish(services, events).await;
        Ok(())
    }
}

/// The job's work: brings up to date the bays a holding reservation covers
/// now (they should show it) and the bays shown reserved or occupied (their
/// reservation may have ended); the events to publish.
async fn catch_up(
    db: &sea_orm::DatabaseConnection,
    now: DateTime<Utc>,
) -> anyhow::Result<Vec<DomainEvent>> {
    use anyhow::Context as _;
    use sea_orm::{QuerySelect, TransactionTrait};
    let now_us = now.timestamp_micros();
    let mut bay_ids: Vec<i32> = reservation::Entity::find()
        .select_only()
        .column(reservation::Column::BayId)
        .filter(reservation::Column::Status.is_in(ReservationStatus::HOLDING))
        .filter(reservation::Column::StartsAtUs.lte(now_us))
        .filter(reservation::Column::EndsAtUs.gt(now_us))
        .into_tuple()
        .all(db)
        .await
        .context("reading bays with slots in progress")?;
    let shown_busy: Vec<i32> = bay::Entity::find()
        .select_only()
        .column(bay::Column::Id)
        .filter(bay::Column::Status.is_in([BayStatus::Reserved, BayStatus::Occupied]))
        .into_tuple()
        .all(db)
        .await
        .context("reading busy bays")?;
    bay_ids.extend(shown_busy);
    bay_ids.sort_unstable();
    bay_ids.dedup();
    // Only the bays whose status is out of date (a slot started or ended: a
    // few of the thousands here) are refreshed, under their locks, so
    // kiosks and reservations wait for none of the others meanwhile.
    let stale = out_of_date(db, &bay_ids, now)
        .await
        .map_err(|_| anyhow::anyhow!("reading bay statuses failed"))?;
    if stale.is_empty() {
        return Ok(Vec::new());
    }
    let txn = db.begin().await?;
    let events = refresh(&txn, &stale, now)
        .await
        .map_err(|_| anyhow::anyhow!("refreshing bay statuses failed"))?;
    txn.commit().await?;
    Ok(events)
}

#[cfg(test)]
mod tests {
    use sea_orm::{ActiveModelTrait as _, DbBackend, Set, TransactionTrait as _};

    use super::*;

    /// Two bays whose stored status is out of date, towards two different
    /// statuses: bay 1 shown `OCCUPIED` with nothing holding it, bay 2 shown
    /// `AVAILABLE` though flagged for maintenance.
    async fn stale_pair(db: &sea_orm::DatabaseConnection) {
        bay::Entity::update_many()
            .col_expr(
                bay::Column::Status,
                per_row(
                    bay::Column::Id,
                    vec![
                        (1, BayStatus::Occupied.into()),
                        (2, BayStatus::Available.into()),
                    ],
                    Expr::col(bay::Column::Status),
                ),
            )
            .filter(bay::Column::Id.is_in([1, 2]))
            .exec(db)
            .await
            .expect("statuses set");
    }

    #[tokio::test]
    async fn a_refresh_writes_each_bays_own_status_and_raises_its_revision() {
        let db = crate::db::testing::any_database().await;
        crate::seed::testing::one_cabinet(&db, 2).await;
        bay_maintenance::ActiveModel {
            bay_id: Set(2),
            reason: Set("inspection".into()),
            created_at: Set(Utc::now()),
        }
        .insert(&db)
        .await
        .expect("flagged");
        stale_pair(&db).await;

        let events = refresh(&db, &[2, 1, 2], Utc::now())
            .await
            .expect("refreshed");
        let changed: Vec<(i32, BayStatus, i64)> = events
            .iter()
            .filter_map(|event| match event {
                DomainEvent::BayStatusChanged(change) => {
                    Some((change.bay.id, change.bay.status, change.bay.revision))
                }
                _ => None,
            })
            .collect();
        assert_eq!(
            changed,
            [(2, BayStatus::Maintenance, 1), (1, BayStatus::Available, 1)],
            "in the order asked for, each with its own status"
        );
        assert!(
            refresh(&db, &[1, 2], Utc::now())
                .await
                .expect("refreshed")
                .is_empty(),
            "nothing left to change"
        );

        if db.get_database_backend() != DbBackend::Postgres {
            return;
        }
        // Refreshes of the same bays at once, each in its own transaction
        // (as two requests, or a request and the job): they take the bays'
        // locks in one order, so none fails on a deadlock.
        for _ in 0..20 {
            stale_pair(&db).await;
            let refreshes = (0..4).map(|i| {
                let db = db.clone();
                tokio::spawn(async move {
                    let txn = db.begin().await?;
                    let asked = if i % 2 == 0 { [1, 2] } else { [2, 1] };
                    refresh(&txn, &asked, Utc::now())
                        .await
                        .map_err(|e| sea_orm::DbErr::Custom(e.message()))?;
                    tokio::task::yield_now().await;
                    txn.commit().await
                })
            });
            for outcome in futures_util::future::join_all(refreshes).await {
                outcome.expect("the refresh ran").expect("no deadlock");
            }
        }
    }

    /// The job locks only the bays whose status is out of date: a request
    /// holding an up-to-date busy bay (a kiosk opening a session there) does
    /// not hold the job up. On PostgreSQL.
    #[tokio::test]
    async fn the_job_refreshes_stale_bays_without_waiting_for_up_to_date_ones() {
        let db = crate::db::testing::any_database().await;
        if db.get_database_backend() != DbBackend::Postgres {
            return;
        }
        crate::seed::testing::one_cabinet_charging(&db, 4).await;
        let occupied = bay::Entity::find()
            .filter(bay::Column::Status.eq(BayStatus::Occupied))
            .one(&db)
            .await
            .expect("query")
            .expect("the demo's bay that charges");
        let (stale, _) = crate::seed::testing::free_bay_and_customer(&db).await;
        bay::Entity::update_many()
            .col_expr(bay::Column::Status, Expr::value(BayStatus::Reserved))
            .filter(bay::Column::Id.eq(stale))
            .exec(&db)
            .await
            .expect("made stale");

        let holding = db.begin().await.expect("a transaction");
        bay::Entity::update_many()
            .col_expr(bay::Column::Status, Expr::col(bay::Column::Status))
            .filter(bay::Column::Id.eq(occupied.id))
            .exec(&holding)
            .await
            .expect("locked");
        let events =
            tokio::time::timeout(std::time::Duration::from_secs(5), catch_up(&db, Utc::now()))
                .await
                .expect("the job did not wait for the locked bay")
                .expect("the job ran");
        holding.rollback().await.expect("rolled back");
        assert!(
            matches!(&events[..], [DomainEvent::BayStatusChanged(c)]
                if c.bay.id == stale && c.bay.status == BayStatus::Available),
            "{events:?}"
        );
    }

    /// A refresh decides on what committed before it: one that waits for
    /// another transaction's change of a bay reads that change once it is
    /// committed, instead of keeping the inputs it would have read before and
    /// writing over the other's status. On PostgreSQL; SQLite's single writer
    /// runs one transaction at a time.
    #[tokio::test]
    async fn a_refresh_that_waits_for_another_decides_on_what_that_one_committed() {
        let db = crate::db::testing::any_database().await;
        if db.get_database_backend() != DbBackend::Postgres {
            return;
        }
        crate::seed::testing::one_cabinet_charging(&db, 4).await;
        let (bay_id, user_id) = crate::seed::testing::free_bay_and_customer(&db).await;
        let now = Utc::now();
        let holding_now =
            move |code: &str| crate::seed::testing::holding_now(code, bay_id, user_id, now);
        let first = holding_now("WAITFIRST")
            .insert(&db)
            .await
            .expect("inserted");
        refresh(&db, &[bay_id], now).await.expect("refreshed");

        // The reservation is cancelled: that transaction's refresh writes
        // `AVAILABLE` and holds the bay until it commits.
        let cancelling = db.begin().await.expect("a transaction");
        reservation::Entity::update_many()
            .col_expr(
                reservation::Column::Status,
                Expr::value(ReservationStatus::Cancelled),
            )
            .filter(reservation::Column::Id.eq(first.id))
            .exec(&cancelling)
            .await
            .expect("cancelled");
        let events = refresh(&cancelling, &[bay_id], now)
            .await
            .expect("refreshed");
        assert!(
            matches!(&events[..], [DomainEvent::BayStatusChanged(c)] if c.bay.status == BayStatus::Available)
        );
        // Meanwhile another reservation takes the slot, in a transaction of
        // its own.
        let taking = tokio::spawn({
            let db = db.clone();
            async move {
                let txn = db.begin().await?;
                holding_now("WAITSECOND").insert(&txn).await?;
                refresh(&txn, &[bay_id], now)
                    .await
                    .map_err(|e| sea_orm::DbErr::Custom(e.message()))?;
                txn.commit().await
            }
        });
        let deadline = tokio::time::Instant::now() + std::time::Duration::from_secs(10);
        while !taking.is_finished()
            && crate::db::testing::sessions_waiting_for_a_lock(&db).await == 0
        {
            assert!(tokio::time::Instant::now() < deadline, "stuck");
            tokio::time::sleep(std::time::Duration::from_millis(5)).await;
        }
        cancelling.commit().await.expect("committed");
        taking
            .await
            .expect("the second ran")
            .expect("the second committed");

        let stored = bay::Entity::find_by_id(bay_id)
            .one(&db)
            .await
            .expect("query")
            .expect("the bay");
        assert_eq!(
            stored.status,
            BayStatus::Reserved,
            "the second reservation holds the bay now"
        );
    }
}
