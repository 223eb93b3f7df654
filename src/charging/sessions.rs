//! Charging sessions: a kiosk validates a reservation's credential
//! ([`authenticate`]), which opens a session and sends `unlock`; the device's
//! acknowledgements (through [`SessionCommands`], the session's command owner)
//! and the [`AdvanceSessions`] job (plugged in → `start_charge`; not plugged in
//! time → `ERROR`) move it on; [`stop`] sends `stop_charge`.
//!
//! Every change goes through [`apply`]: the pure state machine
//! (`session_state::next`) decides, and one `UPDATE` conditional on the state
//! read stores it, so two replicas can never both move a session from the same
//! state. An invalid transition is logged and never applied. When a session
//! ends its reservation is `COMPLETED` and the bay's status follows.
//!
//! Failed credentials are stored as authentication attempts and counted per
//! kiosk and per bay over a window (`VOLTGATE_TERMINAL_*`), in the database so
//! every replica sees the same count; the answer never says which part of the
//! credential was wrong.

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use sea_orm::sea_query::Expr;
use sea_orm::{
    ActiveModelTrait, ColumnTrait, Condition, ConnectionTrait, DatabaseTransaction, DbErr,
    EntityTrait, PaginatorTrait, QueryFilter, QueryOrder, QuerySelect, QueryTrait, Set, SqlErr,
    TransactionTrait,
};

use super::bay_status;
use super::reservations::access_hash;
use super::session_state::{self, InvalidTransition, SessionEvent, SessionState};
use crate::bus::{ChargeStateChanged, DomainEvent};
use crate::devices::commands::CommandAction;
use crate::devices::commands_log::{self, CommandOwner, Owner, SendOptions};
use crate::entities::reservation::{AccessMode, ReservationStatus};
use crate::entities::{
    auth_method, bay, charging_auth_attempt, charging_session, device, device_command, reservation,
};
use crate::error::{AppError, AppResult, Reason};
use crate::services::ServiceContext;
use crate::supervision::incidents::SessionMove;

/// The command owner kind of charging sessions.
pub const OWNER_KIND: &str = "charging_session";

fn owner(session_id: i32) -> Owner {
    Owner {
        kind: OWNER_KIND,
        id: i64::from(session_id),
    }
}

/// Where the reservation goes when a session ends.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum AfterEnd {
    /// The session ran: the reservation is used up.
    Completed,
    /// Nothing happened at the bay (the device could not be reached): the
    /// customer may try again within the slot.
    Reopened,
}

/// Applies `event` to `session`: the state machine decides, one conditional
/// `UPDATE` stores it. Returns the new row and the events to publish after the
/// commit, or the refused transition (logged), with nothing changed.
///
/// # Errors
/// On database errors.
pub(crate) async fn apply(
    db: &impl ConnectionTrait,
    session: &charging_session::Model,
    event: SessionEvent,
    now: DateTime<Utc>,
    error: Option<&str>,
) -> Result<Result<(charging_session::Model, Vec<DomainEvent>), InvalidTransition>, DbErr> {
    let to = match session_state::next(session.state, event) {
        Ok(to) => to,
        Err(invalid) => {
            tracing::warn!(session = session.id, from = ?invalid.from, event = ?invalid.event, "invalid session transition refused");
            return Ok(Err(invalid));
        }
    };
    let mut update = charging_session::Entity::update_many()
        .col_expr(charging_session::Column::State, Expr::value(to))
        .col_expr(charging_session::Column::StateChangedAt, Expr::value(now))
        .col_expr(
            charging_session::Column::Revision,
            charging_session::next_revision(),
        )
        .filter(charging_session::Column::Id.eq(session.id))
        .filter(charging_session::Column::State.eq(session.state));
    if to == SessionState::WaitingPlug {
        let timeout = chrono::TimeDelta::seconds(i64::from(session.plug_timeout_secs.max(1)));
        update = update.col_expr(
            charging_session::Column::PlugDeadlineUs,
            Expr::value((now + timeout).timestamp_micros()),
        );
    }
    if to == SessionState::Charging {
        update = update.col_expr(charging_session::Column::ChargingSince, Expr::value(now));
    }
    if to.is_final() {
        update = update.col_expr(charging_session::Column::EndedAt, Expr::value(now));
    }
    if let Some(error) = error {
        let error: String = error.chars().take(255).collect();
        update = update.col_expr(charging_session::Column::Error, Expr::value(error));
    }
    let Some(updated) = update.exec_with_returning(db).await?.pop() else {
        // Another replica moved it first; this event came too late for the state it saw.
        let current = charging_session::Entity::find_by_id(session.id)
            .one(db)
            .await?
            .map_or(session.state, |s| s.state);
        tracing::warn!(session = session.id, from = ?current, ?event, "session moved concurrently; event refused");
        return Ok(Err(InvalidTransition {
            from: current,
            event,
        }));
    };
    let mut events = vec![charge_event(db, &updated).await?];
    let moved = match (to, event) {
        (SessionState::Error, SessionEvent::PlugTimeout) => Some(SessionMove::PlugTimedOut),
        (SessionState::Error, _) => Some(SessionMove::Failed),
        (SessionState::Charging, _) => Some(SessionMove::Charging),
        _ => None,
    };
    if let Some(moved) = moved {
        let alert = crate::supervision::incidents::session_moved(db, &updated, moved, now).await?;
        events.extend(alert.map(crate::supervision::alerts::event));
    }
    if to.is_final() {
        let after =
            if event == SessionEvent::Failed && session.state == SessionState::AccessValidated {
                AfterEnd::Reopened
            } else {
                AfterEnd::Completed
            };
        events.extend(end_reservation(db, &updated, after, now).await?);
    }
    Ok(Ok((updated, events)))
}

