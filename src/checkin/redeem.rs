//! Redeeming a ticket at a door: one scan, its outcome, and its record.
//!
//! The outcome is decided in two steps. First the ticket is judged against the
//! list by what it is ([`judge`]: its event, order, date and product), and the
//! questions the door must ask are checked, which needs no lock. Then the scan
//! goes to the event's door lane (`super::lane`), which decides entries and
//! exits against the tickets' `checkin_states` rows, for a whole batch of scans
//! at once, and records every scan of the batch, rejected ones too, in the
//! transaction that changed the states and counters.
//!
//! A scan with a nonce is recorded under its scanner's nonce scope, unique in
//! the table: the lane reads the batch's nonces first, so a repeat finds the
//! first record and is answered as it was, records nothing and is not
//! announced; a repeat in the same batch gets the answer of its first.
//!
//! A scan costs the writer only its share of its batch's statements; the lists
//! and the scanner come from the door cache (`super::cache`), and the ticket is
//! read on the readers, one statement. The lane answers each scan with the figures
//! and the units left as they stood right after it.

use std::collections::{BTreeMap, HashMap};

use chrono::{DateTime, Utc};
use std::sync::Arc;

use sea_orm::{
    ColumnTrait, ConnectionTrait, EntityTrait, QueryFilter, QueryOrder, QuerySelect, Set,
};

use super::access::{self, Operator};
use super::cache::DoorList;
use super::lane::{self, Reply, Work};
use super::live::ProductCounts;
use crate::auth::Principal;
use crate::entities::checkin::{CheckinKind, RejectReason};
use crate::entities::order::OrderStatus;
use crate::entities::{
    checkin, checkin_list, checkin_state, order, order_position, product, question, ticket_block,
};
use crate::error::AppError;
use crate::services::ServiceContext;
use crate::ticketing::questions::{AnswerInput, DoorAnswers};
use crate::ticketing::tickets;

/// Most lists one scan may name.
const MAX_LISTS: usize = 10;
/// How far ahead of the server's clock a scan time may be.
const CLOCK_SKEW: chrono::TimeDelta = chrono::TimeDelta::minutes(5);

/// A scan, as a door sends it.
#[derive(Debug, Clone, Default)]
pub struct Scan {
    /// What the QR code holds: a ticket's secret, or its olympic ticket key.
    pub secret: String,
    pub list_ids: Vec<i32>,
    pub kind: Option<CheckinKind>,
    /// Where a person or team token scans; a scanner scans at its own gate.
    pub gate: Option<String>,
    /// When the scan happened (an upload's); now when not given.
    pub scanned_at: Option<DateTime<Utc>>,
    pub nonce: Option<String>,
    /// Record a scan that already happened, even where it would be rejected.
    pub force: bool,
    /// Answers by text: the list's free-text questions (and, for scanners
    /// that know only texts, the event's questions of that text).
    pub answers: BTreeMap<String, String>,
    /// Answers to the event's questions asked at check-in, by question id.
    pub question_answers: Vec<AnswerInput>,
    pub note: Option<String>,
    /// Part of an upload, which counted against the rate limit as a whole.
    pub counted_already: bool,
}

/// The ticket a scan found, with what a door shows.
#[derive(Debug, Clone)]
pub struct Ticket {
    pub position: order_position::Model,
    pub order: order::Model,
    pub product: product::Model,
    /// Blocked by the organizer (`ticketing::tickets`).
    pub blocked: bool,
}

/// What a scan came to.
#[derive(Debug, Clone)]
pub enum Outcome {
    Accepted {
        checkin: checkin::Model,
        ticket: Ticket,
    },
    /// Nothing was recorded: scan again with answers to these questions.
    NeedsAnswers {
        questions: Vec<String>,
        /// The event's questions the ticket has not answered.
        asked: Vec<question::Model>,
        ticket: Ticket,
    },
    Rejected {
        reason: RejectReason,
        /// `None` when nothing could be recorded (no list matched the event).
        checkin: Option<checkin::Model>,
        ticket: Option<Ticket>,
    },
}

