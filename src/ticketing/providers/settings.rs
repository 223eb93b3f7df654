//! Payment provider settings: which providers are offered and how their
//! webhooks are checked and retried.

use clap::Args;
use url::Url;

/// Settings of payment providers (flags and environment variables of `serve`).
#[derive(Clone, Args)]
pub struct PaymentSettings {
    /// Secret API key of the Stripe-compatible provider; unset, the provider is
    /// not offered.
    #[arg(long, env = "VOLTGATE_STRIPE_SECRET_KEY", hide_env_values = true)]
    pub stripe_secret_key: Option<String>,

    /// Base URL of the Stripe-compatible API.
    #[arg(
        long,
        env = "VOLTGATE_STRIPE_API_BASE",
        default_value = "https://api.stripe.com"
    )]
    pub stripe_api_base: Url,

    /// Secrets Stripe signs webhook events with (`whsec_…`), comma-separated
    /// (several while one is rotated); unset, `/webhooks/stripe` refuses every event.
    #[arg(
        long,
        env = "VOLTGATE_STRIPE_WEBHOOK_SECRETS",
        hide_env_values = true,
        value_delimiter = ','
    )]
    pub stripe_webhook_secrets: Vec<String>,

    /// Secret the built-in test provider's webhook events are signed with
    /// (same scheme as Stripe's); unset, `/webhooks/test` refuses every event.
    #[arg(
        long,
        env = "VOLTGATE_TEST_PROVIDER_WEBHOOK_SECRET",
        hide_env_values = true
    )]
    pub test_provider_webhook_secret: Option<String>,

    /// Seconds a webhook event's signed timestamp may differ from the server's
    /// clock; older (replayed) or later events are refused.
    #[arg(
        long,
        env = "VOLTGATE_PAYMENT_WEBHOOK_TOLERANCE_SECS",
        default_value_t = 300
    )]
    pub payment_webhook_tolerance_secs: i64,

    /// Largest webhook body accepted, in bytes.
    #[arg(
        long,
        env = "VOLTGATE_PAYMENT_WEBHOOK_MAX_BYTES",
        default_value_t = 64 * 1024
    )]
    pub payment_webhook_max_bytes: usize,

    /// Times applying a webhook event is tried before it is left to the team.
    #[arg(
        long,
        env = "VOLTGATE_PAYMENT_WEBHOOK_MAX_ATTEMPTS",
        default_value_t = 8
    )]
    pub payment_webhook_max_attempts: i32,

    /// Seconds before the first retry of a failed webhook event; each later
    /// retry waits twice as long, at most an hour.
    #[arg(
        long,
        env = "VOLTGATE_PAYMENT_WEBHOOK_RETRY_SECS",
        default_value_t = 30
    )]
    pub payment_webhook_retry_secs: i64,

    /// Seconds a call to a payment provider may take.
    #[arg(
        long,
        env = "VOLTGATE_PAYMENT_PROVIDER_TIMEOUT_SECS",
        default_value_t = 15
    )]
    pub payment_provider_timeout_secs: u64,
}

impl Default for PaymentSettings {
    fn default() -> Self {
        Self {
            stripe_secret_key: None,
            stripe_api_base: Url::parse("https://api.stripe.com")
                .unwrap_or_else(|_| unreachable!("a valid URL")),
            stripe_webhook_secrets: Vec::new(),
            test_provider_webhook_secret: None,
            payment_webhook_tolerance_secs: 300,
            payment_webhook_max_bytes: 64 * 1024,
            payment_webhook_max_attempts: 8,
            payment_webhook_retry_secs: 30,
            payment_provider_timeout_secs: 15,
        }
    }
}

impl PaymentSettings {
    pub fn webhook_tolerance(&self) -> chrono::TimeDelta {
        chrono::TimeDelta::seconds(self.payment_webhook_tolerance_secs.clamp(1, 24 * 3600))
    }

    /// How long the retry after `attempts` failed tries waits.
    pub fn retry_after(&self, attempts: i32) -> chrono::TimeDelta {
        let base = self.payment_webhook_retry_secs.clamp(1, 3600);
        let doublings = u32::try_from(attempts.saturating_sub(1).clamp(0, 12)).unwrap_or(0);
        chrono::TimeDelta::seconds(base.saturating_mul(1 << doublings).min(3600))
    }

    pub fn max_attempts(&self) -> i32 {
        self.payment_webhook_max_attempts.max(1)
    }
}

// Keys and webhook secrets never reach a log.
impl std::fmt::Debug for PaymentSettings {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PaymentSettings")
            .field(
                "stripe_secret_key",
                &self.stripe_secret_key.as_ref().map(|_| "<set>"),
            )
            .field("stripe_api_base", &self.stripe_api_base.as_str())
            .field("stripe_webhook_secrets", &self.stripe_webhook_secrets.len())
            .field(
                "test_provider_webhook_secret",
                &self.test_provider_webhook_secret.as_ref().map(|_| "<set>"),
            )
            .field(
                "payment_webhook_tolerance_secs",
                &self.payment_webhook_tolerance_secs,
            )
            .field("payment_webhook_max_bytes", &self.payment_webhook_max_bytes)
            .field(
                "payment_webhook_max_attempts",
                &self.payment_webhook_max_attempts,
            )
            .finish_non_exhaustive()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn retries_wait_twice_as_long_each_time_up_to_an_hour() {
        let settings = PaymentSettings::default();
        assert_eq!(settings.retry_after(1).num_seconds(), 30);
        assert_eq!(settings.retry_after(2).num_seconds(), 60);
        assert_eq!(settings.retry_after(3).num_seconds(), 120);
        assert_eq!(settings.retry_after(40).num_seconds(), 3600);
    }

    #[test]
    fn settings_never_show_their_secrets() {
        let settings = PaymentSettings {
            stripe_secret_key: Some("sk_live_s3cret".to_owned()),
            stripe_webhook_secrets: vec!["whsec_s3cret".to_owned()],
            test_provider_webhook_secret: Some("whsec_test_s3cret".to_owned()),
            ..PaymentSettings::default()
        };
        let shown = format!("{settings:?}");
        assert!(!shown.contains("s3cret"), "{shown}");
    }
}
