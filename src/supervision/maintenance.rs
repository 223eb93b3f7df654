//! Maintenance interventions: staff plan, edit and delete them; a technician
//! lists their own, within their stations.
//!
//! Reservations are not blocked by a planned intervention yet: charging has
//! no time-window maintenance service to call (a bay or station flag blocks
//! them from now on, and staff set it with `updateBay`/`updateStation`).

use chrono::{DateTime, Utc};
use sea_orm::{
    ActiveModelTrait as _, ActiveValue::NotSet, ColumnTrait, ConnectionTrait, EntityTrait,
    QueryFilter, Set,
};

use crate::auth::Principal;
use crate::db::FindOr as _;
use crate::entities::maintenance::{self, MaintenanceStatus};
use crate::entities::{station, technician};
use crate::error::{AppError, AppResult};
use crate::pagination::{Page, PageRequest};

/// An intervention's fields; on an edit, `None` leaves a field as it is.
#[derive(Debug, Clone, Default)]
pub struct Fields {
    pub station_id: Option<i32>,
    /// `Some(None)` unassigns it.
    pub technician_id: Option<Option<i32>>,
    pub kind: Option<String>,
    pub description: Option<String>,
    pub status: Option<MaintenanceStatus>,
    pub planned_at: Option<DateTime<Utc>>,
    /// `Some(None)` clears it.
    pub done_at: Option<Option<DateTime<Utc>>>,
}

/// A kind: 1 to 64 characters.
///
/// # Errors
/// `BAD_USER_INPUT` on `kind`.
pub fn kind(text: &str) -> AppResult<String> {
    let text = text.trim();
    if text.is_empty() || text.chars().count() > 64 {
        return Err(AppError::bad_input("kind", "a kind has 1 to 64 characters"));
    }
    Ok(text.to_owned())
}

async fn check_references(db: &impl ConnectionTrait, fields: &Fields) -> AppResult<()> {
    if let Some(station_id) = fields.station_id {
        station::Entity::find_by_id(station_id)
            .one_or_not_found(db, "station")
            .await?;
    }
    if let Some(Some(technician_id)) = fields.technician_id {
        technician::Entity::find_by_id(technician_id)
            .one_or_not_found(db, "technician")
            .await?;
    }
    Ok(())
}

/// A `DONE` intervention without a done date is done now.
fn done_now(model: &mut maintenance::ActiveModel, now: DateTime<Utc>) {
    let done = matches!(
        &model.status,
        sea_orm::ActiveValue::Set(MaintenanceStatus::Done)
            | sea_orm::ActiveValue::Unchanged(MaintenanceStatus::Done)
    );
    let undated = matches!(
        &model.done_at,
        sea_orm::ActiveValue::Set(None)
            | sea_orm::ActiveValue::Unchanged(None)
            | sea_orm::ActiveValue::NotSet
    );
    if done && undated {
        model.done_at = Set(Some(now));
    }
}

/// Plans an intervention.
///
/// # Errors
/// `NOT_FOUND` (station, technician); `BAD_USER_INPUT` on a missing field.
pub async fn create(
    db: &impl ConnectionTrait,
    window: chrono::TimeDelta,
    fields: Fields,
    now: DateTime<Utc>,
) -> AppResult<maintenance::Model> {
    check_references(db, &fields).await?;
    let mut model = maintenance::ActiveModel {
        id: NotSet,
        station_id: Set(fields
            .station_id
            .ok_or_else(|| AppError::bad_input("stationId", "required"))?),
        technician_id: Set(fields.technician_id.flatten()),
        kind: Set(fields
            .kind
            .ok_or_else(|| AppError::bad_input("kind", "required"))?),
        description: Set(fields.description.unwrap_or_default()),
        status: Set(fields.status.unwrap_or(MaintenanceStatus::Planned)),
        planned_at: Set(fields
            .planned_at
            .ok_or_else(|| AppError::bad_input("plannedAt", "required"))?),
        done_at: Set(fields.done_at.flatten()),
        created_at: Set(now),
    };
    done_now(&mut model, now);
    let created = model.insert(db).await?;
    crate::charging::maintenance_windows::apply(db, window, &created, now).await?;
    Ok(created)
}

/// Edits an intervention.
///
/// # Errors
/// `NOT_FOUND` (it, station, technician).
pub async fn update(
    db: &impl ConnectionTrait,
    window: chrono::TimeDelta,
    id: i32,
    fields: Fields,
    now: DateTime<Utc>,
) -> AppResult<maintenance::Model> {
    let found = maintenance::Entity::find_by_id(id)
        .one_or_not_found(db, "maintenance")
        .await?;
    check_references(db, &fields).await?;
    let mut model: maintenance::ActiveModel = found.into();
    if let Some(station_id) = fields.station_id {
        model.station_id = Set(station_id);
    }
    if let Some(technician_id) = fields.technician_id {
        model.technician_id = Set(technician_id);
    }
    if let Some(kind) = fields.kind {
        model.kind = Set(kind);
    }
    if let Some(description) = fields.description {
        model.description = Set(description);
    }
    if let Some(status) = fields.status {
        model.status = Set(status);
    }
    if let Some(planned_at) = fields.planned_at {
        model.planned_at = Set(planned_at);
    }
    if let Some(done_at) = fields.done_at {
        model.done_at = Set(done_at);
    }
    done_now(&mut model, now);
    let updated = model.update(db).await?;
    crate::charging::maintenance_windows::apply(db, window, &updated, now).await?;
    Ok(updated)
}

/// Deletes an intervention.
///
/// # Errors
/// `NOT_FOUND`.
pub async fn delete(db: &impl ConnectionTrait, id: i32) -> AppResult<()> {
    let deleted = maintenance::Entity::delete_by_id(id).exec(db).await?;
    if deleted.rows_affected == 0 {
        return Err(AppError::not_found("maintenance"));
    }
    Ok(())
}

/// Which interventions a list shows.
#[derive(Debug, Clone, Default)]
pub struct Filter {
    pub station_id: Option<i32>,
    pub technician_id: Option<i32>,
    /// Only these statuses (all when empty).
    pub statuses: Vec<MaintenanceStatus>,
}

/// Interventions on the stations `principal` may see, in creation order.
///
/// # Errors
/// Database failures.
pub async fn list(
    db: &impl ConnectionTrait,
    principal: &Principal,
    filter: &Filter,
    page: PageRequest,
) -> AppResult<Page<maintenance::Model>> {
    let mut query = maintenance::Entity::visible_to(principal);
    if let Some(station_id) = filter.station_id {
        query = query.filter(maintenance::Column::StationId.eq(station_id));
    }
    if let Some(technician_id) = filter.technician_id {
        query = query.filter(maintenance::Column::TechnicianId.eq(technician_id));
    }
    if !filter.statuses.is_empty() {
        query = query.filter(maintenance::Column::Status.is_in(filter.statuses.clone()));
    }
    crate::db::page_by_id(db, query, maintenance::Column::Id, page).await
}

/// The profile of the technician signed in as `user_id`, if they have one.
///
/// # Errors
/// Database failures.
pub async fn profile_of(
    db: &impl ConnectionTrait,
    user_id: i32,
) -> AppResult<Option<technician::Model>> {
    Ok(technician::Entity::find()
        .filter(technician::Column::UserId.eq(user_id))
        .one(db)
        .await?)
}
