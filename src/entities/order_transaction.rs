//! A row of the transaction ledger (pretix `Transaction`): one change of a
//! position or fee of an order, never updated or deleted. `count` is `+1`
//! when it starts counting, `-1` when it stops (canceled, or changed: the old
//! version leaves with `-1`, the new one arrives with `+1`); the sum over an
//! order's rows is what the order holds now.

use sea_orm::entity::prelude::*;

#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "order_transactions")]
pub struct Model {
    #[sea_orm(primary_key)]
    pub id: i32,
    pub order_id: i32,
    pub event_id: i32,
    pub datetime: DateTimeUtc,
    /// The UTC date of `datetime` (`YYYY-MM-DD`), what daily reports group by.
    pub day: String,
    /// The position's number within the order; `None` for a fee.
    pub positionid: Option<i32>,
    /// The fee; `None` for a position.
    pub fee_id: Option<i32>,
    pub count: i32,
    pub product_id: Option<i32>,
    pub variation_id: Option<i32>,
    pub sub_event_id: Option<i32>,
    /// The price of one unit (a fee's value).
    pub price_minor: i64,
    pub tax_rate_bp: i32,
    pub tax_value_minor: i64,
    pub fee_type: Option<String>,
    pub internal_type: Option<String>,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {
    #[sea_orm(
        belongs_to = "super::order::Entity",
        from = "Column::OrderId",
        to = "super::order::Column::Id"
    )]
    Order,
}

impl ActiveModelBehavior for ActiveModel {}
