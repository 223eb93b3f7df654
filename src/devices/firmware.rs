//! Firmware policy and over-the-air updates (seed 002 `Device` firmware
//! fields, `admin_device_schedule_ota`).
//!
//! **Policy.** A device is expected to run its own `expected_firmware_version`
//! or, without one, the global `VOLTGATE_FIRMWARE_EXPECTED_VERSION`; it needs
//! an update when that is set and the version it reported (`fw` in its state)
//! differs.
//!
//! **Status.** `UNKNOWN`, `UP_TO_DATE` and `UPDATE_REQUIRED` describe
//! compliance and are read from the versions, so a new policy applies at
//! once. `UPDATE_SCHEDULED`, `UPDATING` and `FAILED` describe an update and are
//! stored: staff schedule one (`UPDATE_SCHEDULED`, the `ota_update` command is
//! sent), the device accepts it (`UPDATING`) and, after installing and
//! restarting, reports the target version (`UP_TO_DATE`, `ota_completed_at`).
//! A failed, refused, unsent or timed-out command is `FAILED` with
//! `ota_last_error`; a device that said done stays `UPDATING` until it
//! reports the target version.
//! Each change is one conditional `UPDATE` on the update still being the one
//! it belongs to (its target version, still open), so late or repeated
//! acknowledgements change nothing, and two staff scheduling at once start
//! one update.
//!
//! By hand staff may set only `FAILED` (give an update up) or `UNKNOWN`
//! (back to compliance read from the versions); the others come from
//! scheduling and from the device.

use async_trait::async_trait;
use chrono::{DateTime, TimeDelta, Utc};
use clap::Args;
use sea_orm::sea_query::{Expr, ExprTrait as _};
use sea_orm::{
    ColumnTrait, ConnectionTrait, DatabaseTransaction, DbErr, EntityTrait, QueryFilter,
    TransactionTrait,
};

use super::commands::CommandAction;
use super::commands_log::{self, CommandOwner, Owner, SendOptions};
use crate::bus::DomainEvent;
use crate::db::FindOr as _;
use crate::entities::device_command::{self, CommandStatus};
use crate::entities::{FirmwareUpdateStatus, device};
use crate::error::{AppError, AppResult, Reason};
use crate::services::ServiceContext;

/// Settings of the firmware policy (flags and environment variables of `serve`).
#[derive(Debug, Clone, Default, Args)]
pub struct FirmwareSettings {
    /// The firmware version every device is expected to run, unless its own
    /// `expectedFirmwareVersion` says otherwise. Unset: only devices with
    /// their own expected version are checked.
    #[arg(
        long = "firmware-expected-version",
        env = "VOLTGATE_FIRMWARE_EXPECTED_VERSION"
    )]
    pub expected_version: Option<String>,

    /// Minutes a device has to download, install and acknowledge an update
    /// before it is failed as timed out.
    #[arg(
        long = "ota-timeout-minutes",
        env = "VOLTGATE_OTA_TIMEOUT_MINUTES",
        default_value_t = 15
    )]
    pub ota_timeout_minutes: i64,
}

impl FirmwareSettings {
    fn ota_timeout(&self) -> TimeDelta {
        TimeDelta::minutes(self.ota_timeout_minutes.clamp(1, 24 * 60))
    }

    /// The version `device` is expected to run: its own, or the global one.
    pub fn expected_for<'a>(&'a self, device: &'a device::Model) -> Option<&'a str> {
        device
            .expected_firmware_version
            .as_deref()
            .or(self.expected_version.as_deref())
            .filter(|v| !v.trim().is_empty())
    }

    /// Whether `device` should be updated: an expected version is set and
    /// the reported one differs (or is not known yet).
    pub fn update_required(&self, device: &device::Model) -> bool {
        self.expected_for(device)
            .is_some_and(|expected| device.firmware_version.as_deref() != Some(expected))
    }

    /// The status shown: an update's own, else compliance from the versions.
    pub fn status(&self, device: &device::Model) -> FirmwareUpdateStatus {
        use FirmwareUpdateStatus as S;
        match device.firmware_update_status {
            s @ (S::UpdateScheduled | S::Updating | S::Failed) => s,
            S::Unknown | S::UpToDate | S::UpdateRequired => {
                match (
                    self.expected_for(device),
                    device.firmware_version.as_deref(),
                ) {
                    (Some(_), None) | (None, _) => S::Unknown,
                    (Some(expected), Some(reported)) if expected == reported => S::UpToDate,
                    (Some(_), Some(_)) => S::UpdateRequired,
                }
            }
        }
    }
}

