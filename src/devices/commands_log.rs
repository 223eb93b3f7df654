//! The device command path (DESIGN §5): every command sent to a bay's device is
//! logged with a UUID and a deadline, acknowledgements are matched to it by
//! `command_id`, and a command the device does not finish in time is failed by
//! the [`TimeOutCommands`] job.
//!
//! A step that sends a command names itself as the command's owner
//! (`<kind>:<id>`, see [`Owner`]); when the command reaches a final status
//! (done, failed, rejected, timed out) the owner's [`CommandOwner::settled`]
//! runs in the transaction that recorded it. That transaction's `UPDATE` is
//! conditional on the command still being open, so each command settles once,
//! whichever replica receives the acknowledgement or runs the job, and a
//! redelivered or late acknowledgement changes nothing (it is counted in
//! `ignored_acks` and logged).

use std::sync::Arc;

use async_trait::async_trait;
use chrono::{DateTime, TimeDelta, Utc};
use clap::Args;
use sea_orm::sea_query::{Expr, ExprTrait};
use sea_orm::{
    ActiveModelTrait, ColumnTrait, ConnectionTrait, DatabaseTransaction, DbErr, EntityTrait,
    JoinType, QueryFilter, QueryOrder, QuerySelect, RelationTrait, Set, TransactionTrait,
};
use uuid::Uuid;

use super::commands::{AckStatus, BayAddress, CommandAction};
use super::reports::CommandAck;
use crate::bus::DomainEvent;
use crate::db::FindOr;
use crate::entities::device_command::{self, CommandStatus};
use crate::entities::{bay, cabinet, device};
use crate::error::{AppError, AppResult, Reason};
use crate::services::ServiceContext;

/// Settings of the command path (flags and environment variables of `serve`).
#[derive(Debug, Clone, Args)]
pub struct CommandSettings {
    /// Seconds a device has to finish a command before it is failed as timed out.
    #[arg(
        long = "device-command-timeout-secs",
        env = "VOLTGATE_DEVICE_COMMAND_TIMEOUT_SECS",
        default_value_t = 30
    )]
    pub timeout_secs: i64,
}

impl Default for CommandSettings {
    fn default() -> Self {
        Self { timeout_secs: 30 }
    }
}

impl CommandSettings {
    pub fn timeout(&self) -> TimeDelta {
        TimeDelta::seconds(Ord::max(self.timeout_secs, 1))
    }
}

/// The step a command belongs to: a kind handled by a [`CommandOwner`] and the
/// id of the object within it (a charging session, a firmware update).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Owner {
    pub kind: &'static str,
    pub id: i64,
}

impl Owner {
    fn stored(&self) -> String {
        format!("{}:{}", self.kind, self.id)
    }

    /// Parses a stored owner; `None` for a command nobody owns.
    pub fn parse(stored: &str) -> Option<(&str, i64)> {
        let (kind, id) = stored.split_once(':')?;
        Some((kind, id.parse().ok()?))
    }
}

/// A step that learns the outcome of the commands it sent.
#[async_trait]
pub trait CommandOwner: Send + Sync + 'static {
    /// The `kind` of the [`Owner`]s this handles.
    fn kind(&self) -> &'static str;

    /// The device took on the command owned by `id` (`accepted`). Runs in the
    /// transaction that recorded it, once per command; most steps wait for
    /// the final status and do nothing here.
    ///
    /// # Errors
    /// On database errors.
    async fn accepted(
        &self,
        _txn: &DatabaseTransaction,
        _id: i64,
        _command: &device_command::Model,
    ) -> Result<Vec<DomainEvent>, DbErr> {
        Ok(Vec::new())
    }

    /// The command owned by `id` reached its final status (in `command.status`).
    /// Runs in the transaction that recorded it, once per command; returns the
    /// events to publish after the commit.
    ///
    /// # Errors
    /// On database errors (the whole transaction is then retried or dropped).
    async fn settled(
        &self,
        txn: &DatabaseTransaction,
        id: i64,
        command: &device_command::Model,
    ) -> Result<Vec<DomainEvent>, DbErr>;
}

/// How a command is sent.
#[derive(Debug, Clone, Default)]
pub struct SendOptions {
    /// The step to tell of the outcome.
    pub owner: Option<Owner>,
    /// How long the device has to finish it; the configured timeout when `None`
    /// (a firmware update takes longer than an unlock).
    pub timeout: Option<TimeDelta>,
}

