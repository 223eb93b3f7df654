//! Scanning without a network: a signed download of a list's tickets, and an
//! upload of the scans made meanwhile.
//!
//! **Download.** `checkinDownload(listId, since)` returns a JSON document and
//! its Ed25519 signature (`crate::signing`) over the document's exact UTF-8
//! bytes; the scanner verifies it with the public key it received with its
//! session (`scannerSession.signingKey`) and nothing else. The document names
//! tickets by hashes (hex SHA-256 of the secret, and of the ticket key), never
//! by the codes themselves, so a lost scanner gives out no ticket. Without
//! `since` it is complete; with the `cursor` of the previous download it holds
//! what changed since: tickets of orders created or changed (paid, canceled,
//! expired) and, under `revoked`, the hashes of tickets no longer valid. A
//! change of the list itself makes the next download complete again. The
//! window reaches a minute before `since`, so a change committed just after
//! the previous download read is not missed; repeating a ticket is harmless.
//!
//! **Upload.** `uploadCheckins` takes the scans made offline, each with its
//! nonce (required) and scan time, and redeems them one by one as
//! `redeemTicket` would (forced unless told otherwise: they already
//! happened); a nonce already uploaded gets its first answer and records
//! nothing, so a retried upload is harmless. Each scan gets its outcome.

use std::collections::{BTreeMap, HashMap};

use chrono::{DateTime, TimeDelta, Utc};
use sea_orm::sea_query::{Expr, ExprTrait as _, Query};
use sea_orm::{ColumnTrait, ConnectionTrait, EntityTrait, QueryFilter, QueryOrder};
use serde::Serialize;

use super::access;
use super::lists;
use super::redeem::{Outcome, Redeemed, Scan, Ticket, judge, redeem};
use crate::auth::Principal;
use crate::auth::tokens::sha256_hex;
use crate::entities::checkin::RejectReason;
use crate::entities::checkin_list;
use crate::entities::{checkin_state, order, order_position, product, question_answer};
use crate::error::AppError;
use crate::graphql::ids::{self, Kind};
use crate::signing::Signer;
use crate::ticketing::tickets;

/// How far before `since` a delta looks, for changes committed late.
const OVERLAP: TimeDelta = TimeDelta::minutes(1);

/// A signed download.
pub type Download = crate::signing::SignedDocument;

#[derive(Serialize)]
struct Document {
    v: u8,
    kind: &'static str,
    list_id: String,
    event_id: String,
    issued_at: DateTime<Utc>,
    /// The `since` this answers (`null`: complete).
    since: Option<String>,
    /// Give as `since` next time.
    cursor: String,
    complete: bool,
    rules: Rules,
    tickets: Vec<Entry>,
    /// Hashes (of secrets and ticket keys) no longer valid on the list.
    revoked: Vec<String>,
}

#[derive(Serialize)]
struct Rules {
    include_pending: bool,
    allow_multiple_entries: bool,
    allow_entry_after_exit: bool,
    /// The list's free-text questions (deprecated), asked at every entry.
    questions: Vec<String>,
    /// The event's questions asked at check-in, in order.
    door_questions: Vec<DoorQuestion>,
}

/// A question a door asks a ticket of `product_ids` that has not answered it
/// (and, with a dependency, whose answer to that question is one of
/// `dependency_values`).
#[derive(Serialize)]
struct DoorQuestion {
    id: String,
    question: String,
    #[serde(rename = "type")]
    kind: crate::entities::question::QuestionType,
    required: bool,
    options: Vec<String>,
    product_ids: Vec<String>,
    dependency_question_id: Option<String>,
    dependency_values: Vec<String>,
}

#[derive(Serialize)]
struct Entry {
    /// Hex SHA-256 of the ticket's secret.
    secret_hash: String,
    /// Hex SHA-256 of the olympic ticket key, if the ticket has one.
    ticket_key_hash: Option<String>,
    position_id: String,
    order_code: String,
    product_id: String,
    product_name: String,
    attendee_name: Option<String>,
    requires_attention: bool,
    /// Admitted while pending (the list admits pending orders).
    pending: bool,
    entries: i32,
    inside: bool,
    /// When the ticket's own product is not on the list: the units of listed
    /// products in its order it enters through, in the order a scan tries
    /// them (the holder's own first). Empty otherwise.
    units: Vec<UnitEntry>,
    /// The ticket's stored answers to the door questions and to the
    /// questions they depend on, by question id: a door question answered
    /// here is not asked.
    answers: BTreeMap<String, String>,
}

