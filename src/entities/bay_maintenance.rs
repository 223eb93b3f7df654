//! A staff maintenance flag on one bay: while the row exists the bay takes no
//! reservations and shows `MAINTENANCE` (a station's or cabinet's own status
//! does the same for all their bays).

use sea_orm::entity::prelude::*;

#[derive(Clone, Debug, PartialEq, DeriveEntityModel)]
#[sea_orm(table_name = "bay_maintenance")]
pub struct Model {
    #[sea_orm(primary_key, auto_increment = false)]
    pub bay_id: i32,
    pub reason: String,
    pub created_at: DateTimeUtc,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {
    #[sea_orm(
        belongs_to = "super::bay::Entity",
        from = "Column::BayId",
        to = "super::bay::Column::Id",
        on_delete = "Cascade"
    )]
    Bay,
}

impl ActiveModelBehavior for ActiveModel {}
