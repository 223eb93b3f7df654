//! An event a kiosk accepted offline and uploaded (`kiosk_offline_events`):
//! stored first as `pending`, then reconciled once to `applied` or `conflict`
//! (with a reason) by an `UPDATE` conditional on `pending`. The event id is
//! the kiosk's, unique per cabinet.

use sea_orm::entity::prelude::*;

#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "kiosk_offline_events")]
pub struct Model {
    #[sea_orm(primary_key)]
    pub id: i32,
    pub cabinet_id: i32,
    pub event_id: String,
    /// `authenticated`, `session_started` or `session_stopped`.
    pub kind: String,
    pub bay_id: i32,
    pub reservation_id: Option<i32>,
    /// `rfid`, `qr` or `code`, as the kiosk said.
    pub method: Option<String>,
    /// On the kiosk's clock.
    pub occurred_at: DateTimeUtc,
    pub received_at: DateTimeUtc,
    /// `pending`, `applied` or `conflict`.
    pub outcome: String,
    pub reason: Option<String>,
    pub detail: Option<String>,
    pub session_id: Option<i32>,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
