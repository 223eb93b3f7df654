//! Maintenance interventions over GraphQL: staff plan, edit, delete and list
//! them; a technician lists their own (`myMaintenances`), within their stations.

use async_graphql::{Context, Enum, ID, InputObject, Object, Result, SimpleObject};

use super::maintenance::{self, Fields, Filter};
use crate::auth::guards::principal;
use crate::entities::RoleName;
use crate::entities::maintenance as entity;
use crate::graphql::ids::{self, Kind};
use crate::graphql::pagination::{IdConnection, connection, page_request};
use crate::graphql::scalars::DateTime;
use crate::services::services;

impl Kind {
    pub const MAINTENANCE: Self = Self::named("Maintenance");
}

#[derive(Enum, Copy, Clone, Eq, PartialEq)]
#[graphql(remote = "entity::MaintenanceStatus")]
pub enum MaintenanceStatus {
    Planned,
    InProgress,
    Done,
    Cancelled,
}

/// A maintenance intervention on a station.
pub struct Maintenance(pub entity::Model);

#[Object]
impl Maintenance {
    async fn id(&self) -> ID {
        ids::encode(Kind::MAINTENANCE, self.0.id)
    }
    async fn station_id(&self) -> ID {
        ids::encode(Kind::STATION, self.0.station_id)
    }
    /// The technician doing it, if assigned.
    async fn technician_id(&self) -> Option<ID> {
        self.0
            .technician_id
            .map(|id| ids::encode(Kind::TECHNICIAN, id))
    }
    /// What kind of intervention (`preventive`, `corrective`, …).
    async fn kind(&self) -> &str {
        &self.0.kind
    }
    async fn description(&self) -> &str {
        &self.0.description
    }
    async fn status(&self) -> MaintenanceStatus {
        self.0.status.into()
    }
    async fn planned_at(&self) -> DateTime {
        self.0.planned_at.into()
    }
    async fn done_at(&self) -> Option<DateTime> {
        self.0.done_at.map(Into::into)
    }
    async fn created_at(&self) -> DateTime {
        self.0.created_at.into()
    }
}

#[derive(InputObject, Default)]
pub struct MaintenanceFilterInput {
    pub station_id: Option<ID>,
    pub technician_id: Option<ID>,
    pub statuses: Option<Vec<MaintenanceStatus>>,
}

#[derive(Default)]
pub struct MaintenanceQuery;

#[Object]
impl MaintenanceQuery {
    /// Staff: maintenance interventions, in creation order.
    #[graphql(complexity = "first.unwrap_or(20).max(0) as usize * child_complexity + 1")]
    async fn maintenances(
        &self,
        ctx: &Context<'_>,
        filter: Option<MaintenanceFilterInput>,
        first: Option<i32>,
        after: Option<String>,
    ) -> Result<IdConnection<Maintenance>> {
        let principal = principal(ctx);
        principal.staff()?;
        let page = page_request(first, after.as_deref())?;
        let input = filter.unwrap_or_default();
        let filter = Filter {
            station_id: ids::decode_opt(input.station_id.as_ref(), Kind::STATION, "stationId")?,
            technician_id: ids::decode_opt(
                input.technician_id.as_ref(),
                Kind::TECHNICIAN,
                "technicianId",
            )?,
            statuses: input
                .statuses
                .unwrap_or_default()
                .into_iter()
                .map(Into::into)
                .collect(),
        };
        let rows = maintenance::list(&services(ctx)?.db, principal, &filter, page).await?;
        Ok(connection(page, rows, |row| row.id, Maintenance))
    }

    /// A technician's own interventions, within their stations (empty
    /// without a technician profile).
    #[graphql(complexity = "first.unwrap_or(20).max(0) as usize * child_complexity + 1")]
    async fn my_maintenances(
        &self,
        ctx: &Context<'_>,
        statuses: Option<Vec<MaintenanceStatus>>,
        first: Option<i32>,
        after: Option<String>,
    ) -> Result<IdConnection<Maintenance>> {
        let principal = principal(ctx);
        let person = principal.require(RoleName::Technician)?;
        let page = page_request(first, after.as_deref())?;
        let db = &services(ctx)?.db;
        // Without a profile, no intervention is theirs: an id no row has.
        let technician_id = maintenance::profile_of(db, person.id)
            .await?
            .map_or(0, |t| t.id);
        let filter = Filter {
            station_id: None,
            technician_id: Some(technician_id),
            statuses: statuses
                .unwrap_or_default()
                .into_iter()
                .map(Into::into)
                .collect(),
        };
        let rows = maintenance::list(db, principal, &filter, page).await?;
        Ok(connection(page, rows, |row| row.id, Maintenance))
    }
}

