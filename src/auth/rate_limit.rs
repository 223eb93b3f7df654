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

pub struct RateLimiter {
    windows: Mutex<HashMap<String, (Instant, u32)>>,
    /// Consecutive failures per key and when the last one happened, for keys
    /// that have no row to count them in (sign-ins to unknown accounts).
    failures: Mutex<HashMap<String, (u32, Instant)>>,
    enabled: bool,
}

impl Default for RateLimiter {
    fn default() -> Self {
        Self {
            windows: Mutex::default(),
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
        if failures.len() > 10_000 {
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
        if windows.len() > 10_000 {
            windows.retain(|_, (start, _)| now.duration_since(*start) < limit.window);
        }
        let entry = windows.entry(key.to_owned()).or_insert((now, 0));
        if now.duration_since(entry.0) >= limit.window {
            *entry = (now, 0);
        }
        entry.1 += 1;
        if entry.1 > limit.max {
            Err(AppError::RateLimited)
        } else {
            Ok(())
        }
    }
}

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
}
