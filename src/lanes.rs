//! Write lanes: changes that would each be a transaction share one, so a hot
//! row is locked and flushed once per batch instead of once per caller.
//!
//! A lane (one per key, e.g. an event, on this replica) runs one transaction
//! at a time: it takes every change queued while the previous batch was
//! committing, runs each in its own savepoint (one that fails rolls back
//! alone: a `SOLD_OUT` buyer or a refused scan does not undo the others),
//! commits once, and only then answers each caller. So:
//!
//! - a change keeps the guarantees it has alone: ticketing's quotas are still
//!   taken by the conditional `UPDATE` of `quotas::hold` and check-in's
//!   entries by the conditional upsert of `checkin::redeem`; changes within a
//!   batch run one after the other on the batch's connection, and batches of
//!   several replicas serialize on row locks as single changes do;
//! - nothing is acknowledged before the commit that stores it: when the
//!   commit fails, every caller of the batch gets an error, and a change
//!   retried with its idempotency key or nonce finds whether it was stored;
//! - a waiting caller costs nothing: batches form by themselves while the
//!   previous one commits, with no timer, so a lone caller is not delayed.
//!
//! Ticketing runs holds and checkouts in per-event lanes (the rush), check-in
//! runs scans in per-event lanes (the doors).

use std::collections::HashMap;
use std::sync::{Mutex, PoisonError};

use futures_util::future::BoxFuture;
use sea_orm::{DatabaseConnection, DatabaseTransaction, TransactionTrait};
use tokio::sync::{mpsc, oneshot};

use crate::error::AppError;

/// The most changes one batch takes; the rest wait for the next.
pub const MAX_BATCH: usize = 256;

/// What a change's caller is told once its batch has ended: `Ok` when the
/// batch committed.
type Answer = Box<dyn FnOnce(Result<(), String>) + Send>;

/// A change, run in a savepoint of its batch's transaction.
type Change = Box<dyn for<'t> FnOnce(&'t DatabaseTransaction) -> BoxFuture<'t, Answer> + Send>;

/// One lane per event on this replica, started on its first change; a lane's
/// task ends when the lanes are dropped.
#[derive(Default)]
pub struct Lanes {
    lanes: Mutex<HashMap<i32, mpsc::UnboundedSender<Change>>>,
}

impl std::fmt::Debug for Lanes {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Lanes").finish_non_exhaustive()
    }
}

impl Lanes {
    /// Runs `change` in the lane of `event_id` and returns its result once
    /// its batch has committed.
    ///
    /// # Errors
    /// The change's own error (nothing of it is stored); an internal error
    /// when its batch could not be committed.
    pub async fn run<T, F>(
        &self,
        db: &DatabaseConnection,
        event_id: i32,
        change: F,
    ) -> Result<T, AppError>
    where
        T: Send + 'static,
        F: for<'t> FnOnce(&'t DatabaseTransaction) -> BoxFuture<'t, Result<T, AppError>>
            + Send
            + 'static,
    {
        let (reply, answer) = oneshot::channel::<Result<T, AppError>>();
        let queued: Change = Box::new(move |txn| {
            Box::pin(async move {
                let outcome = in_savepoint(txn, change).await;
                let answer: Answer = Box::new(move |batch| {
                    let result = match (outcome, batch) {
                        (Ok(value), Ok(())) => Ok(value),
                        (Ok(_), Err(cause)) => Err(AppError::internal(anyhow::anyhow!(
                            "the batch was not stored: {cause}"
                        ))),
                        (Err(err), _) => Err(err),
                    };
                    // The caller may have gone (a closed request): nothing to tell.
                    let _ = reply.send(result);
                });
                answer
            })
        });
        self.lane(db, event_id)
            .send(queued)
            .map_err(|_| AppError::internal(anyhow::anyhow!("the lane has stopped")))?;
        answer
            .await
            .map_err(|_| AppError::internal(anyhow::anyhow!("the batch ended unanswered")))?
    }

    fn lane(&self, db: &DatabaseConnection, event_id: i32) -> mpsc::UnboundedSender<Change> {
        let mut lanes = self.lanes.lock().unwrap_or_else(PoisonError::into_inner);
        lanes
            .entry(event_id)
            .or_insert_with(|| {
                let (sender, receiver) = mpsc::unbounded_channel();
                tokio::spawn(drive(db.clone(), receiver));
                sender
            })
            .clone()
    }
}

async fn in_savepoint<T, F>(txn: &DatabaseTransaction, change: F) -> Result<T, AppError>
where
    F: for<'t> FnOnce(&'t DatabaseTransaction) -> BoxFuture<'t, Result<T, AppError>>,
{
    let savepoint = txn.begin().await?;
    match change(&savepoint).await {
        Ok(value) => {
            savepoint.commit().await?;
            Ok(value)
        }
        Err(err) => {
            savepoint.rollback().await?;
            Err(err)
        }
    }
}

/// A lane's task: one batch after another, until the lanes are dropped.
async fn drive(db: DatabaseConnection, mut queue: mpsc::UnboundedReceiver<Change>) {
    let mut batch = Vec::with_capacity(MAX_BATCH);
    while queue.recv_many(&mut batch, MAX_BATCH).await > 0 {
        let changes = std::mem::take(&mut batch);
        let txn = match db.begin().await {
            Ok(txn) => txn,
            Err(err) => {
                tracing::error!(error = %err, "a lane's batch could not begin");
                // Dropped unrun, the changes tell their callers nothing was stored.
                drop(changes);
                continue;
            }
        };
        let mut answers = Vec::with_capacity(changes.len());
        for change in changes {
            answers.push(change(&txn).await);
        }
        let outcome = txn.commit().await.map_err(|err| {
            tracing::error!(error = %err, "a lane's batch could not commit");
            err.to_string()
        });
        for answer in answers {
            answer(outcome.clone());
        }
    }
}
