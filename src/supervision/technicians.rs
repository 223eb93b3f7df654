//! Technicians and their station assignments, managed by staff.
//!
//! A technician is an account holding the technician role, with a profile
//! (name and contacts). Their assignments name the stations they supervise,
//! with a role (`LEAD`, `CONTRIBUTOR`, `OBSERVER`) and an active flag: only
//! active assignments give a station's scope, and an observer's lets them look
//! but not act. The principal is rebuilt from them on every HTTP request;
//! changes that take a station away return an [`AssignmentChanged`] event for
//! the caller to publish after the commit, which ends the technician's live
//! subscriptions scoped to it at once.

use chrono::{DateTime, Utc};
use sea_orm::sea_query::{Expr, ExprTrait as _, Func};
use sea_orm::{
    ActiveModelTrait as _, ActiveValue::NotSet, ColumnTrait, ConnectionTrait, DatabaseConnection,
    EntityTrait, QueryFilter, QueryOrder, Set, SqlErr, TransactionTrait,
};

use crate::bus::AssignmentChanged;
use crate::db::FindOr as _;
use crate::entities::station_assignment::{self, AssignmentRole};
use crate::entities::{RoleName, station, technician, user, user_role};
use crate::error::{AppError, AppResult, Reason};
use crate::pagination::{Page, PageRequest};

/// A technician's contact details, validated.
#[derive(Debug, Clone, Default)]
pub struct Contact {
    pub name: Option<String>,
    /// `Some(None)` clears it.
    pub email: Option<Option<String>>,
    /// `Some(None)` clears it.
    pub phone: Option<Option<String>>,
}

/// A name: 1 to 150 characters.
///
/// # Errors
/// `BAD_USER_INPUT` on `name`.
pub fn name(text: &str) -> AppResult<String> {
    let text = text.trim();
    if text.is_empty() || text.chars().count() > 150 || text.chars().any(char::is_control) {
        return Err(AppError::bad_input(
            "name",
            "a name has 1 to 150 characters",
        ));
    }
    Ok(text.to_owned())
}

/// An email address (loosely: something@domain), or nothing when empty.
///
/// # Errors
/// `BAD_USER_INPUT` on `email`.
pub fn email(text: &str) -> AppResult<Option<String>> {
    let text = text.trim();
    if text.is_empty() {
        return Ok(None);
    }
    let valid = text.len() <= 254
        && text
            .split_once('@')
            .is_some_and(|(local, domain)| !local.is_empty() && domain.contains('.'))
        && !text.chars().any(char::is_whitespace);
    if !valid {
        return Err(AppError::bad_input("email", "not an email address"));
    }
    Ok(Some(text.to_lowercase()))
}

/// A phone number: digits with `+`, spaces, dots, dashes and brackets, or
/// nothing when empty.
///
/// # Errors
/// `BAD_USER_INPUT` on `phone`.
pub fn phone(text: &str) -> AppResult<Option<String>> {
    let text = text.trim();
    if text.is_empty() {
        return Ok(None);
    }
    let digits = text.chars().filter(char::is_ascii_digit).count();
    let valid = text.len() <= 32
        && (4..=20).contains(&digits)
        && text
            .chars()
            .all(|c| c.is_ascii_digit() || " +-.()".contains(c));
    if !valid {
        return Err(AppError::bad_input("phone", "not a phone number"));
    }
    Ok(Some(text.to_owned()))
}

/// Creates the profile of `user_id`, who must hold the technician role.
///
/// # Errors
/// `NOT_FOUND` (user); `BAD_USER_INPUT` on `userId` without the role;
/// `CONFLICT` (`TECHNICIAN_EXISTS`).
pub async fn create(
    db: &DatabaseConnection,
    user_id: i32,
    name: String,
    contact: Contact,
    now: DateTime<Utc>,
) -> AppResult<technician::Model> {
    let txn = db.begin().await?;
    user::Entity::find_by_id(user_id)
        .one_or_not_found(&txn, "user")
        .await?;
    let roles = user_role::held_by(&txn, &[user_id]).await?;
    if !roles
        .get(&user_id)
        .is_some_and(|r| r.contains(&RoleName::Technician))
    {
        return Err(AppError::bad_input(
            "userId",
            "the account does not hold the technician role",
        ));
    }
    let created = technician::ActiveModel {
        id: NotSet,
        user_id: Set(user_id),
        name: Set(name),
        email: Set(contact.email.flatten()),
        phone: Set(contact.phone.flatten()),
        created_at: Set(now),
    }
    .insert(&txn)
    .await
    .map_err(|err| match err.sql_err() {
        Some(SqlErr::UniqueConstraintViolation(_)) => AppError::refused(
            Reason::TechnicianExists,
            "the account has a technician profile already",
        ),
        _ => err.into(),
    })?;
    txn.commit().await?;
    Ok(created)
}