/// The event subscribers of `chargeStateChanged` see for the session as it now is.
async fn charge_event(
    db: &impl ConnectionTrait,
    session: &charging_session::Model,
) -> Result<DomainEvent, DbErr> {
    let station_id = bay::Entity::find_by_id(session.bay_id)
        .one(db)
        .await?
        .map_or(0, |b| b.station_id);
    let latest = crate::supervision::telemetry::latest_of_session(db, session.id).await?;
    Ok(charge_event_of(session, station_id, latest.as_ref()))
}

/// The event of `session` at a bay of `station_id`, with its latest sample.
fn charge_event_of(
    session: &charging_session::Model,
    station_id: i32,
    latest: Option<&crate::entities::session_telemetry::Model>,
) -> DomainEvent {
    DomainEvent::ChargeStateChanged(ChargeStateChanged {
        session_id: session.id,
        bay_id: session.bay_id,
        station_id,
        user_id: session.user_id,
        state: session.state,
        energy_kwh: session.energy_kwh,
        current_a: latest.map(|s| s.current_a),
        voltage_v: latest.map(|s| s.voltage_v),
        at: session.state_changed_at,
        revision: session.revision,
    })
}

async fn end_reservation(
    db: &impl ConnectionTrait,
    session: &charging_session::Model,
    after: AfterEnd,
    now: DateTime<Utc>,
) -> Result<Vec<DomainEvent>, DbErr> {
    let status = match after {
        AfterEnd::Completed => ReservationStatus::Completed,
        AfterEnd::Reopened => ReservationStatus::Confirmed,
    };
    reservation::Entity::update_many()
        .col_expr(reservation::Column::Status, Expr::value(status))
        .filter(reservation::Column::Id.eq(session.reservation_id))
        .filter(reservation::Column::Status.eq(ReservationStatus::Active))
        .exec(db)
        .await?;
    bay_status::refresh(db, &[session.bay_id], now)
        .await
        .map_err(|err| DbErr::Custom(err.message()))
}

/// A reservation the bay holds now, with the access method issued for it.
struct Held {
    row: reservation::Model,
    method: Option<auth_method::Model>,
}

/// A failed attempt that may count against a limit.
#[derive(Debug, Clone, Copy, sea_orm::FromQueryResult)]
struct Failure {
    cabinet_id: i32,
    bay_id: i32,
    /// The reservation the bay held when it failed, if any.
    reservation_id: Option<i32>,
    created_at_us: i64,
}

/// The failed attempts that may refuse this one, in one statement read
/// beside the bay's held reservations: at this kiosk and at this bay within
/// the window, and against any reservation the bay holds now. Rows are few:
/// an attempt refused by a limit is not recorded.
async fn recent_failures(
    services: &ServiceContext,
    cabinet_id: i32,
    bay_id: i32,
    now: DateTime<Utc>,
) -> AppResult<Vec<Failure>> {
    use charging_auth_attempt::Column;
    let since = (now - services.kiosks.failure_window()).timestamp_micros();
    let held_ids = held_filter(reservation::Entity::find(), services, bay_id, now)
        .select_only()
        .column(reservation::Column::Id)
        .into_query();
    Ok(charging_auth_attempt::Entity::find()
        .select_only()
        .columns([
            Column::CabinetId,
            Column::BayId,
            Column::ReservationId,
            Column::CreatedAtUs,
        ])
        .filter(Column::Succeeded.eq(false))
        .filter(
            Condition::any()
                .add(
                    Condition::all()
                        .add(Column::CabinetId.eq(cabinet_id))
                        .add(Column::CreatedAtUs.gt(since)),
                )
                .add(
                    Condition::all()
                        .add(Column::BayId.eq(bay_id))
                        .add(Column::CreatedAtUs.gt(since)),
                )
                .add(Column::ReservationId.in_subquery(held_ids)),
        )
        .into_model::<Failure>()
        .all(&services.db)
        .await?)
}

