//! Reservations of bays: create (no double booking), list one's own, cancel,
//! and the access credential.
//!
//! **No double booking.** Creating a reservation first takes the bay's row
//! lock with a no-op `UPDATE` in its transaction, then checks that no holding
//! reservation overlaps the slot, then inserts. On PostgreSQL the lock makes
//! concurrent creations for one bay run one after the other (the second sees
//! the first's row once it commits); SQLite has a single writer, so its
//! transactions never overlap. Either way exactly one of several overlapping
//! requests wins; the others are refused with `SLOT_TAKEN`.
//!
//! **Access.** `RFID` names one of the person's active badges. `QR` and `CODE`
//! get a temporary credential: a secret shown once (on creation and on
//! regeneration), stored as the SHA-256 of `<reference>:<secret>` in a
//! temporary `auth_methods` row whose validity is the slot widened by the
//! configured margin. Regenerating or cancelling deactivates it.

use chrono::{DateTime, TimeDelta, Utc};
use sea_orm::sea_query::Expr;
use sea_orm::{
    ActiveModelTrait, ColumnTrait, ConnectionTrait, DatabaseConnection, EntityTrait,
    PaginatorTrait, QueryFilter, Select, Set, SqlErr, TransactionTrait,
};
use serde_json::json;

use super::bay_status;
use super::settings::ReservationSettings;
use crate::auth::Principal;
use crate::auth::tokens::sha256_hex;
use crate::bus::DomainEvent;
use crate::entities::reservation::{self, AccessMode, ReservationStatus};
use crate::entities::{auth_method, auth_type, bay};
use crate::error::{AppError, AppResult, Reason};
use crate::pagination::{Page, PageRequest};

/// What a customer asks for.
#[derive(Debug, Clone)]
pub struct NewReservation {
    pub bay_id: i32,
    pub starts_at: DateTime<Utc>,
    pub duration_minutes: i64,
    pub mode: AccessMode,
    /// The badge, for `RFID`.
    pub badge_id: Option<i32>,
}

/// A temporary credential, in clear: returned once, never stored.
#[derive(Debug, Clone)]
pub struct AccessSecret {
    pub mode: AccessMode,
    /// The QR code's content, or the code to type.
    pub content: String,
    pub valid_from: DateTime<Utc>,
    pub valid_until: DateTime<Utc>,
}

/// How far in the past a slot may start (so "now" is bookable).
const START_TOLERANCE: TimeDelta = TimeDelta::minutes(5);

pub fn micros_to_time(us: i64) -> DateTime<Utc> {
    DateTime::from_timestamp_micros(us).unwrap_or_default()
}

/// Validates a slot against the configuration; its `[start, end)` in microseconds.
///
/// # Errors
/// `BAD_USER_INPUT` naming `durationMinutes` or `startsAt`.
pub fn slot(
    settings: &ReservationSettings,
    starts_at: DateTime<Utc>,
    duration_minutes: i64,
    now: DateTime<Utc>,
) -> AppResult<(i64, i64)> {
    if !settings.durations_minutes.contains(&duration_minutes) {
        return Err(AppError::bad_input(
            "durationMinutes",
            format!(
                "a reservation lasts one of {:?} minutes",
                settings.durations_minutes
            ),
        ));
    }
    if starts_at < now - START_TOLERANCE {
        return Err(AppError::bad_input(
            "startsAt",
            "the slot has started already",
        ));
    }
    if starts_at > now + settings.horizon() {
        return Err(AppError::bad_input(
            "startsAt",
            format!(
                "a slot may start at most {} days ahead",
                settings.horizon_days
            ),
        ));
    }
    let start = starts_at.timestamp_micros();
    Ok((start, start + duration_minutes * 60_000_000))
}

/// Holding reservations of `bay_id` overlapping `[start, end)`.
pub fn overlapping(bay_id: i32, start: i64, end: i64) -> Select<reservation::Entity> {
    reservation::Entity::find()
        .filter(reservation::Column::BayId.eq(bay_id))
        .filter(reservation::Column::Status.is_in(ReservationStatus::HOLDING))
        .filter(reservation::Column::StartsAtUs.lt(end))
        .filter(reservation::Column::EndsAtUs.gt(start))
}