impl Outcome {
    /// The record a subscription announces, if one was written.
    pub fn checkin(&self) -> Option<&checkin::Model> {
        match self {
            Self::Accepted { checkin, .. } => Some(checkin),
            Self::Rejected { checkin, .. } => checkin.as_ref(),
            Self::NeedsAnswers { .. } => None,
        }
    }

    pub fn ticket(&self) -> Option<&Ticket> {
        match self {
            Self::Accepted { ticket, .. } | Self::NeedsAnswers { ticket, .. } => Some(ticket),
            Self::Rejected { ticket, .. } => ticket.as_ref(),
        }
    }
}

/// A scan's outcome and whether it was recorded just now (a replayed nonce
/// was not: nothing is announced for it), with what its door shows.
#[derive(Debug, Clone)]
pub struct Redeemed {
    pub outcome: Outcome,
    pub fresh: bool,
    /// How many units of the ticket's order line had not entered the list
    /// right after the scan (when the scan has a record and a ticket).
    pub remaining: Option<i64>,
    /// The list's figures for the ticket's product right after the scan,
    /// read in its batch (`None`: not read, e.g. for a repeat).
    pub counts: Option<ProductCounts>,
}

/// Judges `ticket` on `list` by what it is; re-entry is decided later, by
/// the database.
///
/// # Errors
/// The reason the list does not admit the ticket.
pub fn judge(
    list: &checkin_list::Model,
    admitted: &[i32],
    ticket: &Ticket,
) -> Result<(), RejectReason> {
    if ticket.order.event_id != list.event_id {
        return Err(RejectReason::Invalid);
    }
    if ticket.position.canceled
        || matches!(
            ticket.order.status,
            OrderStatus::Canceled | OrderStatus::Expired
        )
    {
        return Err(RejectReason::Canceled);
    }
    if ticket.blocked {
        return Err(RejectReason::Blocked);
    }
    if list
        .sub_event_id
        .is_some_and(|date| ticket.position.sub_event_id != Some(date))
    {
        return Err(RejectReason::InvalidTime);
    }
    if !list.all_products && !admitted.contains(&ticket.position.product_id) {
        return Err(RejectReason::Product);
    }
    if ticket.order.status == OrderStatus::Pending && !list.include_pending {
        return Err(RejectReason::Unpaid);
    }
    Ok(())
}

/// Whether a reason means the ticket is not for this list at all (rather than
/// for it, but refused now): a scan naming several lists picks the one that
/// covers the ticket.
fn covers(verdict: Result<(), RejectReason>) -> bool {
    !matches!(
        verdict,
        Err(RejectReason::Invalid | RejectReason::InvalidTime | RejectReason::Product)
    )
}

/// The shape of what a scanner may send as a secret: a ticket key (64
/// hexadecimal digits) or a secret (URL-safe base64 characters).
enum Code<'a> {
    TicketKey(&'a str),
    Secret(&'a str),
    Malformed,
}

fn classify(secret: &str) -> Code<'_> {
    let secret = secret.trim();
    if secret.len() == 64 && secret.bytes().all(|b| b.is_ascii_hexdigit()) {
        Code::TicketKey(secret)
    } else if (16..=200).contains(&secret.len())
        && secret
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
    {
        Code::Secret(secret)
    } else {
        Code::Malformed
    }
}