/// Whether the failures refuse another attempt: too many at this kiosk or at
/// this bay within the window, or against a reservation the bay holds since
/// its credential was issued (`issued`: each held reservation's id and when,
/// in µs; waiting does not buy more guesses at one code, regenerating the
/// credential, which its owner does, starts afresh).
fn over_limits(
    settings: &super::settings::KioskSettings,
    (cabinet_id, bay_id): (i32, i32),
    issued: &[(i32, i64)],
    failures: &[Failure],
    now: DateTime<Utc>,
) -> bool {
    let since = (now - settings.failure_window()).timestamp_micros();
    let count = |counts: &dyn Fn(&Failure) -> bool| failures.iter().filter(|f| counts(f)).count();
    let per_kiosk = count(&|f| f.cabinet_id == cabinet_id && f.created_at_us > since);
    let per_bay = count(&|f| f.bay_id == bay_id && f.created_at_us > since);
    let per_reservation = issued
        .iter()
        .map(|&(id, issued)| count(&|f| f.reservation_id == Some(id) && f.created_at_us >= issued))
        .max()
        .unwrap_or(0);
    per_kiosk >= settings.failures_per_kiosk as usize
        || per_bay.max(per_reservation) >= settings.failures_per_reservation as usize
}

/// Refuses the attempt when [`over_limits`].
fn check_limits(
    services: &ServiceContext,
    place: (i32, i32),
    held: &[Held],
    failures: &[Failure],
    now: DateTime<Utc>,
) -> AppResult<()> {
    let issued: Vec<(i32, i64)> = held
        .iter()
        .map(|held| {
            let at = held
                .method
                .as_ref()
                .map_or(held.row.created_at, |m| m.created_at);
            (held.row.id, at.timestamp_micros())
        })
        .collect();
    if over_limits(&services.kiosks, place, &issued, failures, now) {
        tracing::warn!(
            cabinet = place.0,
            bay = place.1,
            security = true,
            "kiosk authentication rate-limited"
        );
        return Err(AppError::RateLimited);
    }
    Ok(())
}

/// Narrows `query` to the reservations `bay_id` holds now (any access mode,
/// slot widened by the access margin).
fn held_filter<Q: QueryFilter>(
    query: Q,
    services: &ServiceContext,
    bay_id: i32,
    now: DateTime<Utc>,
) -> Q {
    let margin = services.reservations.access_margin();
    query
        .filter(reservation::Column::BayId.eq(bay_id))
        .filter(reservation::Column::Status.is_in(ReservationStatus::HOLDING))
        .filter(reservation::Column::StartsAtUs.lte((now + margin).timestamp_micros()))
        .filter(reservation::Column::EndsAtUs.gt((now - margin).timestamp_micros()))
}

/// The reservations `bay_id` holds now ([`held_filter`]), earliest first,
/// with their access methods (one statement): what a failed attempt there is
/// counted against, and (an active one too, to answer that it is in use
/// rather than that the credential is wrong) what a credential may open.
async fn held_now(
    services: &ServiceContext,
    bay_id: i32,
    now: DateTime<Utc>,
) -> AppResult<Vec<Held>> {
    let query = reservation::Entity::find().find_also_related(auth_method::Entity);
    Ok(held_filter(query, services, bay_id, now)
        .order_by_asc(reservation::Column::StartsAtUs)
        .all(&services.db)
        .await?
        .into_iter()
        .map(|(row, method)| Held { row, method })
        .collect())
}

/// Whether `credential` opens `row` with `method` (its stored hash, active and unexpired).
pub(crate) fn matches(
    row: &reservation::Model,
    method: &auth_method::Model,
    credential: &str,
    now: DateTime<Utc>,
    badge_keys: &crate::accounts::badges::BadgeKeyring,
) -> bool {
    if !method.is_active
        || method.revoked_at.is_some()
        || method.expires_at.is_some_and(|at| at < now)
    {
        return false;
    }
    let expected = match row.auth_choice {
        AccessMode::Rfid => {
            return crate::accounts::badges::normalize_uid(credential)
                .is_ok_and(|uid| badge_keys.matches(&uid, &method.value_hash));
        }
        AccessMode::Qr => {
            let Some(rest) = credential.strip_prefix("voltgate:reservation:") else {
                return false;
            };
            match rest.split_once(':') {
                Some((reference, secret)) if reference == row.reference_code => {
                    access_hash(reference, secret)
                }
                _ => return false,
            }
        }
        AccessMode::Code => access_hash(&row.reference_code, credential),
    };
    expected == method.value_hash
}

/// A kiosk's authentication of a customer at one of its bays.
pub struct Attempt<'a> {
    pub cabinet_id: i32,
    pub bay_id: i32,
    pub method: AccessMode,
    pub credential: &'a str,
}

