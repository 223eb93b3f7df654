//! GraphQL for the lists and summaries of `overview`: staff lists of
//! reservations and charging sessions, the customer's `chargingDashboard` and
//! `myAuthenticationHistory`.

use async_graphql::{Context, Enum, ID, InputObject, Object, Result, SimpleObject};

use super::overview::{self, Filter, Period};
use super::reservations_graphql::{AccessMode, Reservation, ReservationStatus};
use super::sessions_graphql::{ChargingSession, ChargingSessionState};
use crate::auth::guards::principal;
use crate::entities::charging_auth_attempt;
use crate::graphql::ids::{self, Kind};
use crate::graphql::pagination::{IdConnection, connection, page_request};
use crate::graphql::scalars::DateTime;
use crate::services::services;

impl Kind {
    pub const KIOSK_AUTHENTICATION: Self = Self::named("KioskAuthentication");
}

/// Which part of a staff list.
#[derive(Enum, Copy, Clone, Eq, PartialEq)]
pub enum ChargingPeriod {
    /// Reservations not started yet; sessions still `RESERVED`.
    Upcoming,
    /// Reservations in use or within their slot; open sessions.
    Active,
    /// Reservations cancelled, completed or past; ended sessions (newest first).
    Archived,
}

impl From<ChargingPeriod> for Period {
    fn from(period: ChargingPeriod) -> Self {
        match period {
            ChargingPeriod::Upcoming => Self::Upcoming,
            ChargingPeriod::Active => Self::Active,
            ChargingPeriod::Archived => Self::Archived,
        }
    }
}

/// Narrows a staff list; every criterion given must hold.
#[derive(InputObject, Default)]
pub struct ChargingListFilter {
    pub station_id: Option<ID>,
    pub bay_id: Option<ID>,
    pub user_id: Option<ID>,
    /// Reservations whose slot overlaps `[from, to)`; sessions opened in it.
    pub from: Option<DateTime>,
    pub to: Option<DateTime>,
}

impl ChargingListFilter {
    fn decode(&self) -> Result<Filter> {
        Ok(Filter {
            station_id: ids::decode_opt(self.station_id.as_ref(), Kind::STATION, "stationId")?,
            bay_id: ids::decode_opt(self.bay_id.as_ref(), Kind::BAY, "bayId")?,
            user_id: ids::decode_opt(self.user_id.as_ref(), Kind::USER, "userId")?,
            from: self.from.map(|t| t.0),
            to: self.to.map(|t| t.0),
        })
    }
}

/// Counts and latest activity of the caller's charging.
#[derive(SimpleObject)]
pub struct ChargingDashboard {
    /// Reservations not used yet whose slot has not ended.
    pub upcoming_reservations: u64,
    /// Reservations with a charging session running.
    pub active_reservations: u64,
    pub completed_reservations: u64,
    pub cancelled_reservations: u64,
    pub charging_sessions: u64,
    /// Energy of the caller's sessions, where the meters reported it.
    pub energy_kwh: f64,
    /// The next slot to use, if any.
    pub next_reservation: Option<Reservation>,
    /// The latest reservations, newest first.
    pub recent_reservations: Vec<Reservation>,
    /// The latest charging sessions, newest first.
    pub recent_sessions: Vec<ChargingSession>,
}

/// One authentication at a kiosk against the caller's reservations (seed 002
/// `Authentification` as a history; the credential itself is never stored).
pub struct KioskAuthentication(pub charging_auth_attempt::Model);

#[Object]
impl KioskAuthentication {
    async fn id(&self) -> ID {
        ids::encode(Kind::KIOSK_AUTHENTICATION, self.0.id)
    }
    /// How the credential was presented.
    async fn method(&self) -> AccessMode {
        self.0.method.into()
    }
    /// Whether it opened the reservation.
    async fn succeeded(&self) -> bool {
        self.0.succeeded
    }
    async fn at(&self) -> DateTime {
        self.0.created_at.into()
    }
    /// The kiosk: its cabinet.
    async fn cabinet_id(&self) -> ID {
        ids::encode(Kind::CABINET, self.0.cabinet_id)
    }
    async fn bay_id(&self) -> ID {
        ids::encode(Kind::BAY, self.0.bay_id)
    }
    /// The reservation it opened or was tried against, when known.
    async fn reservation_id(&self) -> Option<ID> {
        self.0
            .reservation_id
            .map(|id| ids::encode(Kind::RESERVATION, id))
    }
    /// The charging session it opened.
    async fn session_id(&self) -> Option<ID> {
        self.0
            .session_id
            .map(|id| ids::encode(Kind::CHARGING_SESSION, id))
    }
}

