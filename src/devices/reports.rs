//! Applying device reports (state, command acknowledgements) to storage.

use std::net::IpAddr;

use chrono::{DateTime, TimeDelta, Utc};
use sea_orm::{
    ActiveModelTrait, ColumnTrait, ConnectionTrait, DatabaseConnection, DatabaseTransaction,
    EntityTrait, QueryFilter, QuerySelect, RelationTrait, Set, TransactionTrait,
};
use sea_orm::{DbErr, JoinType};

use super::commands::{AckStatus, CommandAction};
use super::commands_log::{self, AckOutcome};
use super::state_batch::{StateInput, apply_state_reports_in};
use crate::bus::BayStatusChanged;
use crate::entities::device_command::CommandStatus;
use crate::entities::{DeviceStatus, LockState, bay, cabinet, device};

/// A device's report of its state, as the domain sees it (the MAC normalized).
#[derive(Debug, Clone, PartialEq)]
pub struct StateReport {
    /// The device's clock at the time of the report.
    pub ts: DateTime<Utc>,
    pub mac: String,
    pub fw: Option<String>,
    pub ip: Option<IpAddr>,
    pub status: DeviceStatus,
    pub lock: Option<LockState>,
    pub plugged: Option<bool>,
    /// Orders reports that share one `ts`.
    pub seq: Option<i64>,
}

/// A device's acknowledgement of a command.
#[derive(Debug, Clone, PartialEq)]
pub struct CommandAck {
    pub ts: DateTime<Utc>,
    pub command_id: uuid::Uuid,
    pub action: CommandAction,
    pub status: AckStatus,
    pub message: Option<String>,
}

/// How far ahead of the receiving server a device's clock may run.
///
/// A report stamped later than `received_at + skew` is refused
/// ([`ReportError::FromTheFuture`]): accepted, it would outrank every later
/// report, the Last Will included, and freeze the bay. A stored state whose
/// order lies beyond that bound (written before the bound existed) is
/// overtaken by the next valid report.
#[derive(Debug, Clone, Copy)]
pub struct ClockSkew(pub TimeDelta);

impl ClockSkew {
    /// The latest device time accepted for a message received at `received_at`.
    pub fn latest_accepted(self, received_at: DateTime<Utc>) -> DateTime<Utc> {
        received_at + self.0
    }
}