/// Checks the credential against the bay's reservation for now, opens a
/// session in `ACCESS_VALIDATED` (the reservation becomes `ACTIVE`, the bay
/// `OCCUPIED`) and sends `unlock`.
///
/// # Errors
/// `NOT_FOUND` bay; `FORBIDDEN` when the bay is not the kiosk's cabinet's;
/// `BAD_USER_INPUT` on an empty or oversized credential; `RATE_LIMITED` after
/// too many failures at this kiosk or bay; `FORBIDDEN` with
/// `INVALID_CREDENTIAL` when nothing matches (whatever was wrong);
/// `CONFLICT` with `BAY_UNAVAILABLE` when the bay has an open session;
/// `DEVICE_UNREACHABLE` when `unlock` cannot be sent (the session then ends in
/// `ERROR` and the reservation can be used again).
pub async fn authenticate(
    services: &ServiceContext,
    attempt: Attempt<'_>,
) -> AppResult<(charging_session::Model, Vec<DomainEvent>)> {
    let now = services.now();
    let db = &services.db;
    let credential = attempt.credential.trim();
    if credential.is_empty() || credential.len() > 256 {
        return Err(AppError::bad_input("credential", "1 to 256 characters"));
    }
    // Four independent reads at once, on connections of their own: the
    // authentication waits for the slowest, not for their sum. What is read
    // of another cabinet's bay is dropped unused.
    let (bay, held, target, failures) = tokio::try_join!(
        async {
            bay::Entity::find_by_id(attempt.bay_id)
                .one(db)
                .await?
                .ok_or(AppError::not_found("bay"))
        },
        held_now(services, attempt.bay_id, now),
        commands_log::target(db, attempt.bay_id),
        recent_failures(services, attempt.cabinet_id, attempt.bay_id, now),
    )?;
    if bay.cabinet_id != attempt.cabinet_id {
        return Err(AppError::Forbidden);
    }
    check_limits(
        services,
        (attempt.cabinet_id, bay.id),
        &held,
        &failures,
        now,
    )?;

    let badge_keys = services.badge_keys.get(db).await?;
    let mut found = None;
    for held in &held {
        let Some(method) = &held.method else {
            continue;
        };
        let row = &held.row;
        if row.auth_choice == attempt.method && matches(row, method, credential, now, &badge_keys) {
            if let (AccessMode::Rfid, Ok(uid)) = (
                row.auth_choice,
                crate::accounts::badges::normalize_uid(credential),
            ) {
                crate::accounts::badges::rehash(db, &badge_keys, method, &uid).await?;
            }
            found = Some(row.clone());
            break;
        }
    }
    let record = |succeeded: bool, row: Option<&reservation::Model>, session: Option<i32>| {
        charging_auth_attempt::ActiveModel {
            cabinet_id: Set(attempt.cabinet_id),
            bay_id: Set(bay.id),
            reservation_id: Set(row.map(|r| r.id)),
            user_id: Set(row.map(|r| r.user_id)),
            session_id: Set(session),
            method: Set(attempt.method),
            succeeded: Set(succeeded),
            created_at: Set(now),
            created_at_us: Set(now.timestamp_micros()),
            ..Default::default()
        }
    };
    let Some(row) = found else {
        let mut failure = record(false, None, None);
        failure.reservation_id = Set(held.first().map(|h| h.row.id));
        failure.insert(db).await?;
        tracing::info!(
            cabinet = attempt.cabinet_id,
            bay = bay.id,
            security = true,
            "kiosk authentication failed"
        );
        return Err(AppError::refused(
            Reason::InvalidCredential,
            "this credential does not open this bay now",
        ));
    };
    open_at(
        services,
        target,
        attempt.cabinet_id,
        &bay,
        &row,
        attempt.method,
    )
    .await
}

/// A session about to open: whose access the caller has checked.
pub(crate) struct Opening<'a> {
    pub cabinet_id: i32,
    pub bay: &'a bay::Model,
    pub row: &'a reservation::Model,
    pub method: AccessMode,
    pub plug_timeout: chrono::TimeDelta,
    /// When the access was validated.
    pub at: DateTime<Utc>,
}

/// Within `txn`: the reservation becomes `ACTIVE`, a session opens in
/// `ACCESS_VALIDATED` and the successful authentication is recorded; the
/// events to publish after the commit.
///
/// # Errors
/// `BAY_UNAVAILABLE` when the reservation is in use already or the bay has an
/// open session; on database errors.
pub(crate) async fn open_in(
    txn: &DatabaseTransaction,
    opening: Opening<'_>,
) -> AppResult<(charging_session::Model, Vec<DomainEvent>)> {
    let Opening {
        cabinet_id,
        bay,
        row,
        method,
        plug_timeout,
        at,
    } = opening;
    let activated = reservation::Entity::update_many()
        .col_expr(
            reservation::Column::Status,
            Expr::value(ReservationStatus::Active),
        )
        .filter(reservation::Column::Id.eq(row.id))
        .filter(
            reservation::Column::Status
                .is_in([ReservationStatus::Pending, ReservationStatus::Confirmed]),
        )
        .exec(txn)
        .await?;
    if activated.rows_affected != 1 {
        return Err(AppError::refused(
            Reason::BayUnavailable,
            "the reservation is in use already",
        ));
    }
    let opened = session_state::next(SessionState::Reserved, SessionEvent::AccessValidated)
        .map_err(|_| AppError::internal(anyhow::anyhow!("the session cannot open")))?;
    let inserted = charging_session::ActiveModel {
        reservation_id: Set(row.id),
        user_id: Set(row.user_id),
        bay_id: Set(bay.id),
        cabinet_id: Set(bay.cabinet_id),
        state: Set(opened),
        method: Set(method),
        opened_at: Set(at),
        state_changed_at: Set(at),
        plug_timeout_secs: Set(i32::try_from(plug_timeout.num_seconds()).unwrap_or(i32::MAX)),
        plug_deadline_us: Set(None),
        start_command_id: Set(None),
        charging_since: Set(None),
        ended_at: Set(None),
        energy_kwh: Set(None),
        error: Set(None),
        ..Default::default()
    }
    .insert(txn)
    .await;
    let session = match inserted {
        Ok(session) => session,
        Err(err) if matches!(err.sql_err(), Some(SqlErr::UniqueConstraintViolation(_))) => {
            return Err(AppError::refused(
                Reason::BayUnavailable,
                "a charging session is open at this bay",
            ));
        }
        Err(err) => return Err(err.into()),
    };
    succeeded_attempt(cabinet_id, bay.id, row, Some(session.id), method, at)
        .insert(txn)
        .await?;
    let mut events = bay_status::refresh(txn, &[bay.id], at).await?;
    // A session opened in this transaction has no telemetry yet.
    events.push(charge_event_of(&session, bay.station_id, None));
    Ok((session, events))
}

