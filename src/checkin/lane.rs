//! The door lane: an event's scans written set-wise, a fixed number of
//! statements per batch however many doors scanned into it.
//!
//! A batch is every scan of the event queued while the previous batch
//! committed (`crate::lanes`). In one savepoint of the batch's transaction it
//!
//! 1. reads the records already stored under the batch's nonces (a repeat
//!    is answered by its first record and records nothing);
//! 2. takes the `checkin_states` rows of every ticket the batch may admit or
//!    let out, in one upsert that creates the missing ones (as "never
//!    entered") and returns them all, in `(list, position)` order: on
//!    PostgreSQL the upsert locks each row, so batches of several replicas
//!    serialize on the tickets they share, and take them in one order;
//! 3. decides each scan in memory, in arrival order, against those states as
//!    the scans before it left them (two scans of one ticket in one batch:
//!    the first admits, the second is `ALREADY_REDEEMED` unless the list's
//!    re-entry rule lets it in);
//! 4. writes the changed states, the counters and every record, each with
//!    one multi-row statement (and, for an admitted scan carrying answers,
//!    its answers);
//! 5. reads the figures and the units left of what the batch touched, and
//!    answers each scan with them as they stood right after it.
//!
//! Once the batch has committed, its new records are handed to one publisher
//! per replica, which publishes them in the order the batches committed and
//! each batch decided them, off the lane.
//!
//! A record whose nonce a concurrent transaction (another replica) stored
//! first fails the savepoint; the batch then reads the nonces again and is
//! decided anew, the repeat now answered by the first record.

use std::collections::{BTreeMap, BTreeSet, HashMap};

use futures_util::future::BoxFuture;
use sea_orm::sea_query::{Expr, OnConflict};
use sea_orm::{
    ColumnTrait, DatabaseTransaction, DbErr, EntityTrait, QueryFilter, QuerySelect, Set, SqlErr,
    TransactionTrait,
};

use super::live::ProductCounts;
use super::redeem::{Outcome, Record, Redeemed, Ticket};
use crate::bus::{DomainEvent, SharedBus};
use crate::entities::checkin::{CheckinKind, RejectReason};
use crate::entities::{checkin, checkin_count, checkin_list, checkin_state, order_position};
use crate::error::AppError;
use crate::lanes::{Batch, InTurn, Replies};
use crate::ticketing::questions::DoorAnswers;

/// How often a batch is decided again after losing a nonce to another
/// replica before it fails (each retry answers at least one more repeat).
const ATTEMPTS: usize = 4;
/// Rows per multi-row statement: well under both databases' limits on bound
/// parameters (a door check may weigh every unit of a large order).
const CHUNK: usize = 500;

/// A scan for the door lane, judged already: what is left to decide needs
/// the ticket's state.
pub struct Request {
    pub(super) record: Record,
    pub(super) list: checkin_list::Model,
    /// This replica's stripe of the counters.
    pub(super) stripe: i32,
    pub(super) work: Work,
}

pub(super) enum Work {
    /// Record a scan refused before it reached a state.
    Reject {
        ticket: Option<Box<Ticket>>,
        reason: RejectReason,
    },
    /// An entry admits the first of `candidates` (units of one order line,
    /// or the scanned ticket alone) the list's rule lets in; an exit lets
    /// the first out.
    Admit {
        candidates: Vec<Ticket>,
        door: DoorAnswers,
    },
}

/// A scan's answer from the lane.
pub enum Reply {
    Stored(Box<Redeemed>),
    /// The scan's nonce was recorded before this batch: its first record.
    Repeat(checkin::Model),
}

/// The lanes' batch of scans, announced after each commit.
pub struct Doors {
    /// Publishes the batches' records in the order their batches committed,
    /// off the lanes: a lane goes on to its next batch, and its scanners are
    /// answered, while the bus takes the last one's (through a Redis outage,
    /// up to the publish's patience). What was handed over meanwhile goes in
    /// one publication.
    publisher: InTurn<Vec<DomainEvent>>,
}

