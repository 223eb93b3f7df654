//! Event meta properties (pretix `EventMetaProperty`, `EventMetaValue`,
//! `SubEventMetaValue`): fields an organizer defines for its events, each
//! with a default; an event may set its own value, and a date of a series
//! its own over the event's.
//!
//! Properties change with the team permission `ChangeOrganizerSettings`,
//! values with `ChangeEvents` on the event; every change is in the audit log.
//! The effective value of a property is the date's own, else the event's,
//! else the property's default, as pretix resolves it.

use std::collections::HashMap;

use chrono::{DateTime, Utc};
use sea_orm::{
    ActiveModelTrait, ColumnTrait, ConnectionTrait, DatabaseConnection, DbErr, EntityTrait,
    QueryFilter, QueryOrder, Set, SqlErr,
};
use serde_json::json;

use super::audit::{Audited, Change};
use crate::auth::{Principal, TeamPermission};
use crate::entities::{
    event, event_meta_property as property, event_meta_value, sub_event, sub_event_meta_value,
};
use crate::error::AppError;

/// The longest name of a property.
pub const NAME_MAX: usize = 50;
/// The longest default or value, in characters.
pub const VALUE_MAX: usize = 2000;

/// A property name: 1 to 50 letters, digits and underscores (pretix's rule,
/// so a name can be used as a placeholder in ticket layouts).
///
/// # Errors
/// `BAD_USER_INPUT` on `name` otherwise.
pub fn parse_name(name: &str) -> Result<String, AppError> {
    let ok = (1..=NAME_MAX).contains(&name.len())
        && name.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_');
    if ok {
        Ok(name.to_owned())
    } else {
        Err(AppError::bad_input(
            "name",
            "use 1 to 50 letters, digits and underscores",
        ))
    }
}

/// A default or value of at most 2000 characters (it may be empty).
///
/// # Errors
/// `BAD_USER_INPUT` on `field` otherwise.
pub fn parse_value(field: &'static str, value: &str) -> Result<String, AppError> {
    if value.chars().count() > VALUE_MAX {
        return Err(AppError::bad_input(field, "use at most 2000 characters"));
    }
    Ok(value.to_owned())
}

fn name_taken(err: DbErr) -> AppError {
    match err.sql_err() {
        Some(SqlErr::UniqueConstraintViolation(_)) => {
            AppError::Conflict("the organizer has a property of this name already".to_owned())
        }
        _ => AppError::from(err),
    }
}

/// Defines a property for the organizer's events (team permission
/// `ChangeOrganizerSettings`).
///
/// # Errors
/// `BAD_USER_INPUT` on a bad name or default; `CONFLICT` when the organizer
/// has a property of that name; as [`super::access::on_organizer`].
pub async fn create_property(
    db: &DatabaseConnection,
    principal: &Principal,
    now: DateTime<Utc>,
    organizer_id: i32,
    name: &str,
    default: &str,
) -> Result<property::Model, AppError> {
    let (change, organizer) = Audited::on_organizer(
        db,
        principal,
        now,
        TeamPermission::ChangeOrganizerSettings,
        organizer_id,
    )
    .await?;
    let name = parse_name(name)?;
    let default = parse_value("default", default)?;
    let row = property::ActiveModel {
        organizer_id: Set(organizer.id),
        name: Set(name),
        default_value: Set(default),
        created_at: Set(now),
        ..Default::default()
    }
    .insert(change.txn())
    .await
    .map_err(name_taken)?;
    change
        .commit(Change::on_organizer(
            organizer.id,
            "voltgate.event_meta_property.added",
            "event_meta_property",
            row.id,
            json!({ "name": row.name, "default": row.default_value }),
        ))
        .await?;
    Ok(row)
}

/// Opens a change of property `property_id`: a property that does not exist
/// is refused like one the caller may not change.
async fn property_for_change(
    db: &DatabaseConnection,
    principal: &Principal,
    now: DateTime<Utc>,
    property_id: i32,
) -> Result<(Audited, property::Model), AppError> {
    if matches!(principal, Principal::Anonymous) {
        return Err(AppError::Unauthenticated);
    }
    let mut change = Audited::begin(db, None, now).await?;
    let row = property::Entity::find_by_id(property_id)
        .one(change.txn())
        .await?;
    let organizer_id = row.as_ref().map_or(0, |p| p.organizer_id);
    change
        .check_organizer(
            principal,
            TeamPermission::ChangeOrganizerSettings,
            organizer_id,
        )
        .await?;
    let row = row.ok_or(AppError::not_found("property"))?;
    Ok((change, row))
}