/// Scans a ticket at `scan.list_ids` (lists of one event).
///
/// # Errors
/// `BAD_USER_INPUT` on no or unknown lists, lists of several events, a scan
/// time in the future, or an overlong nonce, gate or note; `RATE_LIMITED`
/// beyond the scanner's scans per minute; as [`access::door`]. A ticket that
/// is not admitted is an [`Outcome::Rejected`], not an error.
pub async fn redeem(
    services: &ServiceContext,
    principal: &Principal,
    now: DateTime<Utc>,
    scan: Scan,
) -> Result<Redeemed, AppError> {
    let reader = &services.reader;
    if scan.list_ids.is_empty() || scan.list_ids.len() > MAX_LISTS {
        return Err(AppError::bad_input(
            "listIds",
            format!("name 1 to {MAX_LISTS} check-in lists"),
        ));
    }
    let mut wanted = scan.list_ids.clone();
    wanted.sort_unstable();
    wanted.dedup();
    let mut lists = Vec::with_capacity(wanted.len());
    for id in &wanted {
        if let Some(list) = services.doors.list(reader, *id).await? {
            lists.push(list);
        }
    }
    // Without a known list, a scanner is checked against its own event and
    // anyone else against none, so the refusal tells nothing about ids.
    let event_id = lists.first().map_or_else(
        || match principal {
            Principal::Scanner(scanner) => scanner.event_id,
            _ => 0,
        },
        |l| l.list.event_id,
    );
    // Who scans is checked before anything about the lists is told.
    let (_, operator) = access::scanning(reader, &services.doors, principal, event_id).await?;
    if lists.len() != wanted.len() || lists.iter().any(|l| l.list.event_id != event_id) {
        return Err(AppError::bad_input(
            "listIds",
            "every list must exist and belong to one event",
        ));
    }
    let scope = operator.scope();
    if !scan.counted_already {
        services
            .limiter
            .hit(&format!("checkin:{scope}"), services.checkin.scan_limit())?;
    }
    let nonce = match scan.nonce.as_deref().map(str::trim) {
        None | Some("") => None,
        Some(n) if n.len() <= 100 => Some(n.to_owned()),
        Some(_) => return Err(AppError::bad_input("nonce", "use at most 100 characters")),
    };
    // A repeated nonce is answered in the lane, by the record it finds
    // there: a repeat costs the first scan nothing.
    let scanned_at = scan.scanned_at.unwrap_or(now);
    if scanned_at > now + CLOCK_SKEW {
        return Err(AppError::bad_input(
            "scannedAt",
            "the scan time is in the future",
        ));
    }
    let gate = match operator.gate() {
        Some(gate) => gate.to_owned(),
        None => super::scanners::parse_gate(scan.gate.as_deref().unwrap_or("main"))?,
    };
    let note = scan
        .note
        .map(|n| n.trim().to_owned())
        .filter(|n| !n.is_empty());
    if note.as_ref().is_some_and(|n| n.chars().count() > 500) {
        return Err(AppError::bad_input("note", "use at most 500 characters"));
    }
    if scan.answers.len() > 20
        || scan
            .answers
            .iter()
            .any(|(q, a)| q.chars().count() > 200 || a.chars().count() > 1000)
    {
        return Err(AppError::bad_input(
            "answers",
            "up to 20 answers of at most 1000 characters",
        ));
    }
    let record = Record {
        kind: scan.kind.unwrap_or(CheckinKind::Entry),
        operator,
        scope,
        nonce,
        gate,
        note,
        answers: serde_json::to_string(&scan.answers).unwrap_or_else(|_| "{}".to_owned()),
        scanned_at,
        now,
        force: scan.force,
    };

    // Lists in the order given: the first is where an unknown secret is recorded.
    let mut ordered: Vec<Arc<DoorList>> = Vec::with_capacity(wanted.len());
    for id in &scan.list_ids {
        if let Some(list) = lists.iter().find(|l| l.list.id == *id)
            && !ordered.iter().any(|l| l.list.id == *id)
        {
            ordered.push(list.clone());
        }
    }
    let first = ordered[0].list.clone();
    let Some((ticket, revoked)) = find_ticket(reader, &scan.secret).await? else {
        return record
            .rejected(services, first, None, RejectReason::Invalid)
            .await;
    };
    if revoked && !record.force {
        // Only a ticket of the lists' event is told apart from an unknown code.
        let reason = if ticket.order.event_id == first.event_id {
            RejectReason::Revoked
        } else {
            RejectReason::Invalid
        };
        let ticket = (reason == RejectReason::Revoked).then_some(ticket);
        return record.rejected(services, first, ticket, reason).await;
    }
    let mut verdicts = Vec::with_capacity(ordered.len());
    for door in &ordered {
        let (list, admitted) = (&door.list, &door.products);
        let mut verdict = judge(list, admitted, &ticket);
        let mut units = Vec::new();
        // A door for other products (an add-on, a meal) admits the holder
        // through a unit of one of them bought in the same order.
        if verdict == Err(RejectReason::Product) {
            units = units_in_order(reader, list, admitted, &ticket).await?;
            if let Some(unit) = units.first() {
                verdict = judge(list, admitted, unit);
            }
        }
        verdicts.push((list, verdict, units));
    }
    let covering: Vec<_> = verdicts.iter().filter(|(_, v, _)| covers(*v)).collect();
    let (list, verdict, mut units) = match covering.as_slice() {
        [] => verdicts.swap_remove(0),
        [one] => (one.0, one.1, one.2.clone()),
        _ => {
            return record
                .rejected(services, first, Some(ticket), RejectReason::Ambiguous)
                .await;
        }
    };
    let list = list.clone();
    // A ticket of another event is unknown here, and stays so even forced.
    if verdict == Err(RejectReason::Invalid) {
        return record
            .rejected(services, list, None, RejectReason::Invalid)
            .await;
    }
    if let Err(reason) = verdict
        && !record.force
    {
        return record.rejected(services, list, Some(ticket), reason).await;
    }
    let asked = if record.kind == CheckinKind::Exit {
        // Exits never ask.
        Ok(DoorAnswers::default())
    } else {
        let event_asks = services.doors.asks_at_door(reader, list.event_id).await?;
        // A door check asks about the unit it is about to admit, which the
        // lane takes first when the states still let it in (`super::questions`).
        if event_asks && units.len() > 1 {
            let first = first_to_enter(reader, &list, &units, record.force).await?;
            units[..=first].rotate_right(1);
        }
        let asked_of = units.first().unwrap_or(&ticket);
        super::questions::ask(
            reader,
            &list,
            asked_of,
            record.force,
            &scan.answers,
            &scan.question_answers,
            event_asks,
        )
        .await?
    };
    let door = match asked {
        Ok(door) => door,
        Err(missing) => {
            // A repeat of a scan that was answered (and so is asked no more)
            // gets its first answer; only this rare path looks it up here.
            if let Some(nonce) = &record.nonce
                && let Some(first) = by_nonce(reader, &record.scope, nonce).await?
            {
                return repeated(reader, first).await;
            }
            return Ok(Redeemed {
                outcome: Outcome::NeedsAnswers {
                    questions: missing.texts,
                    asked: missing.questions,
                    ticket,
                },
                fresh: false,
                remaining: None,
                counts: None,
            });
        }
    };
    let candidates = if units.is_empty() {
        vec![ticket]
    } else {
        units
    };
    record.admit(services, list, candidates, door).await
}

