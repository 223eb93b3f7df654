//! GraphQL for stations, cabinets and bays: charging's parts of `Station` and
//! `Bay` (assembled in `graphql::types`), the `Cabinet` type and the queries.

use async_graphql::{Context, Enum, ID, InputObject, Object, Result};

use super::loaders::{BaysOfCabinet, BaysOfStation, CabinetById, CabinetsOfStation, StationById};
use super::stations::{self, StationFilter};
use crate::entities::{self, bay, cabinet, station};
use crate::error::AppError;
use crate::graphql::ids::{self, Kind};
use crate::graphql::loaders::loader;
use crate::graphql::pagination::{IdConnection, connection, page_request};
use crate::graphql::scalars::DateTime;
use crate::graphql::types::{Bay, Station};
use crate::services::services;

impl Kind {
    pub const STATION: Self = Self::named("Station");
    pub const CABINET: Self = Self::named("Cabinet");
    pub const BAY: Self = Self::named("Bay");
}

#[derive(Enum, Copy, Clone, Eq, PartialEq)]
#[graphql(remote = "entities::StationStatus")]
pub enum StationStatus {
    Active,
    Maintenance,
    Inactive,
}

#[derive(Enum, Copy, Clone, Eq, PartialEq)]
#[graphql(remote = "entities::CabinetStatus")]
pub enum CabinetStatus {
    Active,
    Maintenance,
    Inactive,
}

/// Availability of a bay for reservations.
#[derive(Enum, Copy, Clone, Eq, PartialEq)]
#[graphql(remote = "entities::BayStatus")]
pub enum BayStatus {
    Available,
    Reserved,
    Occupied,
    Maintenance,
}

/// The physical lock of a bay, as last reported by its device.
#[derive(Enum, Copy, Clone, Eq, PartialEq)]
#[graphql(remote = "entities::LockState")]
pub enum LockState {
    Locked,
    Unlocked,
    Blocked,
}

/// Charging's part of a station: its public location and its hardware.
pub struct StationPart(pub station::Model);

#[Object]
impl StationPart {
    async fn id(&self) -> ID {
        ids::encode(Kind::STATION, self.0.id)
    }
    async fn name(&self) -> &str {
        &self.0.name
    }
    /// Human-readable address or directions.
    async fn location_text(&self) -> &str {
        &self.0.location_text
    }
    async fn latitude(&self) -> Option<f64> {
        self.0.latitude
    }
    async fn longitude(&self) -> Option<f64> {
        self.0.longitude
    }
    async fn status(&self) -> StationStatus {
        self.0.status.into()
    }
    async fn created_at(&self) -> DateTime {
        self.0.created_at.into()
    }
    /// The station's cabinets, by number.
    async fn cabinets(&self, ctx: &Context<'_>) -> Result<Vec<Cabinet>> {
        let rows = loader(ctx)?.load_one(CabinetsOfStation(self.0.id)).await?;
        Ok(rows.unwrap_or_default().into_iter().map(Cabinet).collect())
    }
    /// Every bay of the station, by cabinet then number.
    async fn bays(&self, ctx: &Context<'_>) -> Result<Vec<Bay>> {
        let rows = loader(ctx)?.load_one(BaysOfStation(self.0.id)).await?;
        Ok(rows
            .unwrap_or_default()
            .into_iter()
            .map(Bay::from)
            .collect())
    }
}

/// One physical charging cabinet of a station.
pub struct Cabinet(pub cabinet::Model);

