//! Lists and summaries across reservations and charging sessions: the staff
//! lists (upcoming / active / archived, filtered, paged by id), the
//! customer's dashboard and the authentication history of their reservations.
//!
//! Periods. A reservation is *upcoming* while it holds its bay and its slot
//! has not started, *active* while it runs (`ACTIVE`) or its slot covers now,
//! *archived* once cancelled, completed or past its slot. A session is
//! *upcoming* in `RESERVED`, *active* while open, *archived* once `STOPPED`
//! or `ERROR`.

use chrono::{DateTime, Utc};
use sea_orm::{
    ColumnTrait, Condition, ConnectionTrait, EntityTrait, PaginatorTrait, QueryFilter, QueryOrder,
    QuerySelect, Select,
};

use crate::auth::scope::Scope;
use crate::auth::{Principal, RoleName};
use crate::db::IdOrder;
use crate::entities::charging_session::{self, SessionState};
use crate::entities::reservation::{self, ReservationStatus};
use crate::entities::{bay, charging_auth_attempt};
use crate::error::{AppError, AppResult};
use crate::pagination::{Page, PageRequest};

/// Which part of a list.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Period {
    Upcoming,
    Active,
    Archived,
}

/// Narrowing of a staff list; every given criterion must hold.
#[derive(Debug, Clone, Default)]
pub struct Filter {
    pub station_id: Option<i32>,
    pub bay_id: Option<i32>,
    pub user_id: Option<i32>,
    /// Reservations: the slot overlaps `[from, to)`; sessions: opened in it.
    pub from: Option<DateTime<Utc>>,
    pub to: Option<DateTime<Utc>>,
}

/// Validates the time range.
///
/// # Errors
/// `BAD_USER_INPUT` naming `to` when it is not after `from`.
pub fn check_range(filter: &Filter) -> AppResult<()> {
    if let (Some(from), Some(to)) = (filter.from, filter.to)
        && to <= from
    {
        return Err(AppError::bad_input("to", "the range ends before it starts"));
    }
    Ok(())
}

async fn bays_of_station(db: &impl ConnectionTrait, station_id: i32) -> AppResult<Vec<i32>> {
    Ok(bay::Entity::find()
        .select_only()
        .column(bay::Column::Id)
        .filter(bay::Column::StationId.eq(station_id))
        .into_tuple()
        .all(db)
        .await?)
}

/// Staff: one page of reservations.
///
/// # Errors
/// `FORBIDDEN` for anyone but staff; `BAD_USER_INPUT` for a reversed range.
pub async fn reservations(
    db: &impl ConnectionTrait,
    principal: &Principal,
    period: Period,
    status: Option<ReservationStatus>,
    filter: &Filter,
    now: DateTime<Utc>,
    page: PageRequest,
) -> AppResult<Page<reservation::Model>> {
    principal.staff()?;
    check_range(filter)?;
    let now_us = now.timestamp_micros();
    let mut query = reservation::Entity::find();
    if let Some(station) = filter.station_id {
        query = query.filter(reservation::Column::BayId.is_in(bays_of_station(db, station).await?));
    }
    if let Some(bay) = filter.bay_id {
        query = query.filter(reservation::Column::BayId.eq(bay));
    }
    if let Some(user) = filter.user_id {
        query = query.filter(reservation::Column::UserId.eq(user));
    }
    if let Some(status) = status {
        query = query.filter(reservation::Column::Status.eq(status));
    }
    if let Some(from) = filter.from {
        query = query.filter(reservation::Column::EndsAtUs.gt(from.timestamp_micros()));
    }
    if let Some(to) = filter.to {
        query = query.filter(reservation::Column::StartsAtUs.lt(to.timestamp_micros()));
    }
    let waiting = [ReservationStatus::Pending, ReservationStatus::Confirmed];
    let (query, order) = match period {
        Period::Upcoming => (
            query
                .filter(reservation::Column::Status.is_in(waiting))
                .filter(reservation::Column::StartsAtUs.gt(now_us)),
            IdOrder::Ascending,
        ),
        Period::Active => (
            query.filter(
                Condition::any()
                    .add(reservation::Column::Status.eq(ReservationStatus::Active))
                    .add(
                        Condition::all()
                            .add(reservation::Column::Status.is_in(waiting))
                            .add(reservation::Column::StartsAtUs.lte(now_us))
                            .add(reservation::Column::EndsAtUs.gt(now_us)),
                    ),
            ),
            IdOrder::Ascending,
        ),
        Period::Archived => (
            query.filter(
                Condition::any()
                    .add(reservation::Column::Status.is_not_in(ReservationStatus::HOLDING))
                    .add(
                        Condition::all()
                            .add(reservation::Column::Status.is_in(waiting))
                            .add(reservation::Column::EndsAtUs.lte(now_us)),
                    ),
            ),
            IdOrder::Descending,
        ),
    };
    crate::db::page_by_id_in(db, query, reservation::Column::Id, order, page).await
}

/// Sessions `principal` may list: any for staff, those at the stations of a
/// technician.
///
/// # Errors
/// `FORBIDDEN` for anyone else.
async fn visible_sessions(
    db: &impl ConnectionTrait,
    principal: &Principal,
) -> AppResult<Select<charging_session::Entity>> {
    let person = principal.person()?;
    match principal.stations() {
        Scope::All => Ok(charging_session::Entity::find()),
        Scope::Only(stations) if person.holds(RoleName::Technician) => {
            let bays: Vec<i32> = bay::Entity::find()
                .select_only()
                .column(bay::Column::Id)
                .filter(bay::Column::StationId.is_in(stations))
                .into_tuple()
                .all(db)
                .await?;
            Ok(
                charging_session::Entity::find()
                    .filter(charging_session::Column::BayId.is_in(bays)),
            )
        }
        Scope::Only(_) => Err(AppError::Forbidden),
    }
}

