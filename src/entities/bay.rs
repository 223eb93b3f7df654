//! A numbered charging bay within a cabinet (`Emplacement`).
//!
//! `station_id` is denormalized from the cabinet so station-wide queries need no
//! join; whoever moves a cabinet moves its bays' `station_id` in the same
//! transaction.

use sea_orm::entity::prelude::*;
use serde::{Deserialize, Serialize};

use super::{BayStatus, LockState};

#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel, Serialize, Deserialize)]
#[sea_orm(table_name = "bays")]
pub struct Model {
    #[sea_orm(primary_key)]
    pub id: i32,
    pub station_id: i32,
    pub cabinet_id: i32,
    pub number: i32,
    pub status: BayStatus,
    pub lock_state: LockState,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {
    #[sea_orm(
        belongs_to = "super::station::Entity",
        from = "Column::StationId",
        to = "super::station::Column::Id",
        on_delete = "Cascade"
    )]
    Station,
    #[sea_orm(
        belongs_to = "super::cabinet::Entity",
        from = "Column::CabinetId",
        to = "super::cabinet::Column::Id",
        on_delete = "Cascade"
    )]
    Cabinet,
    #[sea_orm(has_one = "super::device::Entity")]
    Device,
}

impl Related<super::station::Entity> for Entity {
    fn to() -> RelationDef {
        Relation::Station.def()
    }
}

impl Related<super::cabinet::Entity> for Entity {
    fn to() -> RelationDef {
        Relation::Cabinet.def()
    }
}

impl Related<super::device::Entity> for Entity {
    fn to() -> RelationDef {
        Relation::Device.def()
    }
}

impl ActiveModelBehavior for ActiveModel {}

impl Entity {
    /// The bays of the stations `principal` may see operated (see `station::Entity::visible_to`).
    pub fn visible_to(principal: &crate::auth::Principal) -> Select<Self> {
        Self::find().filter(principal.stations().on(Column::StationId))
    }
}