/// The statuses of an update under way.
const OPEN: [FirmwareUpdateStatus; 2] = [
    FirmwareUpdateStatus::UpdateScheduled,
    FirmwareUpdateStatus::Updating,
];

/// The owner kind of `ota_update` commands; the owner's id is the device's.
const OWNER: &str = "firmware_update";

/// Most characters of an update's URL.
const MAX_URL: usize = 500;

/// An update's download address: `https://host/…`, no spaces or controls.
///
/// # Errors
/// `BAD_USER_INPUT` on `url` otherwise.
pub fn update_url(text: &str) -> AppResult<String> {
    let text = text.trim();
    let host = text
        .strip_prefix("https://")
        .and_then(|rest| rest.split(['/', '?', '#']).next())
        .unwrap_or_default();
    if text.len() > MAX_URL
        || host.is_empty()
        || text.chars().any(|c| c.is_whitespace() || c.is_control())
    {
        return Err(AppError::bad_input(
            "url",
            format!("an https:// address with a host, at most {MAX_URL} characters"),
        ));
    }
    Ok(text.to_owned())
}

/// Schedules an update of device `id` to `version`, downloaded from `url`,
/// and sends `ota_update` to it. Returns the command.
///
/// # Errors
/// `NOT_FOUND`; `CONFLICT` with `INVALID_TRANSITION` for a retired device or
/// one with an update under way; `CONFLICT` with `DEVICE_UNREACHABLE` when the
/// command cannot be sent (the update is then `FAILED`, with why).
pub async fn schedule(
    services: &ServiceContext,
    id: i32,
    version: String,
    url: String,
    staff_id: i32,
) -> AppResult<device_command::Model> {
    let now = services.now();
    let txn = services.db.begin().await?;
    let found = super::inventory::in_service(&txn, id).await?;
    let started = device::Entity::update_many()
        .col_expr(
            device::Column::FirmwareUpdateStatus,
            Expr::value(FirmwareUpdateStatus::UpdateScheduled),
        )
        .col_expr(device::Column::OtaTargetVersion, Expr::value(&version))
        .col_expr(device::Column::OtaUpdateUrl, Expr::value(&url))
        .col_expr(device::Column::OtaRequestedAt, Expr::value(now))
        .col_expr(
            device::Column::OtaCompletedAt,
            Expr::value(Option::<DateTime<Utc>>::None),
        )
        .col_expr(
            device::Column::OtaLastError,
            Expr::value(Option::<String>::None),
        )
        .filter(device::Column::Id.eq(id))
        .filter(device::Column::RetiredAt.is_null())
        .filter(device::Column::FirmwareUpdateStatus.is_not_in(OPEN))
        .exec(&txn)
        .await?;
    if started.rows_affected != 1 {
        return Err(AppError::refused(
            Reason::InvalidTransition,
            "an update of this device is under way; wait for it or set it FAILED",
        ));
    }
    txn.commit().await?;
    tracing::info!(device = id, staff = staff_id, version = %version, "firmware update scheduled");

    let mut params = serde_json::Map::new();
    params.insert("url".to_owned(), url.into());
    params.insert("version".to_owned(), version.clone().into());
    let options = SendOptions {
        owner: Some(Owner {
            kind: OWNER,
            id: i64::from(id),
        }),
        timeout: Some(services.firmware.ota_timeout()),
    };
    match commands_log::send(
        services,
        found.bay_id,
        CommandAction::OtaUpdate,
        params,
        options,
    )
    .await
    {
        Ok(command) => Ok(command),
        Err(err) => {
            let why = match &err {
                AppError::Refused { message, .. } => format!("not sent: {message}"),
                _ => "not sent".to_owned(),
            };
            settle(&services.db, id, &version, &Settled::Failed(why)).await?;
            Err(err)
        }
    }
}

