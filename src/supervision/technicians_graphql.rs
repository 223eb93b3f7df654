//! Staff API for technicians and their station assignments.
//!
//! Changes that take a station from a technician are announced on the bus
//! after their commit (`AssignmentChanged`), which ends the technician's live
//! alert subscriptions covering it.

use async_graphql::{Context, Enum, ID, InputObject, Object, Result, SimpleObject};

use super::technicians::{self, Assignment, Contact};
use crate::auth::guards::principal;
use crate::bus::{AssignmentChanged, DomainEvent};
use crate::entities::station_assignment;
use crate::entities::technician;
use crate::graphql::ids::{self, Kind};
use crate::graphql::pagination::{IdConnection, connection, page_request};
use crate::graphql::scalars::DateTime;
use crate::services::{ServiceContext, services};

impl Kind {
    pub const TECHNICIAN: Self = Self::named("Technician");
}

/// What a technician does at a station.
#[derive(Enum, Copy, Clone, Eq, PartialEq)]
#[graphql(remote = "station_assignment::AssignmentRole")]
pub enum StationAssignmentRole {
    /// The station's referent technician.
    Lead,
    /// Works on the station: sees it and acts on its alerts.
    Contributor,
    /// Sees the station, does not act on it.
    Observer,
}

/// A technician: an account holding the technician role, with contact details.
pub struct Technician(pub technician::Model);

#[Object]
impl Technician {
    async fn id(&self) -> ID {
        ids::encode(Kind::TECHNICIAN, self.0.id)
    }
    /// The technician's account.
    async fn user_id(&self) -> ID {
        ids::encode(Kind::USER, self.0.user_id)
    }
    async fn name(&self) -> &str {
        &self.0.name
    }
    async fn email(&self) -> Option<&str> {
        self.0.email.as_deref()
    }
    async fn phone(&self) -> Option<&str> {
        self.0.phone.as_deref()
    }
    async fn created_at(&self) -> DateTime {
        self.0.created_at.into()
    }
    /// The technician's station assignments (active or not), by station.
    async fn station_assignments(
        &self,
        ctx: &Context<'_>,
    ) -> Result<Vec<TechnicianStationAssignment>> {
        let rows = technicians::assignments(&services(ctx)?.db, Some(self.0.id), None).await?;
        Ok(rows.into_iter().map(TechnicianStationAssignment).collect())
    }
}

/// A technician's assignment to a station.
pub struct TechnicianStationAssignment(pub Assignment);

#[Object]
impl TechnicianStationAssignment {
    async fn technician_id(&self) -> ID {
        ids::encode(Kind::TECHNICIAN, self.0.technician_id)
    }
    async fn station_id(&self) -> ID {
        ids::encode(Kind::STATION, self.0.row.station_id)
    }
    async fn role(&self) -> StationAssignmentRole {
        self.0.row.role.into()
    }
    /// Only active assignments give the station's scope.
    async fn is_active(&self) -> bool {
        self.0.row.is_active
    }
    async fn assigned_at(&self) -> DateTime {
        self.0.row.assigned_at.into()
    }
}

#[derive(Default)]
pub struct TechnicianQuery;

#[Object]
impl TechnicianQuery {
    /// Staff: technicians, in creation order; `search` matches their name.
    #[graphql(complexity = "first.unwrap_or(20).max(0) as usize * child_complexity + 1")]
    async fn technicians(
        &self,
        ctx: &Context<'_>,
        #[graphql(validator(max_length = 100))] search: Option<String>,
        first: Option<i32>,
        after: Option<String>,
    ) -> Result<IdConnection<Technician>> {
        principal(ctx).staff()?;
        let page = page_request(first, after.as_deref())?;
        let rows = technicians::list(&services(ctx)?.db, search.as_deref(), page).await?;
        Ok(connection(page, rows, |row| row.id, Technician))
    }