/// What every record of one scan shares.
#[derive(Debug, Clone)]
pub(super) struct Record {
    pub(super) kind: CheckinKind,
    operator: Operator,
    pub(super) scope: String,
    pub(super) nonce: Option<String>,
    gate: String,
    note: Option<String>,
    answers: String,
    pub(super) scanned_at: DateTime<Utc>,
    pub(super) now: DateTime<Utc>,
    pub(super) force: bool,
}

impl Record {
    pub(super) fn row(
        &self,
        list: &checkin_list::Model,
        position_id: Option<i32>,
        reason: Option<RejectReason>,
        forced: bool,
    ) -> checkin::ActiveModel {
        checkin::ActiveModel {
            event_id: Set(list.event_id),
            list_id: Set(list.id),
            position_id: Set(position_id),
            kind: Set(self.kind),
            successful: Set(reason.is_none()),
            reason: Set(reason),
            forced: Set(forced),
            scanner_id: Set(self.operator.scanner_id()),
            user_id: Set(self.operator.user_id()),
            team_api_token_id: Set(self.operator.token_id()),
            gate: Set(self.gate.clone()),
            note: Set(self.note.clone()),
            answers: Set(self.answers.clone()),
            nonce_scope: Set(self.nonce.as_ref().map(|_| self.scope.clone())),
            nonce: Set(self.nonce.clone()),
            datetime: Set(self.scanned_at),
            created_at: Set(self.now),
            ..Default::default()
        }
    }