/// A reference customers can read out: `VG-` and 8 characters without look-alikes.
fn reference_code() -> AppResult<String> {
    const ALPHABET: &[u8] = b"ABCDEFGHJKLMNPQRSTUVWXYZ23456789";
    let mut bytes = [0_u8; 8];
    getrandom::fill(&mut bytes)
        .map_err(|e| AppError::internal(anyhow::anyhow!("random source failed: {e}")))?;
    let tail: String = bytes
        .iter()
        .map(|b| char::from(ALPHABET[usize::from(*b) % ALPHABET.len()]))
        .collect();
    Ok(format!("VG-{tail}"))
}

/// A secret for `mode`: a 32-byte token for QR, 8 digits for a typed code
/// (kiosks rate-limit attempts per reservation).
fn secret(mode: AccessMode) -> AppResult<String> {
    match mode {
        AccessMode::Code => {
            let mut bytes = [0_u8; 8];
            getrandom::fill(&mut bytes)
                .map_err(|e| AppError::internal(anyhow::anyhow!("random source failed: {e}")))?;
            Ok(format!("{:08}", u64::from_le_bytes(bytes) % 100_000_000))
        }
        _ => crate::auth::tokens::random_token(),
    }
}

/// The hint shown for a secret: its last two characters.
fn hint(secret: &str) -> String {
    let tail: String = secret
        .chars()
        .skip(secret.chars().count().saturating_sub(2))
        .collect();
    format!("••••{tail}")
}

/// The stored hash of a reservation's temporary secret.
pub fn access_hash(reference: &str, secret: &str) -> String {
    sha256_hex(&format!("{reference}:{secret}"))
}

/// What the QR code of a reservation encodes.
pub fn qr_content(reference: &str, secret: &str) -> String {
    format!("voltgate:reservation:{reference}:{secret}")
}

async fn issue_access(
    db: &impl ConnectionTrait,
    settings: &ReservationSettings,
    row: &reservation::Model,
) -> AppResult<(i32, AccessSecret)> {
    let label = match row.auth_choice {
        AccessMode::Qr => "qr",
        _ => "code",
    };
    let kind = auth_type::Entity::find()
        .filter(auth_type::Column::Label.eq(label))
        .one(db)
        .await?
        .ok_or_else(|| AppError::internal(anyhow::anyhow!("auth type {label} is missing")))?;
    let secret = secret(row.auth_choice)?;
    let valid_from = micros_to_time(row.starts_at_us) - settings.access_margin();
    let valid_until = micros_to_time(row.ends_at_us) + settings.access_margin();
    let method = auth_method::ActiveModel {
        user_id: Set(row.user_id),
        auth_type_id: Set(kind.id),
        value_hash: Set(access_hash(&row.reference_code, &secret)),
        display_value: Set(hint(&secret)),
        metadata: Set(json!({
            "reservation": row.reference_code,
            "valid_from_us": valid_from.timestamp_micros(),
        })),
        expires_at: Set(Some(valid_until)),
        is_active: Set(true),
        created_at: Set(Utc::now()),
        revoked_at: Set(None),
        ..Default::default()
    }
    .insert(db)
    .await?;
    let content = match row.auth_choice {
        AccessMode::Qr => qr_content(&row.reference_code, &secret),
        _ => secret,
    };
    Ok((
        method.id,
        AccessSecret {
            mode: row.auth_choice,
            content,
            valid_from,
            valid_until,
        },
    ))
}

/// Deactivates a reservation's temporary credential (a badge stays the owner's).
pub async fn revoke_access(
    db: &impl ConnectionTrait,
    row: &reservation::Model,
    now: DateTime<Utc>,
) -> AppResult<()> {
    if row.auth_choice == AccessMode::Rfid {
        return Ok(());
    }
    if let Some(method) = row.auth_method_id {
        auth_method::Entity::update_many()
            .col_expr(auth_method::Column::IsActive, Expr::value(false))
            .col_expr(auth_method::Column::RevokedAt, Expr::value(now))
            .filter(auth_method::Column::Id.eq(method))
            .exec(db)
            .await?;
    }
    Ok(())
}

