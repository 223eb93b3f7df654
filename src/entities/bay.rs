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
    /// Raised by every announced change of the bay, in the statement that
    /// makes it: the bus drops an announcement older than one it has
    /// already published for the bay. (Events of earlier versions have none.)
    #[serde(default)]
    pub revision: i64,
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

/// A bay's revision after an announced change, for the `UPDATE` that makes
/// it: raised under the row's lock, so revisions follow the writes' order.
pub fn next_revision() -> sea_orm::sea_query::Expr {
    use sea_orm::sea_query::ExprTrait as _;
    Expr::col(Column::Revision).add(1)
}
