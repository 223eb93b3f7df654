//! Applying many small writes in few transactions.
//!
//! Device messages arrive by the thousand per second, each a few row updates.
//! One transaction each would make the database's commit (an fsync on SQLite,
//! a WAL flush on PostgreSQL) the limit; a batch shares one. A worker
//! [`gather`]s what is waiting in its queue (up to [`BatchLimits::max_items`],
//! optionally lingering for more) and [`apply`]s it in one transaction, in
//! arrival order. Under light load a batch is one message and nothing waits;
//! under heavy load batches grow by themselves while the previous one commits.
//!
//! A database error fails the whole batch (nothing of it is kept) and each item
//! is then applied on its own, with retries: a transient failure costs one
//! round of retries, and an item that always fails is isolated instead of
//! failing its neighbours. Callers publish events and acknowledge messages
//! only after [`apply`] returns, so nothing is announced before it is stored.

use std::future::Future;
use std::pin::Pin;
use std::time::Duration;

use sea_orm::{DatabaseConnection, DatabaseTransaction, DbErr, TransactionTrait};
use tokio::sync::mpsc;

use crate::telemetry::names;

/// How a worker gathers a batch.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BatchLimits {
    /// Most items in one transaction.
    pub max_items: usize,
    /// How long to wait for more items once the queue is empty (zero: take
    /// what is waiting and go).
    pub linger: Duration,
}

impl Default for BatchLimits {
    fn default() -> Self {
        Self {
            max_items: 1000,
            linger: Duration::ZERO,
        }
    }
}

/// Waits for one item, then takes what else is waiting, up to the limits.
/// `None` once the queue is closed and empty.
pub async fn gather<T>(queue: &mut mpsc::Receiver<T>, limits: BatchLimits) -> Option<Vec<T>> {
    let first = queue.recv().await?;
    let mut batch = Vec::with_capacity(limits.max_items.clamp(1, 64));
    batch.push(first);
    let deadline = tokio::time::Instant::now() + limits.linger;
    while batch.len() < limits.max_items {
        match queue.try_recv() {
            Ok(item) => batch.push(item),
            Err(mpsc::error::TryRecvError::Disconnected) => break,
            Err(mpsc::error::TryRecvError::Empty) if limits.linger.is_zero() => break,
            Err(mpsc::error::TryRecvError::Empty) => {
                match tokio::time::timeout_at(deadline, queue.recv()).await {
                    Ok(Some(item)) => batch.push(item),
                    Ok(None) | Err(_) => break,
                }
            }
        }
    }
    Some(batch)
}

/// A boxed future borrowing the transaction and the item.
pub type Applying<'a, O> = Pin<Box<dyn Future<Output = Result<O, DbErr>> + Send + 'a>>;

/// Writes one item within a transaction it does not own. An `Err` is a
/// database failure and fails the batch; an item the domain refuses is an
/// `Ok` outcome the caller reads.
pub trait Apply: Send + Sync {
    type Item: Send + Sync;
    type Outcome: Send;

    fn apply<'a>(
        &'a self,
        txn: &'a DatabaseTransaction,
        item: &'a Self::Item,
    ) -> Applying<'a, Self::Outcome>;

    /// Writes a whole batch within a transaction, one outcome per item in
    /// order: by default item by item. An applier that can write many items
    /// in a few statements overrides it; [`Apply::apply`] must then have the
    /// same effect on one item, since a failed batch is retried item by item.
    fn apply_all<'a>(
        &'a self,
        txn: &'a DatabaseTransaction,
        items: &'a [Self::Item],
    ) -> Applying<'a, Vec<Self::Outcome>> {
        Box::pin(async move {
            let mut outcomes = Vec::with_capacity(items.len());
            for item in items {
                outcomes.push(self.apply(txn, item).await?);
            }
            Ok(outcomes)
        })
    }
}

/// Retries of an item applied on its own after its batch failed, backing off
/// from 100 ms: about 1.5 s in all.
const ITEM_RETRIES: u32 = 4;

/// Applies `items` in one transaction, in order. Returns one result per item:
/// all `Ok` when the batch committed; otherwise each item's own result after
/// it was retried alone.
pub async fn apply<A: Apply>(
    db: &DatabaseConnection,
    applier: &A,
    items: &[A::Item],
) -> Vec<Result<A::Outcome, DbErr>> {
    metrics::histogram!(names::BATCH_SIZE).record(items.len() as f64);
    let started = std::time::Instant::now();
    match apply_together(db, applier, items).await {
        Ok(outcomes) => {
            metrics::histogram!(names::BATCH_DURATION).record(started.elapsed().as_secs_f64());
            outcomes.into_iter().map(Ok).collect()
        }
        Err(err) => {
            metrics::counter!(names::BATCH_FAILED).increment(1);
            tracing::warn!(error = %err, items = items.len(), "batch failed; applying its items one by one");
            let mut outcomes = Vec::with_capacity(items.len());
            for item in items {
                outcomes.push(apply_alone(db, applier, item).await);
            }
            outcomes
        }
    }
}

