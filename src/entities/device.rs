//! The embedded controller installed on a bay (`Device`).
//!
//! `mac_address` is the registered identity that incoming MQTT messages must match;
//! `hardware_mac` is the MAC the device last reported. `state_order_us` (microseconds since the epoch) and
//! `state_seq` order state reports: a report is applied only when it is newer, so
//! a message delivered late by another replica never overwrites a newer state.
//! `mqtt_*` are the device's broker credentials (`devices::credentials`).

use sea_orm::entity::prelude::*;

use super::{DeviceStatus, DeviceType, FirmwareUpdateStatus};

#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "devices")]
pub struct Model {
    #[sea_orm(primary_key)]
    pub id: i32,
    #[sea_orm(unique)]
    pub bay_id: i32,
    pub device_type: DeviceType,
    pub firmware_version: Option<String>,
    pub expected_firmware_version: Option<String>,
    pub firmware_update_status: FirmwareUpdateStatus,
    pub ota_update_url: Option<String>,
    pub ota_target_version: Option<String>,
    pub ota_requested_at: Option<DateTimeUtc>,
    pub ota_completed_at: Option<DateTimeUtc>,
    pub ota_last_error: Option<String>,
    pub ip_address: Option<String>,
    pub slot_id: i32,
    pub hardware_mac: Option<String>,
    #[sea_orm(unique)]
    pub mac_address: String,
    pub last_seen: Option<DateTimeUtc>,
    pub status: DeviceStatus,
    pub plugged: bool,
    pub state_order_us: Option<i64>,
    pub state_seq: Option<i64>,
    pub last_command_id: Option<String>,
    pub last_command_action: Option<String>,
    pub last_command_status: Option<String>,
    pub last_command_message: Option<String>,
    pub last_command_at: Option<DateTimeUtc>,
    /// MQTT login of the device; `None` until credentials are issued.
    #[sea_orm(unique)]
    pub mqtt_username: Option<String>,
    /// `$6$<salt>$<sha512>` (Mosquitto's format); `None` when revoked or never issued.
    pub mqtt_password_hash: Option<String>,
    /// Bumped at every issue: derives the command-signing key, so rotation changes it.
    pub mqtt_key_generation: i32,
    pub mqtt_credentials_issued_at: Option<DateTimeUtc>,
    pub created_at: DateTimeUtc,
    /// When staff took the device out of service; its messages are refused since.
    pub retired_at: Option<DateTimeUtc>,
    /// When this server last applied a report of the device (server clock):
    /// what the heartbeat timeout reads.
    pub last_heard_at: Option<DateTimeUtc>,
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

impl Entity {
    /// The devices of the stations `principal` may see operated, through
    /// their bay (see `station::Entity::visible_to`).
    pub fn visible_to(principal: &crate::auth::Principal) -> Select<Self> {
        use sea_orm::{JoinType, QuerySelect as _};
        Self::find()
            .join(JoinType::InnerJoin, Relation::Bay.def())
            .filter(principal.stations().on(super::bay::Column::StationId))
    }
}
