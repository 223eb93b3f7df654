//! Provider payments: the buyer starts one (`startOrderPayment`), the team
//! settles a test one (`simulateTestPayment`) or reads a provider's state
//! again (`refreshOrderPayment`) and follows the providers' webhook events
//! (`paymentWebhookEvents`).

use async_graphql::{Context, Enum, ID, InputObject, Object, Result, SimpleObject};

use super::payments::{
    OrderPayment, OrderPaymentChangeInput, OrderPaymentPayload, PaymentMutation,
};
use super::types::Order;
use crate::auth::guards::principal;
use crate::entities::{payment_provider_fee, payment_webhook_event, payment_webhook_failure};
use crate::error::AppError;
use crate::graphql::ids::{self, Kind};
use crate::graphql::pagination::{IdConnection, connection, page_request};
use crate::graphql::scalars::DateTime;
use crate::services::services;
use crate::ticketing::money::{format_minor, parse_minor};
use crate::ticketing::providers::{Outcome, fees, service, webhooks};

impl Kind {
    pub const PAYMENT_WEBHOOK_EVENT: Self = Self::named("PaymentWebhookEvent");
}

#[derive(InputObject)]
pub struct StartOrderPaymentInput {
    pub event_id: ID,
    /// The order's code.
    pub code: String,
    /// The order's secret; may be left out by the order's signed-in owner.
    pub secret: Option<String>,
    /// A provider from `paymentProviders`, e.g. `test` or `stripe`.
    pub provider: String,
}

#[derive(SimpleObject)]
pub struct StartOrderPaymentPayload {
    /// The payment, `PENDING` until the provider settles it.
    pub payment: OrderPayment,
    pub order: Order,
    /// What the buyer's browser confirms the payment with (Stripe.js's
    /// `clientSecret`), for providers that work that way.
    pub client_secret: Option<String>,
    /// Where to send the buyer to pay, for providers that redirect.
    pub redirect_url: Option<String>,
}

/// The fee an event charges for paying with a provider: its fixed part plus
/// its percentage of the open balance, added to the order as a payment fee
/// when the payment starts.
pub struct PaymentProviderFee(pub payment_provider_fee::Model);

#[Object]
impl PaymentProviderFee {
    async fn provider(&self) -> &str {
        &self.0.provider
    }
    /// A decimal amount in the event's currency.
    async fn fixed(&self) -> String {
        format_minor(self.0.fixed_minor)
    }
    /// A decimal percentage of the open balance.
    async fn percent(&self) -> String {
        format_minor(i64::from(self.0.percent_bp))
    }
}

#[derive(InputObject)]
pub struct SetPaymentProviderFeeInput {
    pub event_id: ID,
    /// A provider from `paymentProviders`.
    pub provider: String,
    /// A decimal amount, e.g. `0.25`.
    pub fixed: String,
    /// A decimal percentage of the open balance, e.g. `2.9`.
    pub percent: String,
}

#[derive(SimpleObject)]
pub struct SetPaymentProviderFeePayload {
    pub fee: PaymentProviderFee,
}

/// How the test provider settles a payment.
#[derive(Enum, Clone, Copy, PartialEq, Eq)]
pub enum TestPaymentOutcome {
    Succeeded,
    Failed,
}

#[derive(InputObject)]
pub struct SimulateTestPaymentInput {
    pub payment_id: ID,
    pub outcome: TestPaymentOutcome,
}

/// A provider's webhook event, as recorded.
pub struct PaymentWebhookEvent(pub payment_webhook_event::Model);

#[Object]
impl PaymentWebhookEvent {
    async fn id(&self) -> ID {
        ids::encode(Kind::PAYMENT_WEBHOOK_EVENT, self.0.id)
    }
    async fn provider(&self) -> &str {
        &self.0.provider
    }
    /// The provider's id of the event (`evt_…`).
    async fn provider_event_id(&self) -> &str {
        &self.0.provider_event_id
    }
    /// The event's type, e.g. `payment_intent.succeeded`.
    #[graphql(name = "type")]
    async fn kind(&self) -> &str {
        &self.0.kind
    }
    async fn livemode(&self) -> bool {
        self.0.livemode
    }
    async fn api_version(&self) -> Option<&str> {
        self.0.api_version.as_deref()
    }
    /// The provider's customer the event names.
    async fn customer_id(&self) -> Option<&str> {
        self.0.customer_id.as_deref()
    }
    /// The event as received (JSON).
    async fn payload(&self) -> &str {
        &self.0.payload
    }
    /// Whether it was applied.
    async fn processed(&self) -> bool {
        self.0.processed
    }
    async fn processed_at(&self) -> Option<DateTime> {
        self.0.processed_at.map(Into::into)
    }
    /// Tries at applying it.
    async fn attempts(&self) -> i32 {
        self.0.attempts
    }
    /// Why the last try failed.
    async fn last_error(&self) -> Option<&str> {
        self.0.last_error.as_deref()
    }
    /// When it is retried next, while it is not applied.
    async fn next_attempt_at(&self) -> Option<DateTime> {
        (!self.0.processed).then(|| self.0.next_attempt_at.into())
    }
    /// The payment it is about.
    async fn payment_id(&self) -> Option<ID> {
        self.0
            .order_payment_id
            .map(|id| ids::encode(Kind::ORDER_PAYMENT, id))
    }
    async fn received_at(&self) -> DateTime {
        self.0.created_at.into()
    }
    /// Every failed try, oldest first.
    async fn failures(&self, ctx: &Context<'_>) -> Result<Vec<PaymentWebhookFailure>> {
        let rows = webhooks::failures_of(&services(ctx)?.db, self.0.id).await?;
        Ok(rows.into_iter().map(PaymentWebhookFailure).collect())
    }
}

