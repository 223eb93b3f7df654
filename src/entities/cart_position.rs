//! A position in a cart (pretix `CartPosition`, django-program `CartItem`): it
//! holds one unit of each of its quotas until it `expires`.

use sea_orm::entity::prelude::*;

#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "cart_positions")]
pub struct Model {
    #[sea_orm(primary_key)]
    pub id: i32,
    pub event_id: i32,
    /// The cart: a random secret its holder presents.
    pub cart_id: String,
    pub product_id: i32,
    pub variation_id: Option<i32>,
    pub sub_event_id: Option<i32>,
    pub price_minor: i64,
    /// The quotas it holds a unit of, as a comma-separated list of ids.
    pub quota_ids: String,
    pub user_id: Option<i32>,
    pub datetime: DateTimeUtc,
    pub expires: DateTimeUtc,
    /// The voucher it was added with (its price is the voucher's).
    pub voucher_id: Option<i32>,
    /// The position of the same cart it was added to as an add-on.
    pub addon_to: Option<i32>,
    /// The quotas whose unit it took from its voucher's block (ids, as
    /// `quota_ids`); they go back to the block when it expires.
    pub blocked_quota_ids: String,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}

/// Parses a `quota_ids` column.
pub fn quota_ids(text: &str) -> Vec<i32> {
    text.split(',').filter_map(|id| id.parse().ok()).collect()
}

/// Formats quota ids for a `quota_ids` column.
pub fn format_quota_ids(ids: &[i32]) -> String {
    ids.iter().map(i32::to_string).collect::<Vec<_>>().join(",")
}