/// Sends `action` to the device of `bay_id` (QoS 1, signed) and logs it; returns
/// the logged command, `pending` until the device acknowledges it.
///
/// # Errors
/// `NOT_FOUND` when the bay does not exist; `CONFLICT` with
/// `DEVICE_UNREACHABLE` when the bay has no device or the transport refused the
/// command (no credentials, MQTT down), in which case the command is logged as
/// `unsent`, so the attempt is visible.
pub async fn send(
    services: &ServiceContext,
    bay_id: i32,
    action: CommandAction,
    params: serde_json::Map<String, serde_json::Value>,
    options: SendOptions,
) -> AppResult<device_command::Model> {
    let db = &services.db;
    let target = target(db, bay_id).await?.ok_or_else(no_device)?;
    let txn = db.begin().await?;
    let logged = log_in(
        &txn,
        target,
        action,
        params,
        options,
        services.commands.timeout(),
        services.now(),
    )
    .await?;
    txn.commit().await?;
    if let Err(unsent) = transmit(services, &logged).await {
        let txn = db.begin().await?;
        unsent_in(&txn, &logged, &unsent).await?;
        txn.commit().await?;
        return Err(unsent.into());
    }
    Ok(logged.command)
}

/// The answer when a bay has no device to send to.
pub fn no_device() -> AppError {
    AppError::refused(Reason::DeviceUnreachable, "the bay has no device")
}

/// Where a command to a bay goes: its device and its topic address.
#[derive(Debug, Clone)]
pub struct Target {
    pub bay_id: i32,
    pub device_id: i32,
    address: BayAddress,
}

/// Where commands to `bay_id` go; `None` when the bay has no device.
///
/// # Errors
/// `NOT_FOUND` when the bay does not exist; on database errors.
pub async fn target(db: &impl ConnectionTrait, bay_id: i32) -> AppResult<Option<Target>> {
    // One statement: the bay, its cabinet's prefix and its device with its login, if any.
    let (number, prefix, device_id, username, generation, has_password) =
        bay::Entity::find_by_id(bay_id)
            .select_only()
            .column(bay::Column::Number)
            .column(cabinet::Column::MqttPrefix)
            .column(device::Column::Id)
            .column(device::Column::MqttUsername)
            .column(device::Column::MqttKeyGeneration)
            .expr(Expr::col((device::Entity, device::Column::MqttPasswordHash)).is_not_null())
            .join(JoinType::InnerJoin, bay::Relation::Cabinet.def())
            .join(JoinType::LeftJoin, bay::Relation::Device.def())
            .into_tuple::<(i32, String, Option<i32>, Option<String>, Option<i32>, bool)>()
            .one(db)
            .await?
            .ok_or(AppError::not_found("bay"))?;
    let login = generation
        .and_then(|generation| super::credentials::live_login(username, generation, has_password));
    Ok(device_id.map(|device_id| Target {
        bay_id,
        device_id,
        address: BayAddress {
            prefix,
            number,
            login,
        },
    }))
}

/// A command logged and not yet sent.
#[derive(Debug, Clone)]
pub struct Logged {
    pub command: device_command::Model,
    command_id: Uuid,
    target: Target,
    action: CommandAction,
    params: serde_json::Map<String, serde_json::Value>,
}

/// Logs `action` for `target` within `db` (the caller's transaction, which
/// may hold the change the command carries out); [`transmit`] sends it once
/// that is committed, so an acknowledgement can never arrive for a command
/// the log does not know yet.
///
/// # Errors
/// On database errors.
pub async fn log_in(
    db: &impl ConnectionTrait,
    target: Target,
    action: CommandAction,
    params: serde_json::Map<String, serde_json::Value>,
    options: SendOptions,
    default_timeout: TimeDelta,
    now: DateTime<Utc>,
) -> Result<Logged, DbErr> {
    let timeout = options.timeout.unwrap_or(default_timeout);
    let command_id = Uuid::new_v4();
    let command = device_command::ActiveModel {
        command_id: Set(command_id.to_string()),
        device_id: Set(target.device_id),
        bay_id: Set(target.bay_id),
        action: Set(action.as_str().to_owned()),
        payload: Set(serde_json::Value::Object(params.clone()).to_string()),
        owner: Set(options.owner.as_ref().map(Owner::stored)),
        sent_at: Set(now),
        deadline_us: Set((now + timeout).timestamp_micros()),
        status: Set(CommandStatus::Pending),
        acked_at: Set(None),
        error: Set(None),
        ignored_acks: Set(0),
        ..Default::default()
    }
    .insert(db)
    .await?;
    mark_device(db, target.device_id, &command, now).await?;
    Ok(Logged {
        command,
        command_id,
        target,
        action,
        params,
    })
}

