//! The ticketing audit log: one entry per change to events, teams, products,
//! quotas and orders, written in the same transaction as the change, so a
//! change is never stored without its entry (pretix's `LogEntry`).

use sea_orm::{ActiveModelTrait, ConnectionTrait, Set};

use super::access::Actor;
use crate::entities::ticketing_log;
use crate::error::AppError;

/// What changed: the organizer and event it belongs to and the object.
pub struct Change<'a> {
    pub organizer_id: i32,
    pub event_id: Option<i32>,
    /// `voltgate.<object>.<verb>`, e.g. `voltgate.event.created`.
    pub action: &'a str,
    pub object_type: &'a str,
    pub object_id: i32,
    pub data: serde_json::Value,
}

/// Records `change` made by `actor` (who may be nobody, for a shop buyer or a job).
///
/// # Errors
/// On database errors: the change's transaction fails with it.
pub async fn record(
    db: &impl ConnectionTrait,
    actor: Option<Actor>,
    now: chrono::DateTime<chrono::Utc>,
    change: Change<'_>,
) -> Result<(), AppError> {
    ticketing_log::ActiveModel {
        organizer_id: Set(change.organizer_id),
        event_id: Set(change.event_id),
        user_id: Set(actor.and_then(Actor::user_id)),
        team_api_token_id: Set(actor.and_then(Actor::token_id)),
        action_type: Set(change.action.to_owned()),
        object_type: Set(change.object_type.to_owned()),
        object_id: Set(change.object_id),
        data: Set(change.data.to_string()),
        datetime: Set(now),
        ..Default::default()
    }
    .insert(db)
    .await?;
    Ok(())
}