#[derive(Serialize)]
struct UnitEntry {
    position_id: String,
    product_id: String,
    product_name: String,
    entries: i32,
    inside: bool,
}

fn cursor_of(at: DateTime<Utc>) -> String {
    format!("v1.{}", at.timestamp_micros())
}

fn parse_cursor(text: &str) -> Result<DateTime<Utc>, AppError> {
    text.strip_prefix("v1.")
        .and_then(|n| n.parse::<i64>().ok())
        .and_then(DateTime::from_timestamp_micros)
        .ok_or_else(|| AppError::bad_input("since", "not a cursor of a previous download"))
}

/// The signed download of `list_id` for whoever works its doors.
///
/// # Errors
/// `BAD_USER_INPUT` on a `since` that is not a download's cursor; as
/// [`lists::get`].
pub async fn download(
    db: &impl ConnectionTrait,
    principal: &Principal,
    signer: &Signer,
    now: DateTime<Utc>,
    list_id: i32,
    since: Option<&str>,
) -> Result<Download, AppError> {
    let list = lists::get(db, principal, list_id).await?;
    let since_at = since.map(parse_cursor).transpose()?;
    let complete = since_at.is_none_or(|at| list.updated_at > at);
    let admitted = lists::products_of(db, list.id).await?;
    let mut orders = Query::select()
        .column(order::Column::Id)
        .from(order::Entity)
        .and_where(Expr::col(order::Column::EventId).eq(list.event_id))
        .to_owned();
    if let (false, Some(at)) = (complete, since_at) {
        orders.and_where(Expr::col(order::Column::UpdatedAt).gt(at - OVERLAP));
    }
    let positions = order_position::Entity::find()
        .filter(order_position::Column::OrderId.in_subquery(orders))
        .order_by_asc(order_position::Column::Id)
        .all(db)
        .await?;
    let order_ids: Vec<i32> = positions.iter().map(|p| p.order_id).collect();
    let order_rows: HashMap<i32, order::Model> = order::Entity::find()
        .filter(order::Column::Id.is_in(dedup(order_ids)))
        .all(db)
        .await?
        .into_iter()
        .map(|o| (o.id, o))
        .collect();
    let products: HashMap<i32, product::Model> = product::Entity::find()
        .filter(product::Column::EventId.eq(list.event_id))
        .all(db)
        .await?
        .into_iter()
        .map(|p| (p.id, p))
        .collect();
    let states: HashMap<i32, checkin_state::Model> = checkin_state::Entity::find()
        .filter(checkin_state::Column::ListId.eq(list.id))
        .all(db)
        .await?
        .into_iter()
        .map(|s| (s.position_id, s))
        .collect();
    let blocked = tickets::blocked_of_event(db, list.event_id).await?;
    let (door_questions, mut answers) = door_questions(db, list.event_id).await?;
    let all: Vec<Ticket> = positions
        .into_iter()
        .filter_map(|position| {
            let order = order_rows.get(&position.order_id)?;
            let product = products.get(&position.product_id)?;
            Some(Ticket {
                blocked: blocked.contains(&position.id),
                position,
                order: order.clone(),
                product: product.clone(),
            })
        })
        .collect();
    let mut by_order: HashMap<i32, Vec<&Ticket>> = HashMap::new();
    for ticket in &all {
        by_order.entry(ticket.order.id).or_default().push(ticket);
    }
    let mut tickets = Vec::new();
    let mut revoked: Vec<String> = tickets::revoked_since(
        db,
        list.event_id,
        since_at.filter(|_| !complete).map(|at| at - OVERLAP),
    )
    .await?
    .iter()
    .map(|secret| sha256_hex(secret))
    .collect();
    for ticket in &all {
        let secret_hash = sha256_hex(&ticket.position.secret);
        let ticket_key_hash = ticket.position.ticket_key.as_deref().map(sha256_hex);
        let mut verdict = judge(&list, &admitted, ticket);
        let mut units = Vec::new();
        // As at the door: a ticket whose product is not listed enters
        // through a unit of a listed product in its order.
        if verdict == Err(RejectReason::Product) {
            units = units_in_order(&list, &admitted, ticket, &by_order);
            if let Some(unit) = units.first() {
                verdict = judge(&list, &admitted, unit);
            }
        }
        if verdict.is_err() {
            if !complete {
                revoked.push(secret_hash);
                revoked.extend(ticket_key_hash);
            }
            continue;
        }
        let state = states.get(&ticket.position.id);
        let units = units
            .iter()
            .map(|unit| {
                let state = states.get(&unit.position.id);
                UnitEntry {
                    position_id: ids::encode(Kind::ORDER_POSITION, unit.position.id).to_string(),
                    product_id: ids::encode(Kind::PRODUCT, unit.product.id).to_string(),
                    product_name: unit.product.name.clone(),
                    entries: state.map_or(0, |s| s.entries),
                    inside: state.is_some_and(|s| s.inside),
                }
            })
            .collect();
        tickets.push(Entry {
            secret_hash,
            ticket_key_hash,
            position_id: ids::encode(Kind::ORDER_POSITION, ticket.position.id).to_string(),
            order_code: ticket.order.code.clone(),
            product_id: ids::encode(Kind::PRODUCT, ticket.product.id).to_string(),
            product_name: ticket.product.name.clone(),
            attendee_name: ticket.position.attendee_name.clone(),
            requires_attention: ticket.product.checkin_attention,
            pending: ticket.order.status == order::OrderStatus::Pending,
            entries: state.map_or(0, |s| s.entries),
            inside: state.is_some_and(|s| s.inside),
            units,
            answers: answers.remove(&ticket.position.id).unwrap_or_default(),
        });
    }
    let document = Document {
        v: 1,
        kind: "voltgate.checkin.download",
        list_id: ids::encode(Kind::CHECKIN_LIST, list.id).to_string(),
        event_id: ids::encode(Kind::EVENT, list.event_id).to_string(),
        issued_at: now,
        since: since.map(str::to_owned),
        cursor: cursor_of(now),
        complete,
        rules: Rules {
            include_pending: list.include_pending,
            allow_multiple_entries: list.allow_multiple_entries,
            allow_entry_after_exit: list.allow_entry_after_exit,
            questions: list.question_list(),
            door_questions,
        },
        tickets,
        revoked,
    };
    signer.sign_json(&document)
}

