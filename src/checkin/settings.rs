//! Check-in rules that are configuration, not code.

use clap::Args;

/// Settings of check-in (flags and environment variables of `serve`).
#[derive(Debug, Clone, Args)]
pub struct CheckinSettings {
    /// Minutes a scanner access token lasts; the scanner exchanges its
    /// credential again after that.
    #[arg(
        long = "checkin-scanner-token-minutes",
        env = "VOLTGATE_CHECKIN_SCANNER_TOKEN_MINUTES",
        default_value_t = 15
    )]
    pub scanner_token_minutes: i64,

    /// Scans one scanner (or one person or team token) may make per minute.
    #[arg(
        long = "checkin-scans-per-minute",
        env = "VOLTGATE_CHECKIN_SCANS_PER_MINUTE",
        default_value_t = 600
    )]
    pub scans_per_minute: u32,

    /// Most scans one offline upload may carry.
    #[arg(
        long = "checkin-upload-max",
        env = "VOLTGATE_CHECKIN_UPLOAD_MAX",
        default_value_t = 500
    )]
    pub upload_max: usize,

    /// Uploads one scanner may send per minute.
    #[arg(
        long = "checkin-uploads-per-minute",
        env = "VOLTGATE_CHECKIN_UPLOADS_PER_MINUTE",
        default_value_t = 30
    )]
    pub uploads_per_minute: u32,

    /// Milliseconds a replica keeps a check-in list, its products and a
    /// scanner device's standing in memory between reads. A change made on
    /// this replica takes effect at once; one made on another replica within
    /// this time. 0 reads them on every scan.
    #[arg(
        long = "checkin-cache-ms",
        env = "VOLTGATE_CHECKIN_CACHE_MS",
        default_value_t = 1000
    )]
    pub cache_ms: u64,
}

impl Default for CheckinSettings {
    fn default() -> Self {
        Self {
            scanner_token_minutes: 15,
            scans_per_minute: 600,
            upload_max: 500,
            uploads_per_minute: 30,
            cache_ms: 1000,
        }
    }
}

impl CheckinSettings {
    pub fn scanner_token_ttl(&self) -> chrono::TimeDelta {
        chrono::TimeDelta::minutes(self.scanner_token_minutes.clamp(1, 24 * 60))
    }

    pub fn cache_ttl(&self) -> std::time::Duration {
        std::time::Duration::from_millis(self.cache_ms.min(60_000))
    }

    pub fn upload_limit(&self) -> crate::auth::rate_limit::Limit {
        crate::auth::rate_limit::Limit {
            max: self.uploads_per_minute.max(1),
            window: std::time::Duration::from_secs(60),
        }
    }

    pub fn scan_limit(&self) -> crate::auth::rate_limit::Limit {
        crate::auth::rate_limit::Limit {
            max: self.scans_per_minute.max(1),
            window: std::time::Duration::from_secs(60),
        }
    }
}