impl Doors {
    pub fn new(bus: SharedBus) -> Self {
        Self {
            publisher: InTurn::new(move |batches: Vec<Vec<DomainEvent>>| {
                let bus = bus.clone();
                Box::pin(async move {
                    let events: Vec<DomainEvent> = batches.into_iter().flatten().collect();
                    if let Err(err) = bus.publish_all(events).await {
                        tracing::error!(
                            error = format!("{err:#}"),
                            "check-ins stored but not published"
                        );
                    }
                })
            }),
        }
    }
}

impl std::fmt::Debug for Doors {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Doors").finish_non_exhaustive()
    }
}

impl Batch for Doors {
    type Request = Request;
    type Reply = Reply;

    fn apply<'t>(
        &'t self,
        txn: &'t DatabaseTransaction,
        _event_id: i32,
        requests: Vec<Request>,
    ) -> BoxFuture<'t, Result<Replies<Reply>, AppError>> {
        Box::pin(async move {
            for _ in 0..ATTEMPTS {
                let savepoint = txn.begin().await?;
                match decide(&savepoint, &requests).await {
                    Ok(replies) => {
                        savepoint.commit().await?;
                        return Ok(replies.into_iter().map(Ok).collect());
                    }
                    Err(Lost::Nonce) => savepoint.rollback().await?,
                    Err(Lost::Db(err)) => return Err(err),
                }
            }
            Err(AppError::internal(anyhow::anyhow!(
                "the batch's nonces kept being taken"
            )))
        })
    }

    /// Hands the batch's new records to the publisher, in the order the
    /// batch decided them: each event's figures are the batch's as of that
    /// scan, so a dashboard never sees them step back, as it could when each
    /// scan's request published its own.
    fn committed<'a>(
        &'a self,
        _event_id: i32,
        replies: &'a [Result<Reply, AppError>],
    ) -> BoxFuture<'a, ()> {
        let events: Vec<_> = replies
            .iter()
            .filter_map(|reply| match reply {
                Ok(Reply::Stored(redeemed)) => super::live::recorded(redeemed),
                _ => None,
            })
            .collect();
        if !events.is_empty() {
            self.publisher.hand(events);
        }
        Box::pin(async {})
    }
}

/// Why a savepoint of the batch failed.
enum Lost {
    /// A record's nonce was stored by a concurrent transaction.
    Nonce,
    Db(AppError),
}

impl From<AppError> for Lost {
    fn from(err: AppError) -> Self {
        Self::Db(err)
    }
}

impl From<DbErr> for Lost {
    fn from(err: DbErr) -> Self {
        Self::Db(err.into())
    }
}

/// Where a ticket stands on a list, as the batch's scans leave it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) struct State {
    pub inside: bool,
    pub entries: i32,
}

impl From<&checkin_state::Model> for State {
    fn from(row: &checkin_state::Model) -> Self {
        Self {
            inside: row.inside,
            entries: row.entries,
        }
    }
}

impl State {
    /// A ticket without a state row yet.
    pub const NEVER_ENTERED: Self = Self {
        inside: false,
        entries: 0,
    };
}

/// What one scan did to its list's figures for the ticket's product.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub(super) struct Change {
    pub checked_in: i64,
    pub inside: i64,
}

/// Admits an entry to `state` if `list`'s rule allows it (always when
/// forced), changing it; `None` (and `state` unchanged) when refused.
pub(super) fn enter(state: &mut State, list: &checkin_list::Model, force: bool) -> Option<Change> {
    let allowed = force
        || list.allow_multiple_entries
        || if list.allow_entry_after_exit {
            !state.inside
        } else {
            state.entries == 0
        };
    if !allowed {
        return None;
    }
    let change = Change {
        checked_in: i64::from(state.entries == 0),
        inside: i64::from(!state.inside),
    };
    state.entries = state.entries.saturating_add(1);
    state.inside = true;
    Some(change)
}

/// Lets the holder out of `state` (an exit is always accepted).
pub(super) fn exit(state: &mut State) -> Change {
    let change = Change {
        checked_in: 0,
        inside: -i64::from(state.inside),
    };
    state.inside = false;
    change
}

/// A state the batch read, and what its scans made of it.
struct Row {
    product_id: i32,
    before: State,
    now: State,
    last_entry_at: Option<chrono::DateTime<chrono::Utc>>,
    changed: bool,
}

