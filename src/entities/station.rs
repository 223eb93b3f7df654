//! A physical charging station and its public location (`Station`).

use sea_orm::entity::prelude::*;

use super::StationStatus;

#[derive(Clone, Debug, PartialEq, DeriveEntityModel)]
#[sea_orm(table_name = "stations")]
pub struct Model {
    #[sea_orm(primary_key)]
    pub id: i32,
    pub name: String,
    pub location_text: String,
    pub latitude: Option<f64>,
    pub longitude: Option<f64>,
    pub status: StationStatus,
    pub created_at: DateTimeUtc,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {
    #[sea_orm(has_many = "super::cabinet::Entity")]
    Cabinets,
    #[sea_orm(has_many = "super::bay::Entity")]
    Bays,
}

impl Related<super::cabinet::Entity> for Entity {
    fn to() -> RelationDef {
        Relation::Cabinets.def()
    }
}

impl Related<super::bay::Entity> for Entity {
    fn to() -> RelationDef {
        Relation::Bays.def()
    }
}

impl ActiveModelBehavior for ActiveModel {}

impl Entity {
    /// The stations whose operation `principal` may see: every station for staff, the assigned ones for a technician, its own for a kiosk. (The public listing of stations is `Entity::find()`.)
    pub fn visible_to(principal: &crate::auth::Principal) -> Select<Self> {
        Self::find().filter(principal.stations().on(Column::Id))
    }
}
