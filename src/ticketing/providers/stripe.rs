//! A Stripe-compatible provider: payment intents, customers and refunds over
//! Stripe's HTTP API (form-encoded requests, JSON answers, bearer key) at a
//! configurable base URL, so tests and staging point it at a stand-in.

use std::time::Duration;

use async_trait::async_trait;
use serde_json::Value;
use url::Url;

use super::settings::PaymentSettings;
use super::{
    Outcome, PaymentProvider, ProviderError, ProviderPayment, ProviderRefund, StartRequest,
};
use crate::entities::order_payment;

pub const NAME: &str = "stripe";

pub struct Stripe {
    http: reqwest::Client,
    base: Url,
    secret_key: String,
    webhook_secrets: Vec<String>,
}

/// What a payment intent's status means for the payment.
pub fn outcome_of(status: &str) -> Outcome {
    match status {
        "succeeded" => Outcome::Succeeded,
        "canceled" => Outcome::Canceled,
        _ => Outcome::Pending,
    }
}

impl Stripe {
    /// The provider, when a secret key is configured.
    pub fn from_settings(settings: &PaymentSettings) -> Option<Self> {
        let secret_key = settings
            .stripe_secret_key
            .clone()
            .filter(|k| !k.trim().is_empty())?;
        let http = reqwest::Client::builder()
            .timeout(Duration::from_secs(
                settings.payment_provider_timeout_secs.clamp(1, 120),
            ))
            .build()
            .map_err(|error| tracing::error!(%error, "cannot build the Stripe HTTP client"))
            .ok()?;
        Some(Self {
            http,
            base: settings.stripe_api_base.clone(),
            secret_key,
            webhook_secrets: settings
                .stripe_webhook_secrets
                .iter()
                .filter(|s| !s.trim().is_empty())
                .cloned()
                .collect(),
        })
    }

    fn url(&self, path: &str) -> Result<Url, ProviderError> {
        self.base
            .join(path)
            .map_err(|e| ProviderError::Malformed(format!("API URL: {e}")))
    }

    /// Sends a request and reads its JSON answer; non-2xx answers are refusals.
    async fn call(&self, request: reqwest::RequestBuilder) -> Result<Value, ProviderError> {
        let response = request
            .bearer_auth(&self.secret_key)
            .send()
            .await
            .map_err(|e| ProviderError::Unreachable(e.without_url().to_string()))?;
        let status = response.status();
        let body: Value = response
            .json()
            .await
            .map_err(|e| ProviderError::Malformed(e.without_url().to_string()))?;
        if !status.is_success() {
            let message = body["error"]["message"]
                .as_str()
                .unwrap_or("no message")
                .chars()
                .take(300)
                .collect();
            return Err(ProviderError::Refused {
                status: status.as_u16(),
                message,
            });
        }
        Ok(body)
    }

    async fn post(
        &self,
        path: &str,
        form: &[(&str, String)],
        idempotency_key: Option<&str>,
    ) -> Result<Value, ProviderError> {
        let body = url::form_urlencoded::Serializer::new(String::new())
            .extend_pairs(form.iter().map(|(k, v)| (*k, v.as_str())))
            .finish();
        let mut request = self
            .http
            .post(self.url(path)?)
            .header("Content-Type", "application/x-www-form-urlencoded")
            .body(body);
        if let Some(key) = idempotency_key {
            request = request.header("Idempotency-Key", key);
        }
        self.call(request).await
    }
}

/// A payment intent as the API returns it.
fn intent(body: &Value) -> Result<ProviderPayment, ProviderError> {
    let id = body["id"]
        .as_str()
        .ok_or_else(|| ProviderError::Malformed("a payment intent without an id".to_owned()))?;
    let status = body["status"].as_str().unwrap_or("unknown");
    let charge_id = match &body["latest_charge"] {
        Value::String(id) => Some(id.clone()),
        Value::Object(charge) => charge.get("id").and_then(Value::as_str).map(str::to_owned),
        _ => None,
    };
    Ok(ProviderPayment {
        id: id.to_owned(),
        state: status.to_owned(),
        outcome: outcome_of(status),
        client_secret: body["client_secret"].as_str().map(str::to_owned),
        redirect_url: body["next_action"]["redirect_to_url"]["url"]
            .as_str()
            .map(str::to_owned),
        charge_id,
    })
}

