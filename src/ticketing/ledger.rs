//! The transaction ledger (pretix `Transaction`) and the sales reports summed
//! from it.
//!
//! Every change to an order's positions or fees calls [`sync`] (or, for a new
//! order, [`record_placed`]) in the change's own transaction: it compares
//! what the order holds now with the sum of its ledger rows and appends the
//! difference, so the ledger never disagrees with a committed order and its
//! rows are only ever inserted. A canceled or expired order holds nothing: its
//! positions and fees leave the ledger with `count = -1`.

use std::collections::BTreeMap;

use chrono::{DateTime, Utc};
use sea_orm::sea_query::Expr;
use sea_orm::{
    ColumnTrait, ConnectionTrait, EntityTrait, JoinType, QueryFilter, QueryOrder, QuerySelect,
    RelationTrait, Set,
};

use crate::auth::{Principal, TeamPermission};
use crate::entities::order::OrderStatus;
use crate::entities::{order, order_fee, order_position, order_transaction};
use crate::error::AppError;

/// What one ledger row counts: a position or a fee as it is priced now.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
struct Line {
    positionid: Option<i32>,
    fee_id: Option<i32>,
    product_id: Option<i32>,
    variation_id: Option<i32>,
    sub_event_id: Option<i32>,
    price_minor: i64,
    tax_rate_bp: i32,
    tax_value_minor: i64,
    fee_type: Option<String>,
    internal_type: Option<String>,
}

impl Line {
    fn of_position(p: &order_position::Model) -> Self {
        Self {
            positionid: Some(p.positionid),
            fee_id: None,
            product_id: Some(p.product_id),
            variation_id: p.variation_id,
            sub_event_id: p.sub_event_id,
            price_minor: p.price_minor,
            tax_rate_bp: p.tax_rate_bp,
            tax_value_minor: p.tax_value_minor,
            fee_type: None,
            internal_type: None,
        }
    }

    fn of_fee(f: &order_fee::Model) -> Self {
        Self {
            positionid: None,
            fee_id: Some(f.id),
            product_id: None,
            variation_id: None,
            sub_event_id: None,
            price_minor: f.value_minor,
            tax_rate_bp: f.tax_rate_bp,
            tax_value_minor: f.tax_value_minor,
            fee_type: Some(f.fee_type.clone()),
            internal_type: Some(f.internal_type.clone()),
        }
    }

    fn of_row(r: &order_transaction::Model) -> Self {
        Self {
            positionid: r.positionid,
            fee_id: r.fee_id,
            product_id: r.product_id,
            variation_id: r.variation_id,
            sub_event_id: r.sub_event_id,
            price_minor: r.price_minor,
            tax_rate_bp: r.tax_rate_bp,
            tax_value_minor: r.tax_value_minor,
            fee_type: r.fee_type.clone(),
            internal_type: r.internal_type.clone(),
        }
    }

    fn row(
        self,
        order: &order::Model,
        count: i32,
        now: DateTime<Utc>,
    ) -> order_transaction::ActiveModel {
        order_transaction::ActiveModel {
            order_id: Set(order.id),
            event_id: Set(order.event_id),
            datetime: Set(now),
            day: Set(now.format("%Y-%m-%d").to_string()),
            positionid: Set(self.positionid),
            fee_id: Set(self.fee_id),
            count: Set(count),
            product_id: Set(self.product_id),
            variation_id: Set(self.variation_id),
            sub_event_id: Set(self.sub_event_id),
            price_minor: Set(self.price_minor),
            tax_rate_bp: Set(self.tax_rate_bp),
            tax_value_minor: Set(self.tax_value_minor),
            fee_type: Set(self.fee_type),
            internal_type: Set(self.internal_type),
            ..Default::default()
        }
    }
}

/// The rows that take the ledger from `recorded` (the sum of the existing rows
/// per line) to `held` (what the order holds now).
fn difference(held: &BTreeMap<Line, i32>, recorded: &BTreeMap<Line, i32>) -> Vec<(Line, i32)> {
    let mut rows = Vec::new();
    for (line, count) in recorded {
        let now = held.get(line).copied().unwrap_or(0);
        if now != *count {
            rows.push((line.clone(), now - count));
        }
    }
    for (line, count) in held {
        if !recorded.contains_key(line) && *count != 0 {
            rows.push((line.clone(), *count));
        }
    }
    rows
}