/// The event's questions asked at check-in, and per position its answers to
/// them and to the questions they depend on: two reads, none when the event
/// asks nothing at the door.
async fn door_questions(
    db: &impl ConnectionTrait,
    event_id: i32,
) -> Result<(Vec<DoorQuestion>, HashMap<i32, BTreeMap<String, String>>), AppError> {
    let all = crate::ticketing::questions::of_event(db, event_id, true).await?;
    let door: Vec<_> = all.iter().filter(|(q, _)| q.ask_during_checkin).collect();
    if door.is_empty() {
        return Ok((Vec::new(), HashMap::new()));
    }
    let mut wanted: Vec<i32> = door.iter().map(|(q, _)| q.id).collect();
    wanted.extend(door.iter().filter_map(|(q, _)| q.dependency_question_id));
    let mut answers: HashMap<i32, BTreeMap<String, String>> = HashMap::new();
    for answer in question_answer::Entity::find()
        .filter(question_answer::Column::QuestionId.is_in(dedup(wanted)))
        .filter(question_answer::Column::OrderPositionId.is_not_null())
        .all(db)
        .await?
    {
        if let Some(position) = answer.order_position_id {
            answers.entry(position).or_default().insert(
                ids::encode(Kind::QUESTION, answer.question_id).to_string(),
                answer.answer,
            );
        }
    }
    let questions = door
        .into_iter()
        .map(|(q, products)| DoorQuestion {
            id: ids::encode(Kind::QUESTION, q.id).to_string(),
            question: q.question.clone(),
            kind: q.question_type,
            required: q.required,
            options: q.options(),
            product_ids: products
                .iter()
                .map(|id| ids::encode(Kind::PRODUCT, *id).to_string())
                .collect(),
            dependency_question_id: q
                .dependency_question_id
                .map(|id| ids::encode(Kind::QUESTION, id).to_string()),
            dependency_values: q.dependency_values(),
        })
        .collect();
    Ok((questions, answers))
}

