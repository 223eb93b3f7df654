//! GraphQL for staff administration of the network: create, update and
//! delete stations, cabinets and bays, and maintenance flags.

use async_graphql::{Context, ID, InputObject, Object, Result, SimpleObject};

use super::bay_status;
use super::graphql::{Cabinet, CabinetStatus, StationStatus};
use super::network::{self, BayFields, CabinetFields, StationFields};
use crate::auth::guards::principal;
use crate::graphql::ids::{self, Kind};
use crate::graphql::types::{Bay, Station};
use crate::services::services;

#[derive(InputObject)]
pub struct CreateStationInput {
    pub name: String,
    #[graphql(default)]
    pub location_text: String,
    pub latitude: Option<f64>,
    pub longitude: Option<f64>,
}

#[derive(InputObject)]
pub struct UpdateStationInput {
    pub id: ID,
    pub name: Option<String>,
    pub location_text: Option<String>,
    /// Give both coordinates to move the station; `clearCoordinates` removes them.
    pub latitude: Option<f64>,
    pub longitude: Option<f64>,
    #[graphql(default)]
    pub clear_coordinates: bool,
    /// `MAINTENANCE` or `INACTIVE` cancels the reservations of its bays that
    /// have not ended and notifies their owners.
    pub status: Option<StationStatus>,
}

#[derive(InputObject)]
pub struct CreateCabinetInput {
    pub station_id: ID,
    pub number: i32,
    pub name: Option<String>,
    pub mqtt_prefix: String,
}

#[derive(InputObject)]
pub struct UpdateCabinetInput {
    pub id: ID,
    /// Moves the cabinet, and its bays, to another station.
    pub station_id: Option<ID>,
    pub number: Option<i32>,
    pub name: Option<String>,
    pub mqtt_prefix: Option<String>,
    /// `MAINTENANCE` or `INACTIVE` cancels the reservations of its bays that
    /// have not ended and notifies their owners.
    pub status: Option<CabinetStatus>,
}

#[derive(InputObject)]
pub struct CreateBayInput {
    pub cabinet_id: ID,
    pub number: i32,
}

#[derive(InputObject)]
pub struct UpdateBayInput {
    pub id: ID,
    pub number: Option<i32>,
    /// True flags the bay for maintenance (cancelling its reservations that
    /// have not ended, owners notified); false lifts the flag.
    pub maintenance: Option<bool>,
    pub maintenance_reason: Option<String>,
}

#[derive(InputObject)]
pub struct DeleteNodeInput {
    pub id: ID,
}

#[derive(SimpleObject)]
pub struct StationPayload {
    pub station: Station,
}

#[derive(SimpleObject)]
pub struct CabinetPayload {
    pub cabinet: Cabinet,
}

#[derive(SimpleObject)]
pub struct BayPayload {
    pub bay: Bay,
}

#[derive(SimpleObject)]
pub struct DeletePayload {
    pub ok: bool,
}

#[derive(Default)]
pub struct NetworkMutation;

#[Object]
impl NetworkMutation {
    /// Creates an active station (staff).
    async fn create_station(
        &self,
        ctx: &Context<'_>,
        input: CreateStationInput,
    ) -> Result<StationPayload> {
        principal(ctx).staff()?;
        let s = services(ctx)?;
        let fields = StationFields {
            name: Some(input.name),
            location_text: Some(input.location_text),
            coordinates: Some(network::coordinates(input.latitude, input.longitude)?),
            status: None,
        };
        let row = network::create_station(&s.db, fields, s.now()).await?;
        Ok(StationPayload {
            station: row.into(),
        })
    }

    /// Updates a station (staff).
    async fn update_station(
        &self,
        ctx: &Context<'_>,
        input: UpdateStationInput,
    ) -> Result<StationPayload> {
        principal(ctx).staff()?;
        let s = services(ctx)?;
        let id = ids::decode(&input.id, Kind::STATION, "id")?;
        let coordinates = if input.clear_coordinates {
            Some(None)
        } else {
            network::coordinates(input.latitude, input.longitude)?.map(Some)
        };
        let fields = StationFields {
            name: input.name,
            location_text: input.location_text,
            coordinates,
            status: input.status.map(Into::into),
        };
        let (row, events) = network::update_station(&s.db, id, fields, s.now()).await?;
        bay_status::publish(s, events).await;
        Ok(StationPayload {
            station: row.into(),
        })
    }