/// Reserves a bay for `user_id`.
///
/// # Errors
/// `BAD_USER_INPUT` naming the field; `NOT_FOUND` bay; `CONFLICT` with
/// `BAY_UNAVAILABLE` (maintenance) or `SLOT_TAKEN` (overlap).
pub async fn create(
    db: &DatabaseConnection,
    settings: &ReservationSettings,
    user_id: i32,
    input: NewReservation,
    now: DateTime<Utc>,
) -> AppResult<(reservation::Model, Option<AccessSecret>, Vec<DomainEvent>)> {
    let (start, end) = slot(settings, input.starts_at, input.duration_minutes, now)?;
    let badge = match (input.mode, input.badge_id) {
        (AccessMode::Rfid, Some(badge)) => Some(badge),
        (AccessMode::Rfid, None) => {
            return Err(AppError::bad_input(
                "badgeId",
                "RFID access needs one of your badges",
            ));
        }
        (_, Some(_)) => {
            return Err(AppError::bad_input(
                "badgeId",
                "a badge is given only with RFID access",
            ));
        }
        (_, None) => None,
    };
    if let Some(badge) = badge {
        let owned = auth_method::Entity::find_by_id(badge)
            .filter(auth_method::Column::UserId.eq(user_id))
            .filter(auth_method::Column::IsActive.eq(true))
            .one(db)
            .await?;
        let is_badge = match owned {
            Some(method) => auth_type::Entity::find_by_id(method.auth_type_id)
                .one(db)
                .await?
                .is_some_and(|t| t.label == "rfid"),
            None => false,
        };
        if !is_badge {
            return Err(AppError::bad_input(
                "badgeId",
                "not one of your active badges",
            ));
        }
    }

    for _ in 0..3 {
        let txn = db.begin().await?;
        // The bay's row lock: overlapping creations for this bay serialize here.
        let locked = bay::Entity::update_many()
            .col_expr(bay::Column::Status, Expr::col(bay::Column::Status))
            .filter(bay::Column::Id.eq(input.bay_id))
            .exec(&txn)
            .await?;
        if locked.rows_affected == 0 {
            return Err(AppError::not_found("bay"));
        }
        let target = bay::Entity::find_by_id(input.bay_id)
            .one(&txn)
            .await?
            .ok_or(AppError::not_found("bay"))?;
        if bay_status::out_of_service(&txn, &target).await? {
            return Err(AppError::refused(
                Reason::BayUnavailable,
                "the bay is out of service",
            ));
        }
        if super::maintenance_windows::blocking(
            &txn,
            settings.maintenance_window(),
            target.station_id,
            start,
            end,
        )
        .await?
        {
            return Err(AppError::refused(
                Reason::BayUnavailable,
                "the station is under maintenance during this slot",
            ));
        }
        if overlapping(input.bay_id, start, end).count(&txn).await? > 0 {
            return Err(AppError::refused(
                Reason::SlotTaken,
                "the bay is reserved for part of this slot",
            ));
        }
        let inserted = reservation::ActiveModel {
            reference_code: Set(reference_code()?),
            user_id: Set(user_id),
            bay_id: Set(input.bay_id),
            auth_method_id: Set(badge),
            auth_choice: Set(input.mode),
            starts_at_us: Set(start),
            ends_at_us: Set(end),
            status: Set(ReservationStatus::Confirmed),
            cancelled_at_us: Set(None),
            created_at: Set(now),
            ..Default::default()
        }
        .insert(&txn)
        .await;
        let mut row = match inserted {
            Ok(row) => row,
            // A reference code drawn twice: draw again.
            Err(err) if matches!(err.sql_err(), Some(SqlErr::UniqueConstraintViolation(_))) => {
                continue;
            }
            Err(err) => return Err(err.into()),
        };
        let mut access = None;
        if input.mode != AccessMode::Rfid {
            let (method, secret) = issue_access(&txn, settings, &row).await?;
            row = reservation::Entity::update(reservation::ActiveModel {
                id: Set(row.id),
                auth_method_id: Set(Some(method)),
                ..Default::default()
            })
            .exec(&txn)
            .await?;
            access = Some(secret);
        }
        // The bay is locked since the transaction's first statement.
        let events = bay_status::refresh_locked(&txn, &[input.bay_id], now).await?;
        txn.commit().await?;
        return Ok((row, access, events));
    }
    Err(AppError::internal(anyhow::anyhow!(
        "no free reference code after three draws"
    )))
}

/// Which of one's reservations to list.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Period {
    /// Holding and not ended.
    Upcoming,
    /// Ended, cancelled or completed.
    Archived,
}