#[derive(Default)]
pub struct ChargingOverviewQuery;

#[Object]
impl ChargingOverviewQuery {
    /// Staff: reservations of the whole network, upcoming (default), active
    /// or archived, filtered.
    #[graphql(complexity = "first.unwrap_or(20).max(0) as usize * child_complexity + 1")]
    async fn reservations(
        &self,
        ctx: &Context<'_>,
        #[graphql(default_with = "ChargingPeriod::Upcoming")] period: ChargingPeriod,
        status: Option<ReservationStatus>,
        #[graphql(default)] filter: ChargingListFilter,
        first: Option<i32>,
        after: Option<String>,
    ) -> Result<IdConnection<Reservation>> {
        let s = services(ctx)?;
        principal(ctx).staff()?;
        let page = page_request(first, after.as_deref())?;
        let rows = overview::reservations(
            &s.db,
            principal(ctx),
            period.into(),
            status.map(Into::into),
            &filter.decode()?,
            s.now(),
            page,
        )
        .await?;
        Ok(connection(page, rows, |r| r.id, Reservation))
    }

    /// Staff (any) and technicians (their stations): charging sessions,
    /// active (default), upcoming or archived, filtered.
    #[graphql(complexity = "first.unwrap_or(20).max(0) as usize * child_complexity + 1")]
    async fn charging_sessions(
        &self,
        ctx: &Context<'_>,
        #[graphql(default_with = "ChargingPeriod::Active")] period: ChargingPeriod,
        state: Option<ChargingSessionState>,
        #[graphql(default)] filter: ChargingListFilter,
        first: Option<i32>,
        after: Option<String>,
    ) -> Result<IdConnection<ChargingSession>> {
        let s = services(ctx)?;
        let page = page_request(first, after.as_deref())?;
        let rows = overview::sessions(
            &s.db,
            principal(ctx),
            period.into(),
            state.map(Into::into),
            &filter.decode()?,
            page,
        )
        .await?;
        Ok(connection(page, rows, |r| r.id, ChargingSession))
    }

    /// The caller's charging at a glance: counts, next reservation, recent activity.
    async fn charging_dashboard(&self, ctx: &Context<'_>) -> Result<ChargingDashboard> {
        let me = principal(ctx).person()?.id;
        let s = services(ctx)?;
        let board = overview::dashboard(&s.db, me, s.now()).await?;
        Ok(ChargingDashboard {
            upcoming_reservations: board.upcoming,
            active_reservations: board.active,
            completed_reservations: board.completed,
            cancelled_reservations: board.cancelled,
            charging_sessions: board.sessions,
            energy_kwh: board.energy_kwh,
            next_reservation: board.next_reservation.map(Reservation),
            recent_reservations: board
                .recent_reservations
                .into_iter()
                .map(Reservation)
                .collect(),
            recent_sessions: board
                .recent_sessions
                .into_iter()
                .map(ChargingSession)
                .collect(),
        })
    }

    /// Kiosk authentications against the caller's reservations, newest first:
    /// method, result, time and kiosk.
    #[graphql(complexity = "first.unwrap_or(20).max(0) as usize * child_complexity + 1")]
    async fn my_authentication_history(
        &self,
        ctx: &Context<'_>,
        first: Option<i32>,
        after: Option<String>,
    ) -> Result<IdConnection<KioskAuthentication>> {
        let me = principal(ctx).person()?.id;
        let s = services(ctx)?;
        let page = page_request(first, after.as_deref())?;
        let rows = overview::authentication_history(&s.db, me, page).await?;
        Ok(connection(page, rows, |r| r.id, KioskAuthentication))
    }
}
