//! An operational alert (`Alerte`), raised by the supervision rules.
//!
//! `open_key` (`<subject>:<kind>`) is set while the alert is open and unique:
//! a repeated condition updates the open alert (`last_seen`,
//! `notification_count`) instead of opening another, whichever replica sees
//! it; closing the condition clears it.

use sea_orm::entity::prelude::*;
use serde::{Deserialize, Serialize};

use super::{AlertKind, AlertSeverity, AlertStatus};

#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel, Serialize, Deserialize)]
#[sea_orm(table_name = "alerts")]
pub struct Model {
    #[sea_orm(primary_key)]
    pub id: i32,
    pub kind: AlertKind,
    pub severity: AlertSeverity,
    pub status: AlertStatus,
    pub message: String,
    pub station_id: i32,
    pub bay_id: Option<i32>,
    pub device_id: Option<i32>,
    /// The sensor reading that raised it, if one did (`Alerte.data`).
    pub reading_id: Option<i32>,
    pub session_id: Option<i32>,
    /// When it was raised (`Alerte.timestamp`).
    pub raised_at: DateTimeUtc,
    pub first_seen: DateTimeUtc,
    pub last_seen: DateTimeUtc,
    pub notified_at: Option<DateTimeUtc>,
    pub notification_count: i32,
    /// `notification_count` when it was last notified: seen again since then
    /// when the count has grown (counts the server keeps, whatever the
    /// device's clock).
    pub notified_count: i32,
    pub assigned_technician_id: Option<i32>,
    pub acknowledged_by_id: Option<i32>,
    pub acknowledged_at: Option<DateTimeUtc>,
    pub resolved_by_id: Option<i32>,
    pub resolved_at: Option<DateTimeUtc>,
    pub resolution_note: Option<String>,
    pub open_key: Option<String>,
    /// Raised by every announced change of the alert, in the statement that
    /// makes it: the bus drops an announcement older than one it has
    /// already published for the alert. (Events of earlier versions have none.)
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
}

impl ActiveModelBehavior for ActiveModel {}

impl Entity {
    /// The alerts of the stations `principal` supervises: all for staff, the
    /// assigned ones for a technician, none otherwise.
    pub fn visible_to(principal: &crate::auth::Principal) -> Select<Self> {
        Self::find().filter(principal.stations().on(Column::StationId))
    }
}

/// An alert's revision after an announced change, for the statement that
/// makes it: raised under the row's lock, so revisions follow the writes' order.
pub fn next_revision() -> sea_orm::sea_query::Expr {
    use sea_orm::sea_query::ExprTrait as _;
    Expr::col((Entity, Column::Revision)).add(1)
}
