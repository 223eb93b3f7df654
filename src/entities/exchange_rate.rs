//! An exchange rate an organizer's invoices use to show their taxes in
//! another currency: one unit of `from_currency` is `rate` units of
//! `to_currency` on `date`, as `source` gave it.
use sea_orm::entity::prelude::*;

#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "exchange_rates")]
pub struct Model {
    #[sea_orm(primary_key)]
    pub id: i32,
    pub organizer_id: i32,
    pub from_currency: String,
    pub to_currency: String,
    pub date: Date,
    /// An exact decimal, as text (`"1.0856"`).
    pub rate: String,
    /// `manual` when a team or staff entered it.
    pub source: String,
    pub created_at: DateTimeUtc,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
