//! One timestamped value of a sensor (`CapteurData`). Unique per sensor and
//! device time (`ts_us`, microseconds), so a redelivered reading is stored once.

use sea_orm::entity::prelude::*;

#[derive(Clone, Debug, PartialEq, DeriveEntityModel)]
#[sea_orm(table_name = "sensor_readings")]
pub struct Model {
    #[sea_orm(primary_key)]
    pub id: i32,
    pub sensor_id: i32,
    pub value: f64,
    /// The device's clock when it read the value.
    pub ts: DateTimeUtc,
    pub ts_us: i64,
    pub received_at: DateTimeUtc,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {
    #[sea_orm(
        belongs_to = "super::sensor::Entity",
        from = "Column::SensorId",
        to = "super::sensor::Column::Id",
        on_delete = "Cascade"
    )]
    Sensor,
}

impl Related<super::sensor::Entity> for Entity {
    fn to() -> RelationDef {
        Relation::Sensor.def()
    }
}

impl ActiveModelBehavior for ActiveModel {}
