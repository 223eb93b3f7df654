//! GraphQL for charging sessions: the kiosk's `terminalAuthenticate` and
//! `terminalStopSession`, the customer's `stopChargingSession`, and reading one
//! session (`chargingSession`).

use async_graphql::{Context, Enum, ID, InputObject, Object, Result, SimpleObject, Subscription};
use futures_util::{Stream, StreamExt};

use super::reservations_graphql::AccessMode;
use super::sessions::{self, Attempt, Stopper};
use crate::auth::Principal;
use crate::auth::guards::principal;
use crate::entities::charging_session;
use crate::error::AppError;
use crate::graphql::ids::{self, Kind};
use crate::graphql::scalars::DateTime;
use crate::services::services;

impl Kind {
    pub const CHARGING_SESSION: Self = Self::named("ChargingSession");
}

/// Where a charging session stands.
#[derive(Enum, Copy, Clone, Eq, PartialEq)]
#[graphql(remote = "charging_session::SessionState")]
pub enum ChargingSessionState {
    Reserved,
    /// The kiosk accepted the credential; the bay is being unlocked.
    AccessValidated,
    /// Unlocked: waiting for the vehicle to be plugged in (until `plugDeadline`).
    WaitingPlug,
    Charging,
    /// Asked to stop; waiting for the device.
    Stopping,
    Stopped,
    /// Ended by a failure or a timeout; `error` says why.
    Error,
}

/// A charging session at a bay.
pub struct ChargingSession(pub charging_session::Model);

#[Object]
impl ChargingSession {
    async fn id(&self) -> ID {
        ids::encode(Kind::CHARGING_SESSION, self.0.id)
    }
    async fn state(&self) -> ChargingSessionState {
        self.0.state.into()
    }
    /// Raised by every announced change of this session: of two states of one
    /// session, the one with the higher revision is the later. A client that
    /// fetched it (after `CURSOR_EXPIRED`, say) ignores events with a lower
    /// revision than what it fetched.
    async fn revision(&self) -> i64 {
        self.0.revision
    }
    async fn bay_id(&self) -> ID {
        ids::encode(Kind::BAY, self.0.bay_id)
    }
    async fn reservation_id(&self) -> ID {
        ids::encode(Kind::RESERVATION, self.0.reservation_id)
    }
    /// How the customer authenticated at the kiosk.
    async fn method(&self) -> AccessMode {
        self.0.method.into()
    }
    async fn opened_at(&self) -> DateTime {
        self.0.opened_at.into()
    }
    async fn state_changed_at(&self) -> DateTime {
        self.0.state_changed_at.into()
    }
    /// While waiting for the plug: when the session ends if nothing is plugged in.
    async fn plug_deadline(&self) -> Option<DateTime> {
        if self.0.state != charging_session::SessionState::WaitingPlug {
            return None;
        }
        self.0
            .plug_deadline_us
            .and_then(chrono::DateTime::from_timestamp_micros)
            .map(Into::into)
    }
    async fn charging_since(&self) -> Option<DateTime> {
        self.0.charging_since.map(Into::into)
    }
    async fn ended_at(&self) -> Option<DateTime> {
        self.0.ended_at.map(Into::into)
    }
    /// Energy delivered, from the device's meter, when known.
    async fn energy_kwh(&self) -> Option<f64> {
        self.0.energy_kwh
    }
    /// Current of the latest telemetry sample (A).
    async fn current_a(&self, ctx: &Context<'_>) -> Result<Option<f64>> {
        Ok(self.latest_sample(ctx).await?.map(|s| s.current_a))
    }
    /// Voltage of the latest telemetry sample (V).
    async fn voltage_v(&self, ctx: &Context<'_>) -> Result<Option<f64>> {
        Ok(self.latest_sample(ctx).await?.map(|s| s.voltage_v))
    }
    /// Why the session ended in `ERROR`.
    async fn error(&self) -> Option<&str> {
        self.0.error.as_deref()
    }
}

impl ChargingSession {
    async fn latest_sample(
        &self,
        ctx: &Context<'_>,
    ) -> Result<Option<crate::entities::session_telemetry::Model>> {
        let db = &crate::services::services(ctx)?.db;
        Ok(
            crate::supervision::telemetry::latest_of_session(db, self.0.id)
                .await
                .map_err(AppError::from)?,
        )
    }
}

pub(crate) fn kiosk(ctx: &Context<'_>) -> Result<i32, AppError> {
    match principal(ctx) {
        Principal::Kiosk(kiosk) => Ok(kiosk.cabinet_id),
        Principal::Anonymous => Err(AppError::Unauthenticated),
        _ => Err(AppError::Forbidden),
    }
}

#[derive(Default)]
pub struct SessionQuery;

#[Object]
impl SessionQuery {
    /// A charging session: one's own, or any for staff.
    async fn charging_session(&self, ctx: &Context<'_>, id: ID) -> Result<ChargingSession> {
        let who = principal(ctx);
        who.person()?;
        let id = ids::decode(&id, Kind::CHARGING_SESSION, "id")?;
        let row = sessions::get(&services(ctx)?.db, who, id).await?;
        Ok(ChargingSession(row))
    }
}

#[derive(InputObject)]
pub struct TerminalAuthenticateInput {
    /// One of the kiosk's cabinet's bays.
    pub bay: ID,
    pub method: AccessMode,
    /// The badge UID, the QR code's content or the code.
    pub credential: String,
}

