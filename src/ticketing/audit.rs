//! The ticketing audit log: one entry per change to events, teams, products,
//! quotas and orders, written in the same transaction as the change, so a
//! change is never stored without its entry (pretix's `LogEntry`).

use chrono::{DateTime, Utc};
use sea_orm::{
    ConnectionTrait, DatabaseConnection, DatabaseTransaction, EntityTrait, Set, TransactionTrait,
};

use super::access::{self, Actor};
use crate::auth::{Principal, TeamPermission};
use crate::entities::{event, organizer, ticketing_log};
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

impl<'a> Change<'a> {
    /// A change to `object_type` `object_id` of an organizer, outside any event.
    pub fn on_organizer(
        organizer_id: i32,
        action: &'a str,
        object_type: &'a str,
        object_id: i32,
        data: serde_json::Value,
    ) -> Self {
        Self {
            organizer_id,
            event_id: None,
            action,
            object_type,
            object_id,
            data,
        }
    }

    /// A change to `object_type` `object_id` of `event`.
    pub fn on_event(
        event: &event::Model,
        action: &'a str,
        object_type: &'a str,
        object_id: i32,
        data: serde_json::Value,
    ) -> Self {
        let change = Self::on_organizer(event.organizer_id, action, object_type, object_id, data);
        Self {
            event_id: Some(event.id),
            ..change
        }
    }
}

/// A ticketing change in progress: its transaction, who acts and when. Every
/// change opens one (checking the actor's team permission inside the
/// transaction), works on [`Audited::txn`], and ends with
/// [`Audited::commit`], which writes the audit entry in that same
/// transaction. Dropped without a commit, it rolls everything back.
pub struct Audited {
    txn: DatabaseTransaction,
    actor: Option<Actor>,
    now: DateTime<Utc>,
}

impl Audited {
    /// Opens a change by `actor` (nobody, for a shop buyer or a job), with no
    /// permission check: for changes whose caller is checked otherwise.
    ///
    /// # Errors
    /// On database errors.
    pub async fn begin(
        db: &impl TransactionTrait<Transaction = DatabaseTransaction>,
        actor: Option<Actor>,
        now: DateTime<Utc>,
    ) -> Result<Self, AppError> {
        Ok(Self {
            txn: db.begin().await?,
            actor,
            now,
        })
    }

    /// Opens a change needing `permission` on `event_id`.
    ///
    /// # Errors
    /// As [`access::on_event`].
    pub async fn on_event(
        db: &DatabaseConnection,
        principal: &Principal,
        now: DateTime<Utc>,
        permission: TeamPermission,
        event_id: i32,
    ) -> Result<(Self, event::Model), AppError> {
        let mut change = Self::begin(db, None, now).await?;
        let event = change.check_event(principal, permission, event_id).await?;
        Ok((change, event))
    }

    /// Opens a change needing `permission` on `organizer_id` itself.
    ///
    /// # Errors
    /// As [`access::on_organizer`].
    pub async fn on_organizer(
        db: &DatabaseConnection,
        principal: &Principal,
        now: DateTime<Utc>,
        permission: TeamPermission,
        organizer_id: i32,
    ) -> Result<(Self, organizer::Model), AppError> {
        let mut change = Self::begin(db, None, now).await?;
        let (organizer, actor) =
            access::on_organizer(&change.txn, principal, permission, organizer_id).await?;
        change.actor = Some(actor);
        Ok((change, organizer))
    }

    /// Checks `permission` on `event_id` inside the transaction, for changes
    /// that first read which event the object belongs to; the checked actor is
    /// the one the entry records.
    ///
    /// # Errors
    /// As [`access::on_event`].
    pub async fn check_event(
        &mut self,
        principal: &Principal,
        permission: TeamPermission,
        event_id: i32,
    ) -> Result<event::Model, AppError> {
        let (event, actor) = access::on_event(&self.txn, principal, permission, event_id).await?;
        self.actor = Some(actor);
        Ok(event)
    }

    /// Checks `permission` on the event of `row`, an object the change read
    /// in its transaction, and returns both: an object that does not exist is
    /// refused like an event the caller may not change (`NOT_FOUND`, naming
    /// `what`, for staff).
    ///
    /// # Errors
    /// As [`access::on_event`]; `NOT_FOUND` for staff.
    pub async fn check_found<T>(
        &mut self,
        principal: &Principal,
        permission: TeamPermission,
        row: Option<T>,
        event_of: impl FnOnce(&T) -> i32,
        what: &'static str,
    ) -> Result<(event::Model, T), AppError> {
        let event_id = row.as_ref().map_or(0, event_of);
        let event = self.check_event(principal, permission, event_id).await?;
        let row = row.ok_or(AppError::not_found(what))?;
        Ok((event, row))
    }

    /// As [`Audited::check_event`], for `organizer_id` itself.
    ///
    /// # Errors
    /// As [`access::on_organizer`].
    pub async fn check_organizer(
        &mut self,
        principal: &Principal,
        permission: TeamPermission,
        organizer_id: i32,
    ) -> Result<organizer::Model, AppError> {
        let (organizer, actor) =
            access::on_organizer(&self.txn, principal, permission, organizer_id).await?;
        self.actor = Some(actor);
        Ok(organizer)
    }

    /// The transaction the change works in.
    pub fn txn(&self) -> &DatabaseTransaction {
        &self.txn
    }

    /// Who acts.
    pub fn actor(&self) -> Option<Actor> {
        self.actor
    }

    /// When the change happens.
    pub fn now(&self) -> DateTime<Utc> {
        self.now
    }

    /// Records one more entry for a change that touches several objects.
    ///
    /// # Errors
    /// On database errors.
    pub async fn log(&self, change: Change<'_>) -> Result<(), AppError> {
        record(&self.txn, self.actor, self.now, change).await
    }

    /// Records the change's entry and commits.
    ///
    /// # Errors
    /// On database errors: nothing is stored.
    pub async fn commit(self, change: Change<'_>) -> Result<(), AppError> {
        self.log(change).await?;
        self.txn.commit().await?;
        Ok(())
    }
}

/// Records `change` made by `actor` (who may be nobody, for a shop buyer or a job).
///
/// # Errors
/// On database errors: the change's transaction fails with it.
pub async fn record(
    db: &impl ConnectionTrait,
    actor: Option<Actor>,
    now: DateTime<Utc>,
    change: Change<'_>,
) -> Result<(), AppError> {
    record_all(db, now, vec![(actor, change)]).await
}

/// Records the entries of several changes, each with its actor, in one
/// statement (a batch of checkouts).
///
/// # Errors
/// On database errors: the changes' transaction fails with it.
pub async fn record_all(
    db: &impl ConnectionTrait,
    now: DateTime<Utc>,
    changes: Vec<(Option<Actor>, Change<'_>)>,
) -> Result<(), AppError> {
    if changes.is_empty() {
        return Ok(());
    }
    ticketing_log::Entity::insert_many(changes.into_iter().map(|(actor, change)| {
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
    }))
    .exec(db)
    .await?;
    Ok(())
}
