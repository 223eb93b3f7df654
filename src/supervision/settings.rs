//! Supervision rules that are configuration: how long a device may stay
//! silent before it is taken for offline.

use clap::Args;

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
}

impl Default for SupervisionSettings {
    fn default() -> Self {
        Self {
            heartbeat_timeout_secs: 120,
        }
    }
}

impl SupervisionSettings {
    /// The heartbeat timeout; `None` when it is off.
    pub fn heartbeat_timeout(&self) -> Option<chrono::TimeDelta> {
        let secs = i64::try_from(self.heartbeat_timeout_secs).ok()?;
        (secs > 0).then(|| chrono::TimeDelta::seconds(secs))
    }
}
