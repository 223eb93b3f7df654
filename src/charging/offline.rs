//! Kiosks without a network: a signed cache of the cabinet's near-term
//! reservations ([`download`]) and the upload of what the kiosk accepted
//! meanwhile ([`upload`]). `docs/charging.md` describes the document and how a
//! kiosk checks it.
//!
//! **Cache.** A JSON document signed with the server's Ed25519 key
//! (`crate::signing`, as check-in downloads are): the cabinet's bays and its
//! holding reservations whose access window meets the next
//! `VOLTGATE_KIOSK_OFFLINE_HORIZON_MINUTES`, with an expiry. Credentials
//! appear only as `SHA-256(salt ":" stored hash)` under a random salt of the
//! document, so the cache holds neither a code nor the server's stored value.
//! Badges are stored as keyed hashes whose key never leaves the server, so
//! RFID reservations carry no verifier: the kiosk sends the badge UID with its
//! event and the server checks it when it reconciles.
//!
//! **Upload.** Each event (the kiosk's UUID, unique per cabinet) is stored as
//! it came (`kiosk_offline_events`) before anything else, so nothing uploaded
//! is lost, then reconciled once: its effects and its outcome (`applied`, or
//! `conflict` with a reason) are written in one transaction whose last step is
//! an `UPDATE` conditional on the event still being `pending`. An event id
//! seen before answers its recorded outcome and changes nothing.

use chrono::{DateTime, Utc};
use sea_orm::sea_query::{Expr, OnConflict};
use sea_orm::{
    ActiveEnum as _, ActiveModelTrait, ColumnTrait, ConnectionTrait, DatabaseTransaction,
    EntityTrait, QueryFilter, QueryOrder, Set, TransactionTrait,
};
use serde::Serialize;

use super::maintenance_windows;
use super::session_state::{SessionEvent, SessionState};
use super::sessions::{self, Opening};
use crate::auth::tokens::sha256_hex;
use crate::bus::DomainEvent;
use crate::entities::reservation::{AccessMode, ReservationStatus};
use crate::entities::{
    BayStatus, auth_method, bay, charging_session, kiosk_offline_event, reservation,
};
use crate::error::{AppError, AppResult};
use crate::graphql::ids::{self, Kind};
use crate::services::ServiceContext;
use crate::signing::{SignedDocument, Signer};

#[derive(Serialize)]
struct Document {
    v: u8,
    kind: &'static str,
    cabinet_id: String,
    issued_at: DateTime<Utc>,
    /// After this the kiosk stops trusting the document.
    expires_at: DateTime<Utc>,
    /// Hex, 128 random bits; a verifier is `sha256_hex(salt + ":" + hash)`.
    salt: String,
    bays: Vec<BayEntry>,
    reservations: Vec<Entry>,
}

#[derive(Serialize)]
struct BayEntry {
    id: String,
    number: i32,
    status: BayStatus,
}

#[derive(Serialize)]
struct Entry {
    id: String,
    reference: String,
    bay_id: String,
    bay_number: i32,
    status: ReservationStatus,
    access_mode: AccessMode,
    starts_at: DateTime<Utc>,
    ends_at: DateTime<Utc>,
    /// The slot widened by the access margin: when the credential opens the bay.
    valid_from: DateTime<Utc>,
    valid_until: DateTime<Utc>,
    /// `sha256_hex(salt ":" sha256_hex(reference ":" secret))` for QR and code;
    /// `null` for RFID (checked by the server on upload).
    credential_hash: Option<String>,
}

/// States of sessions that are over.
const CLOSED: [SessionState; 2] = [SessionState::Stopped, SessionState::Error];

fn instant(us: i64) -> DateTime<Utc> {
    DateTime::from_timestamp_micros(us).unwrap_or_default()
}

/// The verifier of a stored credential hash under a document's salt.
pub fn verifier(salt: &str, stored_hash: &str) -> String {
    sha256_hex(&format!("{salt}:{stored_hash}"))
}

