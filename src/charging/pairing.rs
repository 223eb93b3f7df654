//! Mobile pairing at a kiosk: the kiosk creates a short-lived token and shows
//! it as a QR code ([`create`]); the signed-in customer opens it on their phone
//! ([`open_for_customer`]), sees their reservations usable at that kiosk's
//! cabinet now ([`usable_reservations`]) and authorizes one ([`authorize`]); the
//! kiosk follows the pairing (query or `terminalPairingChanged`) and consumes
//! it ([`consume`]), which opens the charging session the way
//! `terminalAuthenticate` does (`sessions::open`).
//!
//! The token (`vgp_` + 192 random bits) is stored as its SHA-256 and lives
//! [`PAIRING_TTL`]. States move `PENDING → AUTHORIZED → CONSUMED`, each by an
//! `UPDATE` conditional on the state read and on the expiry, so a token is
//! authorized once and consumed once, whoever races. An expired pairing shows
//! as `EXPIRED` and does nothing any more. Every change is a
//! `kiosk_pairing_changed` event after its commit.

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use chrono::{DateTime, TimeDelta, Utc};
use sea_orm::sea_query::Expr;
use sea_orm::{ActiveModelTrait, ColumnTrait, EntityTrait, QueryFilter, QueryOrder, Set};

use super::{bay_status, sessions};
use crate::auth::tokens::sha256_hex;
use crate::bus::{DomainEvent, KioskPairingChanged};
use crate::entities::kiosk_pairing::{self, PairingState};
use crate::entities::reservation::ReservationStatus;
use crate::entities::{bay, charging_session, reservation};
use crate::error::{AppError, AppResult, Reason};
use crate::services::ServiceContext;

/// How long a pairing token can be authorized and consumed.
pub const PAIRING_TTL: TimeDelta = TimeDelta::minutes(3);

/// What the QR code holds: this prefix and the token.
pub const QR_PREFIX: &str = "voltgate:pairing:";

/// A pairing as its viewers see it: its stored state, or expired.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PairingView {
    Pending,
    Authorized,
    Consumed,
    Expired,
}

/// The state `row` shows at `now`.
pub fn view(row: &kiosk_pairing::Model, now: DateTime<Utc>) -> PairingView {
    match row.state {
        PairingState::Consumed => PairingView::Consumed,
        _ if row.expires_at_us <= now.timestamp_micros() => PairingView::Expired,
        PairingState::Pending => PairingView::Pending,
        PairingState::Authorized => PairingView::Authorized,
    }
}

pub fn expires_at(row: &kiosk_pairing::Model) -> DateTime<Utc> {
    DateTime::from_timestamp_micros(row.expires_at_us).unwrap_or_default()
}

/// A pairing just created: the only time its token exists in clear.
pub struct IssuedPairing {
    pub token: String,
    pub row: kiosk_pairing::Model,
}

impl std::fmt::Debug for IssuedPairing {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("IssuedPairing")
            .field("id", &self.row.id)
            .finish_non_exhaustive()
    }
}

impl IssuedPairing {
    /// What the QR code shows.
    pub fn qr_content(&self) -> String {
        format!("{QR_PREFIX}{}", self.token)
    }
}

fn token_hash(token: &str) -> String {
    sha256_hex(token.trim().strip_prefix(QR_PREFIX).unwrap_or(token.trim()))
}

fn event(row: &kiosk_pairing::Model) -> DomainEvent {
    DomainEvent::KioskPairingChanged(KioskPairingChanged {
        pairing_id: row.id,
        cabinet_id: row.cabinet_id,
        state: row.state,
        session_id: row.session_id,
        at: row.changed_at,
    })
}

async fn publish(services: &ServiceContext, row: &kiosk_pairing::Model) {
    bay_status::publish(services, vec![event(row)]).await;
}

async fn reload(services: &ServiceContext, id: i32) -> AppResult<kiosk_pairing::Model> {
    kiosk_pairing::Entity::find_by_id(id)
        .one(&services.db)
        .await?
        .ok_or(AppError::not_found("pairing"))
}

/// A kiosk creates a pairing for its cabinet.
///
/// # Errors
/// On database errors.
pub async fn create(services: &ServiceContext, cabinet_id: i32) -> AppResult<IssuedPairing> {
    let now = services.now();
    let mut random = [0_u8; 24];
    getrandom::fill(&mut random)
        .map_err(|e| AppError::internal(anyhow::anyhow!("the system random source failed: {e}")))?;
    let token = format!("vgp_{}", URL_SAFE_NO_PAD.encode(random));
    let row = kiosk_pairing::ActiveModel {
        cabinet_id: Set(cabinet_id),
        token_hash: Set(token_hash(&token)),
        state: Set(PairingState::Pending),
        expires_at_us: Set((now + PAIRING_TTL).timestamp_micros()),
        user_id: Set(None),
        reservation_id: Set(None),
        session_id: Set(None),
        created_at: Set(now),
        changed_at: Set(now),
        ..Default::default()
    }
    .insert(&services.db)
    .await?;
    publish(services, &row).await;
    Ok(IssuedPairing { token, row })
}

