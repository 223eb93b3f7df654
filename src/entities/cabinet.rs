//! One physical charging cabinet of a station (`Borne`). Its `mqtt_prefix` is the
//! topic prefix its bay devices publish under.

use sea_orm::entity::prelude::*;

use super::CabinetStatus;

#[derive(Clone, Debug, PartialEq, DeriveEntityModel)]
#[sea_orm(table_name = "cabinets")]
pub struct Model {
    #[sea_orm(primary_key)]
    pub id: i32,
    pub station_id: i32,
    pub number: i32,
    pub name: String,
    #[sea_orm(unique)]
    pub mqtt_prefix: String,
    pub status: CabinetStatus,
    pub created_at: DateTimeUtc,
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
    #[sea_orm(has_many = "super::bay::Entity")]
    Bays,
}

impl Related<super::station::Entity> for Entity {
    fn to() -> RelationDef {
        Relation::Station.def()
    }
}

impl Related<super::bay::Entity> for Entity {
    fn to() -> RelationDef {
        Relation::Bays.def()
    }
}

impl ActiveModelBehavior for ActiveModel {}

impl Entity {
    /// The cabinets of the stations `principal` may see operated (see `station::Entity::visible_to`).
    pub fn visible_to(principal: &crate::auth::Principal) -> Select<Self> {
        Self::find().filter(principal.stations().on(Column::StationId))
    }
}
