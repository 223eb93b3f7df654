//! Reservation rules that are configuration, not code: the durations a slot may
//! last, how far ahead one may book, and how long around the slot a temporary
//! access credential is valid.

use clap::Args;

/// Settings of reservations (flags and environment variables of `serve`).
#[derive(Debug, Clone, Args)]
pub struct ReservationSettings {
    /// Durations a reservation may last, in minutes, comma-separated.
    #[arg(
        long = "reservation-durations",
        env = "VOLTGATE_RESERVATION_DURATIONS",
        value_delimiter = ',',
        default_values_t = [30_i64, 60, 90, 120]
    )]
    pub durations_minutes: Vec<i64>,

    /// How far ahead a slot may start, in days.
    #[arg(
        long = "reservation-horizon-days",
        env = "VOLTGATE_RESERVATION_HORIZON_DAYS",
        default_value_t = 14
    )]
    pub horizon_days: i64,

    /// Minutes before the slot (and after its end) a temporary access credential is valid.
    #[arg(
        long = "reservation-access-margin-minutes",
        env = "VOLTGATE_RESERVATION_ACCESS_MARGIN_MINUTES",
        default_value_t = 15
    )]
    pub access_margin_minutes: i64,

    /// Minutes after a slot's start a reservation not used yet is kept; then
    /// it expires as a no-show (cancelled) and the bay is free again.
    #[arg(
        long = "reservation-no-show-grace-minutes",
        env = "VOLTGATE_RESERVATION_NO_SHOW_GRACE_MINUTES",
        default_value_t = 15
    )]
    pub no_show_grace_minutes: i64,

    /// Access codes sent by SMS (`sendReservationCode`) per customer and hour.
    #[arg(
        long = "reservation-code-messages-per-hour",
        env = "VOLTGATE_RESERVATION_CODE_MESSAGES_PER_HOUR",
        default_value_t = 3
    )]
    pub code_messages_per_hour: u32,

    /// Hours from its planned date a planned or in-progress intervention
    /// keeps its station out of service (1 … 336).
    #[arg(
        long = "maintenance-window-hours",
        env = "VOLTGATE_MAINTENANCE_WINDOW_HOURS",
        default_value_t = 4,
        value_parser = clap::value_parser!(i64).range(1..=336)
    )]
    pub maintenance_window_hours: i64,
}

impl Default for ReservationSettings {
    fn default() -> Self {
        Self {
            durations_minutes: vec![30, 60, 90, 120],
            horizon_days: 14,
            access_margin_minutes: 15,
            no_show_grace_minutes: 15,
            code_messages_per_hour: 3,
            maintenance_window_hours: 4,
        }
    }
}

impl ReservationSettings {
    pub fn horizon(&self) -> chrono::TimeDelta {
        chrono::TimeDelta::days(self.horizon_days)
    }

    pub fn access_margin(&self) -> chrono::TimeDelta {
        chrono::TimeDelta::minutes(self.access_margin_minutes)
    }

    pub fn no_show_grace(&self) -> chrono::TimeDelta {
        chrono::TimeDelta::minutes(self.no_show_grace_minutes.max(0))
    }

    /// How long an intervention keeps its station out of service.
    pub fn maintenance_window(&self) -> chrono::TimeDelta {
        chrono::TimeDelta::hours(self.maintenance_window_hours.clamp(1, 336))
    }
}

