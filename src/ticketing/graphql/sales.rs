//! Sales reports (team permission `VIEW_ORDERS`), summed from the transaction
//! ledger.

use async_graphql::{Context, ID, Object, Result, SimpleObject};
use sea_orm::EntityTrait as _;

use super::types::{Money, OrderStatus};
use crate::auth::guards::principal;
use crate::entities::event;
use crate::error::AppError;
use crate::graphql::ids::{self, Kind};
use crate::services::services;
use crate::ticketing::ledger::{self, Sales};

/// Units sold and what they add up to (after cancellations: canceled units
/// count `-1` when they leave).
#[derive(SimpleObject)]
pub struct SalesFigures {
    pub count: i64,
    /// Gross, tax included.
    pub gross: Money,
    pub tax: Money,
}

impl SalesFigures {
    fn of<K>(sales: &Sales<K>, currency: &str) -> Self {
        Self {
            count: sales.count,
            gross: Money::new(sales.gross_minor, currency),
            tax: Money::new(sales.tax_minor, currency),
        }
    }
}

/// The sales of one product, or of the fees of one type.
#[derive(SimpleObject)]
pub struct ProductSales {
    /// Null for fees.
    pub product_id: Option<ID>,
    /// For fees: `payment`, `service`, …
    pub fee_type: Option<String>,
    pub sales: SalesFigures,
}

/// The changes of one day (UTC).
#[derive(SimpleObject)]
pub struct DaySales {
    /// `YYYY-MM-DD`.
    pub day: String,
    pub sales: SalesFigures,
}

/// The sales in orders that are in one status now.
#[derive(SimpleObject)]
pub struct OrderStatusSales {
    pub status: OrderStatus,
    pub sales: SalesFigures,
}

/// An event's sales from its transaction ledger.
#[derive(SimpleObject)]
pub struct SalesReport {
    pub by_product: Vec<ProductSales>,
    pub by_day: Vec<DaySales>,
    pub by_order_status: Vec<OrderStatusSales>,
}

#[derive(Default)]
pub struct SalesQuery;

#[Object]
impl SalesQuery {
    /// Team permission `VIEW_ORDERS`: the event's sales per product, per day
    /// and per order status, from its transaction ledger.
    async fn sales_report(&self, ctx: &Context<'_>, event_id: ID) -> Result<SalesReport> {
        let db = &services(ctx)?.db;
        let event_id = ids::decode(&event_id, Kind::EVENT, "eventId")?;
        let report = ledger::report(db, principal(ctx), event_id).await?;
        let currency = event::Entity::find_by_id(event_id)
            .one(db)
            .await
            .map_err(AppError::from)?
            .map(|e| e.currency)
            .unwrap_or_default();
        Ok(SalesReport {
            by_product: report
                .by_product
                .iter()
                .map(|s| ProductSales {
                    product_id: s.key.product_id.map(|id| ids::encode(Kind::PRODUCT, id)),
                    fee_type: s.key.fee_type.clone(),
                    sales: SalesFigures::of(s, &currency),
                })
                .collect(),
            by_day: report
                .by_day
                .iter()
                .map(|s| DaySales {
                    day: s.key.clone(),
                    sales: SalesFigures::of(s, &currency),
                })
                .collect(),
            by_order_status: report
                .by_order_status
                .iter()
                .map(|s| OrderStatusSales {
                    status: s.key.into(),
                    sales: SalesFigures::of(s, &currency),
                })
                .collect(),
        })
    }
}
