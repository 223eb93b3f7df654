//! Who may work at the doors of an event: members (and API tokens) of a team
//! holding the check-in permission for it, staff, and the event's scanner
//! devices. A scanner's device is read on every call (briefly cached on the
//! scan path, see `cache`), so revoking it stops the device at once, even
//! before its short-lived access token expires.

use std::sync::Arc;
use std::time::Duration;

use sea_orm::ConnectionTrait;

use super::cache::DoorCache;
use crate::auth::{Principal, TeamPermission};
use crate::entities::event;
use crate::error::AppError;
use crate::ticketing::access::{self as team_access, Actor};

/// Who scans: a scanner device or a team member or token.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Operator {
    Scanner {
        device_id: Option<i32>,
        gate: String,
    },
    Team(Actor),
}

impl Operator {
    /// Whom a scan's nonce belongs to, and the rate limit's key.
    pub fn scope(&self) -> String {
        match self {
            Self::Scanner {
                device_id: Some(id),
                ..
            } => format!("scanner:{id}"),
            Self::Scanner {
                device_id: None,
                gate,
            } => format!("gate:{gate}"),
            Self::Team(Actor::Person(id)) => format!("user:{id}"),
            Self::Team(Actor::Token { team_id, token_id }) => match token_id {
                Some(token) => format!("token:{token}"),
                None => format!("team:{team_id}"),
            },
        }
    }

    pub fn scanner_id(&self) -> Option<i32> {
        match self {
            Self::Scanner { device_id, .. } => *device_id,
            Self::Team(_) => None,
        }
    }

    pub fn user_id(&self) -> Option<i32> {
        match self {
            Self::Team(actor) => actor.user_id(),
            Self::Scanner { .. } => None,
        }
    }

    pub fn token_id(&self) -> Option<i32> {
        match self {
            Self::Team(actor) => actor.token_id(),
            Self::Scanner { .. } => None,
        }
    }

    /// The gate a scanner is bound to.
    pub fn gate(&self) -> Option<&str> {
        match self {
            Self::Scanner { gate, .. } => Some(gate),
            Self::Team(_) => None,
        }
    }
}

/// Scanning and reading lists at `event_id`'s doors.
///
/// # Errors
/// `UNAUTHENTICATED` anonymously or for a revoked scanner device; `FORBIDDEN`
/// for anyone else (a scanner of another event, a team without the check-in
/// permission, kiosks).
pub async fn door(
    db: &impl ConnectionTrait,
    principal: &Principal,
    event_id: i32,
) -> Result<(event::Model, Operator), AppError> {
    let uncached = DoorCache::new(Duration::ZERO);
    let (event, operator) = scanning(db, &uncached, principal, event_id).await?;
    Ok((Arc::unwrap_or_clone(event), operator))
}

/// Scanning at `event_id`'s doors, as [`door`], with the scanner's device
/// and the event read through `doors`.
///
/// # Errors
/// As [`door`].
pub async fn scanning(
    db: &impl ConnectionTrait,
    doors: &DoorCache,
    principal: &Principal,
    event_id: i32,
) -> Result<(Arc<event::Model>, Operator), AppError> {
    if let Principal::Scanner(_) = principal {
        let scanner = principal.scanner_at(event_id)?;
        if let Some(device_id) = scanner.device_id
            && !doors.scanner_stands(db, device_id, event_id).await?
        {
            return Err(AppError::Unauthenticated);
        }
        // The scanner's own event: telling it that it is gone reveals nothing.
        let event = doors
            .event(db, event_id)
            .await?
            .ok_or(AppError::not_found("event"))?;
        return Ok((
            event,
            Operator::Scanner {
                device_id: scanner.device_id,
                gate: scanner.gate.clone(),
            },
        ));
    }
    let (event, actor) =
        team_access::on_event(db, principal, TeamPermission::CheckIn, event_id).await?;
    Ok((Arc::new(event), Operator::Team(actor)))
}

/// Managing `event_id`'s lists and scanners: the check-in permission, for
/// people and team tokens only (a scanner never manages).
///
/// # Errors
/// As [`team_access::on_event`].
pub async fn manage(
    db: &impl ConnectionTrait,
    principal: &Principal,
    event_id: i32,
) -> Result<(event::Model, Actor), AppError> {
    team_access::on_event(db, principal, TeamPermission::CheckIn, event_id).await
}