#[derive(SimpleObject)]
pub struct TerminalSessionPayload {
    pub session: ChargingSession,
}

#[derive(InputObject)]
pub struct StopSessionInput {
    pub session: ID,
}

#[derive(Default)]
pub struct SessionMutation;

#[Object]
impl SessionMutation {
    /// A kiosk: checks a customer's credential against the bay's reservation
    /// for now, opens a charging session and unlocks the bay.
    async fn terminal_authenticate(
        &self,
        ctx: &Context<'_>,
        input: TerminalAuthenticateInput,
    ) -> Result<TerminalSessionPayload> {
        let cabinet_id = kiosk(ctx)?;
        let bay_id = ids::decode(&input.bay, Kind::BAY, "bay")?;
        let (session, _) = sessions::authenticate(
            services(ctx)?,
            Attempt {
                cabinet_id,
                bay_id,
                method: input.method.into(),
                credential: &input.credential,
            },
        )
        .await?;
        Ok(TerminalSessionPayload {
            session: ChargingSession(session),
        })
    }

    /// A kiosk: stops a session at its cabinet.
    async fn terminal_stop_session(
        &self,
        ctx: &Context<'_>,
        input: StopSessionInput,
    ) -> Result<TerminalSessionPayload> {
        let cabinet_id = kiosk(ctx)?;
        let id = ids::decode(&input.session, Kind::CHARGING_SESSION, "session")?;
        let session = sessions::stop(services(ctx)?, id, Stopper::Kiosk(cabinet_id)).await?;
        Ok(TerminalSessionPayload {
            session: ChargingSession(session),
        })
    }

    /// The customer (or staff): stops their charging session.
    async fn stop_charging_session(
        &self,
        ctx: &Context<'_>,
        input: StopSessionInput,
    ) -> Result<TerminalSessionPayload> {
        let who = principal(ctx);
        let person = who.person()?;
        let id = ids::decode(&input.session, Kind::CHARGING_SESSION, "session")?;
        let by = if who.is_staff() {
            Stopper::Staff
        } else {
            Stopper::Customer(person.id)
        };
        let session = sessions::stop(services(ctx)?, id, by).await?;
        Ok(TerminalSessionPayload {
            session: ChargingSession(session),
        })
    }
}

/// A change of a charging session, as `chargeStateChanged` delivers it.
#[derive(SimpleObject)]
pub struct ChargeStateEvent {
    pub session_id: ID,
    pub bay_id: ID,
    pub state: ChargingSessionState,
    /// The meter total for the session, when known.
    pub energy_kwh: Option<f64>,
    pub current_a: Option<f64>,
    pub voltage_v: Option<f64>,
    /// When the session entered this state.
    pub at: DateTime,
    /// The session's revision as of this change (see
    /// `ChargingSession.revision`).
    pub revision: i64,
    /// Give it as `after` to resume after this event.
    pub cursor: String,
}

#[derive(Default)]
pub struct SessionSubscription;

#[Subscription]
impl SessionSubscription {
    /// Charging sessions' state changes, live: one's own sessions, any for
    /// staff, those of their stations for technicians; narrowed to one session
    /// or one bay. With `after` (the last `cursor` received), the changes
    /// missed since come first.
    async fn charge_state_changed(
        &self,
        ctx: &Context<'_>,
        session_id: Option<ID>,
        bay_id: Option<ID>,
        after: Option<String>,
    ) -> Result<impl Stream<Item = Result<ChargeStateEvent>> + use<>> {
        let who = principal(ctx);
        let me = who.person()?.id;
        let scope = who.stations();
        let topic = match (session_id, bay_id) {
            (Some(_), Some(_)) => {
                return Err(
                    AppError::bad_input("bayId", "give a session or a bay, not both").into(),
                );
            }
            (Some(id), None) => {
                let id = ids::decode(&id, Kind::CHARGING_SESSION, "sessionId")?;
                crate::bus::Topic::ChargeSession(id)
            }
            (None, Some(id)) => crate::bus::Topic::ChargeBay(ids::decode(&id, Kind::BAY, "bayId")?),
            (None, None) => crate::bus::Topic::ChargeSessions,
        };
        let steps =
            crate::realtime::follow::follow(services(ctx)?.bus.as_ref(), topic, after.as_deref())
                .await?;
        Ok(steps.filter_map(move |step| {
            let item = match step {
                Err(lagging) => Some(Err(lagging.into())),
                Ok(step) => match &step.event.envelope.event {
                    crate::bus::DomainEvent::ChargeStateChanged(changed)
                        if changed.user_id == me || scope.allows(changed.station_id) =>
                    {
                        Some(Ok(ChargeStateEvent {
                            session_id: ids::encode(Kind::CHARGING_SESSION, changed.session_id),
                            bay_id: ids::encode(Kind::BAY, changed.bay_id),
                            state: changed.state.into(),
                            energy_kwh: changed.energy_kwh,
                            current_a: changed.current_a,
                            voltage_v: changed.voltage_v,
                            at: changed.at.into(),
                            revision: changed.revision,
                            cursor: step.cursor,
                        }))
                    }
                    _ => None,
                },
            };
            async move { item }
        }))
    }
}