    /// Records a rejected scan, in the event's lane.
    async fn rejected(
        self,
        services: &ServiceContext,
        list: checkin_list::Model,
        ticket: Option<Ticket>,
        reason: RejectReason,
    ) -> Result<Redeemed, AppError> {
        let ticket = ticket.map(Box::new);
        self.submit(services, list, Work::Reject { ticket, reason })
            .await
    }

    /// Admits or lets out the first of `candidates` (units of one order line,
    /// or the scanned ticket alone) the list's rule allows, in the event's
    /// lane (`super::lane`), and records the scan: an entry is
    /// `ALREADY_REDEEMED` when none is left.
    async fn admit(
        self,
        services: &ServiceContext,
        list: checkin_list::Model,
        candidates: Vec<Ticket>,
        door: DoorAnswers,
    ) -> Result<Redeemed, AppError> {
        self.submit(services, list, Work::Admit { candidates, door })
            .await
    }

    async fn submit(
        self,
        services: &ServiceContext,
        list: checkin_list::Model,
        work: Work,
    ) -> Result<Redeemed, AppError> {
        let event_id = list.event_id;
        let request = lane::Request {
            record: self,
            list,
            stripe: services.doors.stripe(),
            work,
        };
        match services
            .checkin_lanes
            .submit(&services.lanes_db, event_id, request)
            .await?
        {
            Reply::Stored(redeemed) => Ok(*redeemed),
            Reply::Repeat(first) => repeated(&services.reader, first).await,
        }
    }
}

/// The answer to a nonce recorded before: its first answer, nothing new.
async fn repeated(db: &impl ConnectionTrait, first: checkin::Model) -> Result<Redeemed, AppError> {
    let outcome = replay(db, first).await?;
    let remaining = match (outcome.checkin(), outcome.ticket()) {
        (Some(checkin), Some(ticket)) => Some(remaining(db, checkin.list_id, ticket).await?),
        _ => None,
    };
    Ok(Redeemed {
        outcome,
        fresh: false,
        remaining,
        counts: None,
    })
}

/// The live units of `list`'s products in `ticket`'s order, for its date:
/// the holder's own first (same attendee name), then the others.
async fn units_in_order(
    db: &impl ConnectionTrait,
    list: &checkin_list::Model,
    admitted: &[i32],
    ticket: &Ticket,
) -> Result<Vec<Ticket>, AppError> {
    if list.all_products || admitted.is_empty() {
        return Ok(Vec::new());
    }
    let mut query = order_position::Entity::find()
        .filter(order_position::Column::OrderId.eq(ticket.order.id))
        .filter(order_position::Column::ProductId.is_in(admitted.to_vec()))
        .filter(order_position::Column::Canceled.eq(false))
        .order_by_asc(order_position::Column::Id);
    if let Some(date) = list.sub_event_id {
        query = query.filter(order_position::Column::SubEventId.eq(date));
    }
    let mut positions = query.all(db).await?;
    positions.sort_by_key(|p| {
        p.attendee_name.is_none() || p.attendee_name != ticket.position.attendee_name
    });
    let ids: Vec<i32> = positions.iter().map(|p| p.id).collect();
    let blocked = tickets::blocked_among(db, &ids).await?;
    let mut units = Vec::with_capacity(positions.len());
    for position in positions {
        let product = product::Entity::find_by_id(position.product_id)
            .one(db)
            .await?
            .ok_or(AppError::not_found("product"))?;
        units.push(Ticket {
            blocked: blocked.contains(&position.id),
            position,
            order: ticket.order.clone(),
            product,
        });
    }
    Ok(units)
}

