//! What storefronts watch: the quotas of an event, published on the event's
//! availability topic after each change that takes or releases units has
//! committed (carts, checkouts, payments marked, cancellations, expiries).

use sea_orm::{
    ColumnTrait, ConnectionTrait, DatabaseConnection, DbBackend, EntityTrait, QueryFilter,
    QueryOrder, Statement, TransactionTrait,
};
use serde::{Deserialize, Serialize};

use super::access;
use crate::auth::{Principal, TeamPermission};
use crate::bus::SharedBus;
use crate::entities::{event, quota, quota_product, quota_variation};
use crate::error::AppError;
use crate::services::ServiceContext;

/// The counters of an event's quotas right after a change.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AvailabilityChanged {
    pub event_id: i32,
    pub quotas: Vec<QuotaCounters>,
}

/// One quota's size and counters: enough to tell its state and what is left;
/// and what it counts, so a storefront knows which products and variations
/// it limits (`catalog::counts`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct QuotaCounters {
    pub id: i32,
    pub sub_event_id: Option<i32>,
    pub size: Option<i32>,
    pub paid: i32,
    pub pending: i32,
    pub in_carts: i32,
    /// Units vouchers keep for their unused usages (absent from
    /// announcements of servers that predate it).
    #[serde(default)]
    pub blocked: i32,
    /// The products it counts (absent from older announcements).
    #[serde(default)]
    pub product_ids: Vec<i32>,
    /// The variations of them it names; none: all their variations.
    #[serde(default)]
    pub variation_ids: Vec<i32>,
}

impl QuotaCounters {
    /// The quota row these counters describe (its name is not carried).
    pub fn quota(&self, event_id: i32) -> quota::Model {
        quota::Model {
            id: self.id,
            event_id,
            sub_event_id: self.sub_event_id,
            name: String::new(),
            size: self.size,
            paid: self.paid,
            pending: self.pending,
            in_carts: self.in_carts,
            blocked: self.blocked,
        }
    }
}

impl From<&quota::Model> for QuotaCounters {
    fn from(q: &quota::Model) -> Self {
        Self {
            id: q.id,
            sub_event_id: q.sub_event_id,
            size: q.size,
            paid: q.paid,
            pending: q.pending,
            in_carts: q.in_carts,
            blocked: q.blocked,
            product_ids: Vec::new(),
            variation_ids: Vec::new(),
        }
    }
}

/// The event a storefront may watch: a live one, or one its team prepares.
///
/// # Errors
/// `NOT_FOUND` when there is no such event visible to the caller.
pub async fn watchable_event(
    db: &impl ConnectionTrait,
    principal: &Principal,
    event_id: i32,
) -> Result<event::Model, AppError> {
    let event = event::Entity::find_by_id(event_id)
        .one(db)
        .await?
        .ok_or(AppError::not_found("event"))?;
    if event.live
        || access::on_event(db, principal, TeamPermission::ChangeEvents, event.id)
            .await
            .is_ok()
    {
        Ok(event)
    } else {
        Err(AppError::not_found("event"))
    }
}

/// Announces the current counters of each event's quotas. Called after the
/// change committed; a failure is logged: the change stands.
pub async fn announce(services: &ServiceContext, event_ids: impl IntoIterator<Item = i32>) {
    services.availability.announce(event_ids).await;
}

/// How many events' announcements may run at once on a replica: events share
/// a turn when their ids fall on the same stripe.
const STRIPES: usize = 64;

/// The first key of PostgreSQL's advisory lock that orders one event's
/// announcements across replicas (the second is the event's id).
const ADVISORY_LOCK_CLASS: i32 = 0x7661_696c; // "vail"