/// The pairing a customer opened with `token`: unexpired, and pending or
/// authorized by them.
///
/// # Errors
/// `BAD_USER_INPUT` for an empty or oversized token; `NOT_FOUND` for an unknown,
/// expired or used token, or one another customer authorized.
pub async fn open_for_customer(
    services: &ServiceContext,
    user_id: i32,
    token: &str,
) -> AppResult<kiosk_pairing::Model> {
    if token.trim().is_empty() || token.len() > 200 {
        return Err(AppError::bad_input("token", "a pairing token"));
    }
    let now = services.now();
    kiosk_pairing::Entity::find()
        .filter(kiosk_pairing::Column::TokenHash.eq(token_hash(token)))
        .one(&services.db)
        .await?
        .filter(|row| match view(row, now) {
            PairingView::Pending => true,
            PairingView::Authorized => row.user_id == Some(user_id),
            PairingView::Consumed | PairingView::Expired => false,
        })
        .ok_or(AppError::not_found("pairing"))
}

/// The customer's reservations usable at `cabinet_id` now: holding, not in use,
/// at one of its bays, with now inside the slot widened by the access margin.
///
/// # Errors
/// On database errors.
pub async fn usable_reservations(
    services: &ServiceContext,
    user_id: i32,
    cabinet_id: i32,
) -> AppResult<Vec<reservation::Model>> {
    let now = services.now();
    let margin = services.reservations.access_margin();
    let bays: Vec<i32> = bay::Entity::find()
        .filter(bay::Column::CabinetId.eq(cabinet_id))
        .all(&services.db)
        .await?
        .into_iter()
        .map(|b| b.id)
        .collect();
    Ok(reservation::Entity::find()
        .filter(reservation::Column::UserId.eq(user_id))
        .filter(reservation::Column::BayId.is_in(bays))
        .filter(
            reservation::Column::Status
                .is_in([ReservationStatus::Pending, ReservationStatus::Confirmed]),
        )
        .filter(reservation::Column::StartsAtUs.lte((now + margin).timestamp_micros()))
        .filter(reservation::Column::EndsAtUs.gt((now - margin).timestamp_micros()))
        .order_by_asc(reservation::Column::StartsAtUs)
        .all(&services.db)
        .await?)
}

/// The customer authorizes the pairing for one of their reservations.
///
/// # Errors
/// `NOT_FOUND` as [`open_for_customer`], and for a reservation that is not
/// theirs; `BAD_USER_INPUT` (`reservationId`) when it is not usable at the
/// kiosk's cabinet now; `CONFLICT` with `INVALID_TRANSITION` when the pairing
/// was authorized meanwhile.
pub async fn authorize(
    services: &ServiceContext,
    user_id: i32,
    token: &str,
    reservation_id: i32,
) -> AppResult<kiosk_pairing::Model> {
    let now = services.now();
    let pairing = open_for_customer(services, user_id, token).await?;
    let owned = reservation::Entity::find_by_id(reservation_id)
        .one(&services.db)
        .await?
        .filter(|r| r.user_id == user_id)
        .ok_or(AppError::not_found("reservation"))?;
    let usable = usable_reservations(services, user_id, pairing.cabinet_id).await?;
    if !usable.iter().any(|r| r.id == owned.id) {
        return Err(AppError::bad_input(
            "reservationId",
            "this reservation cannot be used at this kiosk now",
        ));
    }
    let moved = kiosk_pairing::Entity::update_many()
        .col_expr(
            kiosk_pairing::Column::State,
            Expr::value(PairingState::Authorized),
        )
        .col_expr(kiosk_pairing::Column::UserId, Expr::value(user_id))
        .col_expr(kiosk_pairing::Column::ReservationId, Expr::value(owned.id))
        .col_expr(kiosk_pairing::Column::ChangedAt, Expr::value(now))
        .filter(kiosk_pairing::Column::Id.eq(pairing.id))
        .filter(kiosk_pairing::Column::State.eq(PairingState::Pending))
        .filter(kiosk_pairing::Column::ExpiresAtUs.gt(now.timestamp_micros()))
        .exec(&services.db)
        .await?;
    if moved.rows_affected != 1 {
        return Err(AppError::refused(
            Reason::InvalidTransition,
            "this pairing is authorized already",
        ));
    }
    let row = reload(services, pairing.id).await?;
    publish(services, &row).await;
    Ok(row)
}

/// A pairing of the kiosk's own cabinet.
///
/// # Errors
/// `NOT_FOUND` for another cabinet's or unknown pairings.
pub async fn for_kiosk(
    services: &ServiceContext,
    cabinet_id: i32,
    id: i32,
) -> AppResult<kiosk_pairing::Model> {
    kiosk_pairing::Entity::find_by_id(id)
        .one(&services.db)
        .await?
        .filter(|row| row.cabinet_id == cabinet_id)
        .ok_or(AppError::not_found("pairing"))
}