/// One page of the reservations `principal` may see (one's own; all for
/// staff), upcoming or archived.
pub async fn list(
    db: &impl ConnectionTrait,
    principal: &Principal,
    owner: Option<i32>,
    period: Period,
    now: DateTime<Utc>,
    page: PageRequest,
) -> AppResult<Page<reservation::Model>> {
    let now = now.timestamp_micros();
    let mut query = reservation::Entity::visible_to(principal);
    if let Some(owner) = owner {
        query = query.filter(reservation::Column::UserId.eq(owner));
    }
    let holding = reservation::Column::Status.is_in(ReservationStatus::HOLDING);
    let query = match period {
        Period::Upcoming => query
            .filter(holding)
            .filter(reservation::Column::EndsAtUs.gt(now)),
        Period::Archived => query.filter(
            sea_orm::Condition::any()
                .add(reservation::Column::Status.is_not_in(ReservationStatus::HOLDING))
                .add(reservation::Column::EndsAtUs.lte(now)),
        ),
    };
    crate::db::page_by_id(db, query, reservation::Column::Id, page).await
}

/// One reservation `principal` may see.
///
/// # Errors
/// `NOT_FOUND` when it does not exist or is someone else's.
pub async fn get(
    db: &impl ConnectionTrait,
    principal: &Principal,
    id: i32,
) -> AppResult<reservation::Model> {
    use crate::db::FindOr as _;
    reservation::Entity::visible_to(principal)
        .filter(reservation::Column::Id.eq(id))
        .one_or_not_found(db, "reservation")
        .await
}

/// Whether `principal` may cancel `row` now: the owner until the start, staff
/// while it holds the bay.
pub fn can_cancel(principal: &Principal, row: &reservation::Model, now: DateTime<Utc>) -> bool {
    if principal.is_staff() {
        row.status.holds_bay()
    } else {
        matches!(
            row.status,
            ReservationStatus::Pending | ReservationStatus::Confirmed
        ) && now.timestamp_micros() < row.starts_at_us
    }
}

/// Cancels a reservation; staff cancelling someone's notifies them.
///
/// # Errors
/// `NOT_FOUND`; `CONFLICT` with `INVALID_TRANSITION` when it may not be cancelled now.
pub async fn cancel(
    db: &DatabaseConnection,
    principal: &Principal,
    id: i32,
    now: DateTime<Utc>,
) -> AppResult<(reservation::Model, Vec<DomainEvent>)> {
    let txn = db.begin().await?;
    let row = get(&txn, principal, id).await?;
    if !can_cancel(principal, &row, now) {
        return Err(AppError::refused(
            Reason::InvalidTransition,
            "this reservation can no longer be cancelled",
        ));
    }
    let cancelled = reservation::Entity::update_many()
        .col_expr(
            reservation::Column::Status,
            Expr::value(ReservationStatus::Cancelled),
        )
        .col_expr(
            reservation::Column::CancelledAtUs,
            Expr::value(now.timestamp_micros()),
        )
        .filter(reservation::Column::Id.eq(id))
        .filter(reservation::Column::Status.eq(row.status))
        .exec(&txn)
        .await?;
    if cancelled.rows_affected != 1 {
        return Err(AppError::refused(
            Reason::InvalidTransition,
            "the reservation changed meanwhile",
        ));
    }
    revoke_access(&txn, &row, now).await?;
    let cancelled_by_owner = matches!(principal, Principal::Person(p) if p.id == row.user_id);
    if !cancelled_by_owner {
        super::outbox::queue(
            &txn,
            row.user_id,
            super::outbox::template::RESERVATION_CANCELLED,
            &json!({ "reference": row.reference_code, "reason": "cancelled_by_staff" }),
        )
        .await?;
    }
    let events = bay_status::refresh(&txn, &[row.bay_id], now).await?;
    let row = get(&txn, principal, id).await?;
    txn.commit().await?;
    Ok((row, events))
}

/// Replaces a reservation's temporary credential; the new secret is returned once.
///
/// # Errors
/// `NOT_FOUND`; `BAD_USER_INPUT` for RFID access; `CONFLICT` with
/// `INVALID_TRANSITION` once the reservation ended or was cancelled.
pub async fn regenerate_access(
    db: &DatabaseConnection,
    settings: &ReservationSettings,
    principal: &Principal,
    id: i32,
    now: DateTime<Utc>,
) -> AppResult<(reservation::Model, AccessSecret)> {
    let txn = db.begin().await?;
    let row = get(&txn, principal, id).await?;
    let (row, secret) = reissue_access(&txn, settings, row, now).await?;
    txn.commit().await?;
    Ok((row, secret))
}

