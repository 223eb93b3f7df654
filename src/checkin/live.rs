//! What door dashboards watch: every recorded scan, with the list's figures
//! for the ticket's product right after it, published on the event's
//! check-in topic once the scan's transaction has committed, a replica's
//! scans in the order its door lane decided them.

use sea_orm::sea_query::Expr;
use sea_orm::{ColumnTrait, ConnectionTrait, EntityTrait, QueryFilter, QuerySelect};
use serde::{Deserialize, Serialize};

use super::redeem::Redeemed;
use crate::entities::{checkin, checkin_count};
use crate::error::AppError;

/// A scan was recorded (accepted, rejected or forced).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct CheckinRecorded {
    pub checkin: checkin::Model,
    pub product_id: Option<i32>,
    pub product_name: Option<String>,
    pub attendee_name: Option<String>,
    /// The list's figures for the ticket's product after this scan.
    pub counts: Option<ProductCounts>,
}

/// How many tickets of one product entered a list, and how many are inside.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct ProductCounts {
    pub product_id: i32,
    pub checked_in: i64,
    pub inside: i64,
}

/// The figures of `product_id` on `list_id`: the sum of its counter stripes.
///
/// # Errors
/// On database errors.
pub async fn counts(
    db: &impl ConnectionTrait,
    list_id: i32,
    product_id: i32,
) -> Result<ProductCounts, AppError> {
    let figures = of_list(db, list_id, Some(product_id)).await?;
    Ok(figures.into_iter().next().unwrap_or(ProductCounts {
        product_id,
        checked_in: 0,
        inside: 0,
    }))
}

/// The figures of every product on `list_id` with a scan (of `product_id` only
/// when given).
///
/// # Errors
/// On database errors.
pub async fn of_list(
    db: &impl ConnectionTrait,
    list_id: i32,
    product_id: Option<i32>,
) -> Result<Vec<ProductCounts>, AppError> {
    let mut query = checkin_count::Entity::find()
        .select_only()
        .column(checkin_count::Column::ProductId)
        // PostgreSQL sums `BIGINT`s into `NUMERIC`.
        .column_as(Expr::cust("CAST(SUM(checked_in) AS BIGINT)"), "checked_in")
        .column_as(Expr::cust("CAST(SUM(inside) AS BIGINT)"), "inside")
        .filter(checkin_count::Column::ListId.eq(list_id))
        .group_by(checkin_count::Column::ProductId);
    if let Some(product_id) = product_id {
        query = query.filter(checkin_count::Column::ProductId.eq(product_id));
    }
    let rows: Vec<(i32, i64, i64)> = query.into_tuple().all(db).await?;
    Ok(rows
        .into_iter()
        .map(|(product_id, checked_in, inside)| ProductCounts {
            product_id,
            checked_in,
            inside,
        })
        .collect())
}

/// The event of a scan just stored, with the list's figures for its product
/// as its batch left them; none for a repeat, which announces nothing. The
/// door lane publishes a batch's events in the order it decided its scans,
/// once the batch has committed (`super::lane`).
pub fn recorded(redeemed: &Redeemed) -> Option<crate::bus::DomainEvent> {
    if !redeemed.fresh {
        return None;
    }
    let checkin = redeemed.outcome.checkin()?;
    let ticket = redeemed.outcome.ticket();
    Some(crate::bus::DomainEvent::CheckinRecorded(CheckinRecorded {
        checkin: checkin.clone(),
        product_id: ticket.map(|t| t.product.id),
        product_name: ticket.map(|t| t.product.name.clone()),
        attendee_name: ticket.and_then(|t| t.position.attendee_name.clone()),
        counts: redeemed.counts,
    }))
}