/// Renames a property or changes its default (team permission
/// `ChangeOrganizerSettings`); what is not given is kept.
///
/// # Errors
/// As [`create_property`]; `NOT_FOUND` for staff on an unknown property.
pub async fn update_property(
    db: &DatabaseConnection,
    principal: &Principal,
    now: DateTime<Utc>,
    property_id: i32,
    name: Option<&str>,
    default: Option<&str>,
) -> Result<property::Model, AppError> {
    let (change, current) = property_for_change(db, principal, now, property_id).await?;
    let name = name.map(parse_name).transpose()?;
    let default = default.map(|d| parse_value("default", d)).transpose()?;
    let mut row: property::ActiveModel = current.into();
    if let Some(name) = &name {
        row.name = Set(name.clone());
    }
    if let Some(default) = &default {
        row.default_value = Set(default.clone());
    }
    let row = row.update(change.txn()).await.map_err(name_taken)?;
    change
        .commit(Change::on_organizer(
            row.organizer_id,
            "voltgate.event_meta_property.changed",
            "event_meta_property",
            row.id,
            json!({ "name": name, "default": default }),
        ))
        .await?;
    Ok(row)
}

/// Deletes a property and every event's and date's value of it (team
/// permission `ChangeOrganizerSettings`).
///
/// # Errors
/// As [`update_property`].
pub async fn delete_property(
    db: &DatabaseConnection,
    principal: &Principal,
    now: DateTime<Utc>,
    property_id: i32,
) -> Result<(), AppError> {
    let (change, row) = property_for_change(db, principal, now, property_id).await?;
    // The foreign keys cascade too; deleting here does not depend on them.
    let events = event_meta_value::Entity::delete_many()
        .filter(event_meta_value::Column::PropertyId.eq(row.id))
        .exec(change.txn())
        .await?
        .rows_affected;
    let dates = sub_event_meta_value::Entity::delete_many()
        .filter(sub_event_meta_value::Column::PropertyId.eq(row.id))
        .exec(change.txn())
        .await?
        .rows_affected;
    property::Entity::delete_by_id(row.id)
        .exec(change.txn())
        .await?;
    change
        .commit(Change::on_organizer(
            row.organizer_id,
            "voltgate.event_meta_property.deleted",
            "event_meta_property",
            row.id,
            json!({ "name": row.name, "event_values": events, "subevent_values": dates }),
        ))
        .await?;
    Ok(())
}

/// Property `property_id` of `organizer_id`: one of another organizer is
/// `NOT_FOUND`, like one that does not exist.
async fn property_of(
    db: &impl ConnectionTrait,
    organizer_id: i32,
    property_id: i32,
) -> Result<property::Model, AppError> {
    property::Entity::find_by_id(property_id)
        .one(db)
        .await?
        .filter(|p| p.organizer_id == organizer_id)
        .ok_or(AppError::not_found("property"))
}

/// Sets the event's value of a property (team permission `ChangeEvents`), or
/// clears it when `value` is `None`, so the default applies again.
///
/// # Errors
/// `BAD_USER_INPUT` on a too long value; `NOT_FOUND` on a property that is not
/// the event's organizer's; as [`super::access::on_event`].
pub async fn set_event_value(
    db: &DatabaseConnection,
    principal: &Principal,
    now: DateTime<Utc>,
    event_id: i32,
    property_id: i32,
    value: Option<&str>,
) -> Result<event::Model, AppError> {
    let (change, event) =
        Audited::on_event(db, principal, now, TeamPermission::ChangeEvents, event_id).await?;
    let prop = property_of(change.txn(), event.organizer_id, property_id).await?;
    let value = value.map(|v| parse_value("value", v)).transpose()?;
    let existing = event_meta_value::Entity::find()
        .filter(event_meta_value::Column::EventId.eq(event.id))
        .filter(event_meta_value::Column::PropertyId.eq(prop.id))
        .one(change.txn())
        .await?;
    let (action, object_id) = match (value.as_ref(), existing) {
        (Some(value), Some(row)) => {
            let mut row: event_meta_value::ActiveModel = row.into();
            row.value = Set(value.clone());
            let row = row.update(change.txn()).await?;
            ("voltgate.event.meta_value.set", row.id)
        }
        (Some(value), None) => {
            let row = event_meta_value::ActiveModel {
                event_id: Set(event.id),
                property_id: Set(prop.id),
                value: Set(value.clone()),
                ..Default::default()
            }
            .insert(change.txn())
            .await?;
            ("voltgate.event.meta_value.set", row.id)
        }
        (None, Some(row)) => {
            event_meta_value::Entity::delete_by_id(row.id)
                .exec(change.txn())
                .await?;
            ("voltgate.event.meta_value.cleared", row.id)
        }
        // Nothing to clear: nothing changes, nothing is logged.
        (None, None) => return Ok(event),
    };
    change
        .commit(Change::on_event(
            &event,
            action,
            "event_meta_value",
            object_id,
            json!({ "property": prop.id, "name": prop.name, "value": value }),
        ))
        .await?;
    Ok(event)
}

