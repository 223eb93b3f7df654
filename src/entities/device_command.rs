//! One command sent to a bay's device and what became of it (`device_command_log`).
//!
//! `status` moves `pending → accepted → done | failed | rejected`, or to
//! `timed_out` when the device does not finish it by `deadline_us` (integer
//! microseconds, compared numerically on every backend), or is `unsent` when
//! the transport refused it. A final status is never replaced: that is what
//! makes a redelivered or late acknowledgement harmless (it is counted in
//! `ignored_acks`). `owner` names the step that sent the command
//! (`<kind>:<id>`), which learns the final status in the same transaction.

use sea_orm::entity::prelude::*;
use serde::{Deserialize, Serialize};

/// Where a command stands.
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, Hash, EnumIter, DeriveActiveEnum, Serialize, Deserialize,
)]
#[sea_orm(rs_type = "String", db_type = "String(StringLen::N(16))")]
#[serde(rename_all = "snake_case")]
pub enum CommandStatus {
    /// Sent, not yet acknowledged.
    #[sea_orm(string_value = "pending")]
    Pending,
    /// The device took it and is working on it.
    #[sea_orm(string_value = "accepted")]
    Accepted,
    #[sea_orm(string_value = "done")]
    Done,
    #[sea_orm(string_value = "failed")]
    Failed,
    #[sea_orm(string_value = "rejected")]
    Rejected,
    /// The device did not finish it before its deadline.
    #[sea_orm(string_value = "timed_out")]
    TimedOut,
    /// The transport refused it (no credentials, MQTT down): it never left.
    #[sea_orm(string_value = "unsent")]
    Unsent,
}

impl CommandStatus {
    /// The stored (and protocol) spelling.
    pub const fn as_str(self) -> &'static str {
        match self {
            Self::Pending => "pending",
            Self::Accepted => "accepted",
            Self::Done => "done",
            Self::Failed => "failed",
            Self::Rejected => "rejected",
            Self::TimedOut => "timed_out",
            Self::Unsent => "unsent",
        }
    }

    /// The statuses still waiting for the device.
    pub const OPEN: [Self; 2] = [Self::Pending, Self::Accepted];

    pub fn is_final(self) -> bool {
        !Self::OPEN.contains(&self)
    }

    pub fn succeeded(self) -> bool {
        self == Self::Done
    }
}

#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "device_command_log")]
pub struct Model {
    #[sea_orm(primary_key)]
    pub id: i32,
    /// The UUID the device acknowledges.
    #[sea_orm(unique)]
    pub command_id: String,
    pub device_id: i32,
    pub bay_id: i32,
    /// `unlock`, `start_charge`, … (the protocol's spelling).
    pub action: String,
    /// The command's `params`, as JSON.
    pub payload: String,
    pub owner: Option<String>,
    pub sent_at: DateTimeUtc,
    pub deadline_us: i64,
    pub status: CommandStatus,
    pub acked_at: Option<DateTimeUtc>,
    /// The device's message on failure or rejection, or why it timed out or was not sent.
    pub error: Option<String>,
    /// Acknowledgements that arrived after the final one (redeliveries, late answers).
    pub ignored_acks: i32,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {
    #[sea_orm(
        belongs_to = "super::device::Entity",
        from = "Column::DeviceId",
        to = "super::device::Column::Id",
        on_delete = "Cascade"
    )]
    Device,
    #[sea_orm(
        belongs_to = "super::bay::Entity",
        from = "Column::BayId",
        to = "super::bay::Column::Id",
        on_delete = "Cascade"
    )]
    Bay,
}

impl Related<super::device::Entity> for Entity {
    fn to() -> RelationDef {
        Relation::Device.def()
    }
}

impl ActiveModelBehavior for ActiveModel {}
