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
    enabled: bool,
}

impl Default for RateLimiter {
    fn default() -> Self {
        Self {
            windows: Mutex::default(),
            enabled: true,
        }
    }
}

impl RateLimiter {
    /// A limiter that lets everything through, for load tests behind another limiter.
    pub fn disabled() -> Self {
        Self {
            windows: Mutex::default(),
            enabled: false,
        }
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
}