/// Staff set an update's status by hand: `FAILED` gives an open update up,
/// `UNKNOWN` returns the device to compliance read from its versions.
///
/// # Errors
/// `NOT_FOUND`; `BAD_USER_INPUT` on `status` for any other status.
pub async fn set_status(
    db: &impl ConnectionTrait,
    id: i32,
    status: FirmwareUpdateStatus,
) -> AppResult<device::Model> {
    let found = device::Entity::find_by_id(id)
        .one_or_not_found(db, "device")
        .await?;
    let mut update = device::Entity::update_many()
        .col_expr(device::Column::FirmwareUpdateStatus, Expr::value(status))
        .filter(device::Column::Id.eq(id));
    match status {
        FirmwareUpdateStatus::Failed => {
            if OPEN.contains(&found.firmware_update_status) {
                update = update.col_expr(
                    device::Column::OtaLastError,
                    Expr::value("given up by staff"),
                );
            }
        }
        FirmwareUpdateStatus::Unknown => {}
        _ => {
            return Err(AppError::bad_input(
                "status",
                "staff set only FAILED or UNKNOWN; the others come from scheduling and the device",
            ));
        }
    }
    update.exec(db).await?;
    device::Entity::find_by_id(id)
        .one_or_not_found(db, "device")
        .await
}

/// What became of an update.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Settled {
    /// The device took it on.
    Accepted,
    /// The device says it installed it, at this time.
    Installed(DateTime<Utc>),
    Failed(String),
}

/// Applies `outcome` to device `id`'s update to `version`, if that update is
/// still open; returns whether it changed.
async fn settle(
    db: &impl ConnectionTrait,
    id: i32,
    version: &str,
    outcome: &Settled,
) -> Result<bool, DbErr> {
    let mut update = device::Entity::update_many()
        .filter(device::Column::Id.eq(id))
        .filter(device::Column::OtaTargetVersion.eq(version))
        .filter(device::Column::FirmwareUpdateStatus.is_in(OPEN));
    update = match outcome {
        Settled::Accepted => update
            .col_expr(
                device::Column::FirmwareUpdateStatus,
                Expr::value(FirmwareUpdateStatus::Updating),
            )
            .filter(device::Column::FirmwareUpdateStatus.eq(FirmwareUpdateStatus::UpdateScheduled)),
        // Installed: up to date if it already reports the version, else
        // updating until it does.
        Settled::Installed(at) => update
            .col_expr(
                device::Column::FirmwareUpdateStatus,
                Expr::case(
                    Expr::col(device::Column::FirmwareVersion).eq(version),
                    Expr::value(FirmwareUpdateStatus::UpToDate),
                )
                .finally(Expr::value(FirmwareUpdateStatus::Updating))
                .into(),
            )
            .col_expr(
                device::Column::OtaCompletedAt,
                Expr::case(
                    Expr::col(device::Column::FirmwareVersion).eq(version),
                    Expr::value(Some(*at)),
                )
                .finally(Expr::col(device::Column::OtaCompletedAt))
                .into(),
            ),
        Settled::Failed(why) => {
            let why: String = why.chars().take(255).collect();
            update
                .col_expr(
                    device::Column::FirmwareUpdateStatus,
                    Expr::value(FirmwareUpdateStatus::Failed),
                )
                .col_expr(device::Column::OtaLastError, Expr::value(why))
        }
    };
    Ok(update.exec(db).await?.rows_affected == 1)
}

/// Devices among `ids` that just reported the version their open update
/// targets are up to date: one `UPDATE` for a batch of state reports.
///
/// # Errors
/// On database errors.
pub async fn versions_reported(
    db: &impl ConnectionTrait,
    ids: &[i32],
    at: DateTime<Utc>,
) -> Result<u64, DbErr> {
    if ids.is_empty() {
        return Ok(0);
    }
    let done = device::Entity::update_many()
        .col_expr(
            device::Column::FirmwareUpdateStatus,
            Expr::value(FirmwareUpdateStatus::UpToDate),
        )
        .col_expr(device::Column::OtaCompletedAt, Expr::value(Some(at)))
        .filter(device::Column::Id.is_in(ids.iter().copied()))
        .filter(device::Column::FirmwareUpdateStatus.is_in(OPEN))
        .filter(Expr::col(device::Column::FirmwareVersion).equals(device::Column::OtaTargetVersion))
        .exec(db)
        .await?;
    Ok(done.rows_affected)
}

/// The version an `ota_update` command carried.
fn target_of(command: &device_command::Model) -> Option<String> {
    serde_json::from_str::<serde_json::Value>(&command.payload)
        .ok()?
        .get("version")?
        .as_str()
        .map(str::to_owned)
}

/// Learns the outcome of `ota_update` commands.
pub struct FirmwareUpdates;