    /// Staff: one technician; null when there is none.
    async fn technician(&self, ctx: &Context<'_>, id: ID) -> Result<Option<Technician>> {
        principal(ctx).staff()?;
        let id = ids::decode(&id, Kind::TECHNICIAN, "id")?;
        match technicians::get(&services(ctx)?.db, id).await {
            Ok(found) => Ok(Some(Technician(found))),
            Err(crate::error::AppError::NotFound { .. }) => Ok(None),
            Err(err) => Err(err.into()),
        }
    }

    /// Staff: station assignments of a technician, of a station, or of both
    /// (everyone's when neither is given), by station.
    async fn technician_station_assignments(
        &self,
        ctx: &Context<'_>,
        technician_id: Option<ID>,
        station_id: Option<ID>,
    ) -> Result<Vec<TechnicianStationAssignment>> {
        principal(ctx).staff()?;
        let technician_id =
            ids::decode_opt(technician_id.as_ref(), Kind::TECHNICIAN, "technicianId")?;
        let station_id = ids::decode_opt(station_id.as_ref(), Kind::STATION, "stationId")?;
        let rows = technicians::assignments(&services(ctx)?.db, technician_id, station_id).await?;
        Ok(rows.into_iter().map(TechnicianStationAssignment).collect())
    }
}

#[derive(InputObject)]
pub struct CreateTechnicianInput {
    /// An account holding the technician role.
    pub user_id: ID,
    pub name: String,
    pub email: Option<String>,
    pub phone: Option<String>,
}

#[derive(InputObject)]
pub struct UpdateTechnicianInput {
    pub technician_id: ID,
    pub name: Option<String>,
    /// An empty string clears it.
    pub email: Option<String>,
    /// An empty string clears it.
    pub phone: Option<String>,
}

#[derive(InputObject)]
pub struct DeleteTechnicianInput {
    pub technician_id: ID,
}

#[derive(InputObject)]
pub struct AssignTechnicianInput {
    pub technician_id: ID,
    pub station_id: ID,
    #[graphql(default_with = "StationAssignmentRole::Contributor")]
    pub role: StationAssignmentRole,
}

#[derive(InputObject)]
pub struct UpdateStationAssignmentInput {
    pub technician_id: ID,
    pub station_id: ID,
    pub role: Option<StationAssignmentRole>,
    pub is_active: Option<bool>,
}

#[derive(InputObject)]
pub struct RemoveStationAssignmentInput {
    pub technician_id: ID,
    pub station_id: ID,
}

#[derive(SimpleObject)]
pub struct TechnicianPayload {
    pub technician: Technician,
}

#[derive(SimpleObject)]
pub struct StationAssignmentPayload {
    pub assignment: TechnicianStationAssignment,
}

#[derive(SimpleObject)]
pub struct RemovedPayload {
    pub ok: bool,
}

#[derive(Default)]
pub struct TechnicianMutation;

#[Object]
impl TechnicianMutation {
    /// Staff: creates the technician profile of an account holding the technician role.
    async fn create_technician(
        &self,
        ctx: &Context<'_>,
        input: CreateTechnicianInput,
    ) -> Result<TechnicianPayload> {
        principal(ctx).staff()?;
        let services = services(ctx)?;
        let user_id = ids::decode(&input.user_id, Kind::USER, "userId")?;
        let name = technicians::name(&input.name)?;
        let contact = Contact {
            name: None,
            email: input.email.as_deref().map(technicians::email).transpose()?,
            phone: input.phone.as_deref().map(technicians::phone).transpose()?,
        };
        let created =
            technicians::create(&services.db, user_id, name, contact, services.now()).await?;
        Ok(TechnicianPayload {
            technician: Technician(created),
        })
    }

