//! A product, the one model for everything an event sells: pretix's `Item`,
//! django-program's `TicketType` and `AddOn`, the olympic offer. Its kind says
//! which; a total quantity is a quota of that size.

use sea_orm::entity::prelude::*;
use serde::{Deserialize, Serialize};

/// What a product is.
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, Hash, EnumIter, DeriveActiveEnum, Serialize, Deserialize,
)]
#[sea_orm(rs_type = "String", db_type = "String(StringLen::N(16))")]
#[serde(rename_all = "snake_case")]
pub enum ProductKind {
    /// An admission ticket.
    #[sea_orm(string_value = "admission")]
    Admission,
    /// Sold with a ticket.
    #[sea_orm(string_value = "addon")]
    Addon,
    /// Goods without admission.
    #[sea_orm(string_value = "merchandise")]
    Merchandise,
}

#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "products")]
pub struct Model {
    #[sea_orm(primary_key)]
    pub id: i32,
    pub event_id: i32,
    pub category_id: Option<i32>,
    pub name: String,
    /// django-program's slug; unique within the event when set.
    pub slug: Option<String>,
    pub description: String,
    pub kind: ProductKind,
    pub active: bool,
    /// Grants admission (a ticket with a QR code).
    pub admission: bool,
    /// Price in minor units of the event's currency, tax included.
    pub price_minor: i64,
    /// Tax rate in hundredths of a percent (1900 = 19 %).
    pub tax_rate_bp: i32,
    pub available_from: Option<DateTimeUtc>,
    pub available_until: Option<DateTimeUtc>,
    pub min_per_order: Option<i32>,
    pub max_per_order: Option<i32>,
    pub limit_per_user: Option<i32>,
    pub require_voucher: bool,
    pub hide_without_voucher: bool,
    pub require_approval: bool,
    pub personalized: bool,
    pub checkin_attention: bool,
    pub position: i32,
    pub created_at: DateTimeUtc,
    pub updated_at: DateTimeUtc,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}

impl Model {
    /// Within its availability window at `now`.
    pub fn on_sale_at(&self, now: DateTimeUtc) -> bool {
        self.active
            && self.available_from.is_none_or(|from| from <= now)
            && self.available_until.is_none_or(|until| now < until)
    }
}