#[async_trait]
impl CommandOwner for FirmwareUpdates {
    fn kind(&self) -> &'static str {
        OWNER
    }

    async fn accepted(
        &self,
        txn: &DatabaseTransaction,
        id: i64,
        command: &device_command::Model,
    ) -> Result<Vec<DomainEvent>, DbErr> {
        if let (Ok(id), Some(version)) = (i32::try_from(id), target_of(command)) {
            settle(txn, id, &version, &Settled::Accepted).await?;
        }
        Ok(Vec::new())
    }

    async fn settled(
        &self,
        txn: &DatabaseTransaction,
        id: i64,
        command: &device_command::Model,
    ) -> Result<Vec<DomainEvent>, DbErr> {
        let (Ok(id), Some(version)) = (i32::try_from(id), target_of(command)) else {
            return Ok(Vec::new());
        };
        let outcome = match command.status {
            CommandStatus::Done => Settled::Installed(command.acked_at.unwrap_or_else(Utc::now)),
            status => Settled::Failed(
                command
                    .error
                    .clone()
                    .unwrap_or_else(|| format!("the device answered {}", status.as_str())),
            ),
        };
        if settle(txn, id, &version, &outcome).await? {
            tracing::info!(device = id, version = %version, outcome = ?outcome, "firmware update settled");
        }
        Ok(Vec::new())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn device(
        reported: Option<&str>,
        own: Option<&str>,
        stored: FirmwareUpdateStatus,
    ) -> device::Model {
        let at = DateTime::<Utc>::default();
        device::Model {
            id: 1,
            bay_id: 1,
            device_type: crate::entities::DeviceType::Esp32,
            firmware_version: reported.map(str::to_owned),
            expected_firmware_version: own.map(str::to_owned),
            firmware_update_status: stored,
            ota_update_url: None,
            ota_target_version: None,
            ota_requested_at: None,
            ota_completed_at: None,
            ota_last_error: None,
            ip_address: None,
            slot_id: 1,
            hardware_mac: None,
            mac_address: "AA:BB:CC:DD:EE:FF".into(),
            last_seen: None,
            status: crate::entities::DeviceStatus::Online,
            plugged: false,
            state_order_us: None,
            state_seq: None,
            last_command_id: None,
            last_command_action: None,
            last_command_status: None,
            last_command_message: None,
            last_command_at: None,
            mqtt_username: None,
            mqtt_password_hash: None,
            mqtt_key_generation: 0,
            mqtt_credentials_issued_at: None,
            created_at: at,
            retired_at: None,
            last_heard_at: None,
        }
    }

    #[test]
    fn compliance_is_read_from_the_versions_and_an_update_keeps_its_own_status() {
        use FirmwareUpdateStatus as S;
        let policy = FirmwareSettings {
            expected_version: Some("2.0.0".into()),
            ota_timeout_minutes: 15,
        };
        let current = device(Some("2.0.0"), None, S::Unknown);
        assert_eq!(policy.status(&current), S::UpToDate);
        assert!(!policy.update_required(&current));
        let old = device(Some("1.9.0"), None, S::UpToDate);
        assert_eq!(policy.status(&old), S::UpdateRequired);
        assert!(policy.update_required(&old));
        // The device's own expected version wins over the global one.
        let pinned = device(Some("1.9.0"), Some("1.9.0"), S::Unknown);
        assert_eq!(policy.expected_for(&pinned), Some("1.9.0"));
        assert_eq!(policy.status(&pinned), S::UpToDate);
        // Never reported: unknown, but an update is needed to be sure.
        let silent = device(None, None, S::Unknown);
        assert_eq!(policy.status(&silent), S::Unknown);
        assert!(policy.update_required(&silent));
        for open in [S::UpdateScheduled, S::Updating, S::Failed] {
            assert_eq!(policy.status(&device(Some("2.0.0"), None, open)), open);
        }
        let no_policy = FirmwareSettings::default();
        assert_eq!(no_policy.status(&old), S::Unknown);
        assert!(!no_policy.update_required(&old));
    }

    #[test]
    fn only_https_addresses_with_a_host_are_update_urls() {
        assert_eq!(
            update_url(" https://fw.example.com/esp32/2.0.0.bin ")
                .ok()
                .as_deref(),
            Some("https://fw.example.com/esp32/2.0.0.bin")
        );
        for bad in [
            "http://fw.example.com/a.bin",
            "https:///a.bin",
            "ftp://x",
            "https://fw.example.com/a b.bin",
            "",
        ] {
            assert!(update_url(bad).is_err(), "{bad}");
        }
        assert!(update_url(&format!("https://x/{}", "a".repeat(MAX_URL))).is_err());
    }
}
