//! The rush: an event's holds and checkouts, applied set-wise in the
//! event's lane (`crate::lanes`) so that neither the quota's row nor the
//! number of statements per buyer bounds a sales rush.
//!
//! A batch is every hold and checkout of the event queued while the previous
//! batch committed. It locks the rows it decides on in the one order every
//! transaction takes them (the checkouts' carts, the vouchers of the batch,
//! then every quota of the batch in id order); then its holds run ([`carts::hold_all`]),
//! then its checkouts ([`orders::place_all`]): each side reads what all its
//! requests need in one statement per table, decides each request in its order against what is left
//! (a refused request stores nothing and does not fail the others), and
//! writes the accepted ones in a few statements. The batch commits once; only
//! then is each buyer answered and the event's availability announced, off
//! the lane (see [`Rush`]).

use std::sync::Arc;
use std::time::{Duration, Instant};

use chrono::{DateTime, Utc};
use futures_util::future::BoxFuture;
use sea_orm::{DatabaseConnection, DatabaseTransaction};

use super::carts::{self, CartAdd, Held, Hold};
use super::live::Announcements;
use super::orders::{self, Checkout, Placed, PlacedOrder, Prepared};
use super::{quotas, vouchers};
use crate::aging::Aging;
use crate::auth::Principal;
use crate::error::AppError;
use crate::lanes::{Batch, InTurn, Replies};
use crate::services::ServiceContext;

/// A request to an event's lane, with the time it was made.
pub struct Request {
    now: DateTime<Utc>,
    kind: Kind,
}

enum Kind {
    Hold(Hold),
    Checkout(Checkout),
}

/// A request's answer.
pub enum Reply {
    Held(Held),
    Placed(Placed),
}

/// The lanes' batch: holds and checkouts, announced after each commit.
pub struct Rush {
    /// Announces events' availability after their batches commit, off the
    /// lanes: reading the counters and publishing would otherwise hold an
    /// event's next batch back. Each event's counters are read once for all
    /// the batches that committed while the announcer was busy, so a burst of
    /// batches gives one announcement that is never older than the last
    /// commit it was woken for.
    announcer: InTurn<i32>,
    routes: Routes,
}

/// Which event's lane a request goes to, remembered for the products and
/// carts this replica has seen, so that a buyer's add and checkout do not
/// each read it first. A product never changes event. A cart keeps its
/// event while it holds anything; one emptied and reused for another event
/// is remembered anew by its first hold here, and a replica that still
/// remembers the old event sends its checkout to that lane, which applies it
/// under the same locks as any other batch and announces the event it
/// changed (see [`Rush::committed`](Batch::committed)).
struct Routes {
    products: Aging<i32, i32>,
    carts: Aging<String, i32>,
}

impl Routes {
    /// Long enough for a buyer between adding and checking out; each map is
    /// bounded whatever its age (`aging::MAX_ENTRIES`).
    const TTL: Duration = Duration::from_secs(600);

    fn new() -> Self {
        Self {
            products: Aging::new(Self::TTL),
            carts: Aging::new(Self::TTL),
        }
    }

    /// The event of `product_id`, read once and then remembered.
    async fn event_of_product(
        &self,
        db: &DatabaseConnection,
        product_id: i32,
    ) -> Result<i32, AppError> {
        if let Some(event_id) = self.products.get(&product_id) {
            return Ok(event_id);
        }
        let event_id = carts::event_of_product(db, product_id).await?;
        self.products.put(product_id, event_id);
        Ok(event_id)
    }

    /// The event of `cart_id` as this replica last held into it, else as
    /// stored (see [`orders::event_of_cart`]).
    async fn event_of_cart(
        &self,
        db: &DatabaseConnection,
        cart_id: &str,
    ) -> Result<Option<i32>, AppError> {
        match self.carts.get(cart_id) {
            Some(event_id) => Ok(Some(event_id)),
            None => orders::event_of_cart(db, cart_id).await,
        }
    }
}

impl Rush {
    pub fn new(announcements: Arc<Announcements>) -> Self {
        Self {
            routes: Routes::new(),
            announcer: InTurn::new(move |mut events: Vec<i32>| {
                let announcements = Arc::clone(&announcements);
                Box::pin(async move {
                    events.sort_unstable();
                    events.dedup();
                    announcements.announce(events).await;
                })
            }),
        }
    }
}

impl Batch for Rush {
    type Request = Request;
    type Reply = Reply;