/// A command the transport refused; record it with [`unsent_in`].
#[derive(Debug)]
pub struct Unsent {
    reason: String,
}

impl From<Unsent> for AppError {
    fn from(_: Unsent) -> Self {
        AppError::refused(
            Reason::DeviceUnreachable,
            "the bay's device cannot be reached",
        )
    }
}

/// Sends a command whose log is committed. Writes nothing: a refusal is
/// returned for the caller to record, with its own changes, by [`unsent_in`].
///
/// # Errors
/// [`Unsent`] when the transport refused the command (no credentials, MQTT down).
pub async fn transmit(services: &ServiceContext, logged: &Logged) -> Result<(), Unsent> {
    if let Err(error) = services
        .devices
        .send(
            &logged.target.address,
            logged.command_id,
            logged.action,
            logged.params.clone(),
        )
        .await
    {
        tracing::warn!(
            error = format!("{error:#}"),
            bay = logged.target.bay_id,
            action = logged.action.as_str(),
            "a device command could not be sent"
        );
        metrics::counter!(crate::telemetry::names::DEVICE_COMMANDS, "outcome" => "unsent")
            .increment(1);
        return Err(Unsent {
            reason: format!("not sent: {error:#}").chars().take(255).collect(),
        });
    }
    metrics::counter!(crate::telemetry::names::DEVICE_COMMANDS, "outcome" => "sent").increment(1);
    Ok(())
}

/// Records, within `db`, that `logged` was not sent.
///
/// # Errors
/// On database errors.
pub async fn unsent_in(
    db: &impl ConnectionTrait,
    logged: &Logged,
    unsent: &Unsent,
) -> Result<device_command::Model, DbErr> {
    let unsent = device_command::Entity::update_many()
        .col_expr(
            device_command::Column::Status,
            Expr::value(CommandStatus::Unsent),
        )
        .col_expr(
            device_command::Column::Error,
            Expr::value(unsent.reason.clone()),
        )
        .filter(device_command::Column::Id.eq(logged.command.id))
        .exec_with_returning(db)
        .await?
        .pop()
        .ok_or(DbErr::RecordNotFound("device command".into()))?;
    mark_device(db, logged.target.device_id, &unsent, unsent.sent_at).await?;
    Ok(unsent)
}

/// Keeps the device's `last_command_*` fields on the command just sent or settled.
async fn mark_device(
    db: &impl ConnectionTrait,
    device_id: i32,
    command: &device_command::Model,
    at: DateTime<Utc>,
) -> Result<(), DbErr> {
    device::Entity::update_many()
        .col_expr(
            device::Column::LastCommandId,
            Expr::value(command.command_id.clone()),
        )
        .col_expr(
            device::Column::LastCommandAction,
            Expr::value(command.action.clone()),
        )
        .col_expr(
            device::Column::LastCommandStatus,
            Expr::value(command.status.as_str()),
        )
        .col_expr(
            device::Column::LastCommandMessage,
            Expr::value(command.error.clone()),
        )
        .col_expr(device::Column::LastCommandAt, Expr::value(at))
        .filter(device::Column::Id.eq(device_id))
        .exec(db)
        .await?;
    Ok(())
}

/// What an acknowledgement did to its command.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum AckOutcome {
    /// The command is now `accepted`.
    Accepted,
    /// The command reached its final status with this acknowledgement.
    Settled(device_command::Model),
    /// The command had moved past it already (redelivery, late answer): counted, nothing else.
    Ignored,
    /// No command of this device has that id (sent before the log, or never).
    Unknown,
}

fn status_of(ack: AckStatus) -> CommandStatus {
    match ack {
        AckStatus::Accepted => CommandStatus::Accepted,
        AckStatus::Done => CommandStatus::Done,
        AckStatus::Failed => CommandStatus::Failed,
        AckStatus::Rejected => CommandStatus::Rejected,
    }
}

