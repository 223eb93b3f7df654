//! A refund of an order (pretix `OrderRefund`; django-program's refunded
//! payments): money going back to the buyer, by hand or as store credit.

use sea_orm::entity::prelude::*;
use serde::{Deserialize, Serialize};

/// A refund's state (pretix's).
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, Hash, EnumIter, DeriveActiveEnum, Serialize, Deserialize,
)]
#[sea_orm(rs_type = "String", db_type = "String(StringLen::N(16))")]
#[serde(rename_all = "snake_case")]
pub enum RefundState {
    #[sea_orm(string_value = "created")]
    Created,
    #[sea_orm(string_value = "transit")]
    Transit,
    #[sea_orm(string_value = "done")]
    Done,
    #[sea_orm(string_value = "failed")]
    Failed,
    #[sea_orm(string_value = "canceled")]
    Canceled,
    #[sea_orm(string_value = "external")]
    External,
}

/// Who started it (pretix's `source`).
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, Hash, EnumIter, DeriveActiveEnum, Serialize, Deserialize,
)]
#[sea_orm(rs_type = "String", db_type = "String(StringLen::N(16))")]
#[serde(rename_all = "snake_case")]
pub enum RefundSource {
    #[sea_orm(string_value = "admin")]
    Admin,
    #[sea_orm(string_value = "buyer")]
    Buyer,
    #[sea_orm(string_value = "external")]
    External,
}

/// How the money goes back.
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, Hash, EnumIter, DeriveActiveEnum, Serialize, Deserialize,
)]
#[sea_orm(rs_type = "String", db_type = "String(StringLen::N(16))")]
#[serde(rename_all = "snake_case")]
pub enum RefundMethod {
    /// Paid back by the team (bank transfer, cash).
    #[sea_orm(string_value = "manual")]
    Manual,
    /// As a store credit for later orders.
    #[sea_orm(string_value = "store_credit")]
    StoreCredit,
    /// Through the payment's provider (`provider` names it).
    #[sea_orm(string_value = "provider")]
    Provider,
}

#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "order_refunds")]
pub struct Model {
    #[sea_orm(primary_key)]
    pub id: i32,
    pub order_id: i32,
    /// 1, 2, … within the order (`full_id` is `CODE-R-n`).
    pub local_id: i32,
    pub state: RefundState,
    pub source: RefundSource,
    pub method: RefundMethod,
    pub amount_minor: i64,
    /// The payment it returns, when it returns one.
    pub payment_id: Option<i32>,
    pub provider: Option<String>,
    pub reference: Option<String>,
    pub info: String,
    pub comment: String,
    pub created_by: Option<i32>,
    pub created_at: DateTimeUtc,
    /// When it was done.
    pub execution_date: Option<DateTimeUtc>,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
