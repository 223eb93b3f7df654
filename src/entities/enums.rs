//! Enumerations stored as short strings.

use sea_orm::entity::prelude::*;
use serde::{Deserialize, Serialize};

/// Operational lifecycle of a station (`StationStatus`).
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, Hash, EnumIter, DeriveActiveEnum, Serialize, Deserialize,
)]
#[sea_orm(rs_type = "String", db_type = "String(StringLen::N(16))")]
#[serde(rename_all = "snake_case")]
pub enum StationStatus {
    #[sea_orm(string_value = "active")]
    Active,
    #[sea_orm(string_value = "maintenance")]
    Maintenance,
    #[sea_orm(string_value = "inactive")]
    Inactive,
}

/// Operational lifecycle of a cabinet (`BorneStatus`).
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, Hash, EnumIter, DeriveActiveEnum, Serialize, Deserialize,
)]
#[sea_orm(rs_type = "String", db_type = "String(StringLen::N(16))")]
#[serde(rename_all = "snake_case")]
pub enum CabinetStatus {
    #[sea_orm(string_value = "active")]
    Active,
    #[sea_orm(string_value = "maintenance")]
    Maintenance,
    #[sea_orm(string_value = "inactive")]
    Inactive,
}

/// Availability of a bay (`EmplacementStatus`), owned by reservations and maintenance.
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, Hash, EnumIter, DeriveActiveEnum, Serialize, Deserialize,
)]
#[sea_orm(rs_type = "String", db_type = "String(StringLen::N(16))")]
#[serde(rename_all = "snake_case")]
pub enum BayStatus {
    #[sea_orm(string_value = "available")]
    Available,
    #[sea_orm(string_value = "reserved")]
    Reserved,
    #[sea_orm(string_value = "occupied")]
    Occupied,
    #[sea_orm(string_value = "maintenance")]
    Maintenance,
}

/// Physical lock of a bay as last reported by its device (`LockState`).
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, Hash, EnumIter, DeriveActiveEnum, Serialize, Deserialize,
)]
#[sea_orm(rs_type = "String", db_type = "String(StringLen::N(16))")]
#[serde(rename_all = "snake_case")]
pub enum LockState {
    #[sea_orm(string_value = "locked")]
    Locked,
    #[sea_orm(string_value = "unlocked")]
    Unlocked,
    #[sea_orm(string_value = "blocked")]
    Blocked,
}

/// Hardware family of a device (`DeviceType`).
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, Hash, EnumIter, DeriveActiveEnum, Serialize, Deserialize,
)]
#[sea_orm(rs_type = "String", db_type = "String(StringLen::N(16))")]
#[serde(rename_all = "snake_case")]
pub enum DeviceType {
    #[sea_orm(string_value = "esp32")]
    Esp32,
}

/// Connectivity and activity of a device (`DeviceStatus`).
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, Hash, EnumIter, DeriveActiveEnum, Serialize, Deserialize,
)]
#[sea_orm(rs_type = "String", db_type = "String(StringLen::N(16))")]
#[serde(rename_all = "snake_case")]
pub enum DeviceStatus {
    #[sea_orm(string_value = "provisioned")]
    Provisioned,
    #[sea_orm(string_value = "online")]
    Online,
    #[sea_orm(string_value = "idle")]
    Idle,
    #[sea_orm(string_value = "offline")]
    Offline,
    #[sea_orm(string_value = "charging")]
    Charging,
    #[sea_orm(string_value = "error")]
    Error,
}

/// Where a device stands against its expected firmware (`FirmwareUpdateStatus`).
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, Hash, EnumIter, DeriveActiveEnum, Serialize, Deserialize,
)]
#[sea_orm(rs_type = "String", db_type = "String(StringLen::N(24))")]
#[serde(rename_all = "snake_case")]
pub enum FirmwareUpdateStatus {
    #[sea_orm(string_value = "unknown")]
    Unknown,
    #[sea_orm(string_value = "up_to_date")]
    UpToDate,
    #[sea_orm(string_value = "update_required")]
    UpdateRequired,
    #[sea_orm(string_value = "update_scheduled")]
    UpdateScheduled,
    #[sea_orm(string_value = "updating")]
    Updating,
    #[sea_orm(string_value = "failed")]
    Failed,
}