    /// Deletes a station with its cabinets and bays (staff); refused with
    /// `CONFLICT` while one of its bays has a reservation that has not ended.
    async fn delete_station(
        &self,
        ctx: &Context<'_>,
        input: DeleteNodeInput,
    ) -> Result<DeletePayload> {
        principal(ctx).staff()?;
        let s = services(ctx)?;
        let id = ids::decode(&input.id, Kind::STATION, "id")?;
        network::delete_station(&s.db, id, s.now()).await?;
        // Its cabinets went with it.
        s.kiosk_access
            .changed(&s.bus, crate::auth::kiosk_access::Changed::All)
            .await;
        Ok(DeletePayload { ok: true })
    }

    /// Creates a cabinet in a station (staff).
    async fn create_cabinet(
        &self,
        ctx: &Context<'_>,
        input: CreateCabinetInput,
    ) -> Result<CabinetPayload> {
        principal(ctx).staff()?;
        let s = services(ctx)?;
        let station_id = ids::decode(&input.station_id, Kind::STATION, "stationId")?;
        let fields = CabinetFields {
            station_id: None,
            number: Some(input.number),
            name: input.name,
            mqtt_prefix: Some(input.mqtt_prefix),
            status: None,
        };
        let row = network::create_cabinet(&s.db, station_id, fields, s.now()).await?;
        Ok(CabinetPayload {
            cabinet: Cabinet(row),
        })
    }

    /// Updates a cabinet (staff).
    async fn update_cabinet(
        &self,
        ctx: &Context<'_>,
        input: UpdateCabinetInput,
    ) -> Result<CabinetPayload> {
        principal(ctx).staff()?;
        let s = services(ctx)?;
        let id = ids::decode(&input.id, Kind::CABINET, "id")?;
        let station_id = input
            .station_id
            .as_ref()
            .map(|sid| ids::decode(sid, Kind::STATION, "stationId"))
            .transpose()?;
        let fields = CabinetFields {
            station_id,
            number: input.number,
            name: input.name,
            mqtt_prefix: input.mqtt_prefix,
            status: input.status.map(Into::into),
        };
        let (row, events) = network::update_cabinet(&s.db, id, fields, s.now()).await?;
        // Its status and station decide whether and where its kiosk may act.
        s.kiosk_access
            .changed(&s.bus, crate::auth::kiosk_access::Changed::Cabinet(id))
            .await;
        bay_status::publish(s, events).await;
        Ok(CabinetPayload {
            cabinet: Cabinet(row),
        })
    }

    /// Deletes a cabinet with its bays (staff); refused with `CONFLICT` while
    /// one of its bays has a reservation that has not ended.
    async fn delete_cabinet(
        &self,
        ctx: &Context<'_>,
        input: DeleteNodeInput,
    ) -> Result<DeletePayload> {
        principal(ctx).staff()?;
        let s = services(ctx)?;
        let id = ids::decode(&input.id, Kind::CABINET, "id")?;
        network::delete_cabinet(&s.db, id, s.now()).await?;
        s.kiosk_access
            .changed(&s.bus, crate::auth::kiosk_access::Changed::Cabinet(id))
            .await;
        Ok(DeletePayload { ok: true })
    }

    /// Creates a bay in a cabinet, in the cabinet's station (staff).
    async fn create_bay(&self, ctx: &Context<'_>, input: CreateBayInput) -> Result<BayPayload> {
        principal(ctx).staff()?;
        let s = services(ctx)?;
        let cabinet_id = ids::decode(&input.cabinet_id, Kind::CABINET, "cabinetId")?;
        let fields = BayFields {
            number: Some(input.number),
            maintenance: None,
        };
        let (row, events) = network::create_bay(&s.db, cabinet_id, fields, s.now()).await?;
        bay_status::publish(s, events).await;
        Ok(BayPayload { bay: row.into() })
    }

    /// Renumbers a bay or flags it for maintenance (staff).
    async fn update_bay(&self, ctx: &Context<'_>, input: UpdateBayInput) -> Result<BayPayload> {
        principal(ctx).staff()?;
        let s = services(ctx)?;
        let id = ids::decode(&input.id, Kind::BAY, "id")?;
        let maintenance = input
            .maintenance
            .map(|on| on.then(|| input.maintenance_reason.clone().unwrap_or_default()));
        let fields = BayFields {
            number: input.number,
            maintenance,
        };
        let (row, events) = network::update_bay(&s.db, id, fields, s.now()).await?;
        bay_status::publish(s, events).await;
        Ok(BayPayload { bay: row.into() })
    }

    /// Deletes a bay (staff); refused with `CONFLICT` while it has a
    /// reservation that has not ended.
    async fn delete_bay(&self, ctx: &Context<'_>, input: DeleteNodeInput) -> Result<DeletePayload> {
        principal(ctx).staff()?;
        let s = services(ctx)?;
        let id = ids::decode(&input.id, Kind::BAY, "id")?;
        network::delete_bay(&s.db, id, s.now()).await?;
        Ok(DeletePayload { ok: true })
    }
}