/// Records a device's acknowledgement on its logged command.
///
/// Only the device the command was sent to can acknowledge it; the status moves
/// forward only (`pending → accepted → final`), by one conditional `UPDATE`.
///
/// # Errors
/// On database errors.
pub async fn record_ack(
    db: &impl ConnectionTrait,
    device_id: i32,
    ack: &CommandAck,
    received_at: DateTime<Utc>,
) -> Result<AckOutcome, DbErr> {
    let command_id = ack.command_id.to_string();
    let status = status_of(ack.status);
    let from: &[CommandStatus] = if ack.status.is_final() {
        &CommandStatus::OPEN
    } else {
        &[CommandStatus::Pending]
    };
    let mut update = device_command::Entity::update_many()
        .col_expr(device_command::Column::Status, Expr::value(status))
        .col_expr(device_command::Column::AckedAt, Expr::value(received_at))
        .filter(device_command::Column::CommandId.eq(command_id.as_str()))
        .filter(device_command::Column::DeviceId.eq(device_id))
        .filter(device_command::Column::Status.is_in(from.iter().copied()));
    if ack.status.is_final() {
        let message = ack
            .message
            .as_ref()
            .map(|m| m.chars().take(255).collect::<String>());
        update = update.col_expr(device_command::Column::Error, Expr::value(message));
    }
    if update.exec(db).await?.rows_affected == 1 {
        if !ack.status.is_final() {
            return Ok(AckOutcome::Accepted);
        }
        let settled = device_command::Entity::find()
            .filter(device_command::Column::CommandId.eq(command_id.as_str()))
            .one(db)
            .await?
            .ok_or(DbErr::RecordNotFound(command_id))?;
        metrics::counter!(crate::telemetry::names::DEVICE_COMMANDS, "outcome" => ack.status.as_str())
            .increment(1);
        return Ok(AckOutcome::Settled(settled));
    }
    let ignored = device_command::Entity::update_many()
        .col_expr(
            device_command::Column::IgnoredAcks,
            Expr::col(device_command::Column::IgnoredAcks).add(1),
        )
        .filter(device_command::Column::CommandId.eq(command_id.as_str()))
        .filter(device_command::Column::DeviceId.eq(device_id))
        .exec(db)
        .await?;
    if ignored.rows_affected == 1 {
        tracing::info!(
            command = %command_id,
            status = ack.status.as_str(),
            "acknowledgement of a command that moved past it ignored"
        );
        Ok(AckOutcome::Ignored)
    } else {
        tracing::debug!(command = %command_id, device = device_id, "acknowledgement of an unknown command");
        Ok(AckOutcome::Unknown)
    }
}

/// The steps that own commands. Each kind appears once.
fn owners() -> Vec<Arc<dyn CommandOwner>> {
    super::commands_owners::owners()
}

/// Tells supervision's alert rules and the settled command's owner, if any,
/// in the transaction that settled it.
///
/// # Errors
/// On database errors in the owner's step.
pub async fn dispatch(
    txn: &DatabaseTransaction,
    command: &device_command::Model,
) -> Result<Vec<DomainEvent>, DbErr> {
    // Supervision judges every settled command, whoever sent it.
    let at = command.acked_at.unwrap_or_else(Utc::now);
    let mut events: Vec<DomainEvent> =
        crate::supervision::incidents::command_settled(txn, command, at)
            .await?
            .into_iter()
            .map(crate::supervision::alerts::event)
            .collect();
    if let Some((owner, id)) = owner_of(command) {
        events.extend(owner.settled(txn, id, command).await?);
    }
    Ok(events)
}

/// The step waiting on `command` and its object's id; `None` for commands
/// nobody owns, or whose owner (`staff:<id>`) only records who sent it.
fn owner_of(command: &device_command::Model) -> Option<(Arc<dyn CommandOwner>, i64)> {
    let (kind, id) = command.owner.as_deref().and_then(Owner::parse)?;
    let owner = owners().into_iter().find(|owner| owner.kind() == kind);
    if owner.is_none() {
        tracing::debug!(owner = kind, command = %command.command_id, "no step waits on this command");
    }
    Some((owner?, id))
}

/// Tells the owner of command `command_id` that the device accepted it, in
/// the transaction that recorded the acknowledgement.
///
/// # Errors
/// On database errors in the owner's step.
pub async fn dispatch_accepted(
    txn: &DatabaseTransaction,
    command_id: Uuid,
) -> Result<Vec<DomainEvent>, DbErr> {
    let Some(command) = device_command::Entity::find()
        .filter(device_command::Column::CommandId.eq(command_id.to_string()))
        .one(txn)
        .await?
    else {
        return Ok(Vec::new());
    };
    match owner_of(&command) {
        Some((owner, id)) => owner.accepted(txn, id, &command).await,
        None => Ok(Vec::new()),
    }
}

/// The command with this UUID, for the step that sent it.
///
/// # Errors
/// `NOT_FOUND` when no command has that id.
pub async fn outcome(
    db: &impl ConnectionTrait,
    command_id: Uuid,
) -> AppResult<device_command::Model> {
    device_command::Entity::find()
        .filter(device_command::Column::CommandId.eq(command_id.to_string()))
        .one_or_not_found(db, "device command")
        .await
}