/// How the batch answers one request.
enum Plan {
    Decide,
    /// Its nonce's first record, stored before this batch.
    Repeat(checkin::Model),
    /// Its nonce is an earlier request's of this batch.
    SameAs(usize),
}

/// One decided scan, before its record is written.
struct Decided<'r> {
    request: &'r Request,
    ticket: Option<Ticket>,
    reason: Option<RejectReason>,
    forced: bool,
    change: Change,
    door: Option<&'r DoorAnswers>,
}

async fn decide(db: &DatabaseTransaction, requests: &[Request]) -> Result<Vec<Reply>, Lost> {
    let plans = plan(db, requests).await?;
    let mut rows = take_states(db, requests, &plans).await?;

    let mut decided: Vec<Decided<'_>> = Vec::new();
    let mut slot_of = vec![None; requests.len()];
    for (index, (request, plan)) in requests.iter().zip(&plans).enumerate() {
        if !matches!(plan, Plan::Decide) {
            continue;
        }
        slot_of[index] = Some(decided.len());
        decided.push(decide_one(request, &mut rows)?);
    }

    write_states(db, requests, &rows).await?;
    for scan in &decided {
        if scan.reason.is_none()
            && let (Some(door), Some(ticket)) = (scan.door, &scan.ticket)
        {
            door.store(db, &ticket.position).await?;
        }
    }
    count(db, &decided).await?;
    let records = record(db, &decided).await?;
    let figures = figures_after(db, &decided).await?;
    let remaining = remaining_after(db, &decided).await?;

    let mut stored: Vec<Option<Redeemed>> = decided
        .into_iter()
        .zip(records)
        .zip(figures.into_iter().zip(remaining))
        .map(|((scan, checkin), (counts, remaining))| {
            let outcome = match (scan.reason, scan.ticket) {
                (None, Some(ticket)) => Outcome::Accepted { checkin, ticket },
                (reason, ticket) => Outcome::Rejected {
                    reason: reason.unwrap_or(RejectReason::Error),
                    checkin: Some(checkin),
                    ticket,
                },
            };
            Some(Redeemed {
                outcome,
                fresh: true,
                remaining,
                counts,
            })
        })
        .collect();
    // Repeats within the batch first, copying their first's answer, which
    // the second pass then hands over.
    let mut replies: Vec<Option<Reply>> = plans
        .iter()
        .map(|plan| match plan {
            Plan::SameAs(first) => slot_of[*first]
                .and_then(|slot| stored.get(slot))
                .and_then(Option::as_ref)
                .map(|answer| {
                    Reply::Stored(Box::new(Redeemed {
                        fresh: false,
                        ..answer.clone()
                    }))
                }),
            Plan::Repeat(_) | Plan::Decide => None,
        })
        .collect();
    for (index, plan) in plans.into_iter().enumerate() {
        match plan {
            Plan::Repeat(first) => replies[index] = Some(Reply::Repeat(first)),
            Plan::Decide => {
                replies[index] = slot_of[index]
                    .and_then(|slot| stored.get_mut(slot))
                    .and_then(Option::take)
                    .map(|answer| Reply::Stored(Box::new(answer)));
            }
            Plan::SameAs(_) => {}
        }
    }
    replies
        .into_iter()
        .map(|reply| {
            reply.ok_or_else(|| {
                Lost::Db(AppError::internal(anyhow::anyhow!(
                    "a scan went unanswered"
                )))
            })
        })
        .collect()
}

fn nonce_of(request: &Request) -> Option<(&str, &str)> {
    request
        .record
        .nonce
        .as_deref()
        .map(|n| (request.record.scope.as_str(), n))
}