/// Staff (any) and technicians (their stations): one page of charging sessions.
///
/// # Errors
/// `FORBIDDEN` for anyone else; `BAD_USER_INPUT` for a reversed range.
pub async fn sessions(
    db: &impl ConnectionTrait,
    principal: &Principal,
    period: Period,
    state: Option<SessionState>,
    filter: &Filter,
    page: PageRequest,
) -> AppResult<Page<charging_session::Model>> {
    let mut query = visible_sessions(db, principal).await?;
    check_range(filter)?;
    if let Some(station) = filter.station_id {
        query = query
            .filter(charging_session::Column::BayId.is_in(bays_of_station(db, station).await?));
    }
    if let Some(bay) = filter.bay_id {
        query = query.filter(charging_session::Column::BayId.eq(bay));
    }
    if let Some(user) = filter.user_id {
        query = query.filter(charging_session::Column::UserId.eq(user));
    }
    if let Some(state) = state {
        query = query.filter(charging_session::Column::State.eq(state));
    }
    if let Some(from) = filter.from {
        query = query.filter(charging_session::Column::OpenedAt.gte(from));
    }
    if let Some(to) = filter.to {
        query = query.filter(charging_session::Column::OpenedAt.lt(to));
    }
    let finished = [SessionState::Stopped, SessionState::Error];
    let (query, order) = match period {
        Period::Upcoming => (
            query.filter(charging_session::Column::State.eq(SessionState::Reserved)),
            IdOrder::Ascending,
        ),
        Period::Active => (
            query.filter(
                charging_session::Column::State
                    .is_not_in(finished.into_iter().chain([SessionState::Reserved])),
            ),
            IdOrder::Ascending,
        ),
        Period::Archived => (
            query.filter(charging_session::Column::State.is_in(finished)),
            IdOrder::Descending,
        ),
    };
    crate::db::page_by_id_in(db, query, charging_session::Column::Id, order, page).await
}

/// A customer's charging at a glance.
#[derive(Debug, Clone)]
pub struct Dashboard {
    pub upcoming: u64,
    pub active: u64,
    pub completed: u64,
    pub cancelled: u64,
    /// Sessions that charged or are charging.
    pub sessions: u64,
    /// Energy of finished sessions, when the meters reported it.
    pub energy_kwh: f64,
    pub next_reservation: Option<reservation::Model>,
    /// The latest reservations, by creation, newest first.
    pub recent_reservations: Vec<reservation::Model>,
    /// The latest sessions, newest first.
    pub recent_sessions: Vec<charging_session::Model>,
}

/// How many recent items the dashboard shows.
const RECENT: u64 = 5;

/// The dashboard of `user_id`.
///
/// # Errors
/// On database errors.
pub async fn dashboard(
    db: &impl ConnectionTrait,
    user_id: i32,
    now: DateTime<Utc>,
) -> AppResult<Dashboard> {
    let now_us = now.timestamp_micros();
    let mine = || reservation::Entity::find().filter(reservation::Column::UserId.eq(user_id));
    let waiting = [ReservationStatus::Pending, ReservationStatus::Confirmed];
    let upcoming = mine()
        .filter(reservation::Column::Status.is_in(waiting))
        .filter(reservation::Column::EndsAtUs.gt(now_us));
    let sessions =
        || charging_session::Entity::find().filter(charging_session::Column::UserId.eq(user_id));
    let energy: Option<Option<f64>> = sessions()
        .select_only()
        .column_as(charging_session::Column::EnergyKwh.sum(), "total")
        .into_tuple()
        .one(db)
        .await?;
    Ok(Dashboard {
        upcoming: upcoming.clone().count(db).await?,
        active: mine()
            .filter(reservation::Column::Status.eq(ReservationStatus::Active))
            .count(db)
            .await?,
        completed: mine()
            .filter(reservation::Column::Status.eq(ReservationStatus::Completed))
            .count(db)
            .await?,
        cancelled: mine()
            .filter(reservation::Column::Status.eq(ReservationStatus::Cancelled))
            .count(db)
            .await?,
        sessions: sessions().count(db).await?,
        energy_kwh: energy.flatten().unwrap_or(0.0),
        next_reservation: upcoming
            .order_by_asc(reservation::Column::StartsAtUs)
            .one(db)
            .await?,
        recent_reservations: mine()
            .order_by_desc(reservation::Column::Id)
            .limit(RECENT)
            .all(db)
            .await?,
        recent_sessions: sessions()
            .order_by_desc(charging_session::Column::Id)
            .limit(RECENT)
            .all(db)
            .await?,
    })
}

/// One page of the kiosk authentications against `user_id`'s reservations,
/// newest first: those that opened one, and the failures at a bay while one
/// of them held it.
///
/// # Errors
/// On database errors.
pub async fn authentication_history(
    db: &impl ConnectionTrait,
    user_id: i32,
    page: PageRequest,
) -> AppResult<Page<charging_auth_attempt::Model>> {
    use sea_orm::sea_query::Query;
    let mine = Query::select()
        .column(reservation::Column::Id)
        .from(reservation::Entity)
        .and_where(reservation::Column::UserId.eq(user_id))
        .to_owned();
    let query = charging_auth_attempt::Entity::find().filter(
        Condition::any()
            .add(charging_auth_attempt::Column::UserId.eq(user_id))
            .add(charging_auth_attempt::Column::ReservationId.in_subquery(mine)),
    );
    crate::db::page_by_id_in(
        db,
        query,
        charging_auth_attempt::Column::Id,
        IdOrder::Descending,
        page,
    )
    .await
}
