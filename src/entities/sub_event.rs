//! A date of an event series (pretix `SubEvent`).

use sea_orm::entity::prelude::*;

#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "sub_events")]
pub struct Model {
    #[sea_orm(primary_key)]
    pub id: i32,
    pub event_id: i32,
    pub name: String,
    pub active: bool,
    pub is_public: bool,
    pub date_from: DateTimeUtc,
    pub date_to: Option<DateTimeUtc>,
    pub presale_start: Option<DateTimeUtc>,
    pub presale_end: Option<DateTimeUtc>,
    pub location: Option<String>,
    pub created_at: DateTimeUtc,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
