//! No-shows: a reservation nobody used within the grace period after its
//! start (`VOLTGATE_RESERVATION_NO_SHOW_GRACE_MINUTES`) expires. Seed 002 has
//! no expired status, so it becomes `CANCELLED` with `cancelled_at`; its
//! temporary credential is revoked, the bay is freed (`bayStatusChanged`) and
//! the owner is told through the outbox (`reservation_expired`).
//!
//! A reservation that opened a charging session once is not a no-show (a
//! failed unlock puts it back to `CONFIRMED` so the customer can try again
//! within the slot). Each expiry is one `UPDATE` conditional on the status
//! that was read, so with several replicas it happens, and is notified, once.

use anyhow::Context as _;
use chrono::{DateTime, Utc};
use sea_orm::sea_query::Expr;
use sea_orm::{
    ColumnTrait, ConnectionTrait, EntityTrait, QueryFilter, QueryOrder, QuerySelect,
    TransactionTrait,
};
use serde_json::json;

use super::{bay_status, outbox, reservations};
use crate::bus::DomainEvent;
use crate::entities::charging_session;
use crate::entities::reservation::{self, ReservationStatus};
use crate::services::ServiceContext;

/// Reservations expired per run; the rest wait for the next run.
const BATCH: u64 = 200;

/// Expires the no-shows due at `now`; the expired rows and the bay events to
/// publish after the caller commits.
///
/// # Errors
/// On database errors.
pub async fn expire_due(
    txn: &impl ConnectionTrait,
    grace: chrono::TimeDelta,
    now: DateTime<Utc>,
) -> anyhow::Result<(Vec<reservation::Model>, Vec<DomainEvent>)> {
    let due_before = (now - grace).timestamp_micros();
    let candidates = crate::jobs::claim_batch(
        txn,
        reservation::Entity::find()
            .filter(
                reservation::Column::Status
                    .is_in([ReservationStatus::Pending, ReservationStatus::Confirmed]),
            )
            .filter(reservation::Column::StartsAtUs.lte(due_before))
            .order_by_asc(reservation::Column::StartsAtUs),
        BATCH,
    )
    .await
    .context("reading no-shows")?;
    if candidates.is_empty() {
        return Ok((Vec::new(), Vec::new()));
    }
    let showed_up: Vec<i32> = charging_session::Entity::find()
        .select_only()
        .column(charging_session::Column::ReservationId)
        .filter(charging_session::Column::ReservationId.is_in(candidates.iter().map(|r| r.id)))
        .into_tuple()
        .all(txn)
        .await
        .context("reading sessions of no-shows")?;
    let mut expired = Vec::new();
    for row in candidates {
        if showed_up.contains(&row.id) {
            continue;
        }
        let claimed = reservation::Entity::update_many()
            .col_expr(
                reservation::Column::Status,
                Expr::value(ReservationStatus::Cancelled),
            )
            .col_expr(
                reservation::Column::CancelledAtUs,
                Expr::value(now.timestamp_micros()),
            )
            .filter(reservation::Column::Id.eq(row.id))
            .filter(reservation::Column::Status.eq(row.status))
            .exec(txn)
            .await
            .context("expiring a reservation")?;
        if claimed.rows_affected != 1 {
            continue;
        }
        reservations::revoke_access(txn, &row, now)
            .await
            .map_err(|_| anyhow::anyhow!("revoking a no-show's access failed"))?;
        outbox::queue(
            txn,
            row.user_id,
            outbox::template::RESERVATION_EXPIRED,
            &json!({ "reference": row.reference_code, "reason": "no_show" }),
        )
        .await
        .map_err(|_| anyhow::anyhow!("queueing a no-show notification failed"))?;
        expired.push(row);
    }
    let mut bays: Vec<i32> = expired.iter().map(|r| r.bay_id).collect();
    bays.sort_unstable();
    bays.dedup();
    let events = bay_status::refresh(txn, &bays, now)
        .await
        .map_err(|_| anyhow::anyhow!("refreshing the bays of no-shows failed"))?;
    Ok((expired, events))
}

/// Expires no-shows.
pub struct ExpireNoShows;

#[async_trait::async_trait]
impl crate::jobs::Job for ExpireNoShows {
    fn name(&self) -> &'static str {
        "expire_no_show_reservations"
    }

    fn every(&self) -> chrono::TimeDelta {
        chrono::TimeDelta::seconds(30)
    }

    async fn run(&self, services: &ServiceContext) -> anyhow::Result<()> {
        let txn = services.db.begin().await?;
        let (expired, events) =
            expire_due(&txn, services.reservations.no_show_grace(), services.now()).await?;
        txn.commit().await?;
        if !expired.is_empty() {
            tracing::info!(count = expired.len(), "no-show reservations expired");
        }
        bay_status::publish(services, events).await;
        Ok(())
    }
}