/// Step 1: which requests repeat a nonce recorded earlier or earlier in the
/// batch. One read, for the batch's nonces.
async fn plan(db: &DatabaseTransaction, requests: &[Request]) -> Result<Vec<Plan>, Lost> {
    let keyed: Vec<(&str, &str)> = requests.iter().filter_map(nonce_of).collect();
    let mut earlier: HashMap<(String, String), checkin::Model> = HashMap::new();
    let stored = crate::db::find_by_pairs::<checkin::Entity, _, _>(
        db,
        (checkin::Column::NonceScope, "text"),
        (checkin::Column::Nonce, "text"),
        &keyed,
    );
    for record in stored.await? {
        if let (Some(scope), Some(nonce)) = (record.nonce_scope.clone(), record.nonce.clone()) {
            earlier.insert((scope, nonce), record);
        }
    }
    let mut first_of: HashMap<(&str, &str), usize> = HashMap::new();
    Ok(requests
        .iter()
        .enumerate()
        .map(|(index, request)| {
            let Some(key) = nonce_of(request) else {
                return Plan::Decide;
            };
            if let Some(first) = earlier.get(&(key.0.to_owned(), key.1.to_owned())) {
                return Plan::Repeat(first.clone());
            }
            match first_of.get(&key) {
                Some(first) => Plan::SameAs(*first),
                None => {
                    first_of.insert(key, index);
                    Plan::Decide
                }
            }
        })
        .collect())
}

/// Step 2: the states of every ticket the batch's entries and exits may
/// change, created where missing, in `(list, position)` order.
async fn take_states(
    db: &DatabaseTransaction,
    requests: &[Request],
    plans: &[Plan],
) -> Result<BTreeMap<(i32, i32), Row>, Lost> {
    let mut wanted: BTreeMap<(i32, i32), i32> = BTreeMap::new();
    let mut now = None;
    for (request, plan) in requests.iter().zip(plans) {
        if let (Plan::Decide, Work::Admit { candidates, .. }) = (plan, &request.work) {
            for ticket in candidates {
                wanted.insert(
                    (request.list.id, ticket.position.id),
                    ticket.position.product_id,
                );
            }
            now = now.max(Some(request.record.now));
        }
    }
    let mut rows = BTreeMap::new();
    let Some(now) = now else {
        return Ok(rows);
    };
    let wanted: Vec<_> = wanted.into_iter().collect();
    for chunk in wanted.chunks(CHUNK) {
        use checkin_state::Column as C;
        let never_entered =
            chunk.iter().map(
                |((list_id, position_id), product_id)| checkin_state::ActiveModel {
                    list_id: Set(*list_id),
                    position_id: Set(*position_id),
                    product_id: Set(*product_id),
                    inside: Set(false),
                    entries: Set(0),
                    last_entry_at: Set(None),
                    updated_at: Set(now),
                    previously_inside: Set(false),
                },
            );
        // An update that changes nothing, so that every row is returned
        // (and, on PostgreSQL, locked until the batch commits).
        let mut keep = OnConflict::columns([C::ListId, C::PositionId]);
        keep.value(
            C::ProductId,
            Expr::col((checkin_state::Entity, C::ProductId)),
        );
        for state in checkin_state::Entity::insert_many(never_entered)
            .on_conflict(keep)
            .exec_with_returning(db)
            .await?
        {
            let read = State::from(&state);
            rows.insert(
                (state.list_id, state.position_id),
                Row {
                    product_id: state.product_id,
                    before: read,
                    now: read,
                    last_entry_at: state.last_entry_at,
                    changed: false,
                },
            );
        }
    }
    Ok(rows)
}

/// Step 3: one scan, against the states as the scans before it left them.
fn decide_one<'r>(
    request: &'r Request,
    rows: &mut BTreeMap<(i32, i32), Row>,
) -> Result<Decided<'r>, AppError> {
    let record = &request.record;
    let (candidates, door) = match &request.work {
        Work::Reject { ticket, reason } => {
            return Ok(Decided {
                request,
                ticket: ticket.as_deref().cloned(),
                reason: Some(*reason),
                forced: false,
                change: Change::default(),
                door: None,
            });
        }
        Work::Admit { candidates, door } => (candidates, door),
    };
    let mut chosen = None;
    for (index, ticket) in candidates.iter().enumerate() {
        let row = rows
            .get_mut(&(request.list.id, ticket.position.id))
            .ok_or_else(|| AppError::internal(anyhow::anyhow!("a ticket's state was not read")))?;
        let change = match record.kind {
            CheckinKind::Entry => enter(&mut row.now, &request.list, record.force),
            CheckinKind::Exit => Some(exit(&mut row.now)),
        };
        if let Some(change) = change {
            if record.kind == CheckinKind::Entry {
                row.last_entry_at = Some(record.scanned_at);
            }
            row.changed = true;
            chosen = Some((index, change));
            break;
        }
    }
    // A forced entry and an exit are always admitted.
    let reason = chosen.is_none().then_some(RejectReason::AlreadyRedeemed);
    let (index, change) = chosen.unwrap_or_default();
    let ticket = candidates
        .get(index)
        .cloned()
        .ok_or_else(|| AppError::internal(anyhow::anyhow!("no ticket to admit")))?;
    Ok(Decided {
        request,
        ticket: Some(ticket),
        reason,
        forced: record.force,
        change,
        door: Some(door),
    })
}