    fn apply<'t>(
        &'t self,
        txn: &'t DatabaseTransaction,
        event_id: i32,
        requests: Vec<Request>,
    ) -> BoxFuture<'t, Result<Replies<Reply>, AppError>> {
        Box::pin(async move {
            // One clock for the batch: the latest its requests saw.
            let Some(now) = requests.iter().map(|r| r.now).max() else {
                return Ok(Vec::new());
            };
            let mut holds = Vec::new();
            let mut checkouts = Vec::new();
            let mut sides = Vec::with_capacity(requests.len());
            for request in requests {
                match request.kind {
                    Kind::Hold(hold) => {
                        holds.push(hold);
                        sides.push(true);
                    }
                    Kind::Checkout(checkout) => {
                        checkouts.push(checkout);
                        sides.push(false);
                    }
                }
            }
            // Locks in the one order every transaction takes them: the
            // checkouts' carts, the vouchers of the batch (its checkouts' and
            // the blocking ones its holds name), then every quota of the batch.
            let blocking = vouchers::blocking_ids(
                txn,
                event_id,
                holds.iter().filter_map(|h| h.input.voucher_code.as_deref()),
            )
            .await?;
            let (hold_count, checkout_count) = (holds.len(), checkouts.len());
            let started = Instant::now();
            let prepared = Prepared::read(txn, now, &checkouts, &blocking).await?;
            let mut quota_ids: Vec<i32> = prepared.quota_ids().collect();
            quota_ids.extend(carts::quota_ids_of(txn, &holds).await?);
            quotas::lock(txn, quota_ids).await?;
            let locked = started.elapsed();
            let mut held = carts::hold_all(txn, now, holds).await?.into_iter();
            let holds_done = started.elapsed();
            let mut placed = prepared.place(txn, now, checkouts).await?.into_iter();
            // Where a batch's time goes, to tell reads and locks from writes.
            tracing::debug!(
                event_id,
                holds = hold_count,
                checkouts = checkout_count,
                read_and_lock_ms = locked.as_secs_f64() * 1e3,
                holds_ms = (holds_done - locked).as_secs_f64() * 1e3,
                checkouts_ms = (started.elapsed() - holds_done).as_secs_f64() * 1e3,
                "rush batch applied"
            );
            sides
                .into_iter()
                .map(|hold| {
                    let reply = if hold {
                        held.next().map(|r| r.map(Reply::Held))
                    } else {
                        placed.next().map(|r| r.map(Reply::Placed))
                    };
                    reply.ok_or_else(|| {
                        AppError::internal(anyhow::anyhow!("a request went unanswered"))
                    })
                })
                .collect()
        })
    }

    fn committed<'a>(
        &'a self,
        _event_id: i32,
        replies: &'a [Result<Reply, AppError>],
    ) -> BoxFuture<'a, ()> {
        // The events the replies changed: a lane's own, unless a stale route
        // sent it a cart of another event.
        let mut changed: Vec<i32> = replies
            .iter()
            .filter_map(|reply| match reply {
                Ok(Reply::Held((_, positions))) => positions.first().map(|p| p.event_id),
                Ok(Reply::Placed(Placed::Order(order, _))) => Some(order.event_id),
                Ok(Reply::Placed(Placed::KeyTaken)) | Err(_) => None,
            })
            .collect();
        changed.sort_unstable();
        changed.dedup();
        for event_id in changed {
            self.announcer.hand(event_id);
        }
        Box::pin(async {})
    }
}

/// Adds to a cart in the lane of the product's event (see [`carts::add`]).
///
/// # Errors
/// As [`carts::hold_all`].
pub async fn add_to_cart(
    services: &ServiceContext,
    principal: &Principal,
    input: CartAdd,
) -> Result<Held, AppError> {
    let hold = Hold::new(principal, input, services.cart_max_positions)?;
    let lanes = &services.ticketing_lanes;
    let routes = &lanes.batch().routes;
    let event_id = routes
        .event_of_product(&services.db, hold.input.product_id)
        .await?;
    let request = Request {
        now: services.now(),
        kind: Kind::Hold(hold),
    };
    match lanes.submit(&services.lanes_db, event_id, request).await? {
        Reply::Held(held) => {
            routes.carts.put(held.0.clone(), event_id);
            Ok(held)
        }
        Reply::Placed(_) => Err(AppError::internal(anyhow::anyhow!("a hold was placed"))),
    }
}

/// Checks a cart out in the lane of its event (see [`orders::checkout`]).
///
/// # Errors
/// As [`orders::place_all`].
pub async fn checkout(
    services: &ServiceContext,
    principal: &Principal,
    cart_id: &str,
    email: &str,
    idempotency_key: Option<&str>,
) -> Result<PlacedOrder, AppError> {
    let request = Checkout::new(principal, cart_id, email, idempotency_key)?;
    if let Some(first) = request.first_result(&services.db).await? {
        return Ok(first);
    }
    let lanes = &services.ticketing_lanes;
    let routes = &lanes.batch().routes;
    let Some(event_id) = routes.event_of_cart(&services.db, &request.cart_id).await? else {
        return orders::checkout(
            &services.db,
            principal,
            services.now(),
            cart_id,
            email,
            idempotency_key,
        )
        .await;
    };
    let queued = Request {
        now: services.now(),
        kind: Kind::Checkout(request.clone()),
    };
    match lanes.submit(&services.lanes_db, event_id, queued).await? {
        Reply::Placed(placed) => request.answer(&services.db, placed).await,
        Reply::Held(_) => Err(AppError::internal(anyhow::anyhow!("a checkout was held"))),
    }
}