/// Announces events' availability in the order it was read.
///
/// Each announcement reads an event's counters, then publishes them. Two
/// announcements of one event made at once (two changes on one replica, or
/// on two) could otherwise reach the bus in the other order than their reads,
/// and leave every storefront showing the older counters, the sold-out
/// moment's included, until the next change. So an event's announcements take
/// turns, from before the read until the bus has the event: on a replica
/// through a lock per stripe of events, and across replicas through a
/// transaction-scoped advisory lock on PostgreSQL (a SQLite database has one
/// server). A later turn reads after the earlier one published, so the bus
/// carries every event's announcements in the order of what they read.
pub struct Announcements {
    db: DatabaseConnection,
    bus: SharedBus,
    turns: Vec<tokio::sync::Mutex<()>>,
}

impl std::fmt::Debug for Announcements {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Announcements").finish_non_exhaustive()
    }
}

impl Announcements {
    pub fn new(db: DatabaseConnection, bus: SharedBus) -> Self {
        Self {
            db,
            bus,
            turns: (0..STRIPES).map(|_| tokio::sync::Mutex::new(())).collect(),
        }
    }

    /// Announces each event's counters as they stand now, in turn with its
    /// other announcements. A failure is logged: the change stands.
    pub async fn announce(&self, event_ids: impl IntoIterator<Item = i32>) {
        for event_id in event_ids {
            if let Err(err) = self.announce_one(event_id).await {
                tracing::warn!(
                    error = format!("{err:#}"),
                    event_id,
                    "availability not announced"
                );
            }
        }
    }

    async fn announce_one(&self, event_id: i32) -> anyhow::Result<()> {
        let stripe = usize::try_from(event_id.unsigned_abs()).unwrap_or_default() % STRIPES;
        let _turn = self.turns[stripe].lock().await;
        if self.db.get_database_backend() != DbBackend::Postgres {
            return publish_read(&self.db, &self.bus, event_id).await;
        }
        // Read-only: the transaction holds the advisory lock until the bus has
        // the event, and nothing else.
        let txn = self.db.begin().await?;
        txn.execute_raw(Statement::from_sql_and_values(
            DbBackend::Postgres,
            "SELECT pg_advisory_xact_lock($1, $2)",
            [ADVISORY_LOCK_CLASS.into(), event_id.into()],
        ))
        .await?;
        let published = publish_read(&txn, &self.bus, event_id).await;
        txn.commit().await?;
        published
    }
}

/// Reads `event_id`'s counters on `db` and publishes them.
async fn publish_read(
    db: &impl ConnectionTrait,
    bus: &SharedBus,
    event_id: i32,
) -> anyhow::Result<()> {
    let quotas = quota::Entity::find()
        .filter(quota::Column::EventId.eq(event_id))
        .order_by_asc(quota::Column::Id)
        .all(db)
        .await?;
    let quotas = with_links(db, &quotas).await?;
    let event =
        crate::bus::DomainEvent::AvailabilityChanged(AvailabilityChanged { event_id, quotas });
    bus.publish(event)
        .await
        .map_err(|err| err.context("availability changed but not published"))
}

