//! An event a payment provider sent to its webhook (django-program
//! `StripeEvent`): recorded once by the provider's event id, applied once
//! (`processed`), retried with backoff while applying it fails.

use sea_orm::entity::prelude::*;

#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "payment_webhook_events")]
pub struct Model {
    #[sea_orm(primary_key)]
    pub id: i32,
    /// The provider's name (`stripe`, `test`).
    pub provider: String,
    /// The provider's id of the event (`evt_…`), unique per provider.
    pub provider_event_id: String,
    /// The event's type (`payment_intent.succeeded`, …).
    pub kind: String,
    pub livemode: bool,
    pub api_version: Option<String>,
    /// The provider's customer the event is about, when it names one.
    pub customer_id: Option<String>,
    /// The event as received (JSON text).
    pub payload: String,
    pub processed: bool,
    pub processed_at: Option<DateTimeUtc>,
    /// Times applying it was tried.
    pub attempts: i32,
    /// Why the last try failed.
    pub last_error: Option<String>,
    /// When the retry job may try it next.
    pub next_attempt_at: DateTimeUtc,
    /// The payment it is about, once found.
    pub order_payment_id: Option<i32>,
    /// The ticketing event of that payment's order: whose team sees it.
    pub event_id: Option<i32>,
    pub created_at: DateTimeUtc,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