fn holds_anything(order: &order::Model) -> bool {
    matches!(order.status, OrderStatus::Pending | OrderStatus::Paid)
}

/// Writes the ledger rows of new orders and their positions (no fees yet), in
/// one statement, in the transaction that inserts them.
///
/// # Errors
/// On database errors: the orders' transaction fails with it.
pub async fn record_placed(
    txn: &impl ConnectionTrait,
    placed: &[(order::Model, Vec<order_position::Model>)],
    now: DateTime<Utc>,
) -> Result<(), AppError> {
    let rows: Vec<_> = placed
        .iter()
        .filter(|(order, _)| holds_anything(order))
        .flat_map(|(order, positions)| {
            positions
                .iter()
                .filter(|p| !p.canceled)
                .map(move |p| Line::of_position(p).row(order, 1, now))
        })
        .collect();
    if rows.is_empty() {
        return Ok(());
    }
    order_transaction::Entity::insert_many(rows)
        .exec(txn)
        .await?;
    Ok(())
}

/// Brings the ledger of `order_id` up to what the order holds now, in the
/// caller's transaction (which must be the one that changed the order).
///
/// The order's row is locked first, so two changes of one order never both
/// write the same difference.
///
/// # Errors
/// On database errors: the change's transaction fails with it.
pub async fn sync(
    txn: &impl ConnectionTrait,
    order_id: i32,
    now: DateTime<Utc>,
) -> Result<(), AppError> {
    order::Entity::update_many()
        .col_expr(order::Column::Id, Expr::col(order::Column::Id))
        .filter(order::Column::Id.eq(order_id))
        .exec(txn)
        .await?;
    let order = order::Entity::find_by_id(order_id)
        .one(txn)
        .await?
        .ok_or(AppError::not_found("order"))?;
    let mut held: BTreeMap<Line, i32> = BTreeMap::new();
    if holds_anything(&order) {
        let positions = order_position::Entity::find()
            .filter(order_position::Column::OrderId.eq(order_id))
            .filter(order_position::Column::Canceled.eq(false))
            .all(txn)
            .await?;
        let fees = order_fee::Entity::find()
            .filter(order_fee::Column::OrderId.eq(order_id))
            .filter(order_fee::Column::Canceled.eq(false))
            .all(txn)
            .await?;
        for line in positions
            .iter()
            .map(Line::of_position)
            .chain(fees.iter().map(Line::of_fee))
        {
            *held.entry(line).or_default() += 1;
        }
    }
    let mut recorded: BTreeMap<Line, i32> = BTreeMap::new();
    for row in order_transaction::Entity::find()
        .filter(order_transaction::Column::OrderId.eq(order_id))
        .all(txn)
        .await?
    {
        *recorded.entry(Line::of_row(&row)).or_default() += row.count;
    }
    let rows = difference(&held, &recorded);
    if !rows.is_empty() {
        order_transaction::Entity::insert_many(
            rows.into_iter()
                .map(|(line, count)| line.row(&order, count, now)),
        )
        .exec(txn)
        .await?;
    }
    Ok(())
}

/// One line of a sales report: units, and the gross and tax they add up to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Sales<K> {
    pub key: K,
    pub count: i64,
    pub gross_minor: i64,
    pub tax_minor: i64,
}

/// What a report line is about when grouped by what was sold: a product, or
/// fees of one type.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Sold {
    pub product_id: Option<i32>,
    pub fee_type: Option<String>,
}

/// An event's sales from its ledger.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SalesReport {
    pub by_product: Vec<Sales<Sold>>,
    pub by_day: Vec<Sales<String>>,
    pub by_order_status: Vec<Sales<OrderStatus>>,
}

// `count` and the products are summed in the database; PostgreSQL sums bigints
// as numeric, so each sum is cast back.
const COUNT: &str = "CAST(SUM(order_transactions.\"count\") AS BIGINT)";
const GROSS: &str =
    "CAST(SUM(order_transactions.\"count\" * order_transactions.price_minor) AS BIGINT)";
