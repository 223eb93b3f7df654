//! Payment providers: the interface a provider implements (start a payment,
//! fetch its state, refund it, make a customer), the providers this server
//! offers, chosen by name from configuration, and what their answers do to
//! payments.
//!
//! - `test_provider`: built in, always offered, never leaves the machine; its
//!   payments are settled by the team (`simulateTestPayment`) or by a signed
//!   test webhook;
//! - `stripe`: a Stripe-compatible HTTP API, offered when a key is set;
//! - `service`: a buyer starts a provider payment, the team settles a test one;
//! - `refunds`: the team gives money back through the payment's provider;
//! - `webhooks`: signed events, recorded once, applied once, retried by a job;
//! - `outcomes`: what a provider's answer does to a payment and its order,
//!   through the same confirmation as every other payment.
//!
//! Invariant: no provider is called inside a database transaction; a payment
//! is stored (`created`) before its provider is asked, and the provider's
//! idempotency key is the payment's id, so a retried start never makes two
//! provider payments.

pub mod fees;
pub mod outcomes;
pub mod refunds;
pub mod service;
pub mod settings;
pub mod stripe;
pub mod test_provider;
pub mod webhooks;

use std::sync::Arc;

use async_trait::async_trait;

use crate::entities::order_payment;
use crate::error::{AppError, Reason};
use settings::PaymentSettings;

/// What a provider's state means for the payment.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    /// Not decided yet (the buyer has to act, or the provider is working).
    Pending,
    Succeeded,
    Failed,
    Canceled,
}

/// A payment as its provider sees it.
#[derive(Debug, Clone)]
pub struct ProviderPayment {
    /// The provider's id of the payment (Stripe's payment intent id).
    pub id: String,
    /// The provider's own word for its state.
    pub state: String,
    pub outcome: Outcome,
    /// What the buyer's browser confirms the payment with (Stripe.js).
    pub client_secret: Option<String>,
    /// Where the buyer goes to pay, for providers that redirect.
    pub redirect_url: Option<String>,
    /// The charge that moved the money, once there is one.
    pub charge_id: Option<String>,
}

/// What a provider is asked to start.
#[derive(Debug, Clone)]
pub struct StartRequest {
    pub amount_minor: i64,
    /// ISO 4217, as the event has it.
    pub currency: String,
    /// `CODE-P-n`: the payment, as the buyer and the team read it.
    pub full_id: String,
    pub order_code: String,
    pub customer_id: Option<String>,
    /// The same for every try at starting one payment.
    pub idempotency_key: String,
}

/// A refund as its provider sees it.
#[derive(Debug, Clone)]
pub struct ProviderRefund {
    pub id: String,
    pub state: String,
}

/// Why a provider call failed; shown to the team and logged, never to buyers.
#[derive(Debug, thiserror::Error)]
pub enum ProviderError {
    #[error("the payment provider could not be reached: {0}")]
    Unreachable(String),
    #[error("the payment provider refused the request ({status}): {message}")]
    Refused { status: u16, message: String },
    #[error("the payment provider answered something unexpected: {0}")]
    Malformed(String),
}

impl From<ProviderError> for AppError {
    fn from(error: ProviderError) -> Self {
        tracing::warn!(%error, "payment provider call failed");
        Self::refused(
            Reason::ProviderUnavailable,
            "the payment provider did not answer or refused the request; try again",
        )
    }
}

/// A payment provider.
#[async_trait]
pub trait PaymentProvider: Send + Sync + 'static {
    /// Stable name: stored on payments, customers and webhook events.
    fn name(&self) -> &'static str;

    /// Makes a customer for an account, for its payments to be grouped.
    async fn create_customer(&self, user_id: i32, email: &str) -> Result<String, ProviderError>;

    /// Starts a payment; it is `pending` until the provider settles it.
    async fn start(&self, request: &StartRequest) -> Result<ProviderPayment, ProviderError>;

    /// The provider's current view of a started payment.
    async fn fetch(&self, payment: &order_payment::Model)
    -> Result<ProviderPayment, ProviderError>;

    /// Gives back `amount_minor` of a settled payment.
    async fn refund(
        &self,
        payment: &order_payment::Model,
        amount_minor: i64,
    ) -> Result<ProviderRefund, ProviderError>;

    /// The secrets its webhook events are signed with; none refuses them all.
    fn webhook_secrets(&self) -> &[String];
}

/// The providers this server offers, by name, and their settings.
pub struct Providers {
    offered: Vec<Arc<dyn PaymentProvider>>,
    pub settings: PaymentSettings,
}

impl Default for Providers {
    fn default() -> Self {
        Self::new(PaymentSettings::default())
    }
}

impl std::fmt::Debug for Providers {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Providers")
            .field("offered", &self.names())
            .finish_non_exhaustive()
    }
}

impl Providers {
    /// The test provider always; Stripe when a key is configured.
    pub fn new(settings: PaymentSettings) -> Self {
        let mut offered: Vec<Arc<dyn PaymentProvider>> = vec![Arc::new(
            test_provider::TestProvider::new(settings.test_provider_webhook_secret.clone()),
        )];
        if let Some(stripe) = stripe::Stripe::from_settings(&settings) {
            offered.push(Arc::new(stripe));
        }
        Self { offered, settings }
    }

    /// The offered provider called `name`.
    pub fn get(&self, name: &str) -> Option<Arc<dyn PaymentProvider>> {
        self.offered.iter().find(|p| p.name() == name).cloned()
    }

    /// The names of the offered providers.
    pub fn names(&self) -> Vec<&'static str> {
        self.offered.iter().map(|p| p.name()).collect()
    }
}