/// A failed try at applying a webhook event.
pub struct PaymentWebhookFailure(pub payment_webhook_failure::Model);

#[Object]
impl PaymentWebhookFailure {
    async fn message(&self) -> &str {
        &self.0.message
    }
    /// What was tried (JSON: the attempt and the event's type).
    async fn data(&self) -> &str {
        &self.0.data
    }
    async fn created_at(&self) -> DateTime {
        self.0.created_at.into()
    }
}

#[derive(Default)]
pub struct ProviderQuery;

#[Object]
impl ProviderQuery {
    /// Public: the payment providers a buyer may choose (`test` always,
    /// `stripe` when configured).
    async fn payment_providers(&self, ctx: &Context<'_>) -> Result<Vec<String>> {
        Ok(services(ctx)?
            .payments
            .names()
            .into_iter()
            .map(str::to_owned)
            .collect())
    }

    /// Team permission `VIEW_ORDERS`: the providers' webhook events about the
    /// event's payments, oldest first. Without `eventId`, staff only: every
    /// event received, those about no known payment included.
    async fn payment_webhook_events(
        &self,
        ctx: &Context<'_>,
        event_id: Option<ID>,
        #[graphql(default)] unprocessed_only: bool,
        first: Option<i32>,
        after: Option<String>,
    ) -> Result<IdConnection<PaymentWebhookEvent>> {
        let event_id = event_id
            .map(|id| ids::decode(&id, Kind::EVENT, "eventId"))
            .transpose()?;
        let page = page_request(first, after.as_deref())?;
        let rows = webhooks::of_event(
            &services(ctx)?.db,
            principal(ctx),
            event_id,
            unprocessed_only,
            page,
        )
        .await?;
        Ok(connection(page, rows, |e| e.id, PaymentWebhookEvent))
    }
}

#[derive(Default)]
pub struct ProviderMutation;

#[Object]
impl ProviderMutation {
    /// Team permission `CHANGE_EVENTS`: sets the fee paying with a provider
    /// adds to the event's orders (zero and zero: none).
    async fn set_payment_provider_fee(
        &self,
        ctx: &Context<'_>,
        input: SetPaymentProviderFeeInput,
    ) -> Result<SetPaymentProviderFeePayload> {
        let services = services(ctx)?;
        let event_id = ids::decode(&input.event_id, Kind::EVENT, "eventId")?;
        let fixed = parse_minor("fixed", &input.fixed)?;
        let percent = i32::try_from(parse_minor("percent", &input.percent)?)
            .map_err(|_| AppError::bad_input("percent", "between 0 and 100"))?;
        let fee = fees::set(
            &services.db,
            &services.payments,
            principal(ctx),
            services.now(),
            event_id,
            &input.provider,
            fixed,
            percent,
        )
        .await?;
        Ok(SetPaymentProviderFeePayload {
            fee: PaymentProviderFee(fee),
        })
    }

    /// Public: starts paying a pending order's open balance with a provider,
    /// for its buyer (the order's code and secret, or its signed-in owner).
    /// Starting again returns the same open payment.
    async fn start_order_payment(
        &self,
        ctx: &Context<'_>,
        input: StartOrderPaymentInput,
    ) -> Result<StartOrderPaymentPayload> {
        let services = services(ctx)?;
        let event_id = ids::decode(&input.event_id, Kind::EVENT, "eventId")?;
        let started = service::start(
            &services.db,
            &services.payments,
            services.now(),
            principal(ctx),
            service::StartPayment {
                event_id,
                code: input.code,
                secret: input.secret,
                provider: input.provider,
            },
        )
        .await?;
        let payload = PaymentMutation::payload(ctx, started.payment, Some(started.order)).await?;
        Ok(StartOrderPaymentPayload {
            payment: payload.payment,
            order: payload.order,
            client_secret: started.client_secret,
            redirect_url: started.redirect_url,
        })
    }

    /// Team permission `CHANGE_ORDERS`: settles a test provider payment as
    /// the provider would; `SUCCEEDED` confirms it and pays the order once
    /// covered.
    async fn simulate_test_payment(
        &self,
        ctx: &Context<'_>,
        input: SimulateTestPaymentInput,
    ) -> Result<OrderPaymentPayload> {
        let services = services(ctx)?;
        let payment_id = ids::decode(&input.payment_id, Kind::ORDER_PAYMENT, "paymentId")?;
        let outcome = match input.outcome {
            TestPaymentOutcome::Succeeded => Outcome::Succeeded,
            TestPaymentOutcome::Failed => Outcome::Failed,
        };
        let applied = service::simulate_test_payment(
            &services.db,
            principal(ctx),
            services.now(),
            payment_id,
            outcome,
        )
        .await?;
        crate::ticketing::live::announce(services, [applied.order.event_id]).await;
        PaymentMutation::payload(ctx, applied.payment, Some(applied.order)).await
    }

    /// Team permission `CHANGE_ORDERS`: asks the payment's provider for its
    /// state and applies it, for a webhook that never came.
    async fn refresh_order_payment(
        &self,
        ctx: &Context<'_>,
        input: OrderPaymentChangeInput,
    ) -> Result<OrderPaymentPayload> {
        let services = services(ctx)?;
        let payment_id = ids::decode(&input.payment_id, Kind::ORDER_PAYMENT, "paymentId")?;
        let applied = service::refresh(services, principal(ctx), payment_id).await?;
        crate::ticketing::live::announce(services, [applied.order.event_id]).await;
        PaymentMutation::payload(ctx, applied.payment, Some(applied.order)).await
    }
}