/// The index of the first of `units` (two or more) that `list` lets in as
/// their states stand now; the first when none does.
async fn first_to_enter(
    db: &impl ConnectionTrait,
    list: &checkin_list::Model,
    units: &[Ticket],
    force: bool,
) -> Result<usize, AppError> {
    let states: HashMap<i32, lane::State> = checkin_state::Entity::find()
        .filter(checkin_state::Column::ListId.eq(list.id))
        .filter(checkin_state::Column::PositionId.is_in(units.iter().map(|u| u.position.id)))
        .all(db)
        .await?
        .into_iter()
        .map(|row| (row.position_id, lane::State::from(&row)))
        .collect();
    Ok(units
        .iter()
        .position(|unit| {
            let mut state = states
                .get(&unit.position.id)
                .copied()
                .unwrap_or(lane::State::NEVER_ENTERED);
            lane::enter(&mut state, list, force).is_some()
        })
        .unwrap_or(0))
}

/// How many units of `ticket`'s order line (its product in its order) have
/// not entered `list_id` yet.
///
/// Two lookups rather than one anti-join: a door's states grow from nothing
/// to thousands of rows within minutes of opening, faster than statistics
/// follow, and an anti-join planned while they were few scans them once per
/// unit of the line; these lookups read them at most once.
///
/// # Errors
/// On database errors.
pub async fn remaining(
    db: &impl ConnectionTrait,
    list_id: i32,
    ticket: &Ticket,
) -> Result<i64, AppError> {
    let units: Vec<i32> = order_position::Entity::find()
        .select_only()
        .column(order_position::Column::Id)
        .filter(order_position::Column::OrderId.eq(ticket.order.id))
        .filter(order_position::Column::ProductId.eq(ticket.position.product_id))
        .filter(order_position::Column::Canceled.eq(false))
        .into_tuple()
        .all(db)
        .await?;
    let pairs: Vec<(i32, i32)> = units.iter().map(|&unit| (list_id, unit)).collect();
    let entered = states_of(db, &pairs)
        .await?
        .iter()
        .filter(|state| state.entries > 0)
        .count();
    Ok(i64::try_from(units.len()).unwrap_or(i64::MAX) - i64::try_from(entered).unwrap_or(0))
}

/// The stored states of `pairs` (list, position), by their key: on
/// PostgreSQL one index lookup per pair whatever the statistics say (an `IN`
/// list over a table that grew since it was last analyzed, or a generic
/// plan of the prepared statement, is read as a scan of the whole table:
/// 6–8 ms a batch at a busy door); on SQLite possibly also states of a list
/// and a position of different pairs.
///
/// # Errors
/// On database errors.
pub(super) async fn states_of(
    db: &impl ConnectionTrait,
    pairs: &[(i32, i32)],
) -> Result<Vec<checkin_state::Model>, sea_orm::DbErr> {
    crate::db::find_by_pairs::<checkin_state::Entity, _, _>(
        db,
        (checkin_state::Column::ListId, "integer"),
        (checkin_state::Column::PositionId, "integer"),
        pairs,
    )
    .await
}

async fn by_nonce(
    db: &impl ConnectionTrait,
    scope: &str,
    nonce: &str,
) -> Result<Option<checkin::Model>, AppError> {
    Ok(checkin::Entity::find()
        .filter(checkin::Column::NonceScope.eq(scope))
        .filter(checkin::Column::Nonce.eq(nonce))
        .one(db)
        .await?)
}