#[async_trait]
impl PaymentProvider for Stripe {
    fn name(&self) -> &'static str {
        NAME
    }

    async fn create_customer(&self, user_id: i32, email: &str) -> Result<String, ProviderError> {
        let body = self
            .post(
                "/v1/customers",
                &[
                    ("email", email.to_owned()),
                    ("metadata[voltgate_user_id]", user_id.to_string()),
                ],
                Some(&format!("voltgate-customer-{user_id}")),
            )
            .await?;
        body["id"]
            .as_str()
            .map(str::to_owned)
            .ok_or_else(|| ProviderError::Malformed("a customer without an id".to_owned()))
    }

    async fn start(&self, request: &StartRequest) -> Result<ProviderPayment, ProviderError> {
        let mut form = vec![
            ("amount", request.amount_minor.to_string()),
            ("currency", request.currency.to_ascii_lowercase()),
            ("automatic_payment_methods[enabled]", "true".to_owned()),
            ("description", format!("Order {}", request.order_code)),
            ("metadata[voltgate_payment]", request.full_id.clone()),
            ("metadata[voltgate_order]", request.order_code.clone()),
        ];
        if let Some(customer) = &request.customer_id {
            form.push(("customer", customer.clone()));
        }
        let body = self
            .post(
                "/v1/payment_intents",
                &form,
                Some(&format!("voltgate-payment-{}", request.idempotency_key)),
            )
            .await?;
        intent(&body)
    }

    async fn fetch(
        &self,
        payment: &order_payment::Model,
    ) -> Result<ProviderPayment, ProviderError> {
        let id = payment
            .provider_payment_id
            .as_deref()
            .ok_or_else(|| ProviderError::Malformed("the payment was not started".to_owned()))?;
        let path = format!(
            "/v1/payment_intents/{}",
            percent_encoding::utf8_percent_encode(id, percent_encoding::NON_ALPHANUMERIC)
        );
        let body = self.call(self.http.get(self.url(&path)?)).await?;
        intent(&body)
    }

    async fn refund(
        &self,
        payment: &order_payment::Model,
        amount_minor: i64,
    ) -> Result<ProviderRefund, ProviderError> {
        let id = payment
            .provider_payment_id
            .clone()
            .ok_or_else(|| ProviderError::Malformed("the payment was not started".to_owned()))?;
        let body = self
            .post(
                "/v1/refunds",
                &[("payment_intent", id), ("amount", amount_minor.to_string())],
                None,
            )
            .await?;
        Ok(ProviderRefund {
            id: body["id"]
                .as_str()
                .ok_or_else(|| ProviderError::Malformed("a refund without an id".to_owned()))?
                .to_owned(),
            state: body["status"].as_str().unwrap_or("unknown").to_owned(),
        })
    }

    fn webhook_secrets(&self) -> &[String] {
        &self.webhook_secrets
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn an_intent_reads_its_state_secret_and_charge() {
        let read = intent(&json!({
            "id": "pi_1", "status": "succeeded", "client_secret": "pi_1_secret_x",
            "latest_charge": "ch_1"
        }))
        .map_err(|e| e.to_string());
        let read = read.as_ref().map(|p| {
            (
                p.id.as_str(),
                p.outcome,
                p.client_secret.as_deref(),
                p.charge_id.as_deref(),
            )
        });
        assert_eq!(
            read,
            Ok((
                "pi_1",
                Outcome::Succeeded,
                Some("pi_1_secret_x"),
                Some("ch_1")
            ))
        );
        assert_eq!(outcome_of("requires_payment_method"), Outcome::Pending);
    }
}
