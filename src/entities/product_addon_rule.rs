//! An add-on rule of a base product (pretix `ItemAddOn`): a position of the
//! base product may carry between `min_count` and `max_count` add-ons from
//! the products of `addon_category_id`.

use sea_orm::entity::prelude::*;

#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "product_addon_rules")]
pub struct Model {
    #[sea_orm(primary_key)]
    pub id: i32,
    pub base_product_id: i32,
    pub addon_category_id: i32,
    pub min_count: i32,
    pub max_count: i32,
    pub position: i32,
    pub created_at: DateTimeUtc,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
