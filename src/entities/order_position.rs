//! A position of an order: pretix's `OrderPosition`, django-program's
//! `OrderLineItem` and the olympic `Ticket`, one model. An admission position
//! is a ticket: a random `secret` for its QR code and the olympic unique key,
//! SHA-256 over the buyer, the purchase date and the position's id, written
//! once the id exists.

use sea_orm::entity::prelude::*;

#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "order_positions")]
pub struct Model {
    #[sea_orm(primary_key)]
    pub id: i32,
    pub order_id: i32,
    /// 1, 2, … within the order.
    pub positionid: i32,
    pub product_id: i32,
    pub variation_id: Option<i32>,
    pub sub_event_id: Option<i32>,
    pub price_minor: i64,
    pub tax_rate_bp: i32,
    pub tax_value_minor: i64,
    pub secret: String,
    pub ticket_key: Option<String>,
    pub canceled: bool,
    pub attendee_name: Option<String>,
    pub attendee_email: Option<String>,
    /// The quotas it takes a unit of (comma-separated ids).
    pub quota_ids: String,
    pub created_at: DateTimeUtc,
    /// The voucher it was bought with.
    pub voucher_id: Option<i32>,
    /// The position of the same order it was bought as an add-on to.
    pub addon_to: Option<i32>,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {
    #[sea_orm(
        belongs_to = "super::order::Entity",
        from = "Column::OrderId",
        to = "super::order::Column::Id"
    )]
    Order,
    #[sea_orm(
        belongs_to = "super::product::Entity",
        from = "Column::ProductId",
        to = "super::product::Column::Id"
    )]
    Product,
}

impl Related<super::order::Entity> for Entity {
    fn to() -> RelationDef {
        Relation::Order.def()
    }
}

impl Related<super::product::Entity> for Entity {
    fn to() -> RelationDef {
        Relation::Product.def()
    }
}

impl ActiveModelBehavior for ActiveModel {}
