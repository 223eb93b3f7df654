//! A variation of a product (pretix `ItemVariation`), e.g. a T-shirt size.

use sea_orm::entity::prelude::*;

#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "product_variations")]
pub struct Model {
    #[sea_orm(primary_key)]
    pub id: i32,
    pub product_id: i32,
    pub value: String,
    pub description: String,
    pub active: bool,
    /// Overrides the product's price when set (minor units).
    pub price_minor: Option<i64>,
    pub position: i32,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
