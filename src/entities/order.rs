//! An order: pretix's `Order`, django-program's `Order` and the olympic
//! purchase, one model. Pending orders hold their quota until `expires`.

use sea_orm::entity::prelude::*;
use serde::{Deserialize, Serialize};

/// An order's state (pretix `n`/`p`/`c`/`e`; django-program pending, paid, cancelled).
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, Hash, EnumIter, DeriveActiveEnum, Serialize, Deserialize,
)]
#[sea_orm(rs_type = "String", db_type = "String(StringLen::N(16))")]
#[serde(rename_all = "snake_case")]
pub enum OrderStatus {
    #[sea_orm(string_value = "pending")]
    Pending,
    #[sea_orm(string_value = "paid")]
    Paid,
    #[sea_orm(string_value = "canceled")]
    Canceled,
    #[sea_orm(string_value = "expired")]
    Expired,
}

#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "orders")]
pub struct Model {
    #[sea_orm(primary_key)]
    pub id: i32,
    pub event_id: i32,
    /// Unique per event.
    pub code: String,
    /// Lets a buyer without an account reach the order.
    pub secret: String,
    pub status: OrderStatus,
    pub user_id: Option<i32>,
    pub email: String,
    pub total_minor: i64,
    pub testmode: bool,
    pub sales_channel: String,
    pub datetime: DateTimeUtc,
    /// Payment deadline of a pending order.
    pub expires: DateTimeUtc,
    pub updated_at: DateTimeUtc,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