/// Step 4a: the states the batch changed, as its last scan of each left it.
async fn write_states(
    db: &DatabaseTransaction,
    requests: &[Request],
    rows: &BTreeMap<(i32, i32), Row>,
) -> Result<(), Lost> {
    use checkin_state::Column as C;
    let Some(now) = requests.iter().map(|r| r.record.now).max() else {
        return Ok(());
    };
    let changed: Vec<_> = rows.iter().filter(|(_, row)| row.changed).collect();
    for chunk in changed.chunks(CHUNK) {
        let states = chunk
            .iter()
            .map(|((list_id, position_id), row)| checkin_state::ActiveModel {
                list_id: Set(*list_id),
                position_id: Set(*position_id),
                product_id: Set(row.product_id),
                inside: Set(row.now.inside),
                entries: Set(row.now.entries),
                last_entry_at: Set(row.last_entry_at),
                updated_at: Set(now),
                previously_inside: Set(row.before.inside),
            });
        checkin_state::Entity::insert_many(states)
            .on_conflict(
                OnConflict::columns([C::ListId, C::PositionId])
                    .update_columns([
                        C::Inside,
                        C::Entries,
                        C::LastEntryAt,
                        C::UpdatedAt,
                        C::PreviouslyInside,
                    ])
                    .to_owned(),
            )
            .exec_without_returning(db)
            .await?;
    }
    Ok(())
}