const TAX: &str =
    "CAST(SUM(order_transactions.\"count\" * order_transactions.tax_value_minor) AS BIGINT)";

/// A product (or fee type) with its summed count, gross and tax.
type ProductRow = (Option<i32>, Option<String>, i64, i64, i64);

fn sums(
    select: sea_orm::Select<order_transaction::Entity>,
) -> sea_orm::Select<order_transaction::Entity> {
    select
        .column_as(Expr::cust(COUNT), "count")
        .column_as(Expr::cust(GROSS), "gross")
        .column_as(Expr::cust(TAX), "tax")
}

/// The sales of an event (team permission `ViewOrders`), summed from its
/// ledger: per product (fees per fee type), per day (UTC) of the change, and
/// per status of the orders now.
///
/// # Errors
/// As [`super::access::on_event`].
pub async fn report(
    db: &impl ConnectionTrait,
    principal: &Principal,
    event_id: i32,
) -> Result<SalesReport, AppError> {
    super::access::on_event(db, principal, TeamPermission::ViewOrders, event_id).await?;
    let of_event = || {
        order_transaction::Entity::find()
            .select_only()
            .filter(order_transaction::Column::EventId.eq(event_id))
    };
    let by_product: Vec<ProductRow> = sums(
        of_event()
            .column(order_transaction::Column::ProductId)
            .column(order_transaction::Column::FeeType),
    )
    .group_by(order_transaction::Column::ProductId)
    .group_by(order_transaction::Column::FeeType)
    .into_tuple()
    .all(db)
    .await?;
    // Products first, then fees: SQLite and PostgreSQL sort nulls differently.
    let mut by_product = by_product;
    by_product.sort_by(|a, b| (a.0.is_none(), a.0, &a.1).cmp(&(b.0.is_none(), b.0, &b.1)));
    let by_day: Vec<(String, i64, i64, i64)> =
        sums(of_event().column(order_transaction::Column::Day))
            .group_by(order_transaction::Column::Day)
            .order_by_asc(order_transaction::Column::Day)
            .into_tuple()
            .all(db)
            .await?;
    let by_status: Vec<(OrderStatus, i64, i64, i64)> = sums(
        of_event()
            .join(
                JoinType::InnerJoin,
                order_transaction::Relation::Order.def(),
            )
            .column(order::Column::Status),
    )
    .group_by(order::Column::Status)
    .order_by_asc(order::Column::Status)
    .into_tuple()
    .all(db)
    .await?;
    Ok(SalesReport {
        by_product: by_product
            .into_iter()
            .map(
                |(product_id, fee_type, count, gross_minor, tax_minor)| Sales {
                    key: Sold {
                        product_id,
                        fee_type,
                    },
                    count,
                    gross_minor,
                    tax_minor,
                },
            )
            .collect(),
        by_day: by_day
            .into_iter()
            .map(|(key, count, gross_minor, tax_minor)| Sales {
                key,
                count,
                gross_minor,
                tax_minor,
            })
            .collect(),
        by_order_status: by_status
            .into_iter()
            .map(|(key, count, gross_minor, tax_minor)| Sales {
                key,
                count,
                gross_minor,
                tax_minor,
            })
            .collect(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn line(positionid: i32, price_minor: i64) -> Line {
        Line {
            positionid: Some(positionid),
            fee_id: None,
            product_id: Some(1),
            variation_id: None,
            sub_event_id: None,
            price_minor,
            tax_rate_bp: 0,
            tax_value_minor: 0,
            fee_type: None,
            internal_type: None,
        }
    }

    #[test]
    fn the_difference_takes_the_ledger_to_what_the_order_holds() {
        let recorded = BTreeMap::from([(line(1, 1000), 1), (line(2, 1000), 1)]);
        // Position 1 repriced, position 2 canceled, position 3 added.
        let held = BTreeMap::from([(line(1, 800), 1), (line(3, 500), 1)]);
        let mut rows = difference(&held, &recorded);
        rows.sort();
        assert_eq!(
            rows,
            vec![
                (line(1, 800), 1),
                (line(1, 1000), -1),
                (line(2, 1000), -1),
                (line(3, 500), 1),
            ]
        );
        assert!(difference(&held, &held).is_empty());
    }
}
