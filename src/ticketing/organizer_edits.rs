//! Changing and deleting dates of a series (team permission `ChangeEvents`)
//! and teams (team permission `ChangeTeams`).
//!
//! A change starts from the stored object, applies what the caller gave
//! (`None`: unchanged; `Some(None)`: cleared, for optional members) and runs
//! the same validation as creation (`organizers::check_*`).
//!
//! A date with orders cannot be deleted, nor one that carts hold or vouchers
//! name (`IN_USE`); deleting one deletes its quotas and its meta values.
//! No change may leave the organizer without a team that holds `ChangeTeams`
//! and has a member (`WOULD_LOCK_OUT`, pretix's rule); such changes lock the
//! organizer's row first, so two of them are checked one after the other.

use chrono::{DateTime, Utc};
use sea_orm::{
    ActiveModelTrait, ColumnTrait, DatabaseConnection, EntityTrait, PaginatorTrait, QueryFilter,
    Set,
};
use serde::Serialize;
use serde_json::json;

use super::audit::{Audited, Change};
use super::organizers::{
    self, SubEventInput, TeamInput, check_sub_event, check_team, keeps_team_managers,
    lock_organizer, team_for_change,
};
use crate::auth::{Principal, TeamPermission};
use crate::db::find_locked;
use crate::entities::{
    cart_position, event, order_position, quota, quota_product, quota_variation, sub_event,
    sub_event_meta_value, team, team_api_token, team_event, team_member, voucher,
};
use crate::error::{AppError, Reason};

/// What changes in a date: `None` keeps a member, `Some(None)` clears an
/// optional one.
#[derive(Debug, Clone, Default, Serialize)]
pub struct SubEventPatch {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub active: Option<bool>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub is_public: Option<bool>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub date_from: Option<DateTime<Utc>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub date_to: Option<Option<DateTime<Utc>>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub presale_start: Option<Option<DateTime<Utc>>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub presale_end: Option<Option<DateTime<Utc>>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub location: Option<Option<String>>,
}

/// Sets `target` to the patch's value when one is given.
fn put<T: Clone>(target: &mut T, value: Option<&T>) {
    if let Some(value) = value {
        target.clone_from(value);
    }
}

/// Opens a change of a date (team permission `ChangeEvents` on its event); a
/// date that does not exist is refused like an event the caller may not
/// change (`NOT_FOUND` for staff).
async fn date_for_change(
    db: &DatabaseConnection,
    principal: &Principal,
    now: DateTime<Utc>,
    sub_event_id: i32,
    lock: bool,
) -> Result<(Audited, event::Model, sub_event::Model), AppError> {
    if matches!(principal, Principal::Anonymous) {
        return Err(AppError::Unauthenticated);
    }
    let mut change = Audited::begin(db, None, now).await?;
    let query = sub_event::Entity::find_by_id(sub_event_id);
    let date = if lock {
        find_locked(change.txn(), query).await?
    } else {
        query.one(change.txn()).await?
    };
    let event = change
        .check_event(
            principal,
            TeamPermission::ChangeEvents,
            date.as_ref().map_or(0, |d| d.event_id),
        )
        .await?;
    let date = date.ok_or(AppError::not_found("subEvent"))?;
    Ok((change, event, date))
}

