//! The built-in test provider: deterministic, no network. A payment it starts
//! is `requires_confirmation` until the team settles it
//! (`simulateTestPayment`) or a test webhook signed with
//! `VOLTGATE_TEST_PROVIDER_WEBHOOK_SECRET` reports it; the state it fetches is
//! the one stored on the payment. For tests, the demo, and trying a shop out.

use async_trait::async_trait;

use super::{
    Outcome, PaymentProvider, ProviderError, ProviderPayment, ProviderRefund, StartRequest,
};
use crate::entities::order_payment;

pub const NAME: &str = "test";

pub struct TestProvider {
    webhook_secrets: Vec<String>,
}

impl TestProvider {
    pub fn new(webhook_secret: Option<String>) -> Self {
        Self {
            webhook_secrets: webhook_secret.into_iter().collect(),
        }
    }
}

/// The test provider's state names and what they mean.
pub fn outcome_of(state: &str) -> Outcome {
    match state {
        "succeeded" => Outcome::Succeeded,
        "failed" => Outcome::Failed,
        "canceled" => Outcome::Canceled,
        _ => Outcome::Pending,
    }
}

#[async_trait]
impl PaymentProvider for TestProvider {
    fn name(&self) -> &'static str {
        NAME
    }

    async fn create_customer(&self, user_id: i32, _email: &str) -> Result<String, ProviderError> {
        Ok(format!("test_cus_{user_id}"))
    }

    async fn start(&self, request: &StartRequest) -> Result<ProviderPayment, ProviderError> {
        // The idempotency key names the payment: a retried start answers the same.
        let id = format!("test_pi_{}", request.idempotency_key);
        Ok(ProviderPayment {
            client_secret: Some(format!("{id}_secret")),
            id,
            state: "requires_confirmation".to_owned(),
            outcome: Outcome::Pending,
            redirect_url: None,
            charge_id: None,
        })
    }

    async fn fetch(
        &self,
        payment: &order_payment::Model,
    ) -> Result<ProviderPayment, ProviderError> {
        let id = payment
            .provider_payment_id
            .clone()
            .ok_or_else(|| ProviderError::Malformed("the payment was not started".to_owned()))?;
        let state = payment
            .provider_state
            .clone()
            .unwrap_or_else(|| "requires_confirmation".to_owned());
        Ok(ProviderPayment {
            outcome: outcome_of(&state),
            charge_id: payment.provider_charge_id.clone(),
            id,
            state,
            client_secret: None,
            redirect_url: None,
        })
    }

    async fn refund(
        &self,
        payment: &order_payment::Model,
        amount_minor: i64,
    ) -> Result<ProviderRefund, ProviderError> {
        if amount_minor <= 0 || amount_minor > payment.amount_minor {
            return Err(ProviderError::Refused {
                status: 400,
                message: "amount out of range".to_owned(),
            });
        }
        Ok(ProviderRefund {
            id: format!("test_re_{}_{amount_minor}", payment.id),
            state: "succeeded".to_owned(),
        })
    }

    fn webhook_secrets(&self) -> &[String] {
        &self.webhook_secrets
    }
}
