//! A station assigned to a technician (`AffectationStation`): the stations whose
//! supervision a technician sees. Read when a technician signs in, so a
//! technician principal carries its station scope.

use sea_orm::entity::prelude::*;
use sea_orm::{QueryOrder, QuerySelect};

#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "station_assignments")]
pub struct Model {
    #[sea_orm(primary_key, auto_increment = false)]
    pub user_id: i32,
    #[sea_orm(primary_key, auto_increment = false)]
    pub station_id: i32,
    pub assigned_at: DateTimeUtc,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {
    #[sea_orm(
        belongs_to = "super::user::Entity",
        from = "Column::UserId",
        to = "super::user::Column::Id",
        on_delete = "Cascade"
    )]
    User,
    #[sea_orm(
        belongs_to = "super::station::Entity",
        from = "Column::StationId",
        to = "super::station::Column::Id",
        on_delete = "Cascade"
    )]
    Station,
}

impl ActiveModelBehavior for ActiveModel {}

/// The stations assigned to `user_id`, by id.
///
/// # Errors
/// On database errors.
pub async fn stations_of(db: &impl ConnectionTrait, user_id: i32) -> Result<Vec<i32>, DbErr> {
    Entity::find()
        .select_only()
        .column(Column::StationId)
        .filter(Column::UserId.eq(user_id))
        .order_by_asc(Column::StationId)
        .into_tuple::<i32>()
        .all(db)
        .await
}