/// Settings of kiosks (flags and environment variables of `serve`).
#[derive(Debug, Clone, Args)]
pub struct KioskSettings {
    /// Seconds a kiosk's access token lives; a revoked kiosk credential stops
    /// new sign-ins at once and its tokens within this time.
    #[arg(
        long = "kiosk-token-ttl-secs",
        env = "VOLTGATE_KIOSK_TOKEN_TTL_SECS",
        default_value_t = 900
    )]
    pub token_ttl_secs: i64,

    /// Sign-in attempts with a kiosk credential per client address and minute.
    #[arg(
        long = "kiosk-sign-in-per-minute",
        env = "VOLTGATE_KIOSK_SIGN_IN_PER_MINUTE",
        default_value_t = 30
    )]
    pub sign_in_per_minute: u32,

    /// Seconds a session waits for the vehicle to be plugged in after the bay
    /// unlocked; then it ends in error and the bay is free again.
    #[arg(
        long = "session-plug-timeout-secs",
        env = "VOLTGATE_SESSION_PLUG_TIMEOUT_SECS",
        default_value_t = 300
    )]
    pub plug_timeout_secs: i64,

    /// Failed credentials at one kiosk, within the failure window, after which
    /// its authentications are refused (`RATE_LIMITED`) until the window passes.
    #[arg(
        long = "terminal-failures-per-kiosk",
        env = "VOLTGATE_TERMINAL_FAILURES_PER_KIOSK",
        default_value_t = 20
    )]
    pub failures_per_kiosk: u32,

    /// Failed credentials at one bay (so against the reservation it holds),
    /// within the failure window, after which they are refused: an 8-digit
    /// code cannot be found by trying.
    #[arg(
        long = "terminal-failures-per-reservation",
        env = "VOLTGATE_TERMINAL_FAILURES_PER_RESERVATION",
        default_value_t = 5
    )]
    pub failures_per_reservation: u32,

    /// Minutes failed kiosk authentications are counted over.
    #[arg(
        long = "terminal-failure-window-minutes",
        env = "VOLTGATE_TERMINAL_FAILURE_WINDOW_MINUTES",
        default_value_t = 15
    )]
    pub failure_window_minutes: i64,

    /// Minutes ahead a kiosk's offline cache reaches; the cache expires then.
    #[arg(
        long = "kiosk-offline-horizon-minutes",
        env = "VOLTGATE_KIOSK_OFFLINE_HORIZON_MINUTES",
        default_value_t = 240
    )]
    pub offline_horizon_minutes: i64,

    /// Events one offline upload may carry.
    #[arg(
        long = "kiosk-offline-upload-max",
        env = "VOLTGATE_KIOSK_OFFLINE_UPLOAD_MAX",
        default_value_t = 200
    )]
    pub offline_upload_max: usize,

    /// Seconds a kiosk's clock may run ahead of the server's: a later event
    /// time is a conflict (`CLOCK_SKEW`), stored but not applied.
    #[arg(
        long = "kiosk-offline-clock-skew-secs",
        env = "VOLTGATE_KIOSK_OFFLINE_CLOCK_SKEW_SECS",
        default_value_t = 300
    )]
    pub offline_clock_skew_secs: i64,

    /// Milliseconds a replica keeps whether a kiosk's credential and cabinet
    /// stand, instead of reading them on every kiosk request (at most 60 s; 0
    /// reads every time). A change forgets it at once on this replica and,
    /// through the bus, on the others; this is the bound if that message is lost.
    #[arg(
        long = "kiosk-cache-ms",
        env = "VOLTGATE_KIOSK_CACHE_MS",
        default_value_t = 1000
    )]
    pub kiosk_cache_ms: u64,
}

impl Default for KioskSettings {
    fn default() -> Self {
        Self {
            token_ttl_secs: 900,
            sign_in_per_minute: 30,
            plug_timeout_secs: 300,
            failures_per_kiosk: 20,
            failures_per_reservation: 5,
            failure_window_minutes: 15,
            offline_horizon_minutes: 240,
            offline_upload_max: 200,
            offline_clock_skew_secs: 300,
            kiosk_cache_ms: 1000,
        }
    }
}

impl KioskSettings {
    pub fn cache_ttl(&self) -> std::time::Duration {
        std::time::Duration::from_millis(self.kiosk_cache_ms.min(60_000))
    }

    pub fn plug_timeout(&self) -> chrono::TimeDelta {
        chrono::TimeDelta::seconds(self.plug_timeout_secs.max(1))
    }

    pub fn failure_window(&self) -> chrono::TimeDelta {
        chrono::TimeDelta::minutes(self.failure_window_minutes.max(1))
    }

    /// At least 5 minutes, at most 7 days.
    pub fn offline_horizon(&self) -> chrono::TimeDelta {
        chrono::TimeDelta::minutes(self.offline_horizon_minutes.clamp(5, 7 * 24 * 60))
    }

    /// At least 1, at most 10,000.
    pub fn offline_upload_max(&self) -> usize {
        self.offline_upload_max.clamp(1, 10_000)
    }

    pub fn offline_clock_skew(&self) -> chrono::TimeDelta {
        chrono::TimeDelta::seconds(self.offline_clock_skew_secs.max(0))
    }

    /// At least a minute, at most a day: a kiosk renews its token with its credential.
    pub fn token_ttl(&self) -> chrono::TimeDelta {
        chrono::TimeDelta::seconds(self.token_ttl_secs.clamp(60, 86_400))
    }
}