/// Replaces the temporary credential of `row` in the caller's transaction.
async fn reissue_access(
    txn: &impl ConnectionTrait,
    settings: &ReservationSettings,
    row: reservation::Model,
    now: DateTime<Utc>,
) -> AppResult<(reservation::Model, AccessSecret)> {
    if row.auth_choice == AccessMode::Rfid {
        return Err(AppError::bad_input(
            "id",
            "an RFID reservation opens with its badge; there is nothing to regenerate",
        ));
    }
    if !row.status.holds_bay() || row.ends_at_us <= now.timestamp_micros() {
        return Err(AppError::refused(
            Reason::InvalidTransition,
            "the reservation has ended or was cancelled",
        ));
    }
    revoke_access(txn, &row, now).await?;
    let (method, secret) = issue_access(txn, settings, &row).await?;
    let row = reservation::Entity::update(reservation::ActiveModel {
        id: Set(row.id),
        auth_method_id: Set(Some(method)),
        ..Default::default()
    })
    .exec(txn)
    .await?;
    Ok((row, secret))
}

/// Staff: revokes a QR or code reservation's credential, so no kiosk accepts
/// it until it is regenerated; the owner is told through the outbox.
///
/// # Errors
/// `FORBIDDEN` for anyone but staff; `NOT_FOUND`; `BAD_USER_INPUT` for RFID
/// access (the badge is the customer's: cancel the reservation instead).
pub async fn revoke_reservation_access(
    db: &DatabaseConnection,
    principal: &Principal,
    id: i32,
    now: DateTime<Utc>,
) -> AppResult<reservation::Model> {
    principal.staff()?;
    let txn = db.begin().await?;
    let row = get(&txn, principal, id).await?;
    if row.auth_choice == AccessMode::Rfid {
        return Err(AppError::bad_input(
            "id",
            "an RFID reservation opens with the customer's badge; cancel the reservation instead",
        ));
    }
    let active = match row.auth_method_id {
        Some(method) => auth_method::Entity::find_by_id(method)
            .one(&txn)
            .await?
            .is_some_and(|m| m.is_active),
        None => false,
    };
    if active {
        revoke_access(&txn, &row, now).await?;
        super::outbox::queue(
            &txn,
            row.user_id,
            super::outbox::template::RESERVATION_ACCESS_REVOKED,
            &json!({ "reference": row.reference_code }),
        )
        .await?;
    }
    txn.commit().await?;
    Ok(row)
}

/// Sends a QR or code reservation's credential to its owner by SMS through
/// the outbox. Secrets are stored only hashed, so sending issues a new one
/// (the previous stops working): the message row holds it in clear only
/// until the delivery job hands it to the provider and blanks it.
/// At most `settings.code_messages_per_hour` per owner (`RATE_LIMITED`).
///
/// # Errors
/// `NOT_FOUND`; `BAD_USER_INPUT` for RFID access; `CONFLICT` with
/// `INVALID_TRANSITION` once the reservation ended or was cancelled;
/// `RATE_LIMITED`.
pub async fn send_code(
    db: &DatabaseConnection,
    settings: &ReservationSettings,
    principal: &Principal,
    id: i32,
    now: DateTime<Utc>,
) -> AppResult<reservation::Model> {
    use crate::entities::notification_outbox;
    let txn = db.begin().await?;
    let row = get(&txn, principal, id).await?;
    let sent_lately = notification_outbox::Entity::find()
        .filter(notification_outbox::Column::UserId.eq(row.user_id))
        .filter(notification_outbox::Column::Template.eq(super::outbox::template::RESERVATION_CODE))
        .filter(notification_outbox::Column::CreatedAt.gt(now - TimeDelta::hours(1)))
        .count(&txn)
        .await?;
    if sent_lately >= u64::from(settings.code_messages_per_hour) {
        return Err(AppError::RateLimited);
    }
    let (row, secret) = reissue_access(&txn, settings, row, now).await?;
    super::outbox::queue(
        &txn,
        row.user_id,
        super::outbox::template::RESERVATION_CODE,
        &json!({
            "reference": row.reference_code,
            // `outbox::SECRET_FIELD`: blanked once delivered.
            "code": secret.content,
            "valid_from": secret.valid_from.to_rfc3339(),
            "valid_until": secret.valid_until.to_rfc3339(),
        }),
    )
    .await?;
    txn.commit().await?;
    Ok(row)
}

/// The credential a reservation opens with, without its secret.
pub async fn access_method(
    db: &impl ConnectionTrait,
    row: &reservation::Model,
) -> AppResult<Option<auth_method::Model>> {
    match row.auth_method_id {
        Some(id) => Ok(auth_method::Entity::find_by_id(id).one(db).await?),
        None => Ok(None),
    }
}