/// The signed offline cache of `cabinet_id`'s near-term reservations.
///
/// # Errors
/// On database errors, or when the system random source fails.
pub async fn download(
    services: &ServiceContext,
    signer: &Signer,
    cabinet_id: i32,
) -> AppResult<SignedDocument> {
    let db = &services.db;
    let now = services.now();
    let expires_at = now + services.kiosks.offline_horizon();
    let margin = services.reservations.access_margin();
    let mut salt = [0_u8; 16];
    getrandom::fill(&mut salt)
        .map_err(|e| AppError::internal(anyhow::anyhow!("the system random source failed: {e}")))?;
    let salt: String = salt.iter().map(|b| format!("{b:02x}")).collect();
    let bays = bay::Entity::find()
        .filter(bay::Column::CabinetId.eq(cabinet_id))
        .order_by_asc(bay::Column::Number)
        .all(db)
        .await?;
    // The access window [start - margin, end + margin) meets [now, expiry).
    let rows = reservation::Entity::find()
        .filter(reservation::Column::BayId.is_in(bays.iter().map(|b| b.id)))
        .filter(reservation::Column::Status.is_in(ReservationStatus::HOLDING))
        .filter(reservation::Column::StartsAtUs.lt((expires_at + margin).timestamp_micros()))
        .filter(reservation::Column::EndsAtUs.gt((now - margin).timestamp_micros()))
        .order_by_asc(reservation::Column::StartsAtUs)
        .all(db)
        .await?;
    let methods: std::collections::HashMap<i32, auth_method::Model> = auth_method::Entity::find()
        .filter(auth_method::Column::Id.is_in(rows.iter().filter_map(|r| r.auth_method_id)))
        .all(db)
        .await?
        .into_iter()
        .map(|m| (m.id, m))
        .collect();
    let mut reservations = Vec::with_capacity(rows.len());
    for row in rows {
        let Some(bay) = bays.iter().find(|b| b.id == row.bay_id) else {
            continue;
        };
        let method = row.auth_method_id.and_then(|id| methods.get(&id));
        // A revoked, inactive or expired credential opens nothing: left out.
        let Some(method) = method.filter(|m| {
            m.is_active && m.revoked_at.is_none() && m.expires_at.is_none_or(|at| at > now)
        }) else {
            continue;
        };
        let credential_hash = match row.auth_choice {
            AccessMode::Rfid => None,
            AccessMode::Qr | AccessMode::Code => Some(verifier(&salt, &method.value_hash)),
        };
        let valid_until = instant(row.ends_at_us) + margin;
        reservations.push(Entry {
            id: ids::encode(Kind::RESERVATION, row.id).to_string(),
            reference: row.reference_code.clone(),
            bay_id: ids::encode(Kind::BAY, bay.id).to_string(),
            bay_number: bay.number,
            status: row.status,
            access_mode: row.auth_choice,
            starts_at: instant(row.starts_at_us),
            ends_at: instant(row.ends_at_us),
            valid_from: instant(row.starts_at_us) - margin,
            valid_until: method
                .expires_at
                .map_or(valid_until, |e| e.min(valid_until)),
            credential_hash,
        });
    }
    signer.sign_json(&Document {
        v: 1,
        kind: "voltgate.kiosk.offline",
        cabinet_id: ids::encode(Kind::CABINET, cabinet_id).to_string(),
        issued_at: now,
        expires_at,
        salt,
        bays: bays
            .iter()
            .map(|b| BayEntry {
                id: ids::encode(Kind::BAY, b.id).to_string(),
                number: b.number,
                status: b.status,
            })
            .collect(),
        reservations,
    })
}

/// What a kiosk did offline.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum EventKind {
    /// It accepted a reservation's credential.
    Authenticated,
    /// It unlocked the bay and the session began.
    SessionStarted,
    /// The session ended at the bay.
    SessionStopped,
}

impl EventKind {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Authenticated => "authenticated",
            Self::SessionStarted => "session_started",
            Self::SessionStopped => "session_stopped",
        }
    }
}

/// One uploaded event.
#[derive(Debug, Clone)]
pub struct OfflineEvent {
    /// The kiosk's UUID for it.
    pub event_id: String,
    pub kind: EventKind,
    pub bay_id: i32,
    pub reservation_id: i32,
    pub method: Option<AccessMode>,
    /// The credential presented (a badge UID for RFID); checked, never stored.
    pub credential: Option<String>,
    /// On the kiosk's clock.
    pub at: DateTime<Utc>,
}

/// An event's answer: its stored record, and whether it was uploaded before.
#[derive(Debug, Clone)]
pub struct Reconciled {
    pub duplicate: bool,
    pub record: kiosk_offline_event::Model,
}

pub const PENDING: &str = "pending";
pub const APPLIED: &str = "applied";
pub const CONFLICT: &str = "conflict";

/// Why an event was not applied.
struct Conflict {
    reason: &'static str,
    detail: String,
}

fn conflict(reason: &'static str, detail: impl Into<String>) -> Conflict {
    Conflict {
        reason,
        detail: detail.into(),
    }
}