/// Why a report was not applied.
#[derive(Debug, thiserror::Error)]
pub enum ReportError {
    #[error("no bay {number} with a device under prefix {prefix}")]
    UnknownBay { prefix: String, number: i32 },
    #[error("report from {reported} on a bay whose device is {registered}")]
    MacMismatch {
        registered: String,
        reported: String,
    },
    #[error("report stamped {ts}, beyond the accepted clock skew")]
    FromTheFuture { ts: DateTime<Utc> },
    #[error("telemetry stamped {ts} while no charging session was open on the bay")]
    NoSession { ts: DateTime<Utc> },
    #[error(transparent)]
    Database(#[from] DbErr),
}

/// What a state report did.
#[derive(Debug)]
pub enum StateOutcome {
    /// The report was newer than the stored state and is now the device's
    /// state; with the device's id.
    Applied(BayStatusChanged, i32),
    /// The report the device's stored state came from, delivered again (a
    /// QoS 1 redelivery, maybe after its replica died between its commit and
    /// its publish): nothing changes, and the bay's state is announced again
    /// ([`BayStatusChanged::repeat`]), in case its announcement was lost.
    Repeated(BayStatusChanged),
    /// An older report (a late delivery, or a redelivery of one since
    /// overtaken): ignored.
    Stale,
}

/// Finds the bay `number` of the cabinet with `prefix`, with its device.
///
/// # Errors
/// [`ReportError::UnknownBay`] when no bay with a device matches.
pub async fn find_bay(
    db: &impl ConnectionTrait,
    prefix: &str,
    number: i32,
) -> Result<(bay::Model, device::Model), ReportError> {
    let unknown = || ReportError::UnknownBay {
        prefix: prefix.to_owned(),
        number,
    };
    let found = bay::Entity::find()
        .join(JoinType::InnerJoin, bay::Relation::Cabinet.def())
        .filter(cabinet::Column::MqttPrefix.eq(prefix))
        .filter(bay::Column::Number.eq(number))
        .find_also_related(device::Entity)
        // A retired device's messages are refused as if the bay had none.
        .filter(device::Column::RetiredAt.is_null())
        .one(db)
        .await?;
    match found {
        Some((bay, Some(device))) => Ok((bay, device)),
        _ => Err(unknown()),
    }
}

/// Applies a device's state report to its bay and device, if it is newer than what is stored.
///
/// An `offline` report (usually the Last Will, whose `ts` is from when the device
/// connected) is ordered by the later of its `ts` and `received_at`, so it wins
/// over the reports the device sent before it went away.
///
/// # Errors
/// [`ReportError::UnknownBay`] when no bay with a device matches, and
/// [`ReportError::MacMismatch`] when the report comes from another device, and
/// [`ReportError::FromTheFuture`] when its `ts` is beyond the clock skew.
pub async fn apply_state_report(
    db: &DatabaseConnection,
    prefix: &str,
    number: i32,
    report: &StateReport,
    received_at: DateTime<Utc>,
    skew: ClockSkew,
) -> Result<StateOutcome, ReportError> {
    let txn = db.begin().await?;
    let outcome = apply_state_report_in(&txn, prefix, number, report, received_at, skew).await?;
    txn.commit().await?;
    Ok(outcome)
}

/// [`apply_state_report`] within the caller's transaction (a batch of reports).
///
/// The device's state and the bay's lock change in that one transaction: the
/// device row stays locked until both are written, so a concurrent report of
/// the same device (another worker, another replica) waits and then sees this
/// one committed. Without it, PostgreSQL could apply an older report's lock
/// after a newer one's: a condition on another table is not re-read when a
/// statement waits for a row lock.
///
/// # Errors
/// As [`apply_state_report`]; after a [`ReportError::Database`] the
/// transaction must be rolled back.
pub async fn apply_state_report_in(
    txn: &DatabaseTransaction,
    prefix: &str,
    number: i32,
    report: &StateReport,
    received_at: DateTime<Utc>,
    skew: ClockSkew,
) -> Result<StateOutcome, ReportError> {
    let input = StateInput {
        prefix,
        number,
        report,
        received_at,
    };
    let mut batch = apply_state_reports_in(txn, &[input], skew).await?;
    batch.results.pop().expect("one result per report")
}

/// Records a command acknowledgement in the command log
/// ([`super::commands_log::record_ack`]) and on the device's last-command fields;
/// returns what it did to the logged command (a settled command is for the
/// caller to hand to [`super::commands_log::dispatch`] in the same transaction).
///
/// Idempotent: a redelivered or late `accepted` never replaces a final status of
/// the same command, and a late acknowledgement of an older command (by the
/// device's `ts`) never replaces that of a newer one.
///
/// # Errors
/// [`ReportError::UnknownBay`] when no bay with a device matches, and
/// [`ReportError::FromTheFuture`] when its `ts` is beyond the clock skew.
pub async fn apply_command_ack(
    db: &impl ConnectionTrait,
    prefix: &str,
    number: i32,
    ack: &CommandAck,
    received_at: DateTime<Utc>,
    skew: ClockSkew,
) -> Result<AckOutcome, ReportError> {
    if ack.ts > skew.latest_accepted(received_at) {
        return Err(ReportError::FromTheFuture { ts: ack.ts });
    }
    let (_, registered) = find_bay(db, prefix, number).await?;
    let outcome = commands_log::record_ack(db, registered.id, ack, received_at).await?;
    let command_id = ack.command_id.to_string();
    let same_command = registered.last_command_id.as_deref() == Some(command_id.as_str());
    // `pending` (set when the command was sent) is open like `accepted`.
    let stored_is_final = registered
        .last_command_status
        .as_deref()
        .is_some_and(|s| s != AckStatus::Accepted.as_str() && s != CommandStatus::Pending.as_str());
    let stored_is_newer = registered.last_command_at.is_some_and(|at| at > ack.ts);
    if (same_command && stored_is_final) || (!same_command && stored_is_newer) {
        return Ok(outcome);
    }
    let mut active: device::ActiveModel = registered.into();
    active.last_command_id = Set(Some(command_id));
    active.last_command_action = Set(Some(ack.action.as_str().to_owned()));
    active.last_command_status = Set(Some(ack.status.as_str().to_owned()));
    active.last_command_message = Set(ack.message.clone());
    active.last_command_at = Set(Some(ack.ts));
    active.update(db).await?;
    Ok(outcome)
}
