//! A date's value of a meta property, over its event's (pretix `SubEventMetaValue`).

use sea_orm::entity::prelude::*;

#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "sub_event_meta_values")]
pub struct Model {
    #[sea_orm(primary_key)]
    pub id: i32,
    pub sub_event_id: i32,
    pub property_id: i32,
    pub value: String,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