/// The first answer to a nonce, rebuilt from its record.
async fn replay(db: &impl ConnectionTrait, first: checkin::Model) -> Result<Outcome, AppError> {
    let ticket = match first.position_id {
        Some(id) => ticket_of(db, id).await?,
        None => None,
    };
    Ok(match (first.successful, ticket) {
        (true, Some(ticket)) => Outcome::Accepted {
            checkin: first,
            ticket,
        },
        (_, ticket) => Outcome::Rejected {
            reason: first.reason.unwrap_or(RejectReason::Error),
            checkin: Some(first),
            ticket,
        },
    })
}

/// The ticket a scanned code stands for, and whether the code is a secret
/// the ticket no longer has: one indexed lookup by its shape (secret or
/// ticket key), then one among revoked secrets; a malformed code is not
/// looked up at all.
async fn find_ticket(
    db: &impl ConnectionTrait,
    code: &str,
) -> Result<Option<(Ticket, bool)>, AppError> {
    let (column, secret) = match classify(code) {
        Code::TicketKey(key) => (
            order_position::Column::TicketKey.eq(key.to_ascii_lowercase()),
            None,
        ),
        Code::Secret(secret) => (order_position::Column::Secret.eq(secret), Some(secret)),
        Code::Malformed => return Ok(None),
    };
    if let Some(ticket) = load(db, column).await? {
        return Ok(Some((ticket, false)));
    }
    let Some(secret) = secret else {
        return Ok(None);
    };
    match tickets::revoked_owner(db, secret).await? {
        Some(position_id) => Ok(ticket_of(db, position_id).await?.map(|t| (t, true))),
        None => Ok(None),
    }
}

/// The ticket of position `id`.
///
/// # Errors
/// On database errors.
pub async fn ticket_of(db: &impl ConnectionTrait, id: i32) -> Result<Option<Ticket>, AppError> {
    load(db, order_position::Column::Id.eq(id)).await
}