/// Stores the events of `cabinet_id`'s kiosk, then reconciles each one still
/// pending, in the order given; the answers in that order.
///
/// # Errors
/// `BAD_USER_INPUT` on no or too many events, an event id that is not a UUID,
/// or an oversized credential; `NOT_FOUND` on an unknown bay; `FORBIDDEN` when
/// an event names another cabinet's bay (nothing is stored then); on database errors (what was
/// stored stays, and is reconciled when uploaded again).
pub async fn upload(
    services: &ServiceContext,
    cabinet_id: i32,
    mut events: Vec<OfflineEvent>,
) -> AppResult<Vec<Reconciled>> {
    let max = services.kiosks.offline_upload_max();
    if events.is_empty() || events.len() > max {
        return Err(AppError::bad_input(
            "events",
            format!("send 1 to {max} events"),
        ));
    }
    for event in &mut events {
        let id = uuid::Uuid::parse_str(event.event_id.trim())
            .map_err(|_| AppError::bad_input("eventId", "a UUID"))?;
        event.event_id = id.hyphenated().to_string();
        if event.credential.as_deref().is_some_and(|c| c.len() > 256) {
            return Err(AppError::bad_input("credential", "at most 256 characters"));
        }
    }
    let db = &services.db;
    let bay_ids: Vec<i32> = events.iter().map(|e| e.bay_id).collect();
    let bays = bay::Entity::find()
        .filter(bay::Column::Id.is_in(bay_ids.clone()))
        .all(db)
        .await?;
    if !bay_ids.iter().all(|id| bays.iter().any(|b| b.id == *id)) {
        return Err(AppError::not_found("bay"));
    }
    if bays.iter().any(|b| b.cabinet_id != cabinet_id) {
        tracing::info!(
            cabinet = cabinet_id,
            security = true,
            "offline upload names another cabinet's bay"
        );
        return Err(AppError::Forbidden);
    }
    let now = services.now();
    // Everything is stored before anything is judged.
    let mut fresh = Vec::with_capacity(events.len());
    for event in &events {
        fresh.push(store(db, cabinet_id, event, now).await?);
    }
    let badge_keys = services.badge_keys.get(db).await?;
    let mut answers: Vec<Reconciled> = Vec::with_capacity(events.len());
    for (event, fresh) in events.into_iter().zip(fresh) {
        let record = kiosk_offline_event::Entity::find()
            .filter(kiosk_offline_event::Column::CabinetId.eq(cabinet_id))
            .filter(kiosk_offline_event::Column::EventId.eq(&event.event_id))
            .one(db)
            .await?
            .ok_or_else(|| {
                AppError::internal(anyhow::anyhow!("an offline event was not stored"))
            })?;
        // Still pending after an earlier upload failed midway: judged now.
        let answered = answers.iter().any(|a| a.record.id == record.id);
        let record = if record.outcome == PENDING && !answered {
            reconcile(services, &badge_keys, record, event.credential.as_deref()).await?
        } else {
            record
        };
        answers.push(Reconciled {
            duplicate: !fresh,
            record,
        });
    }
    Ok(answers)
}

/// Stores `event` as it came unless its id is stored already; whether it was new.
async fn store(
    db: &impl ConnectionTrait,
    cabinet_id: i32,
    event: &OfflineEvent,
    now: DateTime<Utc>,
) -> AppResult<bool> {
    let row = kiosk_offline_event::ActiveModel {
        cabinet_id: Set(cabinet_id),
        event_id: Set(event.event_id.clone()),
        kind: Set(event.kind.as_str().to_owned()),
        bay_id: Set(event.bay_id),
        reservation_id: Set(Some(event.reservation_id)),
        method: Set(event.method.map(|m| m.to_value())),
        occurred_at: Set(event.at),
        received_at: Set(now),
        outcome: Set(PENDING.to_owned()),
        reason: Set(None),
        detail: Set(None),
        session_id: Set(None),
        ..Default::default()
    };
    let inserted = kiosk_offline_event::Entity::insert(row)
        .on_conflict(
            OnConflict::columns([
                kiosk_offline_event::Column::CabinetId,
                kiosk_offline_event::Column::EventId,
            ])
            .do_nothing()
            .to_owned(),
        )
        .exec_without_returning(db)
        .await?;
    Ok(inserted == 1)
}