/// The record of a credential that opened `row` at a kiosk.
pub(crate) fn succeeded_attempt(
    cabinet_id: i32,
    bay_id: i32,
    row: &reservation::Model,
    session_id: Option<i32>,
    method: AccessMode,
    at: DateTime<Utc>,
) -> charging_auth_attempt::ActiveModel {
    charging_auth_attempt::ActiveModel {
        cabinet_id: Set(cabinet_id),
        bay_id: Set(bay_id),
        reservation_id: Set(Some(row.id)),
        user_id: Set(Some(row.user_id)),
        session_id: Set(session_id),
        method: Set(method),
        succeeded: Set(true),
        created_at: Set(at),
        created_at_us: Set(at.timestamp_micros()),
        ..Default::default()
    }
}

/// Opens a session for `row` at `bay`, whose access the caller has checked
/// (a credential, or a pairing the customer authorized), and sends `unlock`.
/// The session opens and `unlock` is logged in one transaction; a refused
/// `unlock` is recorded and the session ended in a second one.
///
/// # Errors
/// As [`authenticate`] once the credential matched.
pub(crate) async fn open(
    services: &ServiceContext,
    cabinet_id: i32,
    bay: &bay::Model,
    row: &reservation::Model,
    method: AccessMode,
) -> AppResult<(charging_session::Model, Vec<DomainEvent>)> {
    let target = commands_log::target(&services.db, bay.id).await?;
    open_at(services, target, cabinet_id, bay, row, method).await
}

/// [`open`] with the bay's command target read already.
async fn open_at(
    services: &ServiceContext,
    target: Option<commands_log::Target>,
    cabinet_id: i32,
    bay: &bay::Model,
    row: &reservation::Model,
    method: AccessMode,
) -> AppResult<(charging_session::Model, Vec<DomainEvent>)> {
    let at = services.now();
    // A bay without a device opens too, and its session ends at once: the
    // attempt and its outcome stay on record.
    let txn = services.db.begin().await?;
    let (session, mut events) = open_in(
        &txn,
        Opening {
            cabinet_id,
            bay,
            row,
            method,
            plug_timeout: services.kiosks.plug_timeout(),
            at,
        },
    )
    .await?;
    let logged = match target {
        Some(target) => Some(
            commands_log::log_in(
                &txn,
                target,
                CommandAction::Unlock,
                serde_json::Map::new(),
                SendOptions {
                    owner: Some(owner(session.id)),
                    timeout: None,
                },
                services.commands.timeout(),
                at,
            )
            .await?,
        ),
        None => None,
    };
    txn.commit().await?;
    bay_status::publish(services, std::mem::take(&mut events)).await;
    tracing::info!(
        session = session.id,
        reservation = row.id,
        bay = bay.id,
        "charging session opened"
    );

    let Some(logged) = logged else {
        fail(
            services,
            &session,
            "the bay's device cannot be reached",
            None,
        )
        .await?;
        return Err(commands_log::no_device());
    };
    if let Err(unsent) = commands_log::transmit(services, &logged).await {
        fail(
            services,
            &session,
            "the bay's device cannot be reached",
            Some((&logged, &unsent)),
        )
        .await?;
        return Err(unsent.into());
    }
    Ok((session, events))
}

/// Ends `session` in `ERROR` with `why`, publishing what changed; in the same
/// transaction, records the command that could not be sent, if any.
async fn fail(
    services: &ServiceContext,
    session: &charging_session::Model,
    why: &str,
    unsent: Option<(&commands_log::Logged, &commands_log::Unsent)>,
) -> AppResult<()> {
    let txn = services.db.begin().await?;
    if let Some((logged, unsent)) = unsent {
        commands_log::unsent_in(&txn, logged, unsent).await?;
    }
    let applied = apply(
        &txn,
        session,
        SessionEvent::Failed,
        services.now(),
        Some(why),
    )
    .await?;
    txn.commit().await?;
    if let Ok((_, events)) = applied {
        bay_status::publish(services, events).await;
    }
    Ok(())
}

/// Who asks to stop a session.
pub enum Stopper {
    /// The kiosk of a cabinet.
    Kiosk(i32),
    /// The customer (their account id).
    Customer(i32),
    Staff,
}