/// The counters of `quotas` with the products and variations each counts.
async fn with_links(
    db: &impl ConnectionTrait,
    quotas: &[quota::Model],
) -> Result<Vec<QuotaCounters>, sea_orm::DbErr> {
    let ids = quotas.iter().map(|q| q.id);
    let mut counters: Vec<QuotaCounters> = quotas.iter().map(QuotaCounters::from).collect();
    let products = quota_product::Entity::find()
        .filter(quota_product::Column::QuotaId.is_in(ids.clone()))
        .order_by_asc(quota_product::Column::ProductId)
        .all(db)
        .await?;
    let variations = quota_variation::Entity::find()
        .filter(quota_variation::Column::QuotaId.is_in(ids))
        .order_by_asc(quota_variation::Column::VariationId)
        .all(db)
        .await?;
    for quota in &mut counters {
        quota.product_ids = products
            .iter()
            .filter(|l| l.quota_id == quota.id)
            .map(|l| l.product_id)
            .collect();
        quota.variation_ids = variations
            .iter()
            .filter(|l| l.quota_id == quota.id)
            .map(|l| l.variation_id)
            .collect();
    }
    Ok(counters)
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;
    use std::sync::atomic::{AtomicBool, Ordering};
    use std::time::Duration;

    use async_trait::async_trait;
    use futures_util::StreamExt as _;
    use tokio::sync::Notify;

    use super::*;
    use crate::bus::memory::MemoryBus;
    use crate::bus::{
        Cursor, DomainEvent, EventBus, Fanout, FollowError, Retention, Stamped, Topic,
    };
    use crate::ticketing::quotas::{self, Counter, Units};

    /// A bus that holds its first publication until released.
    #[derive(Default)]
    struct HeldBus {
        inner: MemoryBus,
        held: AtomicBool,
        reached: Notify,
        release: Notify,
    }

    #[async_trait]
    impl EventBus for HeldBus {
        async fn publish(&self, event: DomainEvent) -> anyhow::Result<()> {
            self.publish_all(vec![event]).await
        }
        async fn publish_all(&self, events: Vec<DomainEvent>) -> anyhow::Result<()> {
            if !self.held.swap(true, Ordering::SeqCst) {
                self.reached.notify_one();
                self.release.notified().await;
            }
            self.inner.publish_all(events).await
        }
        async fn replay(&self, after: &Cursor) -> Result<Vec<Arc<Stamped>>, FollowError> {
            self.inner.replay(after).await
        }
        fn fanout(&self) -> &Fanout {
            self.inner.fanout()
        }
        fn retention(&self) -> Retention {
            self.inner.retention()
        }
        async fn is_ready(&self) -> bool {
            true
        }
        fn kind(&self) -> &'static str {
            "held"
        }
    }

    /// An announcement that read first is published first, even when one that
    /// read after it is ready before: on one replica, and on two sharing a
    /// PostgreSQL database.
    #[tokio::test]
    async fn an_events_announcements_reach_the_bus_in_the_order_they_read() {
        let db = crate::db::testing::any_database().await;
        crate::db::migrate(&db).await.expect("migrated");
        crate::ticketing::demo::seed(&db)
            .await
            .expect("seeded")
            .expect("the demo");
        let quota = quota::Entity::find()
            .order_by_asc(quota::Column::Id)
            .one(&db)
            .await
            .expect("read")
            .expect("a quota");
        let event_id = quota.event_id;
        let bus = Arc::new(HeldBus::default());
        let shared: SharedBus = bus.clone();
        let mut heard = bus.fanout().subscribe(Topic::Availability(event_id));
        let first = Arc::new(Announcements::new(db.clone(), Arc::clone(&shared)));
        let second = if db.get_database_backend() == DbBackend::Postgres {
            Arc::new(Announcements::new(db.clone(), Arc::clone(&shared)))
        } else {
            Arc::clone(&first)
        };

        let earlier = tokio::spawn({
            let first = Arc::clone(&first);
            async move { first.announce([event_id]).await }
        });
        // It has read the counters and waits at the bus.
        bus.reached.notified().await;
        quotas::add_to(&db, &Units::from([(quota.id, 1)]), Counter::InCarts)
            .await
            .expect("one unit held");
        let mut later = tokio::spawn({
            let second = Arc::clone(&second);
            async move { second.announce([event_id]).await }
        });
        assert!(
            tokio::time::timeout(Duration::from_millis(300), &mut later)
                .await
                .is_err(),
            "the later announcement waits for the earlier one's turn"
        );
        bus.release.notify_one();
        earlier.await.expect("announced");
        later.await.expect("announced");

        let mut in_carts = Vec::new();
        for _ in 0..2 {
            let stamped = heard.next().await.expect("an event").expect("not lagging");
            let DomainEvent::AvailabilityChanged(changed) = &stamped.envelope.event else {
                panic!("an availability change");
            };
            let counters = changed
                .quotas
                .iter()
                .find(|q| q.id == quota.id)
                .expect("the quota");
            in_carts.push(counters.in_carts);
        }
        assert_eq!(in_carts, [quota.in_carts, quota.in_carts + 1]);
    }
}
