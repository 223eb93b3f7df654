//! An idempotency key of a checkout: the order a cart's checkout with that key
//! created, so a retry returns it instead of placing a second order.

use sea_orm::entity::prelude::*;

#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "checkout_keys")]
pub struct Model {
    #[sea_orm(primary_key)]
    pub id: i32,
    pub cart_id: String,
    /// Unique with `cart_id`.
    pub idempotency_key: String,
    /// Set in the checkout's own transaction, so a committed key always has it.
    pub order_id: Option<i32>,
    pub created_at: DateTimeUtc,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