/// Asks the device to stop: the session goes `STOPPING` and `stop_charge` is
/// sent; its acknowledgement ends the session (`STOPPED`, the reservation
/// `COMPLETED`).
///
/// # Errors
/// `NOT_FOUND` when there is no such session or it is not the caller's (a kiosk
/// sees its cabinet's, a customer their own); `CONFLICT` with
/// `INVALID_TRANSITION` when it cannot stop now; `DEVICE_UNREACHABLE` when
/// `stop_charge` cannot be sent (the session then ends in `ERROR`).
pub async fn stop(
    services: &ServiceContext,
    session_id: i32,
    by: Stopper,
) -> AppResult<charging_session::Model> {
    let session = charging_session::Entity::find_by_id(session_id)
        .one(&services.db)
        .await?
        .filter(|s| match by {
            Stopper::Kiosk(cabinet) => s.cabinet_id == cabinet,
            Stopper::Customer(user) => s.user_id == user,
            Stopper::Staff => true,
        })
        .ok_or(AppError::not_found("charging session"))?;
    let applied = apply(
        &services.db,
        &session,
        SessionEvent::StopRequested,
        services.now(),
        None,
    )
    .await?;
    let (stopping, events) = applied.map_err(|invalid| {
        AppError::refused(
            Reason::InvalidTransition,
            format!("a session {:?} cannot be stopped", invalid.from).to_lowercase(),
        )
    })?;
    bay_status::publish(services, events).await;
    let sent = commands_log::send(
        services,
        session.bay_id,
        CommandAction::StopCharge,
        serde_json::Map::new(),
        SendOptions {
            owner: Some(owner(session.id)),
            timeout: None,
        },
    )
    .await;
    if let Err(err) = sent {
        fail(
            services,
            &stopping,
            "the bay's device cannot be reached",
            None,
        )
        .await?;
        return Err(err);
    }
    Ok(stopping)
}

/// Sessions learn the outcome of their commands: `unlock` done → `WAITING_PLUG`,
/// `start_charge` done → `CHARGING`, `stop_charge` done → `STOPPED`; any
/// failure, rejection or timeout → `ERROR`.
pub struct SessionCommands;

#[async_trait]
impl CommandOwner for SessionCommands {
    fn kind(&self) -> &'static str {
        OWNER_KIND
    }

    async fn settled(
        &self,
        txn: &DatabaseTransaction,
        id: i64,
        command: &device_command::Model,
    ) -> Result<Vec<DomainEvent>, DbErr> {
        let Ok(id) = i32::try_from(id) else {
            return Ok(Vec::new());
        };
        let Some(session) = charging_session::Entity::find_by_id(id).one(txn).await? else {
            return Ok(Vec::new());
        };
        let event = match (command.action.as_str(), command.status.succeeded()) {
            (_, false) => SessionEvent::Failed,
            ("unlock", true) => SessionEvent::Unlocked,
            ("start_charge", true) => SessionEvent::ChargeStarted,
            ("stop_charge", true) => SessionEvent::Stopped,
            _ => return Ok(Vec::new()),
        };
        let why = (event == SessionEvent::Failed).then(|| {
            format!(
                "{} {}: {}",
                command.action,
                command.status.as_str(),
                command.error.as_deref().unwrap_or("no message")
            )
        });
        let now = command.acked_at.unwrap_or_else(Utc::now);
        Ok(
            match apply(txn, &session, event, now, why.as_deref()).await? {
                Ok((_, events)) => events,
                Err(_) => Vec::new(),
            },
        )
    }
}

/// Moves waiting sessions on: a vehicle plugged in gets `start_charge` (sent
/// once per session), a session not plugged in before its deadline ends in
/// `ERROR` and frees the bay. Each run is claimed by one replica; each session
/// moves by a conditional `UPDATE`, so overlapping runs never act twice.
pub struct AdvanceSessions;

/// How many sessions one run handles per kind of step.
const ADVANCE_BATCH: u64 = 100;

#[async_trait]
impl crate::jobs::Job for AdvanceSessions {
    fn name(&self) -> &'static str {
        "advance_charging_sessions"
    }

    fn every(&self) -> chrono::TimeDelta {
        chrono::TimeDelta::seconds(1)
    }

    async fn run(&self, services: &ServiceContext) -> anyhow::Result<()> {
        time_out_plugs(services).await?;
        start_plugged(services).await?;
        Ok(())
    }
}

async fn time_out_plugs(services: &ServiceContext) -> anyhow::Result<()> {
    let now = services.now();
    let txn = services.db.begin().await?;
    let overdue = crate::jobs::claim_batch(
        &txn,
        charging_session::Entity::find()
            .filter(charging_session::Column::State.eq(SessionState::WaitingPlug))
            .filter(charging_session::Column::PlugDeadlineUs.lte(now.timestamp_micros())),
        ADVANCE_BATCH,
    )
    .await?;
    let mut events = Vec::new();
    for session in overdue {
        if let Ok((_, changed)) = apply(
            &txn,
            &session,
            SessionEvent::PlugTimeout,
            now,
            Some("no vehicle was plugged in in time"),
        )
        .await?
        {
            tracing::info!(
                session = session.id,
                "charging session ended: not plugged in in time"
            );
            events.extend(changed);
        }
    }
    txn.commit().await?;
    bay_status::publish(services, events).await;
    Ok(())
}

