//! Write lanes: changes that would each be a transaction share one, so a hot
//! row is locked and flushed once per batch instead of once per caller.
//!
//! A lane (one per key, e.g. an event, on this replica) runs one transaction
//! at a time: it takes every request queued while the previous batch was
//! committing, applies them together ([`Batch::apply`]), commits once, and
//! only then answers each caller. So:
//!
//! - nothing is acknowledged before the commit that stores it: when the
//!   batch fails or its commit does, every caller of the batch gets an error,
//!   and a change retried with its idempotency key or nonce finds whether it
//!   was stored;
//! - a request refused on its own (a `SOLD_OUT` buyer, a refused scan) gets
//!   its own error and stores nothing, without failing the others;
//! - batches of several replicas serialize on row locks as single changes do;
//! - a waiting caller costs nothing: batches form by themselves while the
//!   previous one commits, with no timer, so a lone caller is not delayed.
//!
//! Ticketing applies each batch of holds and checkouts set-wise, a few
//! statements for the whole batch (`ticketing::rush`), and so does check-in
//! with each batch of scans (`checkin::lane`); [`Savepoints`] runs any change
//! as a closure in its own savepoint of the batch.

use std::any::Any;
use std::collections::HashMap;
use std::sync::{Arc, Mutex, PoisonError};

use futures_util::future::BoxFuture;
use sea_orm::{DatabaseConnection, DatabaseTransaction, TransactionTrait};
use tokio::sync::{mpsc, oneshot};

use crate::error::AppError;

/// Work a lane hands off after its batch commits (publishing, announcing),
/// done by one task per replica in the order it was handed over, so the
/// lane goes on with its next batch meanwhile. Whatever was handed over
/// while the task was busy is done in one go: the queue holds at most one
/// round's wait of items.
pub struct InTurn<T> {
    /// Started on the first item, inside the runtime; the task ends when
    /// this is dropped.
    queue: std::sync::OnceLock<mpsc::UnboundedSender<T>>,
    work: Arc<dyn Fn(Vec<T>) -> BoxFuture<'static, ()> + Send + Sync>,
}

impl<T: Send + 'static> InTurn<T> {
    pub fn new(work: impl Fn(Vec<T>) -> BoxFuture<'static, ()> + Send + Sync + 'static) -> Self {
        Self {
            queue: std::sync::OnceLock::new(),
            work: Arc::new(work),
        }
    }

    pub fn hand(&self, item: T) {
        let queue = self.queue.get_or_init(|| {
            let (sender, mut receiver) = mpsc::unbounded_channel();
            let work = Arc::clone(&self.work);
            tokio::spawn(async move {
                let mut items = Vec::new();
                while receiver.recv_many(&mut items, 1024).await > 0 {
                    work(std::mem::take(&mut items)).await;
                }
            });
            sender
        });
        // Only fails once the task ended, i.e. while shutting down.
        let _ = queue.send(item);
    }
}

/// The most requests one batch takes; the rest wait for the next.
pub const MAX_BATCH: usize = 256;

/// A batch's answers, one per request in their order.
pub type Replies<R> = Vec<Result<R, AppError>>;

/// What a lane does with a batch of requests.
pub trait Batch: Send + Sync + 'static {
    type Request: Send + 'static;
    type Reply: Send + 'static;

    /// Applies `requests` in `txn`, one answer per request in their order.
    /// A request's own error must leave nothing of it in `txn`; an `Err`
    /// fails the whole batch (it is rolled back, every caller told).
    fn apply<'t>(
        &'t self,
        txn: &'t DatabaseTransaction,
        key: i32,
        requests: Vec<Self::Request>,
    ) -> BoxFuture<'t, Result<Replies<Self::Reply>, AppError>>;

    /// Runs after a batch of `key` committed, before its callers are answered
    /// (e.g. to announce what changed once per batch).
    fn committed<'a>(
        &'a self,
        _key: i32,
        _replies: &'a [Result<Self::Reply, AppError>],
    ) -> BoxFuture<'a, ()> {
        Box::pin(async {})
    }
}

struct Queued<B: Batch> {
    request: B::Request,
    reply: oneshot::Sender<Result<B::Reply, AppError>>,
}

/// One lane per key on this replica, started on its first request; a lane's
/// task ends when the lanes are dropped.
pub struct Lanes<B: Batch> {
    batch: Arc<B>,
    lanes: Mutex<HashMap<i32, mpsc::UnboundedSender<Queued<B>>>>,
}

impl<B: Batch + Default> Default for Lanes<B> {
    fn default() -> Self {
        Self::new(B::default())
    }
}

impl<B: Batch> std::fmt::Debug for Lanes<B> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Lanes").finish_non_exhaustive()
    }
}

impl<B: Batch> Lanes<B> {
    pub fn new(batch: B) -> Self {
        Self {
            batch: Arc::new(batch),
            lanes: Mutex::default(),
        }
    }

    /// What the lanes apply their batches with.
    pub fn batch(&self) -> &B {
        &self.batch
    }

    /// Queues `request` in the lane of `key` and returns its answer once its
    /// batch has committed.
    ///
    /// # Errors
    /// The request's own error (nothing of it is stored); an internal error
    /// when its batch could not be applied or committed.
    pub async fn submit(
        &self,
        db: &DatabaseConnection,
        key: i32,
        request: B::Request,
    ) -> Result<B::Reply, AppError> {
        let (reply, answer) = oneshot::channel();
        self.lane(db, key)
            .send(Queued { request, reply })
            .map_err(|_| AppError::internal(anyhow::anyhow!("the lane has stopped")))?;
        answer
            .await
            .map_err(|_| AppError::internal(anyhow::anyhow!("the batch ended unanswered")))?
    }

