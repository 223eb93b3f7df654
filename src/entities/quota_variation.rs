//! Link: a variation a quota names (pretix `Quota.variations`). A quota
//! linked to a product counts every variation of it unless it names some of
//! them; then it counts only those (`ticketing::catalog::counts`).

use sea_orm::entity::prelude::*;

#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "quota_variations")]
pub struct Model {
    #[sea_orm(primary_key, auto_increment = false)]
    pub quota_id: i32,
    #[sea_orm(primary_key, auto_increment = false)]
    pub variation_id: i32,
    /// The variation's product (a variation never moves to another).
    pub product_id: i32,
    pub added_at: DateTimeUtc,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
