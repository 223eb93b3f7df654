//! A charging session at a bay (`Session`): opened when a kiosk validates a
//! reservation's credential, driven by device acknowledgements and reports.
//!
//! `ended_at` is set when the session reaches `stopped` or `error`; a partial
//! unique index keeps one open session per bay. `plug_deadline_us` (integer
//! microseconds) is when a session still waiting for the plug ends;
//! `start_command_id` is the `start_charge` command sent once the vehicle is
//! plugged in (so it is sent once).

use sea_orm::entity::prelude::*;
use serde::{Deserialize, Serialize};

use super::reservation::AccessMode;

/// Where a charging session stands (`SessionState`).
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, Hash, EnumIter, DeriveActiveEnum, Serialize, Deserialize,
)]
#[sea_orm(rs_type = "String", db_type = "String(StringLen::N(20))")]
#[serde(rename_all = "snake_case")]
pub enum SessionState {
    #[sea_orm(string_value = "reserved")]
    Reserved,
    #[sea_orm(string_value = "access_validated")]
    AccessValidated,
    #[sea_orm(string_value = "waiting_plug")]
    WaitingPlug,
    #[sea_orm(string_value = "charging")]
    Charging,
    #[sea_orm(string_value = "stopping")]
    Stopping,
    #[sea_orm(string_value = "stopped")]
    Stopped,
    #[sea_orm(string_value = "error")]
    Error,
}

impl SessionState {
    /// A session in one of these is over.
    pub fn is_final(self) -> bool {
        matches!(self, Self::Stopped | Self::Error)
    }
}

#[derive(Clone, Debug, PartialEq, DeriveEntityModel)]
#[sea_orm(table_name = "charging_sessions")]
pub struct Model {
    #[sea_orm(primary_key)]
    pub id: i32,
    pub reservation_id: i32,
    pub user_id: i32,
    pub bay_id: i32,
    pub cabinet_id: i32,
    pub state: SessionState,
    /// How the customer authenticated at the kiosk.
    pub method: AccessMode,
    pub opened_at: DateTimeUtc,
    pub state_changed_at: DateTimeUtc,
    /// How long it waits for the plug once unlocked (the setting when it opened).
    pub plug_timeout_secs: i32,
    pub plug_deadline_us: Option<i64>,
    pub start_command_id: Option<String>,
    pub charging_since: Option<DateTimeUtc>,
    pub ended_at: Option<DateTimeUtc>,
    /// The meter total for the session, from the device's telemetry.
    pub energy_kwh: Option<f64>,
    /// Why the session ended in `error`.
    pub error: Option<String>,
    /// Raised by every announced change of the session (its state, its
    /// meter), in the statement that makes it: the bus drops an announcement
    /// older than one it has already published for the session.
    pub revision: i64,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {
    #[sea_orm(
        belongs_to = "super::reservation::Entity",
        from = "Column::ReservationId",
        to = "super::reservation::Column::Id",
        on_delete = "Cascade"
    )]
    Reservation,
    #[sea_orm(
        belongs_to = "super::bay::Entity",
        from = "Column::BayId",
        to = "super::bay::Column::Id",
        on_delete = "Cascade"
    )]
    Bay,
}

impl Related<super::reservation::Entity> for Entity {
    fn to() -> RelationDef {
        Relation::Reservation.def()
    }
}

impl ActiveModelBehavior for ActiveModel {}

/// A session's revision after an announced change, for the `UPDATE` that
/// makes it: raised under the row's lock, so revisions follow the writes' order.
pub fn next_revision() -> sea_orm::sea_query::Expr {
    use sea_orm::sea_query::ExprTrait as _;
    Expr::col(Column::Revision).add(1)
}