/// The live units of `list`'s products in `ticket`'s order, for its date, the
/// holder's own first: what `redeem` tries, from rows already loaded.
fn units_in_order<'a>(
    list: &checkin_list::Model,
    admitted: &[i32],
    ticket: &Ticket,
    by_order: &HashMap<i32, Vec<&'a Ticket>>,
) -> Vec<&'a Ticket> {
    if list.all_products || admitted.is_empty() {
        return Vec::new();
    }
    let mut units: Vec<&Ticket> = by_order
        .get(&ticket.order.id)
        .into_iter()
        .flatten()
        .copied()
        .filter(|unit| {
            admitted.contains(&unit.position.product_id)
                && !unit.position.canceled
                && list
                    .sub_event_id
                    .is_none_or(|date| unit.position.sub_event_id == Some(date))
        })
        .collect();
    units.sort_by_key(|unit| {
        (
            unit.position.attendee_name.is_none()
                || unit.position.attendee_name != ticket.position.attendee_name,
            unit.position.id,
        )
    });
    units
}

fn dedup(mut ids: Vec<i32>) -> Vec<i32> {
    ids.sort_unstable();
    ids.dedup();
    ids
}

/// Redeems the scans of an offline upload in order (each must carry a
/// nonce), counting the upload once against the scanner's rate limit; a scan
/// that cannot be redeemed (bad input) gets `ERROR` and records nothing.
///
/// # Errors
/// `BAD_USER_INPUT` on no or too many scans, or one without a nonce;
/// `RATE_LIMITED` beyond the uploads per minute; as [`access::door`].
pub async fn upload(
    services: &crate::services::ServiceContext,
    principal: &Principal,
    now: DateTime<Utc>,
    scans: Vec<Scan>,
) -> Result<Vec<(String, Redeemed)>, AppError> {
    let (db, settings) = (&services.db, &services.checkin);
    if scans.is_empty() || scans.len() > settings.upload_max {
        return Err(AppError::bad_input(
            "scans",
            format!("send 1 to {} scans", settings.upload_max),
        ));
    }
    if scans
        .iter()
        .any(|s| s.nonce.as_deref().is_none_or(|n| n.trim().is_empty()))
    {
        return Err(AppError::bad_input("scans", "every scan needs its nonce"));
    }
    let event_id = match scans[0].list_ids.first() {
        Some(&list_id) => checkin_list::Entity::find_by_id(list_id)
            .one(db)
            .await?
            .map_or(0, |l| l.event_id),
        None => 0,
    };
    let event_id = match (event_id, principal) {
        (0, Principal::Scanner(scanner)) => scanner.event_id,
        (id, _) => id,
    };
    let (_, operator) = access::door(db, principal, event_id).await?;
    services.limiter.hit(
        &format!("checkin-upload:{}", operator.scope()),
        settings.upload_limit(),
    )?;
    let mut results = Vec::with_capacity(scans.len());
    for mut scan in scans {
        scan.counted_already = true;
        let nonce = scan.nonce.clone().unwrap_or_default();
        let redeemed = match redeem(services, principal, now, scan).await {
            Ok(redeemed) => redeemed,
            Err(AppError::BadUserInput { .. } | AppError::NotFound { .. }) => Redeemed {
                outcome: Outcome::Rejected {
                    reason: RejectReason::Error,
                    checkin: None,
                    ticket: None,
                },
                fresh: false,
                remaining: None,
                counts: None,
            },
            Err(err) => return Err(err),
        };
        results.push((nonce, redeemed));
    }
    Ok(results)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cursors_round_trip_and_others_are_refused() {
        let at = DateTime::from_timestamp_micros(1_800_000_000_123_456).unwrap_or_default();
        assert_eq!(parse_cursor(&cursor_of(at)).ok(), Some(at));
        for bad in ["", "v1.", "v1.x", "v2.12", "12"] {
            assert!(parse_cursor(bad).is_err(), "{bad}");
        }
    }
}