/// Lifecycle of an account (`UserStatus`): only active accounts can sign in.
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, Hash, EnumIter, DeriveActiveEnum, Serialize, Deserialize,
)]
#[sea_orm(rs_type = "String", db_type = "String(StringLen::N(16))")]
#[serde(rename_all = "snake_case")]
pub enum UserStatus {
    #[sea_orm(string_value = "active")]
    Active,
    #[sea_orm(string_value = "suspended")]
    Suspended,
    #[sea_orm(string_value = "archived")]
    Archived,
}

/// What a consent is about (`ConsentType`).
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, Hash, EnumIter, DeriveActiveEnum, Serialize, Deserialize,
)]
#[sea_orm(rs_type = "String", db_type = "String(StringLen::N(32))")]
#[serde(rename_all = "snake_case")]
pub enum ConsentType {
    #[sea_orm(string_value = "terms")]
    Terms,
    #[sea_orm(string_value = "privacy_policy")]
    PrivacyPolicy,
    #[sea_orm(string_value = "notifications")]
    Notifications,
}

/// A consent decision (`ConsentStatus`).
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, Hash, EnumIter, DeriveActiveEnum, Serialize, Deserialize,
)]
#[sea_orm(rs_type = "String", db_type = "String(StringLen::N(16))")]
#[serde(rename_all = "snake_case")]
pub enum ConsentStatus {
    #[sea_orm(string_value = "accepted")]
    Accepted,
    #[sea_orm(string_value = "refused")]
    Refused,
}

/// Outcome of a security event (`SecurityLogStatus`).
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, Hash, EnumIter, DeriveActiveEnum, Serialize, Deserialize,
)]
#[sea_orm(rs_type = "String", db_type = "String(StringLen::N(16))")]
#[serde(rename_all = "snake_case")]
pub enum SecurityLogStatus {
    #[sea_orm(string_value = "success")]
    Success,
    #[sea_orm(string_value = "failure")]
    Failure,
}

/// How serious an alert is (`AlertSeverity`), in increasing order.
#[derive(
    Debug,
    Clone,
    Copy,
    PartialEq,
    Eq,
    PartialOrd,
    Ord,
    Hash,
    EnumIter,
    DeriveActiveEnum,
    Serialize,
    Deserialize,
)]
#[sea_orm(rs_type = "String", db_type = "String(StringLen::N(16))")]
#[serde(rename_all = "snake_case")]
pub enum AlertSeverity {
    #[sea_orm(string_value = "low")]
    Low,
    #[sea_orm(string_value = "medium")]
    Medium,
    #[sea_orm(string_value = "high")]
    High,
    #[sea_orm(string_value = "critical")]
    Critical,
}

/// Lifecycle of an alert (`AlertStatus`): `new → active → in_progress → resolved → closed`.
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, Hash, EnumIter, DeriveActiveEnum, Serialize, Deserialize,
)]
#[sea_orm(rs_type = "String", db_type = "String(StringLen::N(16))")]
#[serde(rename_all = "snake_case")]
pub enum AlertStatus {
    #[sea_orm(string_value = "new")]
    New,
    #[sea_orm(string_value = "active")]
    Active,
    /// Taken in charge by a technician.
    #[sea_orm(string_value = "in_progress")]
    InProgress,
    #[sea_orm(string_value = "resolved")]
    Resolved,
    #[sea_orm(string_value = "closed")]
    Closed,
}

impl AlertStatus {
    /// Whether the alert still stands (its condition is open).
    pub fn is_open(self) -> bool {
        matches!(self, Self::New | Self::Active | Self::InProgress)
    }
}

/// What an alert is about (`Alerte.type`).
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, Hash, EnumIter, DeriveActiveEnum, Serialize, Deserialize,
)]
#[sea_orm(rs_type = "String", db_type = "String(StringLen::N(32))")]
#[serde(rename_all = "snake_case")]
pub enum AlertKind {
    #[sea_orm(string_value = "over_temperature")]
    OverTemperature,
    #[sea_orm(string_value = "smoke")]
    Smoke,
    #[sea_orm(string_value = "over_current")]
    OverCurrent,
    #[sea_orm(string_value = "voltage_out_of_range")]
    VoltageOutOfRange,
    #[sea_orm(string_value = "device_offline")]
    DeviceOffline,
    #[sea_orm(string_value = "command_failed")]
    CommandFailed,
    #[sea_orm(string_value = "lock_blocked")]
    LockBlocked,
    #[sea_orm(string_value = "session_error")]
    SessionError,
    #[sea_orm(string_value = "mac_mismatch")]
    MacMismatch,
}