/// Applies `record` with its outcome, once.
async fn reconcile(
    services: &ServiceContext,
    badge_keys: &crate::accounts::badges::BadgeKeyring,
    record: kiosk_offline_event::Model,
    credential: Option<&str>,
) -> AppResult<kiosk_offline_event::Model> {
    let txn = services.db.begin().await?;
    let decided = decide(services, &txn, badge_keys, &record, credential).await;
    let decided = match decided {
        Ok(decided) => decided,
        // The session could not open after all (a concurrent one won).
        Err(AppError::Refused { message, .. }) => Err(conflict("SESSION_ALREADY_OPEN", message)),
        Err(err) => return Err(err),
    };
    match decided {
        Ok((session_id, events)) => {
            if mark(&txn, &record, APPLIED, None, session_id).await? {
                txn.commit().await?;
                super::bay_status::publish(services, events).await;
                tracing::info!(
                    cabinet = record.cabinet_id,
                    event = record.event_id,
                    kind = record.kind,
                    "offline kiosk event applied"
                );
            } else {
                // Another upload reconciled it meanwhile: its outcome stands.
                txn.rollback().await?;
            }
        }
        Err(conflict) => {
            // Nothing of the attempt is kept; the event and its reason are.
            txn.rollback().await?;
            mark(&services.db, &record, CONFLICT, Some(&conflict), None).await?;
            tracing::info!(
                cabinet = record.cabinet_id,
                event = record.event_id,
                reason = conflict.reason,
                "offline kiosk event in conflict"
            );
        }
    }
    Ok(kiosk_offline_event::Entity::find_by_id(record.id)
        .one(&services.db)
        .await?
        .unwrap_or(record))
}

/// Sets the outcome of a pending event; whether this call did.
async fn mark(
    db: &impl ConnectionTrait,
    record: &kiosk_offline_event::Model,
    outcome: &str,
    conflict: Option<&Conflict>,
    session_id: Option<i32>,
) -> AppResult<bool> {
    let updated = kiosk_offline_event::Entity::update_many()
        .col_expr(kiosk_offline_event::Column::Outcome, Expr::value(outcome))
        .col_expr(
            kiosk_offline_event::Column::Reason,
            Expr::value(conflict.map(|c| c.reason.to_owned())),
        )
        .col_expr(
            kiosk_offline_event::Column::Detail,
            Expr::value(conflict.map(|c| c.detail.chars().take(255).collect::<String>())),
        )
        .col_expr(
            kiosk_offline_event::Column::SessionId,
            Expr::value(session_id),
        )
        .filter(kiosk_offline_event::Column::Id.eq(record.id))
        .filter(kiosk_offline_event::Column::Outcome.eq(PENDING))
        .exec(db)
        .await?;
    Ok(updated.rows_affected == 1)
}

type Decision = Result<(Option<i32>, Vec<DomainEvent>), Conflict>;