/// The position `which` selects with its order and product, and whether it
/// is blocked: one statement (a join and an `EXISTS`), so a scan reads its
/// ticket in one round trip.
async fn load(
    db: &impl ConnectionTrait,
    which: sea_orm::sea_query::SimpleExpr,
) -> Result<Option<Ticket>, AppError> {
    use sea_orm::sea_query::{Expr, Query};
    use sea_orm::{
        ExprTrait as _, FromQueryResult, IdenStatic as _, QueryTrait, SelectA, SelectB, SelectC,
    };

    let mut query = order_position::Entity::find()
        .filter(which)
        .find_also_related(order::Entity)
        .find_also_related(product::Entity)
        .limit(1)
        .into_query();
    query.expr_as(
        Expr::exists(
            Query::select()
                .expr(Expr::val(1))
                .from(ticket_block::Entity)
                .and_where(
                    Expr::col((ticket_block::Entity, ticket_block::Column::PositionId))
                        .equals((order_position::Entity, order_position::Column::Id)),
                )
                .and_where(
                    Expr::col((ticket_block::Entity, ticket_block::Column::Blocked)).eq(true),
                )
                .to_owned(),
        ),
        "blocked",
    );
    let statement = db.get_database_backend().build(&query);
    let Some(row) = db.query_one_raw(statement).await? else {
        return Ok(None);
    };
    let position = order_position::Model::from_query_result(&row, SelectA.as_str())?;
    let (Some(order), Some(product)) = (
        order::Model::from_query_result_optional(&row, SelectB.as_str())?,
        product::Model::from_query_result_optional(&row, SelectC.as_str())?,
    ) else {
        return Ok(None);
    };
    let blocked: bool = row.try_get("", "blocked")?;
    Ok(Some(Ticket {
        position,
        order,
        product,
        blocked,
    }))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn list() -> checkin_list::Model {
        crate::checkin::lane::tests::list(true, false)
    }

    fn ticket(status: OrderStatus) -> Ticket {
        let at = DateTime::<Utc>::default();
        Ticket {
            position: order_position::Model {
                id: 3,
                order_id: 2,
                positionid: 1,
                product_id: 5,
                variation_id: None,
                sub_event_id: Some(11),
                price_minor: 100,
                tax_rate_bp: 0,
                tax_value_minor: 0,
                secret: "s".repeat(43),
                ticket_key: None,
                canceled: false,
                attendee_name: None,
                attendee_email: None,
                quota_ids: String::new(),
                created_at: at,
                voucher_id: None,
                addon_to: None,
            },
            order: order::Model {
                id: 2,
                event_id: 7,
                code: "ABCDEF".into(),
                secret: "x".into(),
                status,
                user_id: None,
                email: "a@example.com".into(),
                total_minor: 100,
                testmode: false,
                sales_channel: "web".into(),
                datetime: at,
                expires: at,
                updated_at: at,
            },
            product: product::Model {
                id: 5,
                event_id: 7,
                category_id: None,
                name: "Seat".into(),
                slug: None,
                description: String::new(),
                kind: crate::entities::product::ProductKind::Admission,
                active: true,
                admission: true,
                price_minor: 100,
                tax_rate_bp: 0,
                available_from: None,
                available_until: None,
                min_per_order: None,
                max_per_order: None,
                limit_per_user: None,
                require_voucher: false,
                hide_without_voucher: false,
                require_approval: false,
                personalized: false,
                checkin_attention: false,
                position: 0,
                created_at: at,
                updated_at: at,
            },
            blocked: false,
        }
    }

    #[test]
    fn a_paid_ticket_of_the_event_passes_and_others_say_why_not() {
        let paid = ticket(OrderStatus::Paid);
        assert_eq!(judge(&list(), &[], &paid), Ok(()));
        let other_event = checkin_list::Model {
            event_id: 8,
            ..list()
        };
        assert_eq!(judge(&other_event, &[], &paid), Err(RejectReason::Invalid));
        assert_eq!(
            judge(&list(), &[], &ticket(OrderStatus::Pending)),
            Err(RejectReason::Unpaid)
        );
        let pending_ok = checkin_list::Model {
            include_pending: true,
            ..list()
        };
        assert_eq!(
            judge(&pending_ok, &[], &ticket(OrderStatus::Pending)),
            Ok(())
        );
        assert_eq!(
            judge(&list(), &[], &ticket(OrderStatus::Expired)),
            Err(RejectReason::Canceled)
        );
        let mut canceled = paid.clone();
        canceled.position.canceled = true;
        assert_eq!(judge(&list(), &[], &canceled), Err(RejectReason::Canceled));
        let mut blocked = paid.clone();
        blocked.blocked = true;
        assert_eq!(judge(&list(), &[], &blocked), Err(RejectReason::Blocked));
        blocked.position.canceled = true;
        assert_eq!(judge(&list(), &[], &blocked), Err(RejectReason::Canceled));
        let some_products = checkin_list::Model {
            all_products: false,
            ..list()
        };
        assert_eq!(
            judge(&some_products, &[6], &paid),
            Err(RejectReason::Product)
        );
        assert_eq!(judge(&some_products, &[5, 6], &paid), Ok(()));
        let other_date = checkin_list::Model {
            sub_event_id: Some(12),
            ..list()
        };
        assert_eq!(
            judge(&other_date, &[], &paid),
            Err(RejectReason::InvalidTime)
        );
    }

    #[test]
    fn only_well_formed_codes_are_looked_up() {
        assert!(matches!(classify(&"a".repeat(64)), Code::TicketKey(_)));
        assert!(matches!(
            classify("Zm9vYmFyYmF6cXV4LWZvb2Jhcl9iYXpxdXg"),
            Code::Secret(_)
        ));
        for bad in [
            "",
            "short",
            "has space in it!!",
            "' OR 1=1 --xxxxxxxxxx",
            &"a".repeat(201),
        ] {
            assert!(matches!(classify(bad), Code::Malformed), "{bad}");
        }
    }
}