#[derive(InputObject)]
pub struct CreateMaintenanceInput {
    pub station_id: ID,
    pub technician_id: Option<ID>,
    pub kind: String,
    #[graphql(validator(max_length = 4000), default)]
    pub description: String,
    pub status: Option<MaintenanceStatus>,
    pub planned_at: DateTime,
    pub done_at: Option<DateTime>,
}

#[derive(InputObject)]
pub struct UpdateMaintenanceInput {
    pub maintenance_id: ID,
    pub station_id: Option<ID>,
    pub technician_id: Option<ID>,
    /// Unassigns the technician.
    #[graphql(default)]
    pub clear_technician: bool,
    pub kind: Option<String>,
    #[graphql(validator(max_length = 4000))]
    pub description: Option<String>,
    pub status: Option<MaintenanceStatus>,
    pub planned_at: Option<DateTime>,
    pub done_at: Option<DateTime>,
}

#[derive(SimpleObject)]
pub struct MaintenancePayload {
    pub maintenance: Maintenance,
}

#[derive(InputObject)]
pub struct DeleteMaintenanceInput {
    pub maintenance_id: ID,
}

#[derive(SimpleObject)]
pub struct DeleteMaintenancePayload {
    pub ok: bool,
}

#[derive(Default)]
pub struct MaintenanceMutation;

#[Object]
impl MaintenanceMutation {
    /// Staff: plans a maintenance intervention (`PLANNED` unless told otherwise;
    /// `DONE` without a done date is done now).
    async fn create_maintenance(
        &self,
        ctx: &Context<'_>,
        input: CreateMaintenanceInput,
    ) -> Result<MaintenancePayload> {
        principal(ctx).staff()?;
        let services = services(ctx)?;
        let fields = Fields {
            station_id: Some(ids::decode(&input.station_id, Kind::STATION, "stationId")?),
            technician_id: Some(
                input
                    .technician_id
                    .map(|id| ids::decode(&id, Kind::TECHNICIAN, "technicianId"))
                    .transpose()?,
            ),
            kind: Some(maintenance::kind(&input.kind)?),
            description: Some(input.description),
            status: input.status.map(Into::into),
            planned_at: Some(input.planned_at.0),
            done_at: Some(input.done_at.map(|at| at.0)),
        };
        let created = maintenance::create(
            &services.db,
            services.reservations.maintenance_window(),
            fields,
            services.now(),
        )
        .await?;
        Ok(MaintenancePayload {
            maintenance: Maintenance(created),
        })
    }

    /// Staff: edits an intervention (status, dates, technician, …).
    async fn update_maintenance(
        &self,
        ctx: &Context<'_>,
        input: UpdateMaintenanceInput,
    ) -> Result<MaintenancePayload> {
        principal(ctx).staff()?;
        let services = services(ctx)?;
        let id = ids::decode(&input.maintenance_id, Kind::MAINTENANCE, "maintenanceId")?;
        let technician_id = if input.clear_technician {
            Some(None)
        } else {
            input
                .technician_id
                .map(|id| ids::decode(&id, Kind::TECHNICIAN, "technicianId").map(Some))
                .transpose()?
        };
        let fields = Fields {
            station_id: ids::decode_opt(input.station_id.as_ref(), Kind::STATION, "stationId")?,
            technician_id,
            kind: input.kind.as_deref().map(maintenance::kind).transpose()?,
            description: input.description,
            status: input.status.map(Into::into),
            planned_at: input.planned_at.map(|at| at.0),
            done_at: input.done_at.map(|at| Some(at.0)),
        };
        let updated = maintenance::update(
            &services.db,
            services.reservations.maintenance_window(),
            id,
            fields,
            services.now(),
        )
        .await?;
        Ok(MaintenancePayload {
            maintenance: Maintenance(updated),
        })
    }

    /// Staff: deletes an intervention.
    async fn delete_maintenance(
        &self,
        ctx: &Context<'_>,
        input: DeleteMaintenanceInput,
    ) -> Result<DeleteMaintenancePayload> {
        principal(ctx).staff()?;
        let id = ids::decode(&input.maintenance_id, Kind::MAINTENANCE, "maintenanceId")?;
        maintenance::delete(&services(ctx)?.db, id).await?;
        Ok(DeleteMaintenancePayload { ok: true })
    }
}
