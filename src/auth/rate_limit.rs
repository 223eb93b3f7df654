//! Fixed-window rate limits per key (an IP, an account), in memory.
//!
//! Each replica counts on its own, so a client spread over N replicas gets up to N
//! times the limit; the limits are set with that in mind. Old windows are
//! swept as keys are touched, so memory stays bounded by recent traffic.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use crate::error::AppError;

/// A limit: `max` hits per `window` for each key.
#[derive(Debug, Clone, Copy)]
pub struct Limit {
    pub max: u32,
    pub window: Duration,
}

/// One key's current window: when it started, its length, and the hits in it.
struct Window {
    start: Instant,
    length: Duration,
    hits: u32,
}

pub struct RateLimiter {
    windows: Mutex<HashMap<String, Window>>,
    /// When expired windows were last swept away.
    swept: Mutex<Instant>,
    /// Consecutive failures per key and when the last one happened, for keys
    /// that have no row to count them in (sign-ins to unknown accounts).
    failures: Mutex<HashMap<String, (u32, Instant)>>,
    enabled: bool,
}

impl Default for RateLimiter {
    fn default() -> Self {
        Self {
            windows: Mutex::default(),
            swept: Mutex::new(Instant::now()),
            failures: Mutex::default(),
            enabled: true,
        }
    }
}

/// Failures older than this are forgotten.
const FAILURE_MEMORY: Duration = Duration::from_secs(3600);

impl RateLimiter {
    /// A limiter that lets everything through, for load tests behind another limiter.
    pub fn disabled() -> Self {
        Self {
            enabled: false,
            ..Self::default()
        }
    }

    /// The consecutive failures recorded for `key`, and how long ago the last was.
    pub fn failures(&self, key: &str) -> (u32, Duration) {
        let failures = self
            .failures
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        match failures.get(key) {
            Some((count, last)) if last.elapsed() < FAILURE_MEMORY => (*count, last.elapsed()),
            _ => (0, Duration::ZERO),
        }
    }

    /// Records one more failure for `key`.
    pub fn record_failure(&self, key: &str) {
        let now = Instant::now();
        let mut failures = self
            .failures
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        if failures.len() > SWEEP_ABOVE {
            failures.retain(|_, (_, last)| now.duration_since(*last) < FAILURE_MEMORY);
        }
        let entry = failures.entry(key.to_owned()).or_insert((0, now));
        if now.duration_since(entry.1) >= FAILURE_MEMORY {
            entry.0 = 0;
        }
        *entry = (entry.0 + 1, now);
    }

    /// Counts one hit for `key`.
    ///
    /// # Errors
    /// `RATE_LIMITED` when the key is over its limit for the current window.
    pub fn hit(&self, key: &str, limit: Limit) -> Result<(), AppError> {
        self.hit_at(key, limit, Instant::now())
    }

    fn hit_at(&self, key: &str, limit: Limit, now: Instant) -> Result<(), AppError> {
        if !self.enabled {
            return Ok(());
        }
        let mut windows = self
            .windows
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        self.sweep(&mut windows, now);
        let entry = windows.entry(key.to_owned()).or_insert(Window {
            start: now,
            length: limit.window,
            hits: 0,
        });
        if now.duration_since(entry.start) >= limit.window {
            *entry = Window {
                start: now,
                length: limit.window,
                hits: 0,
            };
        }
        entry.hits += 1;
        if entry.hits > limit.max {
            Err(AppError::RateLimited)
        } else {
            Ok(())
        }
    }

    /// Drops expired windows (each by its own length), at most once a second and
    /// only when there are many: memory stays bounded by recent traffic.
    fn sweep(&self, windows: &mut HashMap<String, Window>, now: Instant) {
        if windows.len() <= SWEEP_ABOVE {
            return;
        }
        let mut swept = self
            .swept
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        if now.duration_since(*swept) < Duration::from_secs(1) {
            return;
        }
        *swept = now;
        windows.retain(|_, w| now.duration_since(w.start) < w.length);
    }
}

