//! Background jobs (expiries, timeouts, retries) that run safely on several replicas.
//!
//! Every replica runs a [`Runner`]. A job's run is due when its schedule row's
//! `next_run_at` has passed; a replica runs it only after moving `next_run_at`
//! on with one conditional `UPDATE` ([`claim`]), which succeeds for exactly one
//! replica per run on PostgreSQL and on SQLite alike. Jobs that work through
//! many rows take them with [`claim_batch`]: `FOR UPDATE SKIP LOCKED` on
//! PostgreSQL, so overlapping runs never take the same row; SQLite has a single
//! writer, so its transactions never overlap. Jobs read their dependencies and
//! the time from the [`ServiceContext`].

pub mod refresh_tokens;

use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use sea_orm::sea_query::Expr;
use sea_orm::{
    ColumnTrait, ConnectionTrait, DatabaseBackend, DbErr, EntityTrait, QueryFilter, QuerySelect,
    Select,
};

use crate::entities::scheduled_job;
use crate::services::ServiceContext;

/// A periodic job.
#[async_trait]
pub trait Job: Send + Sync + 'static {
    /// Stable name: the job's schedule row.
    fn name(&self) -> &'static str;

    /// Time between runs.
    fn every(&self) -> chrono::TimeDelta;

    /// One run.
    ///
    /// # Errors
    /// Any failure; the runner logs it and the next run comes as scheduled.
    async fn run(&self, services: &ServiceContext) -> anyhow::Result<()>;
}

/// The jobs every replica runs.
pub fn registry() -> Vec<Arc<dyn Job>> {
    vec![
        Arc::new(refresh_tokens::PurgeExpired),
        Arc::new(crate::ticketing::jobs::ExpireHolds),
        Arc::new(crate::charging::bay_status::RefreshBayStatuses),
        Arc::new(crate::charging::outbox::DeliverNotifications),
        Arc::new(crate::supervision::heartbeat::DetectSilentDevices),
        Arc::new(crate::supervision::notifications::NotifyAlerts),
        Arc::new(crate::devices::commands_log::TimeOutCommands),
        Arc::new(crate::charging::sessions::AdvanceSessions),
        Arc::new(crate::supervision::telemetry::PruneTelemetry),
        Arc::new(crate::charging::no_show::ExpireNoShows),
        Arc::new(crate::ticketing::providers::webhooks::RetryWebhookEvents),
    ]
}

fn micros(at: DateTime<Utc>) -> i64 {
    at.timestamp_micros()
}

/// Makes sure `job` has a schedule row (due at once when new).
///
/// # Errors
/// On database errors.
pub async fn register(db: &impl ConnectionTrait, job: &str) -> Result<(), DbErr> {
    let row = scheduled_job::ActiveModel {
        name: sea_orm::Set(job.to_owned()),
        next_run_at: sea_orm::Set(0),
        claimed_by: sea_orm::Set(None),
        claimed_at: sea_orm::Set(None),
    };
    scheduled_job::Entity::insert(row)
        .on_conflict_do_nothing()
        .exec(db)
        .await?;
    Ok(())
}

/// Claims the run of `job` due at `now`, if it is due and nobody claimed it:
/// one conditional `UPDATE` moves the next run to `now + every`. True for
/// exactly one caller per run.
///
/// # Errors
/// On database errors.
pub async fn claim(
    db: &impl ConnectionTrait,
    job: &str,
    owner: &str,
    now: DateTime<Utc>,
    every: chrono::TimeDelta,
) -> Result<bool, DbErr> {
    let claimed = scheduled_job::Entity::update_many()
        .col_expr(
            scheduled_job::Column::NextRunAt,
            Expr::value(micros(now + every)),
        )
        .col_expr(scheduled_job::Column::ClaimedBy, Expr::value(owner))
        .col_expr(scheduled_job::Column::ClaimedAt, Expr::value(micros(now)))
        .filter(scheduled_job::Column::Name.eq(job))
        .filter(scheduled_job::Column::NextRunAt.lte(micros(now)))
        .exec(db)
        .await?;
    Ok(claimed.rows_affected == 1)
}

/// Up to `limit` rows of `query` for this transaction alone: on PostgreSQL the
/// rows are locked and rows another transaction holds are skipped
/// (`FOR UPDATE SKIP LOCKED`), so concurrent runs share the work without
/// overlap; SQLite's single writer serializes the transactions instead.
///
/// # Errors
/// On database errors.
pub async fn claim_batch<E, C>(
    txn: &C,
    query: Select<E>,
    limit: u64,
) -> Result<Vec<E::Model>, DbErr>
where
    E: EntityTrait,
    C: ConnectionTrait,
{
    let query = query.limit(limit);
    let query = match txn.get_database_backend() {
        DatabaseBackend::Postgres => query.lock_with_behavior(
            sea_orm::sea_query::LockType::Update,
            sea_orm::sea_query::LockBehavior::SkipLocked,
        ),
        _ => query,
    };
    query.all(txn).await
}

/// Runs the registered jobs on this replica until stopped.
pub struct Runner {
    stop: tokio::sync::watch::Sender<bool>,
    task: tokio::task::JoinHandle<()>,
}

/// How often a runner looks for due jobs.
pub const TICK: Duration = Duration::from_secs(1);

impl Runner {
    pub fn start(services: ServiceContext, jobs: Vec<Arc<dyn Job>>) -> Self {
        let (stop, mut stopped) = tokio::sync::watch::channel(false);
        let owner = format!("{}-{}", std::process::id(), uuid::Uuid::new_v4().simple());
        let task = tokio::spawn(async move {
            let mut registered = false;
            let mut tick = tokio::time::interval(TICK);
            tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
            loop {
                tokio::select! {
                    _ = tick.tick() => {}
                    _ = stopped.changed() => return,
                }
                if !registered {
                    registered = register_all(&services, &jobs).await;
                }
                run_due(&services, &jobs, &owner).await;
            }
        });
        Self { stop, task }
    }

    /// Stops after the run in progress, if any.
    pub async fn stop(self) {
        let _ = self.stop.send(true);
        let _ = tokio::time::timeout(Duration::from_secs(5), self.task).await;
    }
}

async fn register_all(services: &ServiceContext, jobs: &[Arc<dyn Job>]) -> bool {
    for job in jobs {
        if let Err(error) = register(&services.db, job.name()).await {
            tracing::warn!(%error, job = job.name(), "cannot register the job");
            return false;
        }
    }
    true
}

/// Runs, once, every job whose run is due and that this replica claims.
pub async fn run_due(services: &ServiceContext, jobs: &[Arc<dyn Job>], owner: &str) {
    for job in jobs {
        let now = services.now();
        match claim(&services.db, job.name(), owner, now, job.every()).await {
            Ok(true) => {
                if let Err(error) = job.run(services).await {
                    tracing::error!(error = format!("{error:#}"), job = job.name(), "job failed");
                    metrics::counter!(crate::telemetry::names::JOB_FAILURES, "job" => job.name())
                        .increment(1);
                } else {
                    metrics::counter!(crate::telemetry::names::JOB_RUNS, "job" => job.name())
                        .increment(1);
                }
            }
            Ok(false) => {}
            Err(error) => tracing::warn!(%error, job = job.name(), "cannot claim the job"),
        }
    }
}