#[Object]
impl Cabinet {
    async fn id(&self) -> ID {
        ids::encode(Kind::CABINET, self.0.id)
    }
    /// Number of the cabinet within its station.
    async fn number(&self) -> i32 {
        self.0.number
    }
    async fn name(&self) -> &str {
        &self.0.name
    }
    /// MQTT topic prefix of the cabinet's bay devices.
    async fn mqtt_prefix(&self) -> &str {
        &self.0.mqtt_prefix
    }
    async fn status(&self) -> CabinetStatus {
        self.0.status.into()
    }
    async fn created_at(&self) -> DateTime {
        self.0.created_at.into()
    }
    async fn station(&self, ctx: &Context<'_>) -> Result<Station> {
        loader(ctx)?
            .load_one(StationById(self.0.station_id))
            .await?
            .map(Station::from)
            .ok_or_else(|| AppError::not_found("station").into())
    }
    /// The cabinet's bays, by number.
    async fn bays(&self, ctx: &Context<'_>) -> Result<Vec<Bay>> {
        let rows = loader(ctx)?.load_one(BaysOfCabinet(self.0.id)).await?;
        Ok(rows
            .unwrap_or_default()
            .into_iter()
            .map(Bay::from)
            .collect())
    }
}

/// Charging's part of a bay: its number, availability, lock and place.
pub struct BayPart(pub bay::Model);

#[Object]
impl BayPart {
    async fn id(&self) -> ID {
        ids::encode(Kind::BAY, self.0.id)
    }
    /// Number of the bay within its cabinet (the device's slot).
    async fn number(&self) -> i32 {
        self.0.number
    }
    async fn status(&self) -> BayStatus {
        self.0.status.into()
    }
    async fn lock_state(&self) -> LockState {
        self.0.lock_state.into()
    }
    /// Raised by every announced change of this bay: of two states of one
    /// bay, the one with the higher revision is the later. A client that
    /// fetched it (after `CURSOR_EXPIRED`, say) ignores events with a lower
    /// revision than what it fetched.
    async fn revision(&self) -> i64 {
        self.0.revision
    }
    async fn station(&self, ctx: &Context<'_>) -> Result<Station> {
        loader(ctx)?
            .load_one(StationById(self.0.station_id))
            .await?
            .map(Station::from)
            .ok_or_else(|| AppError::not_found("station").into())
    }
    async fn cabinet(&self, ctx: &Context<'_>) -> Result<Cabinet> {
        loader(ctx)?
            .load_one(CabinetById(self.0.cabinet_id))
            .await?
            .map(Cabinet)
            .ok_or_else(|| AppError::not_found("cabinet").into())
    }
}

#[derive(InputObject, Default)]
pub struct StationFilterInput {
    pub status: Option<StationStatus>,
}

#[derive(Default)]
pub struct StationQuery;

#[Object]
impl StationQuery {
    /// Charging stations, in creation order.
    #[graphql(complexity = "first.unwrap_or(20).max(0) as usize * child_complexity + 1")]
    async fn stations(
        &self,
        ctx: &Context<'_>,
        filter: Option<StationFilterInput>,
        first: Option<i32>,
        after: Option<String>,
    ) -> Result<IdConnection<Station>> {
        let db = &services(ctx)?.db;
        let page = page_request(first, after.as_deref())?;
        let filter = StationFilter {
            status: filter.and_then(|f| f.status).map(Into::into),
        };
        let rows = stations::list(db, filter, page).await?;
        Ok(connection(page, rows, |row| row.id, Station::from))
    }

    /// One station by ID; null when it does not exist.
    async fn station(&self, ctx: &Context<'_>, id: ID) -> Result<Option<Station>> {
        let db = &services(ctx)?.db;
        let id = ids::decode(&id, Kind::STATION, "id")?;
        Ok(stations::get(db, id).await?.map(Station::from))
    }
}

/// Charging's figures on the administration dashboard.
#[derive(Default)]
pub struct ChargingFigures;

#[Object]
impl ChargingFigures {
    async fn stations(&self, ctx: &Context<'_>) -> Result<u64> {
        Ok(stations::count_stations(&services(ctx)?.db).await?)
    }
    async fn bays(&self, ctx: &Context<'_>) -> Result<u64> {
        Ok(stations::count_bays(&services(ctx)?.db).await?)
    }
    /// Reservations (zero until reservations land).
    async fn reservations(&self) -> u64 {
        0
    }
    /// Charging sessions (zero until charging sessions land).
    async fn charging_sessions(&self) -> u64 {
        0
    }
}
