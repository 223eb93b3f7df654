//! A line of an invoice (seed 003 pretix `InvoiceLine`): what was sold, as it
//! was when the invoice was issued.

use sea_orm::entity::prelude::*;

#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "invoice_lines")]
pub struct Model {
    #[sea_orm(primary_key)]
    pub id: i32,
    pub invoice_id: i32,
    /// 1, 2, … within the invoice.
    pub position: i32,
    pub description: String,
    pub gross_value_minor: i64,
    /// The tax included in the gross value.
    pub tax_value_minor: i64,
    /// Basis points: 1900 is 19 %.
    pub tax_rate_bp: i32,
    pub tax_name: String,
    pub sub_event_id: Option<i32>,
    pub event_date_from: Option<DateTimeUtc>,
    pub event_date_to: Option<DateTimeUtc>,
    pub event_location: Option<String>,
    pub product_id: Option<i32>,
    pub variation_id: Option<i32>,
    pub attendee_name: Option<String>,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
