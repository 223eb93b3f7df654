//! A maintenance intervention on a station (`Maintenance`), planned and then
//! done (or cancelled) by a technician.

use sea_orm::entity::prelude::*;
use serde::{Deserialize, Serialize};

/// Where an intervention stands (`MaintenanceStatus`).
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, Hash, EnumIter, DeriveActiveEnum, Serialize, Deserialize,
)]
#[sea_orm(rs_type = "String", db_type = "String(StringLen::N(16))")]
#[serde(rename_all = "snake_case")]
pub enum MaintenanceStatus {
    #[sea_orm(string_value = "planned")]
    Planned,
    #[sea_orm(string_value = "in_progress")]
    InProgress,
    #[sea_orm(string_value = "done")]
    Done,
    #[sea_orm(string_value = "cancelled")]
    Cancelled,
}

#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "maintenances")]
pub struct Model {
    #[sea_orm(primary_key)]
    pub id: i32,
    pub station_id: i32,
    /// The technician's profile; null once it is deleted.
    pub technician_id: Option<i32>,
    /// What kind of intervention (`preventive`, `corrective`, …), as staff name it.
    pub kind: String,
    pub description: String,
    pub status: MaintenanceStatus,
    pub planned_at: DateTimeUtc,
    pub done_at: Option<DateTimeUtc>,
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
    #[sea_orm(
        belongs_to = "super::technician::Entity",
        from = "Column::TechnicianId",
        to = "super::technician::Column::Id",
        on_delete = "SetNull"
    )]
    Technician,
}

impl ActiveModelBehavior for ActiveModel {}

impl Entity {
    /// The interventions on the stations `principal` may see operated.
    pub fn visible_to(principal: &crate::auth::Principal) -> Select<Self> {
        Self::find().filter(principal.stations().on(Column::StationId))
    }
}