/// Changes a date of a series (team permission `ChangeEvents`).
///
/// # Errors
/// As [`organizers::create_sub_event`]; as [`date_for_change`].
pub async fn update_sub_event(
    db: &DatabaseConnection,
    principal: &Principal,
    now: DateTime<Utc>,
    sub_event_id: i32,
    patch: SubEventPatch,
) -> Result<sub_event::Model, AppError> {
    let (change, event, date) = date_for_change(db, principal, now, sub_event_id, false).await?;
    let mut input = SubEventInput::from(&date);
    put(&mut input.name, patch.name.as_ref());
    put(&mut input.active, patch.active.as_ref());
    put(&mut input.is_public, patch.is_public.as_ref());
    put(&mut input.date_from, patch.date_from.as_ref());
    put(&mut input.date_to, patch.date_to.as_ref());
    put(&mut input.presale_start, patch.presale_start.as_ref());
    put(&mut input.presale_end, patch.presale_end.as_ref());
    put(&mut input.location, patch.location.as_ref());
    let name = check_sub_event(&input)?;
    let mut row: sub_event::ActiveModel = date.into();
    row.name = Set(name);
    row.active = Set(input.active);
    row.is_public = Set(input.is_public);
    row.date_from = Set(input.date_from);
    row.date_to = Set(input.date_to);
    row.presale_start = Set(input.presale_start);
    row.presale_end = Set(input.presale_end);
    row.location = Set(input.location);
    let date = row.update(change.txn()).await?;
    change
        .commit(Change::on_event(
            &event,
            "voltgate.subevent.changed",
            "subevent",
            date.id,
            json!(patch),
        ))
        .await?;
    Ok(date)
}

fn in_use(message: &str) -> AppError {
    AppError::refused(Reason::InUse, message)
}

/// Deletes a date with its quotas and meta values, unless it has orders, carts
/// hold it or vouchers name it (`IN_USE`). Its check-in lists go with it (a
/// date without orders has no check-ins).
///
/// # Errors
/// `IN_USE`; as [`update_sub_event`].
pub async fn delete_sub_event(
    db: &DatabaseConnection,
    principal: &Principal,
    now: DateTime<Utc>,
    sub_event_id: i32,
) -> Result<sub_event::Model, AppError> {
    let (change, event, date) = date_for_change(db, principal, now, sub_event_id, true).await?;
    let txn = change.txn();
    let ordered = order_position::Entity::find()
        .filter(order_position::Column::SubEventId.eq(date.id))
        .count(txn)
        .await?;
    if ordered > 0 {
        return Err(in_use("this date has orders: deactivate it instead"));
    }
    let held = cart_position::Entity::find()
        .filter(cart_position::Column::SubEventId.eq(date.id))
        .count(txn)
        .await?;
    if held > 0 {
        return Err(in_use("carts hold this date"));
    }
    let named = voucher::Entity::find()
        .filter(voucher::Column::SubEventId.eq(date.id))
        .count(txn)
        .await?;
    if named > 0 {
        return Err(in_use("vouchers apply to this date"));
    }
    let quotas: Vec<i32> = quota::Entity::find()
        .filter(quota::Column::SubEventId.eq(date.id))
        .all(txn)
        .await?
        .into_iter()
        .map(|q| q.id)
        .collect();
    let quotas_named = voucher::Entity::find()
        .filter(voucher::Column::QuotaId.is_in(quotas.clone()))
        .count(txn)
        .await?;
    if quotas_named > 0 {
        return Err(in_use("vouchers apply to a quota of this date"));
    }
    // The foreign keys cascade too; deleting here does not depend on them.
    quota_variation::Entity::delete_many()
        .filter(quota_variation::Column::QuotaId.is_in(quotas.clone()))
        .exec(txn)
        .await?;
    quota_product::Entity::delete_many()
        .filter(quota_product::Column::QuotaId.is_in(quotas.clone()))
        .exec(txn)
        .await?;
    // The rows decide: a quota moved to this date may hold another date's carts.
    let deleted = quota::Entity::delete_many()
        .filter(quota::Column::Id.is_in(quotas.clone()))
        .filter(quota::Column::InCarts.eq(0))
        .exec(txn)
        .await?;
    if deleted.rows_affected != quotas.len() as u64 {
        return Err(in_use("carts hold units of a quota of this date"));
    }
    sub_event_meta_value::Entity::delete_many()
        .filter(sub_event_meta_value::Column::SubEventId.eq(date.id))
        .exec(txn)
        .await?;
    sub_event::Entity::delete_by_id(date.id).exec(txn).await?;
    change
        .commit(Change::on_event(
            &event,
            "voltgate.subevent.deleted",
            "subevent",
            date.id,
            json!({ "name": date.name, "date_from": date.date_from, "quotas": quotas }),
        ))
        .await?;
    Ok(date)
}