/// The part of a client address that limits apply to: the address itself for
/// IPv4, its /64 network for IPv6 (one subscriber line usually holds a whole /64,
/// so single IPv6 addresses would let one client multiply its limits).
pub fn ip_key(ip: Option<&str>) -> String {
    match ip.and_then(|ip| ip.parse::<std::net::IpAddr>().ok()) {
        Some(std::net::IpAddr::V6(v6)) if v6.to_ipv4_mapped().is_none() => {
            let s = v6.segments();
            format!("{:x}:{:x}:{:x}:{:x}::/64", s[0], s[1], s[2], s[3])
        }
        Some(std::net::IpAddr::V6(v6)) => v6
            .to_ipv4_mapped()
            .map_or_else(String::new, |v4| v4.to_string()),
        Some(std::net::IpAddr::V4(v4)) => v4.to_string(),
        None => "-".to_owned(),
    }
}

/// Keys beyond which expired windows are swept.
const SWEEP_ABOVE: usize = 10_000;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_key_is_limited_within_its_window_only() {
        let limiter = RateLimiter::default();
        let limit = Limit {
            max: 2,
            window: Duration::from_secs(60),
        };
        let start = Instant::now();
        assert!(limiter.hit_at("ip:1", limit, start).is_ok());
        assert!(limiter.hit_at("ip:1", limit, start).is_ok());
        assert!(matches!(
            limiter.hit_at("ip:1", limit, start),
            Err(AppError::RateLimited)
        ));
        assert!(
            limiter.hit_at("ip:2", limit, start).is_ok(),
            "other keys are independent"
        );
        assert!(
            limiter
                .hit_at("ip:1", limit, start + Duration::from_secs(61))
                .is_ok(),
            "a new window"
        );
    }

    #[test]
    fn ipv6_clients_are_limited_per_network() {
        assert_eq!(ip_key(Some("203.0.113.7")), "203.0.113.7");
        assert_eq!(
            ip_key(Some("2001:db8:1:2:aaaa::1")),
            ip_key(Some("2001:db8:1:2:bbbb::9"))
        );
        assert_ne!(
            ip_key(Some("2001:db8:1:2::1")),
            ip_key(Some("2001:db8:1:3::1"))
        );
        assert_eq!(ip_key(Some("::ffff:203.0.113.7")), "203.0.113.7");
        assert_eq!(ip_key(None), "-");
    }

    #[test]
    fn failures_are_counted_per_key() {
        let limiter = RateLimiter::default();
        assert_eq!(limiter.failures("login:unknown:x").0, 0);
        limiter.record_failure("login:unknown:x");
        limiter.record_failure("login:unknown:x");
        let (count, since) = limiter.failures("login:unknown:x");
        assert_eq!(count, 2);
        assert!(since < Duration::from_secs(5));
        assert_eq!(limiter.failures("login:unknown:y").0, 0);
    }

    #[test]
    fn sweeping_keeps_longer_windows_alive() {
        let limiter = RateLimiter::default();
        let hourly = Limit {
            max: 1,
            window: Duration::from_secs(3600),
        };
        let minutely = Limit {
            max: 100,
            window: Duration::from_secs(60),
        };
        let start = Instant::now();
        assert!(limiter.hit_at("register:ip:1", hourly, start).is_ok());
        // Enough short-lived keys to trigger a sweep two minutes later.
        for i in 0..=SWEEP_ABOVE {
            let _ = limiter.hit_at(&format!("login:ip:{i}"), minutely, start);
        }
        let later = start + Duration::from_secs(120);
        let _ = limiter.hit_at("login:ip:x", minutely, later);
        assert!(
            matches!(
                limiter.hit_at("register:ip:1", hourly, later),
                Err(AppError::RateLimited)
            ),
            "the hourly window survives a sweep of minute windows"
        );
    }
}