/// Judges `record` against the reservation and the bay as they are, and
/// applies it within `txn` as the online path would.
async fn decide(
    services: &ServiceContext,
    txn: &DatabaseTransaction,
    badge_keys: &crate::accounts::badges::BadgeKeyring,
    record: &kiosk_offline_event::Model,
    credential: Option<&str>,
) -> AppResult<Decision> {
    let now = services.now();
    let skew = services.kiosks.offline_clock_skew();
    if record.occurred_at > now + skew {
        return Ok(Err(conflict(
            "CLOCK_SKEW",
            format!(
                "the event is dated more than {} s after the server's time",
                skew.num_seconds()
            ),
        )));
    }
    // A kiosk clock slightly ahead never dates a change after the server's now.
    let at = record.occurred_at.min(now);
    let Some(row) = reservation::Entity::find_by_id(record.reservation_id.unwrap_or(0))
        .one(txn)
        .await?
    else {
        return Ok(Err(conflict("UNKNOWN_RESERVATION", "no such reservation")));
    };
    if row.bay_id != record.bay_id {
        return Ok(Err(conflict(
            "WRONG_BAY",
            "the reservation is for another bay",
        )));
    }
    let bay = bay::Entity::find_by_id(record.bay_id)
        .one(txn)
        .await?
        .ok_or(AppError::not_found("bay"))?;
    if record.kind == EventKind::SessionStopped.as_str() {
        return stop(txn, &row, at).await;
    }
    match row.status {
        ReservationStatus::Cancelled => {
            return Ok(Err(conflict(
                "RESERVATION_CANCELLED",
                "the reservation was cancelled",
            )));
        }
        ReservationStatus::Completed => {
            return Ok(Err(conflict(
                "RESERVATION_COMPLETED",
                "the reservation was used up",
            )));
        }
        _ => {}
    }
    let margin = services.reservations.access_margin();
    let us = record.occurred_at.timestamp_micros();
    let (from, until) = (
        (instant(row.starts_at_us) - margin).timestamp_micros(),
        (instant(row.ends_at_us) + margin).timestamp_micros(),
    );
    if us < from || us >= until {
        return Ok(Err(conflict(
            "OUTSIDE_WINDOW",
            "the event is outside the reservation's slot and access margin",
        )));
    }
    let method = record
        .method
        .as_deref()
        .map(|m| AccessMode::try_from_value(&m.to_owned()))
        .transpose()
        .ok()
        .flatten()
        .unwrap_or(row.auth_choice);
    if method != row.auth_choice {
        return Ok(Err(conflict(
            "METHOD_MISMATCH",
            "the reservation opens with another access mode",
        )));
    }
    let stored = match row.auth_method_id {
        Some(id) => auth_method::Entity::find_by_id(id).one(txn).await?,
        None => None,
    };
    match (credential, stored) {
        (Some(credential), Some(stored))
            if sessions::matches(
                &row,
                &stored,
                credential.trim(),
                record.occurred_at,
                badge_keys,
            ) => {}
        (None, Some(_)) if row.auth_choice != AccessMode::Rfid => {}
        (None, _) => {
            return Ok(Err(conflict(
                "CREDENTIAL_REQUIRED",
                "a badge is checked by the server: send its UID",
            )));
        }
        _ => {
            return Ok(Err(conflict(
                "INVALID_CREDENTIAL",
                "the credential does not open this reservation",
            )));
        }
    }
    if bay.status == BayStatus::Maintenance
        || maintenance_windows::blocking(
            txn,
            services.reservations.maintenance_window(),
            bay.station_id,
            us,
            us + 1,
        )
        .await?
    {
        return Ok(Err(conflict(
            "BAY_IN_MAINTENANCE",
            "the bay was out of service then",
        )));
    }
    if record.kind == EventKind::Authenticated.as_str() {
        sessions::succeeded_attempt(record.cabinet_id, bay.id, &row, None, method, at)
            .insert(txn)
            .await?;
        return Ok(Ok((None, Vec::new())));
    }
    if row.status == ReservationStatus::Active {
        return Ok(Err(conflict(
            "SESSION_ALREADY_OPEN",
            "the reservation is in use already",
        )));
    }
    let busy = charging_session::Entity::find()
        .filter(charging_session::Column::BayId.eq(bay.id))
        .filter(charging_session::Column::State.is_not_in(CLOSED))
        .one(txn)
        .await?;
    if busy.is_some() {
        return Ok(Err(conflict(
            "SESSION_ALREADY_OPEN",
            "a charging session is open at this bay",
        )));
    }
    let (session, mut events) = sessions::open_in(
        txn,
        Opening {
            cabinet_id: record.cabinet_id,
            bay: &bay,
            row: &row,
            method,
            plug_timeout: services.kiosks.plug_timeout(),
            at,
        },
    )
    .await?;
    // The kiosk unlocked the bay itself: the session waits for the plug, and
    // the session job sends `start_charge` once the device reports it.
    let unlocked = sessions::apply(txn, &session, SessionEvent::Unlocked, now, None).await?;
    if let Ok((_, more)) = unlocked {
        events.extend(more);
    }
    Ok(Ok((Some(session.id), events)))
}

/// The session of `row` ends: stopping, then stopped, as the device's
/// acknowledgement of `stop_charge` would.
async fn stop(
    txn: &DatabaseTransaction,
    row: &reservation::Model,
    at: DateTime<Utc>,
) -> AppResult<Decision> {
    let Some(mut session) = charging_session::Entity::find()
        .filter(charging_session::Column::ReservationId.eq(row.id))
        .filter(charging_session::Column::State.is_not_in(CLOSED))
        .one(txn)
        .await?
    else {
        return Ok(Err(conflict(
            "NO_OPEN_SESSION",
            "the reservation has no open session",
        )));
    };
    let mut events = Vec::new();
    for event in [SessionEvent::StopRequested, SessionEvent::Stopped] {
        if event == SessionEvent::StopRequested && session.state == SessionState::Stopping {
            continue;
        }
        match sessions::apply(txn, &session, event, at, None).await? {
            Ok((moved, more)) => {
                session = moved;
                events.extend(more);
            }
            Err(invalid) => {
                return Ok(Err(conflict(
                    "NO_OPEN_SESSION",
                    format!("the session cannot stop from {:?}", invalid.from).to_lowercase(),
                )));
            }
        }
    }
    Ok(Ok((Some(session.id), events)))
}
