//! An order's invoice address (pretix `InvoiceAddress`; django-program's
//! `Order.billing_*`), copied into each invoice when it is issued.

use sea_orm::entity::prelude::*;

#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "invoice_addresses")]
pub struct Model {
    #[sea_orm(primary_key, auto_increment = false)]
    pub order_id: i32,
    pub is_business: bool,
    pub name: String,
    pub company: String,
    pub street: String,
    pub zipcode: String,
    pub city: String,
    /// ISO 3166-1 alpha-2, or empty.
    pub country: String,
    pub vat_id: String,
    pub updated_at: DateTimeUtc,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
