//! A date's own settings for a product or one of its variations (pretix
//! `SubEventItem` when `variation_id` is null, `SubEventItemVariation` when
//! set): a price, whether it is sold on that date, and its sale window.
use sea_orm::entity::prelude::*;

#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "sub_event_product_settings")]
pub struct Model {
    #[sea_orm(primary_key)]
    pub id: i32,
    pub sub_event_id: i32,
    pub product_id: i32,
    /// Null: the product's settings; set: the variation's.
    pub variation_id: Option<i32>,
    /// Null: the product's (or variation's) own price.
    pub price_minor: Option<i64>,
    /// Not sold on this date.
    pub disabled: bool,
    pub available_from: Option<DateTimeUtc>,
    pub available_until: Option<DateTimeUtc>,
    pub updated_at: DateTimeUtc,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