async fn apply_together<A: Apply>(
    db: &DatabaseConnection,
    applier: &A,
    items: &[A::Item],
) -> Result<Vec<A::Outcome>, DbErr> {
    let txn = db.begin().await?;
    let outcomes = applier.apply_all(&txn, items).await?;
    txn.commit().await?;
    Ok(outcomes)
}

async fn apply_alone<A: Apply>(
    db: &DatabaseConnection,
    applier: &A,
    item: &A::Item,
) -> Result<A::Outcome, DbErr> {
    let mut backoff = Duration::from_millis(100);
    let mut attempt = 0;
    loop {
        let result = async {
            let txn = db.begin().await?;
            let outcome = applier.apply(&txn, item).await?;
            txn.commit().await?;
            Ok(outcome)
        }
        .await;
        match result {
            Err(_) if attempt < ITEM_RETRIES => {
                attempt += 1;
                metrics::counter!(names::MQTT_RETRIED).increment(1);
                tokio::time::sleep(backoff).await;
                backoff *= 2;
            }
            result => return result,
        }
    }
}

#[cfg(test)]
mod tests {
    use sea_orm::{ConnectOptions, ConnectionTrait, Database, Statement};

    use super::*;

    /// Inserts its item into `t`; the item 13 always fails.
    struct Insert;

    impl Apply for Insert {
        type Item = i64;
        type Outcome = i64;

        fn apply<'a>(&'a self, txn: &'a DatabaseTransaction, item: &'a i64) -> Applying<'a, i64> {
            Box::pin(async move {
                if *item == 13 {
                    return Err(DbErr::Custom("unlucky".into()));
                }
                txn.execute_unprepared(&format!("INSERT INTO t (v) VALUES ({item})"))
                    .await?;
                Ok(item * 10)
            })
        }
    }

    async fn database() -> DatabaseConnection {
        // One connection: each in-memory connection would be its own database.
        let mut options = ConnectOptions::new("sqlite::memory:");
        options.max_connections(1).min_connections(1);
        let db = Database::connect(options)
            .await
            .expect("an in-memory database");
        db.execute_unprepared("CREATE TABLE t (v INTEGER NOT NULL)")
            .await
            .expect("a table");
        db
    }

    async fn stored(db: &DatabaseConnection) -> Vec<i64> {
        let rows = db
            .query_all_raw(Statement::from_string(
                db.get_database_backend(),
                "SELECT v FROM t ORDER BY rowid",
            ))
            .await
            .expect("rows");
        rows.iter()
            .map(|row| row.try_get::<i64>("", "v").expect("v"))
            .collect()
    }

    #[tokio::test]
    async fn a_batch_is_applied_in_order_in_one_go() {
        let db = database().await;
        let outcomes = apply(&db, &Insert, &[1, 2, 3]).await;
        let outcomes: Vec<_> = outcomes.into_iter().map(Result::ok).collect();
        assert_eq!(outcomes, vec![Some(10), Some(20), Some(30)]);
        assert_eq!(stored(&db).await, vec![1, 2, 3]);
    }

    #[tokio::test]
    async fn an_item_that_always_fails_is_isolated_and_the_others_are_kept_once() {
        let db = database().await;
        let outcomes = apply(&db, &Insert, &[1, 13, 3]).await;
        assert!(outcomes[0].is_ok() && outcomes[2].is_ok());
        assert!(outcomes[1].is_err(), "the poison item fails");
        assert_eq!(
            stored(&db).await,
            vec![1, 3],
            "the failed batch left nothing behind; each good item is stored once"
        );
    }

    #[tokio::test]
    async fn gathering_takes_what_waits_up_to_the_limit() {
        let (sender, mut queue) = mpsc::channel(16);
        for n in 0..5 {
            sender.send(n).await.expect("room");
        }
        let limits = BatchLimits {
            max_items: 3,
            linger: Duration::ZERO,
        };
        assert_eq!(gather(&mut queue, limits).await, Some(vec![0, 1, 2]));
        assert_eq!(gather(&mut queue, limits).await, Some(vec![3, 4]));
        drop(sender);
        assert_eq!(gather(&mut queue, limits).await, None);
    }

    #[tokio::test]
    async fn lingering_waits_for_more_until_full_or_the_deadline() {
        let (sender, mut queue) = mpsc::channel(16);
        sender.send(1).await.expect("room");
        let late = sender.clone();
        tokio::spawn(async move {
            tokio::time::sleep(Duration::from_millis(20)).await;
            let _ = late.send(2).await;
        });
        let until_full = BatchLimits {
            max_items: 2,
            linger: Duration::from_secs(30),
        };
        assert_eq!(gather(&mut queue, until_full).await, Some(vec![1, 2]));

        sender.send(3).await.expect("room");
        let briefly = BatchLimits {
            max_items: 10,
            linger: Duration::from_millis(50),
        };
        assert_eq!(gather(&mut queue, briefly).await, Some(vec![3]));
    }
}