/// What `start_command_id` holds while this replica sends `start_charge`.
const SENDING: &str = "sending";

async fn start_plugged(services: &ServiceContext) -> anyhow::Result<()> {
    let waiting = charging_session::Entity::find()
        .filter(charging_session::Column::State.eq(SessionState::WaitingPlug))
        .filter(charging_session::Column::StartCommandId.is_null())
        .order_by_asc(charging_session::Column::Id)
        .paginate(&services.db, ADVANCE_BATCH)
        .fetch_page(0)
        .await?;
    for session in waiting {
        let plugged = device::Entity::find()
            .filter(device::Column::BayId.eq(session.bay_id))
            .filter(device::Column::Plugged.eq(true))
            .count(&services.db)
            .await?
            > 0;
        if !plugged {
            continue;
        }
        // Claimed first, so `start_charge` leaves once even if runs overlap.
        let claimed = charging_session::Entity::update_many()
            .col_expr(
                charging_session::Column::StartCommandId,
                Expr::value(SENDING),
            )
            .filter(charging_session::Column::Id.eq(session.id))
            .filter(charging_session::Column::State.eq(SessionState::WaitingPlug))
            .filter(charging_session::Column::StartCommandId.is_null())
            .exec(&services.db)
            .await?;
        if claimed.rows_affected != 1 {
            continue;
        }
        let sent = commands_log::send(
            services,
            session.bay_id,
            CommandAction::StartCharge,
            serde_json::Map::from_iter([(
                "session".to_owned(),
                serde_json::Value::from(session.id),
            )]),
            SendOptions {
                owner: Some(owner(session.id)),
                timeout: None,
            },
        )
        .await;
        match sent {
            Ok(command) => {
                charging_session::Entity::update_many()
                    .col_expr(
                        charging_session::Column::StartCommandId,
                        Expr::value(command.command_id),
                    )
                    .filter(charging_session::Column::Id.eq(session.id))
                    .exec(&services.db)
                    .await?;
            }
            Err(_) => {
                let session = charging_session::Entity::find_by_id(session.id)
                    .one(&services.db)
                    .await?;
                if let Some(session) = session {
                    fail(
                        services,
                        &session,
                        "the bay's device cannot be reached",
                        None,
                    )
                    .await
                    .map_err(|e| anyhow::anyhow!(e.message()))?;
                }
            }
        }
    }
    Ok(())
}

/// A session, for whoever may see it: its customer, staff, or the kiosk of its cabinet.
///
/// # Errors
/// `NOT_FOUND` when there is none the caller may see.
pub async fn get(
    db: &impl ConnectionTrait,
    principal: &crate::auth::Principal,
    id: i32,
) -> AppResult<charging_session::Model> {
    let row = charging_session::Entity::find_by_id(id).one(db).await?;
    row.filter(|s| match principal {
        crate::auth::Principal::Kiosk(kiosk) => kiosk.cabinet_id == s.cabinet_id,
        _ => principal.is_staff() || principal.person().is_ok_and(|p| p.id == s.user_id),
    })
    .ok_or(AppError::not_found("charging session"))
}

#[cfg(test)]
mod tests {
    use chrono::{TimeDelta, TimeZone};

    use super::*;
    use crate::charging::settings::KioskSettings;

    /// A session's announced changes raise its revision, and its
    /// announcement carries the revision written.
    #[tokio::test]
    async fn each_change_of_a_session_raises_its_revision() {
        let db = crate::db::testing::any_database().await;
        crate::seed::testing::one_cabinet_charging(&db, 4).await;
        let charging = charging_session::Entity::find()
            .filter(charging_session::Column::State.eq(SessionState::Charging))
            .one(&db)
            .await
            .expect("query")
            .expect("the demo's session that charges");
        assert_eq!(charging.revision, 2, "unlocked, then charging");

        // A sample of its meter.
        let (bay, meter) = crate::seed::testing::bay_and_device(&db, charging.bay_id).await;
        let sample = crate::supervision::telemetry::Sample {
            current_a: 30.0,
            voltage_v: 230.0,
            energy_kwh: 9.0,
            ts: Utc::now(),
        };
        let recorded = crate::supervision::telemetry::record_all(
            &db,
            &[crate::supervision::telemetry::Measured {
                bay: &bay,
                device: &meter,
                report: &sample,
                received_at: sample.ts,
            }],
            &crate::supervision::rules::Thresholds::default(),
            &crate::supervision::telemetry_cache::TelemetryCache::new(
                std::time::Duration::from_secs(1),
            ),
        )
        .await
        .expect("recorded");
        assert!(
            matches!(
                &recorded[..],
                [crate::supervision::telemetry::Recorded::Stored { event: Some(e), .. }] if e.revision == 3
            ),
            "{recorded:?}"
        );

        let (stopping, events) = apply(
            &db,
            &charging,
            SessionEvent::StopRequested,
            Utc::now(),
            None,
        )
        .await
        .expect("applied")
        .expect("a valid transition");
        assert_eq!(stopping.revision, 4);
        assert!(
            matches!(&events[0], DomainEvent::ChargeStateChanged(e) if e.revision == 4),
            "{events:?}"
        );
    }

