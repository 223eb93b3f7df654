//! Alerts raised by what devices and sessions do rather than by what they
//! measure: a command that fails or times out (`COMMAND_FAILED`), a lock the
//! device reports blocked (`LOCK_BLOCKED`), a charging session ending in
//! error (`SESSION_ERROR`). Each runs in the transaction of the change that
//! raised it, like the reading rules, and ends by itself at the matching
//! recovery: a command the device finishes, a lock reported locked or
//! unlocked, a session on the bay that charges.

use chrono::{DateTime, Utc};
use sea_orm::{ConnectionTrait, DbErr, EntityTrait};

use super::alerts::{self, Change, Condition};
use crate::entities::device_command::{self, CommandStatus};
use crate::entities::{AlertKind, AlertSeverity, alert, bay, charging_session};

type Raised = Option<(alert::Model, Change)>;

/// Raises, refreshes or ends the `COMMAND_FAILED` alert of a command's device
/// once the command settled: failed or rejected (`MEDIUM`) and timed out
/// (`HIGH`: the device may be gone) raise it; a command the device finished
/// ends it. A command that was never sent raises nothing: the caller got
/// `DEVICE_UNREACHABLE` at once.
///
/// # Errors
/// Database failures.
pub async fn command_settled(
    db: &impl ConnectionTrait,
    command: &device_command::Model,
    at: DateTime<Utc>,
) -> Result<Raised, DbErr> {
    let (severity, outcome) = match command.status {
        CommandStatus::Failed | CommandStatus::Rejected => {
            (AlertSeverity::Medium, command.status.as_str())
        }
        CommandStatus::TimedOut => (AlertSeverity::High, "timed out"),
        CommandStatus::Done => (AlertSeverity::Low, ""),
        CommandStatus::Pending | CommandStatus::Accepted | CommandStatus::Unsent => {
            return Ok(None);
        }
    };
    let Some(bay) = bay::Entity::find_by_id(command.bay_id).one(db).await? else {
        return Ok(None);
    };
    let why: String = command
        .error
        .as_deref()
        .unwrap_or("no message")
        .chars()
        .take(120)
        .collect();
    let condition = Condition {
        kind: AlertKind::CommandFailed,
        severity,
        message: format!("{} on bay {} {outcome}: {why}", command.action, bay.number),
        station_id: bay.station_id,
        bay_id: Some(bay.id),
        device_id: Some(command.device_id),
        reading_id: None,
        session_id: None,
    };
    alerts::raise_or_recover(db, &condition, command.status != CommandStatus::Done, at).await
}

/// Raises or ends the `LOCK_BLOCKED` alert of `device_id` after a state
/// report said its lock is (or no longer is) blocked.
///
/// # Errors
/// Database failures.
pub async fn lock_state(
    db: &impl ConnectionTrait,
    bay: &bay::Model,
    device_id: i32,
    blocked: bool,
    at: DateTime<Utc>,
) -> Result<Raised, DbErr> {
    let condition = Condition {
        kind: AlertKind::LockBlocked,
        severity: AlertSeverity::High,
        message: format!("the lock of bay {} is blocked", bay.number),
        station_id: bay.station_id,
        bay_id: Some(bay.id),
        device_id: Some(device_id),
        reading_id: None,
        session_id: None,
    };
    alerts::raise_or_recover(db, &condition, blocked, at).await
}

/// How a charging session moved, as far as alerts care.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SessionMove {
    /// It ended in error through a fault (a command failed, the device refused).
    Failed,
    /// It ended in error because nobody plugged in before the deadline.
    PlugTimedOut,
    /// It started charging: the bay works again.
    Charging,
}

/// Raises (or refreshes) the `SESSION_ERROR` alert of the session's bay when
/// a session ends in error, `HIGH` for a fault and `LOW` for a plug timeout
/// (a customer who did not plug in, not a broken bay); ends it when a session
/// on the bay charges. One open alert per bay: its `sessionId` is the latest
/// failed session.
///
/// # Errors
/// Database failures.
pub async fn session_moved(
    db: &impl ConnectionTrait,
    session: &charging_session::Model,
    moved: SessionMove,
    at: DateTime<Utc>,
) -> Result<Raised, DbErr> {
    let Some(bay) = bay::Entity::find_by_id(session.bay_id).one(db).await? else {
        return Ok(None);
    };
    let why: String = session
        .error
        .as_deref()
        .unwrap_or("no reason given")
        .chars()
        .take(120)
        .collect();
    let (severity, message) = match moved {
        SessionMove::Failed => (
            AlertSeverity::High,
            format!(
                "charging session {} on bay {} ended in error: {why}",
                session.id, bay.number
            ),
        ),
        SessionMove::PlugTimedOut => (
            AlertSeverity::Low,
            format!(
                "charging session {} on bay {} ended: nobody plugged in",
                session.id, bay.number
            ),
        ),
        SessionMove::Charging => (AlertSeverity::Low, String::new()),
    };
    let condition = Condition {
        kind: AlertKind::SessionError,
        severity,
        message,
        station_id: bay.station_id,
        bay_id: Some(bay.id),
        device_id: None,
        reading_id: None,
        session_id: Some(session.id),
    };
    alerts::raise_or_recover(db, &condition, moved != SessionMove::Charging, at).await
}