/// As [`set_event_value`], for a date of a series: its value is used over
/// the event's.
///
/// # Errors
/// As [`set_event_value`], on the date's event; a date that does not exist
/// is refused like an event the caller may not change.
pub async fn set_sub_event_value(
    db: &DatabaseConnection,
    principal: &Principal,
    now: DateTime<Utc>,
    sub_event_id: i32,
    property_id: i32,
    value: Option<&str>,
) -> Result<sub_event::Model, AppError> {
    if matches!(principal, Principal::Anonymous) {
        return Err(AppError::Unauthenticated);
    }
    let mut change = Audited::begin(db, None, now).await?;
    let date = sub_event::Entity::find_by_id(sub_event_id)
        .one(change.txn())
        .await?;
    let event = change
        .check_event(
            principal,
            TeamPermission::ChangeEvents,
            date.as_ref().map_or(0, |d| d.event_id),
        )
        .await?;
    let date = date.ok_or(AppError::not_found("subEvent"))?;
    let prop = property_of(change.txn(), event.organizer_id, property_id).await?;
    let value = value.map(|v| parse_value("value", v)).transpose()?;
    let existing = sub_event_meta_value::Entity::find()
        .filter(sub_event_meta_value::Column::SubEventId.eq(date.id))
        .filter(sub_event_meta_value::Column::PropertyId.eq(prop.id))
        .one(change.txn())
        .await?;
    let (action, object_id) = match (value.as_ref(), existing) {
        (Some(value), Some(row)) => {
            let mut row: sub_event_meta_value::ActiveModel = row.into();
            row.value = Set(value.clone());
            let row = row.update(change.txn()).await?;
            ("voltgate.subevent.meta_value.set", row.id)
        }
        (Some(value), None) => {
            let row = sub_event_meta_value::ActiveModel {
                sub_event_id: Set(date.id),
                property_id: Set(prop.id),
                value: Set(value.clone()),
                ..Default::default()
            }
            .insert(change.txn())
            .await?;
            ("voltgate.subevent.meta_value.set", row.id)
        }
        (None, Some(row)) => {
            sub_event_meta_value::Entity::delete_by_id(row.id)
                .exec(change.txn())
                .await?;
            ("voltgate.subevent.meta_value.cleared", row.id)
        }
        (None, None) => return Ok(date),
    };
    change
        .commit(Change::on_event(
            &event,
            action,
            "subevent_meta_value",
            object_id,
            json!({
                "subevent": date.id, "property": prop.id, "name": prop.name, "value": value,
            }),
        ))
        .await?;
    Ok(date)
}

/// Where an effective value comes from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Source {
    SubEvent,
    Event,
    Default,
}

/// A property with its effective value for an event or a date.
#[derive(Debug, Clone)]
pub struct Resolved {
    pub property: property::Model,
    pub value: String,
    pub source: Source,
}

/// The organizer's properties, by name.
///
/// # Errors
/// On database errors.
pub async fn properties_of(
    db: &impl ConnectionTrait,
    organizer_id: i32,
) -> Result<Vec<property::Model>, AppError> {
    Ok(property::Entity::find()
        .filter(property::Column::OrganizerId.eq(organizer_id))
        .order_by_asc(property::Column::Name)
        .all(db)
        .await?)
}

/// Every property of the event's organizer with its effective value for the
/// event, or for `sub_event_id` of it when given: the date's own value, else
/// the event's, else the default.
///
/// # Errors
/// On database errors.
pub async fn resolve(
    db: &impl ConnectionTrait,
    event: &event::Model,
    sub_event_id: Option<i32>,
) -> Result<Vec<Resolved>, AppError> {
    let properties = properties_of(db, event.organizer_id).await?;
    if properties.is_empty() {
        return Ok(Vec::new());
    }
    let of_event: HashMap<i32, String> = event_meta_value::Entity::find()
        .filter(event_meta_value::Column::EventId.eq(event.id))
        .all(db)
        .await?
        .into_iter()
        .map(|v| (v.property_id, v.value))
        .collect();
    let of_date: HashMap<i32, String> = match sub_event_id {
        Some(id) => sub_event_meta_value::Entity::find()
            .filter(sub_event_meta_value::Column::SubEventId.eq(id))
            .all(db)
            .await?
            .into_iter()
            .map(|v| (v.property_id, v.value))
            .collect(),
        None => HashMap::new(),
    };
    Ok(properties
        .into_iter()
        .map(|p| {
            let (value, source) = if let Some(v) = of_date.get(&p.id) {
                (v.clone(), Source::SubEvent)
            } else if let Some(v) = of_event.get(&p.id) {
                (v.clone(), Source::Event)
            } else {
                (p.default_value.clone(), Source::Default)
            };
            Resolved {
                property: p,
                value,
                source,
            }
        })
        .collect())
}