/// The latest `last` commands sent to a bay's device, newest first.
///
/// # Errors
/// On database errors.
pub async fn latest(
    db: &impl ConnectionTrait,
    bay_id: i32,
    last: u64,
) -> AppResult<Vec<device_command::Model>> {
    Ok(device_command::Entity::find()
        .filter(device_command::Column::BayId.eq(bay_id))
        .order_by_desc(device_command::Column::Id)
        .limit(last)
        .all(db)
        .await?)
}

/// Fails the commands whose deadline passed while still open, telling their owners.
pub struct TimeOutCommands;

/// How many overdue commands one transaction settles.
const TIMEOUT_BATCH: u64 = 100;

#[async_trait]
impl crate::jobs::Job for TimeOutCommands {
    fn name(&self) -> &'static str {
        "time_out_device_commands"
    }

    fn every(&self) -> TimeDelta {
        TimeDelta::seconds(1)
    }

    async fn run(&self, services: &ServiceContext) -> anyhow::Result<()> {
        loop {
            let (settled, events) = time_out_overdue(services, services.now()).await?;
            services.bus.publish_all(events).await?;
            if settled < TIMEOUT_BATCH {
                return Ok(());
            }
        }
    }
}

/// Settles up to one batch of overdue commands as `timed_out`; returns how many
/// rows were overdue and the events to publish.
///
/// # Errors
/// On database errors (nothing is then changed).
pub async fn time_out_overdue(
    services: &ServiceContext,
    now: DateTime<Utc>,
) -> Result<(u64, Vec<DomainEvent>), DbErr> {
    let txn = services.db.begin().await?;
    let overdue = crate::jobs::claim_batch(
        &txn,
        device_command::Entity::find()
            .filter(device_command::Column::Status.is_in(CommandStatus::OPEN))
            .filter(device_command::Column::DeadlineUs.lte(now.timestamp_micros()))
            .order_by_asc(device_command::Column::DeadlineUs),
        TIMEOUT_BATCH,
    )
    .await?;
    let found = overdue.len() as u64;
    let mut events = Vec::new();
    for command in overdue {
        let timed_out = device_command::Entity::update_many()
            .col_expr(
                device_command::Column::Status,
                Expr::value(CommandStatus::TimedOut),
            )
            .col_expr(
                device_command::Column::Error,
                Expr::value("the device did not finish the command in time"),
            )
            .filter(device_command::Column::Id.eq(command.id))
            .filter(device_command::Column::Status.is_in(CommandStatus::OPEN))
            .exec(&txn)
            .await?;
        if timed_out.rows_affected != 1 {
            continue;
        }
        let command = device_command::Entity::find_by_id(command.id)
            .one(&txn)
            .await?
            .ok_or(DbErr::RecordNotFound("device command".to_owned()))?;
        // Only when it is still the device's latest command: a newer one stays shown.
        let is_latest = device::Entity::find_by_id(command.device_id)
            .filter(device::Column::LastCommandId.eq(command.command_id.as_str()))
            .one(&txn)
            .await?
            .is_some();
        if is_latest {
            mark_device(&txn, command.device_id, &command, now).await?;
        }
        tracing::warn!(
            command = %command.command_id,
            bay = command.bay_id,
            action = %command.action,
            "a device command timed out"
        );
        metrics::counter!(crate::telemetry::names::DEVICE_COMMANDS, "outcome" => "timed_out")
            .increment(1);
        events.extend(dispatch(&txn, &command).await?);
    }
    txn.commit().await?;
    Ok((found, events))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn owners_round_trip() {
        let owner = Owner {
            kind: "charging_session",
            id: 42,
        };
        assert_eq!(
            Owner::parse(&owner.stored()),
            Some(("charging_session", 42))
        );
        assert_eq!(Owner::parse("nonsense"), None);
        assert_eq!(Owner::parse("kind:x"), None);
    }

    #[test]
    fn acknowledgements_map_onto_statuses_and_only_accepted_is_open() {
        assert_eq!(status_of(AckStatus::Accepted), CommandStatus::Accepted);
        assert!(!status_of(AckStatus::Accepted).is_final());
        for ack in [AckStatus::Done, AckStatus::Failed, AckStatus::Rejected] {
            assert!(status_of(ack).is_final(), "{ack:?}");
        }
        assert!(CommandStatus::TimedOut.is_final());
        assert!(CommandStatus::Unsent.is_final());
    }

    #[test]
    fn the_timeout_is_at_least_a_second() {
        let settings = CommandSettings { timeout_secs: 0 };
        assert_eq!(settings.timeout(), TimeDelta::seconds(1));
    }
}