/// The kiosk consumes an authorized pairing: the session opens for its
/// reservation and `unlock` is sent. If the session cannot open, the pairing
/// is authorized again, so nothing has changed.
///
/// # Errors
/// `NOT_FOUND` as [`for_kiosk`]; `CONFLICT` with `INVALID_TRANSITION` when the
/// pairing is not authorized (pending, consumed or expired); what opening the
/// session answers (`BAY_UNAVAILABLE`, `DEVICE_UNREACHABLE`).
pub async fn consume(
    services: &ServiceContext,
    cabinet_id: i32,
    id: i32,
) -> AppResult<(kiosk_pairing::Model, charging_session::Model)> {
    let now = services.now();
    let pairing = for_kiosk(services, cabinet_id, id).await?;
    let claimed = kiosk_pairing::Entity::update_many()
        .col_expr(
            kiosk_pairing::Column::State,
            Expr::value(PairingState::Consumed),
        )
        .col_expr(kiosk_pairing::Column::ChangedAt, Expr::value(now))
        .filter(kiosk_pairing::Column::Id.eq(pairing.id))
        .filter(kiosk_pairing::Column::State.eq(PairingState::Authorized))
        .filter(kiosk_pairing::Column::ExpiresAtUs.gt(now.timestamp_micros()))
        .exec(&services.db)
        .await?;
    if claimed.rows_affected != 1 {
        let why = match view(&pairing, now) {
            PairingView::Pending => "this pairing is not authorized yet",
            PairingView::Expired => "this pairing has expired",
            PairingView::Consumed | PairingView::Authorized => "this pairing was used already",
        };
        return Err(AppError::refused(Reason::InvalidTransition, why));
    }
    let opened = open_session(services, cabinet_id, &pairing).await;
    let session = match opened {
        Ok(session) => session,
        Err(err) => {
            // Nothing opened: the customer's authorization stands.
            kiosk_pairing::Entity::update_many()
                .col_expr(
                    kiosk_pairing::Column::State,
                    Expr::value(PairingState::Authorized),
                )
                .filter(kiosk_pairing::Column::Id.eq(pairing.id))
                .filter(kiosk_pairing::Column::State.eq(PairingState::Consumed))
                .filter(kiosk_pairing::Column::SessionId.is_null())
                .exec(&services.db)
                .await?;
            return Err(err);
        }
    };
    kiosk_pairing::Entity::update_many()
        .col_expr(kiosk_pairing::Column::SessionId, Expr::value(session.id))
        .filter(kiosk_pairing::Column::Id.eq(pairing.id))
        .exec(&services.db)
        .await?;
    let row = reload(services, pairing.id).await?;
    publish(services, &row).await;
    Ok((row, session))
}

async fn open_session(
    services: &ServiceContext,
    cabinet_id: i32,
    pairing: &kiosk_pairing::Model,
) -> AppResult<charging_session::Model> {
    let missing =
        || AppError::internal(anyhow::anyhow!("an authorized pairing has no reservation"));
    let reservation = reservation::Entity::find_by_id(pairing.reservation_id.ok_or_else(missing)?)
        .one(&services.db)
        .await?
        .ok_or(AppError::not_found("reservation"))?;
    let bay = bay::Entity::find_by_id(reservation.bay_id)
        .one(&services.db)
        .await?
        .ok_or(AppError::not_found("bay"))?;
    if bay.cabinet_id != cabinet_id {
        return Err(AppError::Forbidden);
    }
    let (session, _) = sessions::open(
        services,
        cabinet_id,
        &bay,
        &reservation,
        reservation.auth_choice,
    )
    .await?;
    Ok(session)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn row(state: PairingState, expires_at_us: i64) -> kiosk_pairing::Model {
        kiosk_pairing::Model {
            id: 1,
            cabinet_id: 1,
            token_hash: String::new(),
            state,
            expires_at_us,
            user_id: None,
            reservation_id: None,
            session_id: None,
            created_at: Utc::now(),
            changed_at: Utc::now(),
        }
    }

    #[test]
    fn pairings_show_expired_unless_consumed() {
        let now = Utc::now();
        let later = (now + TimeDelta::minutes(1)).timestamp_micros();
        let earlier = (now - TimeDelta::minutes(1)).timestamp_micros();
        assert_eq!(
            view(&row(PairingState::Pending, later), now),
            PairingView::Pending
        );
        assert_eq!(
            view(&row(PairingState::Pending, earlier), now),
            PairingView::Expired
        );
        assert_eq!(
            view(&row(PairingState::Authorized, earlier), now),
            PairingView::Expired
        );
        assert_eq!(
            view(&row(PairingState::Consumed, earlier), now),
            PairingView::Consumed
        );
    }

    #[test]
    fn the_qr_content_and_the_bare_token_find_the_same_pairing() {
        assert_eq!(
            token_hash("voltgate:pairing:vgp_abc"),
            token_hash("vgp_abc")
        );
        assert_ne!(token_hash("vgp_abc"), token_hash("vgp_abd"));
    }
}
