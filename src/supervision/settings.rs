//! Supervision rules that are configuration: how long a device may stay
//! silent before it is taken for offline, how long raw telemetry is kept,
//! the alert thresholds and when alerts are notified.

use clap::Args;

use crate::entities::AlertSeverity;

/// Settings of supervision (flags and environment variables of `serve`).
#[derive(Debug, Clone, Args)]
pub struct SupervisionSettings {
    /// Seconds a device in service may go without a state report (its
    /// heartbeat) before it is marked offline and a `DEVICE_OFFLINE` alert is
    /// raised; 0 turns the timeout off (the Last Will still counts).
    #[arg(
        long = "device-heartbeat-timeout-secs",
        env = "VOLTGATE_DEVICE_HEARTBEAT_TIMEOUT_SECS",
        default_value_t = 120
    )]
    pub heartbeat_timeout_secs: u64,

    /// Days raw charging telemetry samples are kept (by device time); older
    /// ones are pruned. 0 keeps them forever.
    #[arg(
        long = "telemetry-retention-days",
        env = "VOLTGATE_TELEMETRY_RETENTION_DAYS",
        default_value_t = 90
    )]
    pub telemetry_retention_days: u32,

    /// A telemetry sample above this current (A) raises `OVER_CURRENT`; it
    /// ends by itself at the next sample within the limit.
    #[arg(
        long = "alert-max-current-a",
        env = "VOLTGATE_ALERT_MAX_CURRENT_A",
        default_value_t = 40.0
    )]
    pub alert_max_current_a: f64,

    /// A telemetry sample below this voltage (V) raises `VOLTAGE_OUT_OF_RANGE`.
    #[arg(
        long = "alert-min-voltage-v",
        env = "VOLTGATE_ALERT_MIN_VOLTAGE_V",
        default_value_t = 207.0
    )]
    pub alert_min_voltage_v: f64,

    /// A telemetry sample above this voltage (V) raises `VOLTAGE_OUT_OF_RANGE`.
    #[arg(
        long = "alert-max-voltage-v",
        env = "VOLTGATE_ALERT_MAX_VOLTAGE_V",
        default_value_t = 253.0
    )]
    pub alert_max_voltage_v: f64,

    /// Alerts at or above this severity (`low`, `medium`, `high`, `critical`)
    /// are notified through the outbox to the station's technicians and staff.
    #[arg(
        long = "alert-notify-min-severity",
        env = "VOLTGATE_ALERT_NOTIFY_MIN_SEVERITY",
        default_value = "medium",
        value_parser = parse_severity
    )]
    pub alert_notify_min_severity: AlertSeverity,

    /// Seconds after which an open alert seen again since its last
    /// notification is notified again; 0 notifies each alert once.
    #[arg(
        long = "alert-renotify-secs",
        env = "VOLTGATE_ALERT_RENOTIFY_SECS",
        default_value_t = 900
    )]
    pub alert_renotify_secs: u64,
}

fn parse_severity(text: &str) -> Result<AlertSeverity, String> {
    use sea_orm::{ActiveEnum as _, Iterable as _};
    let wanted = text.trim().to_ascii_lowercase();
    AlertSeverity::iter()
        .find(|s| s.to_value() == wanted)
        .ok_or_else(|| format!("{text:?} is not one of low, medium, high, critical"))
}

impl Default for SupervisionSettings {
    fn default() -> Self {
        Self {
            heartbeat_timeout_secs: 120,
            telemetry_retention_days: 90,
            alert_max_current_a: 40.0,
            alert_min_voltage_v: 207.0,
            alert_max_voltage_v: 253.0,
            alert_notify_min_severity: AlertSeverity::Medium,
            alert_renotify_secs: 900,
        }
    }
}

impl SupervisionSettings {
    /// The heartbeat timeout; `None` when it is off.
    pub fn heartbeat_timeout(&self) -> Option<chrono::TimeDelta> {
        let secs = i64::try_from(self.heartbeat_timeout_secs).ok()?;
        (secs > 0).then(|| chrono::TimeDelta::seconds(secs))
    }

    /// When alerts are notified.
    pub fn notification_policy(&self) -> super::notifications::NotificationPolicy {
        super::notifications::NotificationPolicy {
            min_severity: self.alert_notify_min_severity,
            renotify_after: i64::try_from(self.alert_renotify_secs)
                .ok()
                .filter(|secs| *secs > 0)
                .map(chrono::TimeDelta::seconds),
        }
    }

    /// How long raw telemetry is kept; `None` keeps it forever.
    pub fn telemetry_retention(&self) -> Option<chrono::TimeDelta> {
        (self.telemetry_retention_days > 0)
            .then(|| chrono::TimeDelta::days(self.telemetry_retention_days.into()))
    }
}
