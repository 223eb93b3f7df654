//! An invoice (seed 003 pretix `Invoice`): issued for an order, numbered per
//! organizer and prefix, never changed once issued; a cancellation invoice
//! refers to the invoice it corrects.

use sea_orm::entity::prelude::*;

#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "invoices")]
pub struct Model {
    #[sea_orm(primary_key)]
    pub id: i32,
    pub organizer_id: i32,
    pub event_id: i32,
    pub order_id: i32,
    pub prefix: String,
    /// 1, 2, … within the organizer and prefix.
    pub invoice_no: i32,
    /// `prefix` followed by `invoice_no`, zero-padded to five digits.
    pub full_invoice_no: String,
    pub is_cancellation: bool,
    /// The invoice a cancellation corrects.
    pub refers_id: Option<i32>,
    pub invoice_from: String,
    pub invoice_to: String,
    pub date: Date,
    pub locale: String,
    pub currency: String,
    pub introductory_text: String,
    pub additional_text: String,
    pub payment_provider_text: String,
    pub payment_provider_stamp: String,
    pub footer_text: String,
    pub foreign_currency_display: Option<String>,
    /// An exact decimal, as text.
    pub foreign_currency_rate: Option<String>,
    pub foreign_currency_rate_date: Option<Date>,
    pub foreign_currency_rate_source: Option<String>,
    pub created_at: DateTimeUtc,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