    /// A session opening while another transaction changes its bay (here:
    /// puts it in maintenance) waits for that one and decides the bay's
    /// status on what it committed, rather than writing `OCCUPIED` over
    /// `MAINTENANCE` from inputs read before. On PostgreSQL, where the
    /// opening's status refresh locks the bay before reading; SQLite's single
    /// writer runs one transaction at a time.
    #[tokio::test]
    async fn a_session_opening_while_its_bay_changes_decides_on_what_committed() {
        use crate::entities::{BayStatus, bay_maintenance};
        let db = crate::db::testing::any_database().await;
        if db.get_database_backend() != sea_orm::DbBackend::Postgres {
            return;
        }
        crate::seed::testing::one_cabinet_charging(&db, 4).await;
        let (bay_id, user_id) = crate::seed::testing::free_bay_and_customer(&db).await;
        let now = Utc::now();
        let row = crate::seed::testing::holding_now("OPENWAITS", bay_id, user_id, now)
            .insert(&db)
            .await
            .expect("inserted");
        let (bay, _) = crate::seed::testing::bay_and_device(&db, bay_id).await;

        // Staff put the bay in maintenance: that transaction writes
        // `MAINTENANCE` and holds the bay until it commits.
        let flagging = db.begin().await.expect("a transaction");
        bay_maintenance::ActiveModel {
            bay_id: Set(bay_id),
            reason: Set("cable".into()),
            created_at: Set(now),
        }
        .insert(&flagging)
        .await
        .expect("flagged");
        bay_status::refresh(&flagging, &[bay_id], now)
            .await
            .expect("refreshed");
        // Meanwhile a kiosk opens a session for the reservation.
        let opening = tokio::spawn({
            let db = db.clone();
            async move {
                let txn = db.begin().await?;
                open_in(
                    &txn,
                    Opening {
                        cabinet_id: bay.cabinet_id,
                        bay: &bay,
                        row: &row,
                        method: AccessMode::Code,
                        plug_timeout: TimeDelta::minutes(5),
                        at: now,
                    },
                )
                .await
                .map_err(|e| sea_orm::DbErr::Custom(e.message()))?;
                txn.commit().await
            }
        });
        crate::db::testing::until_a_session_waits_for_a_lock(&db).await;
        flagging.commit().await.expect("committed");
        opening
            .await
            .expect("the opening ran")
            .expect("the session opened");

        let stored = bay::Entity::find_by_id(bay_id)
            .one(&db)
            .await
            .expect("query")
            .expect("the bay");
        assert_eq!(stored.status, BayStatus::Maintenance);
    }

    fn settings() -> KioskSettings {
        KioskSettings {
            failures_per_kiosk: 3,
            failures_per_reservation: 2,
            failure_window_minutes: 15,
            ..KioskSettings::default()
        }
    }

    #[test]
    fn failures_count_against_their_kiosk_bay_and_reservation() {
        let now = Utc.with_ymd_and_hms(2026, 12, 6, 12, 0, 0).unwrap();
        let us = |ago: TimeDelta| (now - ago).timestamp_micros();
        let recent = us(TimeDelta::minutes(1));
        let old = us(TimeDelta::hours(2));
        let settings = settings();
        // Kiosk 1, bay 10, reservation 100 issued three hours ago; each
        // failure is (kiosk, bay, reservation, when).
        let place = (1, 10);
        let issued = [(100, us(TimeDelta::hours(3)))];
        let limited = |failures: &[(i32, i32, Option<i32>, i64)]| {
            let failures: Vec<Failure> = failures
                .iter()
                .map(
                    |&(cabinet_id, bay_id, reservation_id, created_at_us)| Failure {
                        cabinet_id,
                        bay_id,
                        reservation_id,
                        created_at_us,
                    },
                )
                .collect();
            over_limits(&settings, place, &issued, &failures, now)
        };

        assert!(!limited(&[]));
        assert!(
            !limited(&[(1, 11, None, recent), (1, 12, None, recent)]),
            "two at the kiosk, under its three"
        );
        assert!(limited(&[
            (1, 11, None, recent),
            (1, 12, None, recent),
            (1, 13, None, recent)
        ]));
        assert!(
            !limited(&[(1, 11, None, old), (1, 12, None, old), (1, 13, None, old)]),
            "the kiosk's window is over"
        );
        assert!(
            limited(&[(1, 10, None, recent), (2, 10, None, recent)]),
            "two at the bay"
        );
        assert!(
            limited(&[(1, 10, Some(100), old), (1, 10, Some(100), old)]),
            "the reservation counts since its credential was issued, not within the window"
        );
        assert!(
            !limited(&[
                (1, 10, Some(100), us(TimeDelta::hours(4))),
                (1, 10, Some(100), old)
            ]),
            "before the credential was issued (regenerated since)"
        );
        assert!(
            !limited(&[(1, 10, Some(101), old), (1, 10, Some(101), old)]),
            "another reservation's failures out of the window"
        );
    }
}
