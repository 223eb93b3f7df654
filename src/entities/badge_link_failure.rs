//! A wrong badge-linking code sent by a cabinet's kiosk (`badge_link_failures`),
//! counted over a window to refuse guessing.

use sea_orm::entity::prelude::*;

#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "badge_link_failures")]
pub struct Model {
    #[sea_orm(primary_key)]
    pub id: i32,
    pub cabinet_id: i32,
    pub created_at_us: i64,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
