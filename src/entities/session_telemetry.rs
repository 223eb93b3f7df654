//! One measurement of a charging session (`SessionTelemetry`): current,
//! voltage and the session's energy so far, at the device's time. Unique per
//! session, device time (`ts_us`, microseconds) and device, so a redelivered
//! sample is stored once; that key is also its session's range index.

use sea_orm::entity::prelude::*;

#[derive(Clone, Debug, PartialEq, DeriveEntityModel)]
#[sea_orm(table_name = "session_telemetry")]
pub struct Model {
    #[sea_orm(primary_key)]
    pub id: i64,
    pub session_id: i32,
    pub device_id: i32,
    pub bay_id: i32,
    pub current_a: f64,
    pub voltage_v: f64,
    pub energy_kwh: f64,
    /// The device's clock when it measured.
    pub ts: DateTimeUtc,
    pub ts_us: i64,
    pub received_at: DateTimeUtc,
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

impl Related<super::bay::Entity> for Entity {
    fn to() -> RelationDef {
        Relation::Bay.def()
    }
}

impl ActiveModelBehavior for ActiveModel {}