/// Edits a profile.
///
/// # Errors
/// `NOT_FOUND`.
pub async fn update(
    db: &impl ConnectionTrait,
    id: i32,
    contact: Contact,
) -> AppResult<technician::Model> {
    let found = get(db, id).await?;
    let mut active: technician::ActiveModel = found.into();
    if let Some(name) = contact.name {
        active.name = Set(name);
    }
    if let Some(email) = contact.email {
        active.email = Set(email);
    }
    if let Some(phone) = contact.phone {
        active.phone = Set(phone);
    }
    Ok(active.update(db).await?)
}

/// Deletes a profile and the account's station assignments (the account and
/// its role stay). Returns the revocations to publish.
///
/// # Errors
/// `NOT_FOUND`.
pub async fn delete(db: &DatabaseConnection, id: i32) -> AppResult<Vec<AssignmentChanged>> {
    let txn = db.begin().await?;
    let found = get(&txn, id).await?;
    let assignments = station_assignment::Entity::find()
        .filter(station_assignment::Column::UserId.eq(found.user_id))
        .all(&txn)
        .await?;
    station_assignment::Entity::delete_many()
        .filter(station_assignment::Column::UserId.eq(found.user_id))
        .exec(&txn)
        .await?;
    technician::Entity::delete_by_id(id).exec(&txn).await?;
    txn.commit().await?;
    Ok(assignments
        .into_iter()
        .filter(|a| a.is_active)
        .map(|a| AssignmentChanged {
            user_id: a.user_id,
            station_id: a.station_id,
            revoked: true,
        })
        .collect())
}

/// One technician.
///
/// # Errors
/// `NOT_FOUND`.
pub async fn get(db: &impl ConnectionTrait, id: i32) -> AppResult<technician::Model> {
    technician::Entity::find_by_id(id)
        .one_or_not_found(db, "technician")
        .await
}

/// Technicians in creation order, optionally those whose name contains `search`.
///
/// # Errors
/// Database failures.
pub async fn list(
    db: &impl ConnectionTrait,
    search: Option<&str>,
    page: PageRequest,
) -> AppResult<Page<technician::Model>> {
    let mut query = technician::Entity::find();
    if let Some(search) = search.map(str::trim).filter(|s| !s.is_empty()) {
        let pattern = format!("%{}%", search.to_lowercase().replace(['%', '_'], ""));
        query = query
            .filter(Expr::expr(Func::lower(Expr::col(technician::Column::Name))).like(pattern));
    }
    crate::db::page_by_id(db, query, technician::Column::Id, page).await
}

/// A station assignment with its technician's profile id.
#[derive(Debug, Clone)]
pub struct Assignment {
    pub technician_id: i32,
    pub row: station_assignment::Model,
}

/// Assignments of a technician, of a station, or of one technician at one
/// station; ordered by station, then technician.
///
/// # Errors
/// Database failures.
pub async fn assignments(
    db: &impl ConnectionTrait,
    technician_id: Option<i32>,
    station_id: Option<i32>,
) -> AppResult<Vec<Assignment>> {
    let mut query = technician::Entity::find();
    if let Some(id) = technician_id {
        query = query.filter(technician::Column::Id.eq(id));
    }
    let technicians = query.all(db).await?;
    let mut rows = station_assignment::Entity::find()
        .filter(station_assignment::Column::UserId.is_in(technicians.iter().map(|t| t.user_id)))
        .order_by_asc(station_assignment::Column::StationId)
        .order_by_asc(station_assignment::Column::UserId);
    if let Some(id) = station_id {
        rows = rows.filter(station_assignment::Column::StationId.eq(id));
    }
    Ok(rows
        .all(db)
        .await?
        .into_iter()
        .filter_map(|row| {
            let technician = technicians.iter().find(|t| t.user_id == row.user_id)?;
            Some(Assignment {
                technician_id: technician.id,
                row,
            })
        })
        .collect())
}

