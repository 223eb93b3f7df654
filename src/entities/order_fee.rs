//! A fee of an order (pretix `OrderFee`): part of the order's total. A
//! payment's fee is one (`fee_type` `payment`).

use sea_orm::entity::prelude::*;

#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "order_fees")]
pub struct Model {
    #[sea_orm(primary_key)]
    pub id: i32,
    pub order_id: i32,
    /// `payment`, `service`, `shipping`, `cancellation`, `other` (pretix's types).
    pub fee_type: String,
    /// For a payment fee, the payment method.
    pub internal_type: String,
    pub description: String,
    pub value_minor: i64,
    pub tax_rate_bp: i32,
    pub tax_value_minor: i64,
    /// A canceled fee no longer counts in the total.
    pub canceled: bool,
    pub created_at: DateTimeUtc,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
