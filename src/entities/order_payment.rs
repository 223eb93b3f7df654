//! A payment of an order: pretix's `OrderPayment` and django-program's
//! `Payment`, one model. Confirmed payments that cover the total mark the
//! order paid.

use sea_orm::entity::prelude::*;
use serde::{Deserialize, Serialize};

/// A payment's state (pretix's; django-program's processing, succeeded,
/// failed and refunded are pending, confirmed, failed and refunded).
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, Hash, EnumIter, DeriveActiveEnum, Serialize, Deserialize,
)]
#[sea_orm(rs_type = "String", db_type = "String(StringLen::N(16))")]
#[serde(rename_all = "snake_case")]
pub enum PaymentState {
    #[sea_orm(string_value = "created")]
    Created,
    #[sea_orm(string_value = "pending")]
    Pending,
    #[sea_orm(string_value = "confirmed")]
    Confirmed,
    #[sea_orm(string_value = "failed")]
    Failed,
    #[sea_orm(string_value = "canceled")]
    Canceled,
    #[sea_orm(string_value = "refunded")]
    Refunded,
}

/// How it is paid (django-program's methods; pretix's provider names).
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, Hash, EnumIter, DeriveActiveEnum, Serialize, Deserialize,
)]
#[sea_orm(rs_type = "String", db_type = "String(StringLen::N(16))")]
#[serde(rename_all = "snake_case")]
pub enum PaymentMethod {
    /// Recorded by the team (bank transfer, cash).
    #[sea_orm(string_value = "manual")]
    Manual,
    /// Waived by the team.
    #[sea_orm(string_value = "complimentary")]
    Complimentary,
    /// Paid with the buyer's store credit.
    #[sea_orm(string_value = "store_credit")]
    StoreCredit,
    /// Through a payment provider (`provider` names it).
    #[sea_orm(string_value = "provider")]
    Provider,
}

#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "order_payments")]
pub struct Model {
    #[sea_orm(primary_key)]
    pub id: i32,
    pub order_id: i32,
    /// 1, 2, … within the order (pretix's `local_id`; `full_id` is `CODE-P-n`).
    pub local_id: i32,
    pub state: PaymentState,
    pub method: PaymentMethod,
    pub amount_minor: i64,
    /// Its fee, an order fee.
    pub fee_id: Option<i32>,
    pub provider: Option<String>,
    /// The bank's or provider's reference.
    pub reference: Option<String>,
    pub info: String,
    pub note: String,
    pub created_by: Option<i32>,
    pub created_at: DateTimeUtc,
    /// When it was confirmed.
    pub payment_date: Option<DateTimeUtc>,
    /// What the provider calls the payment (Stripe's payment intent id).
    pub provider_payment_id: Option<String>,
    /// The provider's charge that moved the money, once there is one.
    pub provider_charge_id: Option<String>,
    /// The provider's own word for the payment's state (`requires_payment_method`, …).
    pub provider_state: Option<String>,
    /// Whether the provider was asked to start it (pretix's `process_initiated`).
    pub process_initiated: bool,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
