//! What storefronts watch: the quotas of an event, published on the event's
//! availability topic after each change that takes or releases units has
//! committed (carts, checkouts, payments marked, cancellations, expiries).

use sea_orm::{
    ColumnTrait, ConnectionTrait, DatabaseConnection, EntityTrait, QueryFilter, QueryOrder,
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
    announce_on(&services.db, &services.bus, event_ids).await;
}

/// As [`announce`], for callers holding only the database and the bus.
pub async fn announce_on(
    db: &DatabaseConnection,
    bus: &SharedBus,
    event_ids: impl IntoIterator<Item = i32>,
) {
    for event_id in event_ids {
        let quotas = quota::Entity::find()
            .filter(quota::Column::EventId.eq(event_id))
            .order_by_asc(quota::Column::Id)
            .all(db)
            .await;
        let counters = match quotas {
            Ok(quotas) => with_links(db, &quotas).await,
            Err(err) => Err(err),
        };
        let quotas = match counters {
            Ok(quotas) => quotas,
            Err(err) => {
                tracing::warn!(error = %err, event_id, "availability not announced");
                continue;
            }
        };
        let event =
            crate::bus::DomainEvent::AvailabilityChanged(AvailabilityChanged { event_id, quotas });
        if let Err(err) = bus.publish(event).await {
            tracing::error!(
                error = format!("{err:#}"),
                "availability changed but not published"
            );
        }
    }
}

/// The counters of `quotas` with the products and variations each counts.
async fn with_links(
    db: &DatabaseConnection,
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
