//! A station assigned to a technician (`TechnicienStation`): the stations whose
//! supervision a technician sees, with their role there and whether the
//! assignment is active. Read when a technician's principal is built, so a
//! technician principal carries its station scope: only active assignments
//! count, and an observer's only to look.

use sea_orm::entity::prelude::*;
use sea_orm::{QueryOrder, QuerySelect};
use serde::{Deserialize, Serialize};

/// What a technician does at a station (`TechnicianStationRole`).
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, Hash, EnumIter, DeriveActiveEnum, Serialize, Deserialize,
)]
#[sea_orm(rs_type = "String", db_type = "String(StringLen::N(16))")]
#[serde(rename_all = "snake_case")]
pub enum AssignmentRole {
    /// The station's referent technician (`referent`).
    #[sea_orm(string_value = "lead")]
    Lead,
    /// Works on the station (`intervenant`).
    #[sea_orm(string_value = "contributor")]
    Contributor,
    /// Follows the station without acting on it (`observateur`).
    #[sea_orm(string_value = "observer")]
    Observer,
}

#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "station_assignments")]
pub struct Model {
    #[sea_orm(primary_key, auto_increment = false)]
    pub user_id: i32,
    #[sea_orm(primary_key, auto_increment = false)]
    pub station_id: i32,
    pub assigned_at: DateTimeUtc,
    pub role: AssignmentRole,
    pub is_active: bool,
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

/// The stations of `user_id`'s active assignments, by id, each with whether
/// it is an observer's.
///
/// # Errors
/// On database errors.
pub async fn stations_of(
    db: &impl ConnectionTrait,
    user_id: i32,
) -> Result<Vec<(i32, bool)>, DbErr> {
    let rows: Vec<(i32, AssignmentRole)> = Entity::find()
        .select_only()
        .column(Column::StationId)
        .column(Column::Role)
        .filter(Column::UserId.eq(user_id))
        .filter(Column::IsActive.eq(true))
        .order_by_asc(Column::StationId)
        .into_tuple()
        .all(db)
        .await?;
    Ok(rows
        .into_iter()
        .map(|(station, role)| (station, role == AssignmentRole::Observer))
        .collect())
}