/// What changes in a team: `event_ids` replaces its events, `permissions`
/// its permissions.
#[derive(Debug, Clone, Default, Serialize)]
pub struct TeamPatch {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub all_events: Option<bool>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub event_ids: Option<Vec<i32>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub permissions: Option<Vec<TeamPermission>>,
}

/// The events a team is limited to.
async fn events_of(db: &impl sea_orm::ConnectionTrait, team_id: i32) -> Result<Vec<i32>, AppError> {
    Ok(team_event::Entity::find()
        .filter(team_event::Column::TeamId.eq(team_id))
        .all(db)
        .await?
        .into_iter()
        .map(|l| l.event_id)
        .collect())
}

/// Changes a team's name, permissions and events (team permission
/// `ChangeTeams`).
///
/// # Errors
/// As [`organizers::create_team`]; `WOULD_LOCK_OUT` when no team holding
/// `ChangeTeams` with a member would be left.
pub async fn update_team(
    db: &DatabaseConnection,
    principal: &Principal,
    now: DateTime<Utc>,
    team_id: i32,
    patch: TeamPatch,
) -> Result<team::Model, AppError> {
    let (change, team) = team_for_change(db, principal, now, team_id).await?;
    let txn = change.txn();
    lock_organizer(txn, team.organizer_id).await?;
    let mut input = TeamInput::of(&team, events_of(txn, team.id).await?);
    put(&mut input.name, patch.name.as_ref());
    put(&mut input.all_events, patch.all_events.as_ref());
    put(&mut input.event_ids, patch.event_ids.as_ref());
    put(&mut input.permissions, patch.permissions.as_ref());
    let (name, events) = check_team(txn, team.organizer_id, &input).await?;
    let mut row: team::ActiveModel = team.into();
    row.name = Set(name);
    row.all_events = Set(input.all_events);
    team::Model::grant(&mut row, &input.permissions);
    let team = row.update(txn).await?;
    if patch.event_ids.is_some() {
        team_event::Entity::delete_many()
            .filter(team_event::Column::TeamId.eq(team.id))
            .exec(txn)
            .await?;
        organizers::link_events(txn, team.id, &events, now).await?;
    }
    keeps_team_managers(txn, team.organizer_id).await?;
    change
        .commit(Change::on_organizer(
            team.organizer_id,
            "voltgate.team.changed",
            "team",
            team.id,
            json!(patch),
        ))
        .await?;
    Ok(team)
}

/// Deletes a team with its memberships and API tokens (team permission
/// `ChangeTeams`). The audit log keeps naming the tokens that acted.
///
/// # Errors
/// As [`update_team`].
pub async fn delete_team(
    db: &DatabaseConnection,
    principal: &Principal,
    now: DateTime<Utc>,
    team_id: i32,
) -> Result<team::Model, AppError> {
    let (change, team) = team_for_change(db, principal, now, team_id).await?;
    let txn = change.txn();
    lock_organizer(txn, team.organizer_id).await?;
    // The foreign keys cascade too; deleting here does not depend on them.
    team_member::Entity::delete_many()
        .filter(team_member::Column::TeamId.eq(team.id))
        .exec(txn)
        .await?;
    team_event::Entity::delete_many()
        .filter(team_event::Column::TeamId.eq(team.id))
        .exec(txn)
        .await?;
    team_api_token::Entity::delete_many()
        .filter(team_api_token::Column::TeamId.eq(team.id))
        .exec(txn)
        .await?;
    team::Entity::delete_by_id(team.id).exec(txn).await?;
    keeps_team_managers(txn, team.organizer_id).await?;
    change
        .commit(Change::on_organizer(
            team.organizer_id,
            "voltgate.team.deleted",
            "team",
            team.id,
            json!({ "name": team.name, "permissions": team.permissions() }),
        ))
        .await?;
    Ok(team)
}
