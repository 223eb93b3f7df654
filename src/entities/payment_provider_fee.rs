//! The fee an event charges for paying with a provider (pretix's
//! `<provider>_fee_abs` and `<provider>_fee_percent` event settings).

use sea_orm::entity::prelude::*;

#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "payment_provider_fees")]
pub struct Model {
    #[sea_orm(primary_key)]
    pub id: i32,
    pub event_id: i32,
    pub provider: String,
    /// A fixed part, in minor units.
    pub fixed_minor: i64,
    /// A part of the open balance, in hundredths of a percent.
    pub percent_bp: i32,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