/// Step 4b: the batch's changes to the counters, summed per list, product
/// and stripe, added in one statement.
async fn count(db: &DatabaseTransaction, decided: &[Decided<'_>]) -> Result<(), Lost> {
    use checkin_count::Column as C;
    let mut sums: BTreeMap<(i32, i32, i32), Change> = BTreeMap::new();
    for scan in decided {
        if let Some(ticket) = &scan.ticket
            && scan.change != Change::default()
        {
            let key = (
                scan.request.list.id,
                ticket.position.product_id,
                scan.request.stripe,
            );
            let sum = sums.entry(key).or_default();
            sum.checked_in += scan.change.checked_in;
            sum.inside += scan.change.inside;
        }
    }
    let rows: Vec<_> = sums
        .into_iter()
        .filter(|(_, sum)| *sum != Change::default())
        .map(
            |((list_id, product_id, stripe), sum)| checkin_count::ActiveModel {
                list_id: Set(list_id),
                product_id: Set(product_id),
                stripe: Set(stripe),
                checked_in: Set(sum.checked_in),
                inside: Set(sum.inside),
            },
        )
        .collect();
    if rows.is_empty() {
        return Ok(());
    }
    let mut add = OnConflict::columns([C::ListId, C::ProductId, C::Stripe]);
    add.values([
        (
            C::CheckedIn,
            Expr::cust("checkin_counts.checked_in + excluded.checked_in"),
        ),
        (
            C::Inside,
            Expr::cust("checkin_counts.inside + excluded.inside"),
        ),
    ]);
    checkin_count::Entity::insert_many(rows)
        .on_conflict(add)
        .exec_without_returning(db)
        .await?;
    Ok(())
}

/// Step 4c: every decided scan's record, in one statement, in their order.
async fn record(
    db: &DatabaseTransaction,
    decided: &[Decided<'_>],
) -> Result<Vec<checkin::Model>, Lost> {
    if decided.is_empty() {
        return Ok(Vec::new());
    }
    let rows = decided.iter().map(|scan| {
        scan.request.record.row(
            &scan.request.list,
            scan.ticket.as_ref().map(|t| t.position.id),
            scan.reason,
            scan.forced,
        )
    });
    let mut records = match checkin::Entity::insert_many(rows)
        .exec_with_returning(db)
        .await
    {
        Ok(records) => records,
        Err(err) if matches!(err.sql_err(), Some(SqlErr::UniqueConstraintViolation(_))) => {
            return Err(Lost::Nonce);
        }
        Err(err) => return Err(err.into()),
    };
    // Ids are given in the order of the rows; `RETURNING` promises no order.
    records.sort_by_key(|r| r.id);
    if records.len() != decided.len() {
        return Err(Lost::Db(AppError::internal(anyhow::anyhow!(
            "a scan's record was not stored"
        ))));
    }
    Ok(records)
}

/// Step 5a: each scan's list's figures for its ticket's product right after
/// it: the figures after the batch, less what the later scans changed.
async fn figures_after(
    db: &DatabaseTransaction,
    decided: &[Decided<'_>],
) -> Result<Vec<Option<ProductCounts>>, Lost> {
    let keys: BTreeSet<(i32, i32)> = decided
        .iter()
        .filter_map(|s| Some((s.request.list.id, s.ticket.as_ref()?.position.product_id)))
        .collect();
    let mut totals: HashMap<(i32, i32), Change> = HashMap::new();
    if !keys.is_empty() {
        let lists: BTreeSet<i32> = keys.iter().map(|k| k.0).collect();
        let products: BTreeSet<i32> = keys.iter().map(|k| k.1).collect();
        let sums: Vec<(i32, i32, i64, i64)> = checkin_count::Entity::find()
            .select_only()
            .column(checkin_count::Column::ListId)
            .column(checkin_count::Column::ProductId)
            // PostgreSQL sums `BIGINT`s into `NUMERIC`.
            .column_as(Expr::cust("CAST(SUM(checked_in) AS BIGINT)"), "checked_in")
            .column_as(Expr::cust("CAST(SUM(inside) AS BIGINT)"), "inside")
            .filter(checkin_count::Column::ListId.is_in(lists))
            .filter(checkin_count::Column::ProductId.is_in(products))
            .group_by(checkin_count::Column::ListId)
            .group_by(checkin_count::Column::ProductId)
            .into_tuple()
            .all(db)
            .await?;
        for (list_id, product_id, checked_in, inside) in sums {
            totals.insert((list_id, product_id), Change { checked_in, inside });
        }
    }
    let mut figures = vec![None; decided.len()];
    for (index, scan) in decided.iter().enumerate().rev() {
        let Some(ticket) = &scan.ticket else {
            continue;
        };
        let product_id = ticket.position.product_id;
        let running = totals
            .entry((scan.request.list.id, product_id))
            .or_default();
        figures[index] = Some(ProductCounts {
            product_id,
            checked_in: running.checked_in,
            inside: running.inside,
        });
        running.checked_in -= scan.change.checked_in;
        running.inside -= scan.change.inside;
    }
    Ok(figures)
}

/// Step 5b: how many units of each scan's order line had not entered its
/// list right after it: the units left after the batch, plus those the later
/// scans let in first. Two bounded lookups, as `super::redeem::remaining`.
async fn remaining_after(
    db: &DatabaseTransaction,
    decided: &[Decided<'_>],
) -> Result<Vec<Option<i64>>, Lost> {
    // An order line: an order and a product.
    let line = |t: &Ticket| (t.order.id, t.position.product_id);
    let lines: BTreeSet<(i32, i32)> = decided
        .iter()
        .filter_map(|s| s.ticket.as_ref().map(line))
        .collect();
    if lines.is_empty() {
        return Ok(vec![None; decided.len()]);
    }
    let orders: BTreeSet<i32> = lines.iter().map(|l| l.0).collect();
    let products: BTreeSet<i32> = lines.iter().map(|l| l.1).collect();
    let mut units: HashMap<(i32, i32), Vec<i32>> = HashMap::new();
    let found: Vec<(i32, i32, i32)> = order_position::Entity::find()
        .select_only()
        .column(order_position::Column::Id)
        .column(order_position::Column::OrderId)
        .column(order_position::Column::ProductId)
        .filter(order_position::Column::OrderId.is_in(orders))
        .filter(order_position::Column::ProductId.is_in(products))
        .filter(order_position::Column::Canceled.eq(false))
        .into_tuple()
        .all(db)
        .await?;
    for (id, order_id, product_id) in found {
        if lines.contains(&(order_id, product_id)) {
            units.entry((order_id, product_id)).or_default().push(id);
        }
    }
    let lists: BTreeSet<i32> = decided.iter().map(|s| s.request.list.id).collect();
    let pairs: Vec<(i32, i32)> = lists
        .iter()
        .flat_map(|&list| units.values().flatten().map(move |&unit| (list, unit)))
        .collect();
    let mut entered: BTreeSet<(i32, i32)> = BTreeSet::new();
    for chunk in pairs.chunks(CHUNK) {
        entered.extend(
            super::redeem::states_of(db, chunk)
                .await?
                .into_iter()
                .filter(|state| state.entries > 0)
                .map(|state| (state.list_id, state.position_id)),
        );
    }
    let mut left: HashMap<(i32, (i32, i32)), i64> = HashMap::new();
    let mut answers = vec![None; decided.len()];
    for (index, scan) in decided.iter().enumerate().rev() {
        let Some(ticket) = &scan.ticket else {
            continue;
        };
        let list_id = scan.request.list.id;
        let key = (list_id, line(ticket));
        let running = left.entry(key).or_insert_with(|| {
            let of_line = units.get(&key.1).map_or(&[][..], Vec::as_slice);
            let inside = of_line
                .iter()
                .filter(|id| entered.contains(&(list_id, **id)))
                .count();
            i64::try_from(of_line.len() - inside).unwrap_or(i64::MAX)
        });
        answers[index] = Some(*running);
        *running += scan.change.checked_in;
    }
    Ok(answers)
}

#[cfg(test)]
pub(super) mod tests {
    use super::*;

    /// A list of event 7 admitting every product, with these re-entry rules.
    pub(in crate::checkin) fn list(after_exit: bool, multiple: bool) -> checkin_list::Model {
        let at = chrono::DateTime::<chrono::Utc>::default();
        checkin_list::Model {
            id: 1,
            event_id: 7,
            sub_event_id: None,
            name: "Main".into(),
            all_products: true,
            include_pending: false,
            allow_multiple_entries: multiple,
            allow_entry_after_exit: after_exit,
            questions: "[]".into(),
            created_at: at,
            updated_at: at,
        }
    }

    const NEW: State = State::NEVER_ENTERED;

    #[test]
    fn two_entries_of_one_ticket_in_one_batch_admit_it_once() {
        let once = list(true, false);
        let mut state = NEW;
        assert_eq!(
            enter(&mut state, &once, false),
            Some(Change {
                checked_in: 1,
                inside: 1
            })
        );
        assert_eq!(enter(&mut state, &once, false), None);
        assert_eq!(
            state,
            State {
                inside: true,
                entries: 1
            }
        );
    }

    #[test]
    fn an_exit_between_lets_in_again_only_where_the_list_allows_it() {
        let mut state = NEW;
        let after_exit = list(true, false);
        assert!(enter(&mut state, &after_exit, false).is_some());
        assert_eq!(
            exit(&mut state),
            Change {
                checked_in: 0,
                inside: -1
            }
        );
        assert_eq!(exit(&mut state), Change::default(), "out already");
        assert_eq!(
            enter(&mut state, &after_exit, false),
            Some(Change {
                checked_in: 0,
                inside: 1
            })
        );

        let mut state = NEW;
        let once = list(false, false);
        assert!(enter(&mut state, &once, false).is_some());
        exit(&mut state);
        assert_eq!(enter(&mut state, &once, false), None);
        assert_eq!(
            enter(&mut state, &once, true),
            Some(Change {
                checked_in: 0,
                inside: 1
            }),
            "forced"
        );
        assert_eq!(state.entries, 2);
    }

    #[test]
    fn multiple_entries_and_forced_ones_count_the_holder_once() {
        let mut state = NEW;
        let multiple = list(false, true);
        assert!(enter(&mut state, &multiple, false).is_some());
        assert_eq!(enter(&mut state, &multiple, false), Some(Change::default()));
        assert_eq!(
            enter(&mut state, &list(true, false), true),
            Some(Change::default())
        );
        assert_eq!(
            state,
            State {
                inside: true,
                entries: 3
            }
        );
    }
}
