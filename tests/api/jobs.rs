//! Background jobs: each run is claimed by one replica, and batches taken by
//! overlapping runs never overlap (PostgreSQL's `SKIP LOCKED`).

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use sea_orm::{ColumnTrait, DatabaseBackend, EntityTrait, QueryFilter, TransactionTrait};
use voltgate::auth::rate_limit::RateLimiter;
use voltgate::bus::memory::MemoryBus;
use voltgate::entities::scheduled_job;
use voltgate::jobs::{self, Job};
use voltgate::services::{ManualClock, ServiceContext};

use crate::client::keys;
use crate::helpers::spawn_app;

struct Counting(Arc<AtomicUsize>);

#[async_trait::async_trait]
impl Job for Counting {
    fn name(&self) -> &'static str {
        "counting"
    }

    fn every(&self) -> chrono::TimeDelta {
        chrono::TimeDelta::minutes(5)
    }

    async fn run(&self, _services: &ServiceContext) -> anyhow::Result<()> {
        self.0.fetch_add(1, Ordering::SeqCst);
        Ok(())
    }
}

#[tokio::test]
async fn each_run_of_a_job_is_claimed_by_one_replica() {
    let app = spawn_app().await;
    let clock = Arc::new(ManualClock::at(chrono::Utc::now()));
    let runs = Arc::new(AtomicUsize::new(0));
    let job: Arc<dyn Job> = Arc::new(Counting(runs.clone()));
    let mut services = ServiceContext::new(
        app.db.clone(),
        Arc::new(MemoryBus::default()),
        Arc::new(keys()),
        Arc::new(RateLimiter::disabled()),
    );
    services.clock = clock.clone();
    jobs::register(&app.db, job.name())
        .await
        .expect("registered");

    // Four replicas look for due jobs at the same moment, twice per period.
    for period in 1..=3 {
        for _ in 0..2 {
            let replicas = (0..4).map(|replica| {
                let (services, job) = (services.clone(), job.clone());
                tokio::spawn(async move {
                    jobs::run_due(&services, &[job], &format!("replica-{replica}")).await;
                })
            });
            futures_util::future::join_all(replicas).await;
        }
        assert_eq!(
            runs.load(Ordering::SeqCst),
            period,
            "one run per period, whoever looks"
        );
        clock.advance(chrono::TimeDelta::minutes(5));
    }
    let schedule = scheduled_job::Entity::find_by_id("counting".to_owned())
        .one(&app.db)
        .await
        .expect("query")
        .expect("the schedule row");
    assert!(
        schedule
            .claimed_by
            .is_some_and(|owner| owner.starts_with("replica-"))
    );
}

#[tokio::test]
async fn overlapping_batches_skip_the_rows_another_run_holds() {
    let app = spawn_app().await;
    let names = ["a", "b", "c", "d"];
    for name in names {
        jobs::register(&app.db, name).await.expect("registered");
    }
    // The server's own jobs have rows too: look at these four only.
    let work = || scheduled_job::Entity::find().filter(scheduled_job::Column::Name.is_in(names));
    let first = app.db.begin().await.expect("begin");
    let taken = jobs::claim_batch(&first, work(), 2)
        .await
        .expect("first batch");
    assert_eq!(taken.len(), 2);
    if app.db.get_database_backend() == DatabaseBackend::Postgres {
        // A second run while the first holds its rows gets the others.
        let second = app.db.begin().await.expect("begin");
        let other = jobs::claim_batch(&second, work(), 4)
            .await
            .expect("second batch");
        assert_eq!(other.len(), 2, "only the rows the first run does not hold");
        assert!(other.iter().all(|row| !taken.contains(row)));
        second.commit().await.expect("commit");
    }
    // SQLite has one writer: the second run's transaction waits for the first.
    first.commit().await.expect("commit");
}

#[tokio::test]
async fn expired_refresh_tokens_are_purged_after_a_day() {
    let app = spawn_app().await;
    app.register("cleo").await;
    let services = ServiceContext::new(
        app.db.clone(),
        Arc::new(MemoryBus::default()),
        Arc::new(keys()),
        Arc::new(RateLimiter::disabled()),
    );
    let count = || async {
        voltgate::entities::refresh_token::Entity::find()
            .all(&app.db)
            .await
            .expect("tokens")
            .len()
    };
    assert_eq!(count().await, 1);
    jobs::refresh_tokens::PurgeExpired
        .run(&services)
        .await
        .expect("purged");
    assert_eq!(count().await, 1, "a live token stays");

    let mut later = services.clone();
    later.clock = Arc::new(ManualClock::at(
        chrono::Utc::now() + chrono::TimeDelta::days(400),
    ));
    jobs::refresh_tokens::PurgeExpired
        .run(&later)
        .await
        .expect("purged");
    assert_eq!(count().await, 0, "a token a day past its expiry goes");
}