async fn assignment(
    db: &impl ConnectionTrait,
    technician: &technician::Model,
    station_id: i32,
) -> AppResult<station_assignment::Model> {
    station_assignment::Entity::find_by_id((technician.user_id, station_id))
        .one_or_not_found(db, "station assignment")
        .await
}

/// Assigns a technician to a station.
///
/// # Errors
/// `NOT_FOUND` (technician, station); `CONFLICT` (`ALREADY_ASSIGNED`).
pub async fn assign(
    db: &DatabaseConnection,
    technician_id: i32,
    station_id: i32,
    role: AssignmentRole,
    now: DateTime<Utc>,
) -> AppResult<Assignment> {
    let txn = db.begin().await?;
    let technician = get(&txn, technician_id).await?;
    station::Entity::find_by_id(station_id)
        .one_or_not_found(&txn, "station")
        .await?;
    let already = || {
        AppError::refused(
            Reason::AlreadyAssigned,
            "the technician is assigned to this station already",
        )
    };
    if station_assignment::Entity::find_by_id((technician.user_id, station_id))
        .one(&txn)
        .await?
        .is_some()
    {
        return Err(already());
    }
    let row = station_assignment::ActiveModel {
        user_id: Set(technician.user_id),
        station_id: Set(station_id),
        assigned_at: Set(now),
        role: Set(role),
        is_active: Set(true),
    }
    .insert(&txn)
    .await
    .map_err(|err| match err.sql_err() {
        Some(SqlErr::UniqueConstraintViolation(_)) => already(),
        _ => err.into(),
    })?;
    txn.commit().await?;
    Ok(Assignment { technician_id, row })
}

/// Changes an assignment's role or active flag. Returns the assignment and,
/// when it no longer gives the station, the revocation to publish.
///
/// # Errors
/// `NOT_FOUND` (technician, assignment).
pub async fn update_assignment(
    db: &DatabaseConnection,
    technician_id: i32,
    station_id: i32,
    role: Option<AssignmentRole>,
    is_active: Option<bool>,
) -> AppResult<(Assignment, Option<AssignmentChanged>)> {
    let txn = db.begin().await?;
    let technician = get(&txn, technician_id).await?;
    let current = assignment(&txn, &technician, station_id).await?;
    let was_active = current.is_active;
    let mut active: station_assignment::ActiveModel = current.into();
    if let Some(role) = role {
        active.role = Set(role);
    }
    if let Some(is_active) = is_active {
        active.is_active = Set(is_active);
    }
    let row = active.update(&txn).await?;
    txn.commit().await?;
    let revoked = (was_active && !row.is_active).then_some(AssignmentChanged {
        user_id: row.user_id,
        station_id,
        revoked: true,
    });
    Ok((Assignment { technician_id, row }, revoked))
}

/// Removes an assignment. Returns the revocation to publish, if it was active.
///
/// # Errors
/// `NOT_FOUND` (technician, assignment).
pub async fn remove_assignment(
    db: &DatabaseConnection,
    technician_id: i32,
    station_id: i32,
) -> AppResult<Option<AssignmentChanged>> {
    let txn = db.begin().await?;
    let technician = get(&txn, technician_id).await?;
    let current = assignment(&txn, &technician, station_id).await?;
    station_assignment::Entity::delete_by_id((current.user_id, station_id))
        .exec(&txn)
        .await?;
    txn.commit().await?;
    Ok(current.is_active.then_some(AssignmentChanged {
        user_id: current.user_id,
        station_id,
        revoked: true,
    }))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn contacts_are_parsed_or_refused_with_their_field() {
        assert_eq!(name("  Tom Tech ").ok().as_deref(), Some("Tom Tech"));
        assert!(name("").is_err());
        assert_eq!(
            email("Tom@Example.org").ok().flatten().as_deref(),
            Some("tom@example.org")
        );
        assert_eq!(email("").ok(), Some(None));
        assert!(email("tom@localhost").is_err() && email("a b@c.d").is_err());
        assert_eq!(
            phone("+33 6 12 34 56 78").ok().flatten().as_deref(),
            Some("+33 6 12 34 56 78")
        );
        assert!(phone("call me").is_err() && phone("12").is_err());
    }
}
