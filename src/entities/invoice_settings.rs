//! An event's invoice settings: the number prefix, the sender and the texts
//! its invoices copy, and when invoices are issued on their own.

use sea_orm::entity::prelude::*;
use serde::{Deserialize, Serialize};

/// When an order gets its invoice without anyone asking.
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, Hash, EnumIter, DeriveActiveEnum, Serialize, Deserialize,
)]
#[sea_orm(rs_type = "String", db_type = "String(StringLen::N(16))")]
#[serde(rename_all = "snake_case")]
pub enum InvoiceGeneration {
    /// Only when the team issues one.
    #[sea_orm(string_value = "admin")]
    Admin,
    /// When the order is paid.
    #[sea_orm(string_value = "paid")]
    Paid,
}

#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "invoice_settings")]
pub struct Model {
    #[sea_orm(primary_key, auto_increment = false)]
    pub event_id: i32,
    /// Empty: the event's slug in capitals and a dash.
    pub prefix: String,
    pub address_from: String,
    pub introductory_text: String,
    pub additional_text: String,
    pub footer_text: String,
    pub locale: String,
    pub generate: InvoiceGeneration,
    /// A currency invoices also show their taxes in (ISO 4217), at the
    /// organizer's latest exchange rate.
    pub foreign_currency_display: Option<String>,
    pub updated_at: DateTimeUtc,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