    fn lane(&self, db: &DatabaseConnection, key: i32) -> mpsc::UnboundedSender<Queued<B>> {
        let mut lanes = self.lanes.lock().unwrap_or_else(PoisonError::into_inner);
        lanes
            .entry(key)
            .or_insert_with(|| {
                let (sender, receiver) = mpsc::unbounded_channel();
                tokio::spawn(drive(db.clone(), Arc::clone(&self.batch), key, receiver));
                sender
            })
            .clone()
    }
}

/// A lane's task: one batch after another, until the lanes are dropped.
async fn drive<B: Batch>(
    db: DatabaseConnection,
    batch: Arc<B>,
    key: i32,
    mut queue: mpsc::UnboundedReceiver<Queued<B>>,
) {
    let mut queued = Vec::with_capacity(MAX_BATCH);
    while queue.recv_many(&mut queued, MAX_BATCH).await > 0 {
        let (requests, callers): (Vec<_>, Vec<_>) = std::mem::take(&mut queued)
            .into_iter()
            .map(|q| (q.request, q.reply))
            .unzip();
        match run_batch(&db, &*batch, key, requests).await {
            Ok(replies) => {
                batch.committed(key, &replies).await;
                for (caller, reply) in callers.into_iter().zip(replies) {
                    // The caller may have gone (a closed request): nothing to tell.
                    let _ = caller.send(reply);
                }
            }
            Err(cause) => {
                for caller in callers {
                    let _ = caller.send(Err(AppError::internal(anyhow::anyhow!(
                        "the batch was not stored: {cause}"
                    ))));
                }
            }
        }
    }
}

async fn run_batch<B: Batch>(
    db: &DatabaseConnection,
    batch: &B,
    key: i32,
    requests: Vec<B::Request>,
) -> Result<Replies<B::Reply>, String> {
    let count = requests.len();
    let failed = |stage: &str, err: &dyn std::fmt::Display| {
        tracing::error!(error = %err, key, "a lane's batch could not {stage}");
        err.to_string()
    };
    let started = std::time::Instant::now();
    let txn = db.begin().await.map_err(|e| failed("begin", &e))?;
    let replies = batch
        .apply(&txn, key, requests)
        .await
        .map_err(|e| failed("be applied", &format!("{e:?}")))?;
    if replies.len() != count {
        return Err(failed("be answered", &"one answer per request"));
    }
    let applied = started.elapsed();
    txn.commit().await.map_err(|e| failed("commit", &e))?;
    // Where a lane's time goes: its batches' sizes, work and flushes.
    tracing::debug!(
        key,
        requests = count,
        apply_ms = applied.as_secs_f64() * 1e3,
        commit_ms = (started.elapsed() - applied).as_secs_f64() * 1e3,
        "lane batch committed"
    );
    Ok(replies)
}

/// A change run by [`Savepoints`]: any closure over the batch's transaction.
pub type Change = Box<
    dyn for<'t> FnOnce(
            &'t DatabaseTransaction,
        ) -> BoxFuture<'t, Result<Box<dyn Any + Send>, AppError>>
        + Send,
>;

/// Runs each change of a batch in its own savepoint, one after the other on
/// the batch's connection: one that fails rolls back alone. A change keeps the
/// guarantees it has alone.
#[derive(Debug, Default)]
pub struct Savepoints;

impl Batch for Savepoints {
    type Request = Change;
    type Reply = Box<dyn Any + Send>;

    fn apply<'t>(
        &'t self,
        txn: &'t DatabaseTransaction,
        _key: i32,
        requests: Vec<Change>,
    ) -> BoxFuture<'t, Result<Replies<Self::Reply>, AppError>> {
        Box::pin(async move {
            let mut replies = Vec::with_capacity(requests.len());
            for change in requests {
                replies.push(in_savepoint(txn, change).await);
            }
            Ok(replies)
        })
    }
}

impl Lanes<Savepoints> {
    /// Runs `change` in the lane of `key` and returns its result once its
    /// batch has committed.
    ///
    /// # Errors
    /// The change's own error (nothing of it is stored); an internal error
    /// when its batch could not be committed.
    pub async fn run<T, F>(
        &self,
        db: &DatabaseConnection,
        key: i32,
        change: F,
    ) -> Result<T, AppError>
    where
        T: Send + 'static,
        F: for<'t> FnOnce(&'t DatabaseTransaction) -> BoxFuture<'t, Result<T, AppError>>
            + Send
            + 'static,
    {
        let erased: Change = Box::new(move |txn| {
            Box::pin(async move {
                change(txn)
                    .await
                    .map(|value| Box::new(value) as Box<dyn Any + Send>)
            })
        });
        let value = self.submit(db, key, erased).await?;
        value
            .downcast::<T>()
            .map(|value| *value)
            .map_err(|_| AppError::internal(anyhow::anyhow!("a lane answered another type")))
    }
}

async fn in_savepoint(
    txn: &DatabaseTransaction,
    change: Change,
) -> Result<Box<dyn Any + Send>, AppError> {
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
