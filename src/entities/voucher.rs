//! A voucher: pretix's `Voucher` and django-program's `Voucher` with its
//! per-product discounts, one model. It changes the price of the positions
//! bought with it, may unlock hidden products and skip quotas, and is used at
//! most `max_usages` times (counted in `redeemed` at checkout).

use sea_orm::entity::prelude::*;
use serde::{Deserialize, Serialize};

/// How a voucher changes a price (pretix `none`/`set`/`subtract`/`percent`,
/// django-program's percentage and fixed discounts and complimentary tickets).
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, Hash, EnumIter, DeriveActiveEnum, Serialize, Deserialize,
)]
#[sea_orm(rs_type = "String", db_type = "String(StringLen::N(16))")]
#[serde(rename_all = "snake_case")]
pub enum PriceMode {
    /// The price stays (a voucher that only unlocks or skips quotas).
    #[sea_orm(string_value = "none")]
    None,
    /// The price becomes `value_minor`.
    #[sea_orm(string_value = "set")]
    Set,
    /// `value_minor` off the price, never below zero.
    #[sea_orm(string_value = "subtract")]
    Subtract,
    /// `percent_bp` hundredths of a percent off the price.
    #[sea_orm(string_value = "percent")]
    Percent,
    /// Free of charge.
    #[sea_orm(string_value = "complimentary")]
    Complimentary,
}

#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "vouchers")]
pub struct Model {
    #[sea_orm(primary_key)]
    pub id: i32,
    pub event_id: i32,
    /// Unique per event.
    pub code: String,
    pub max_usages: i32,
    /// Positions one order must use it for while it has not been redeemed that often.
    pub min_usages: i32,
    pub redeemed: i32,
    pub valid_from: Option<DateTimeUtc>,
    pub valid_until: Option<DateTimeUtc>,
    pub price_mode: PriceMode,
    pub value_minor: Option<i64>,
    pub percent_bp: Option<i32>,
    /// Only this variation (of one of its products).
    pub variation_id: Option<i32>,
    /// Only the products this quota counts (pretix's `quota`).
    pub quota_id: Option<i32>,
    /// Only this date of a series.
    pub sub_event_id: Option<i32>,
    /// An inactive voucher is refused (django-program's `is_active`).
    pub active: bool,
    /// Unlocks products hidden without a voucher.
    pub show_hidden_items: bool,
    /// Keeps quota for its unused usages (see `ticketing::vouchers`).
    pub block_quota: bool,
    /// Usages whose unit it keeps now in each quota of `blocked_quota_ids`.
    pub blocked: i32,
    /// The quotas it blocks, as a comma-separated list of ids.
    pub blocked_quota_ids: String,
    /// Positions bought with it take no quota.
    pub allow_ignore_quota: bool,
    pub tag: Option<String>,
    pub comment: String,
    pub created_at: DateTimeUtc,
    /// The last change (its creation until it is changed; null only for
    /// rows written before the column existed and never migrated).
    pub updated_at: Option<DateTimeUtc>,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}

impl Model {
    /// Whether it can be used at `now`: active and in its window (usages and
    /// products are checked apart; django-program's `is_valid`).
    pub fn valid_at(&self, now: DateTimeUtc) -> bool {
        self.active
            && self.valid_from.is_none_or(|from| from <= now)
            && self.valid_until.is_none_or(|until| now < until)
    }
}