    /// Staff: edits a technician's name and contacts.
    async fn update_technician(
        &self,
        ctx: &Context<'_>,
        input: UpdateTechnicianInput,
    ) -> Result<TechnicianPayload> {
        principal(ctx).staff()?;
        let services = services(ctx)?;
        let id = ids::decode(&input.technician_id, Kind::TECHNICIAN, "technicianId")?;
        let contact = Contact {
            name: input.name.as_deref().map(technicians::name).transpose()?,
            email: input.email.as_deref().map(technicians::email).transpose()?,
            phone: input.phone.as_deref().map(technicians::phone).transpose()?,
        };
        let updated = technicians::update(&services.db, id, contact).await?;
        Ok(TechnicianPayload {
            technician: Technician(updated),
        })
    }

    /// Staff: deletes a technician's profile and station assignments (the
    /// account and its role stay).
    async fn delete_technician(
        &self,
        ctx: &Context<'_>,
        input: DeleteTechnicianInput,
    ) -> Result<RemovedPayload> {
        principal(ctx).staff()?;
        let services = services(ctx)?;
        let id = ids::decode(&input.technician_id, Kind::TECHNICIAN, "technicianId")?;
        let revoked = technicians::delete(&services.db, id).await?;
        announce(services, revoked).await;
        Ok(RemovedPayload { ok: true })
    }

    /// Staff: assigns a technician to a station (active at once).
    async fn assign_technician(
        &self,
        ctx: &Context<'_>,
        input: AssignTechnicianInput,
    ) -> Result<StationAssignmentPayload> {
        principal(ctx).staff()?;
        let services = services(ctx)?;
        let technician = ids::decode(&input.technician_id, Kind::TECHNICIAN, "technicianId")?;
        let station = ids::decode(&input.station_id, Kind::STATION, "stationId")?;
        let assigned = technicians::assign(
            &services.db,
            technician,
            station,
            input.role.into(),
            services.now(),
        )
        .await?;
        Ok(StationAssignmentPayload {
            assignment: TechnicianStationAssignment(assigned),
        })
    }

    /// Staff: changes an assignment's role or active flag; deactivating it
    /// takes the station from the technician at once, live subscriptions included.
    async fn update_station_assignment(
        &self,
        ctx: &Context<'_>,
        input: UpdateStationAssignmentInput,
    ) -> Result<StationAssignmentPayload> {
        principal(ctx).staff()?;
        let services = services(ctx)?;
        let technician = ids::decode(&input.technician_id, Kind::TECHNICIAN, "technicianId")?;
        let station = ids::decode(&input.station_id, Kind::STATION, "stationId")?;
        let (assignment, revoked) = technicians::update_assignment(
            &services.db,
            technician,
            station,
            input.role.map(Into::into),
            input.is_active,
        )
        .await?;
        announce(services, revoked.into_iter().collect()).await;
        Ok(StationAssignmentPayload {
            assignment: TechnicianStationAssignment(assignment),
        })
    }

    /// Staff: removes an assignment; the station is taken from the technician
    /// at once, live subscriptions included.
    async fn remove_station_assignment(
        &self,
        ctx: &Context<'_>,
        input: RemoveStationAssignmentInput,
    ) -> Result<RemovedPayload> {
        principal(ctx).staff()?;
        let services = services(ctx)?;
        let technician = ids::decode(&input.technician_id, Kind::TECHNICIAN, "technicianId")?;
        let station = ids::decode(&input.station_id, Kind::STATION, "stationId")?;
        let revoked = technicians::remove_assignment(&services.db, technician, station).await?;
        announce(services, revoked.into_iter().collect()).await;
        Ok(RemovedPayload { ok: true })
    }
}

/// Publishes revocations that are already stored; a bus failure is logged (the
/// periodic session re-check still ends the subscriptions).
async fn announce(services: &ServiceContext, revoked: Vec<AssignmentChanged>) {
    if revoked.is_empty() {
        return;
    }
    let events = revoked
        .into_iter()
        .map(DomainEvent::AssignmentChanged)
        .collect();
    if let Err(err) = services.bus.publish_all(events).await {
        tracing::error!(
            error = format!("{err:#}"),
            "assignment change stored but not published"
        );
    }
}
