//! Payments in the back office (team permission `CHANGE_ORDERS`): recording
//! a manual or complimentary payment with its fee, confirming it (which marks
//! the order paid once the confirmed payments cover the total), or closing it
//! as failed or canceled. Payments and fees are read on `Order`; provider
//! payments are in `providers`.

use async_graphql::{Context, Enum, ID, InputObject, Object, Result, SimpleObject};

use super::types::{Money, Order};
use crate::auth::guards::principal;
use crate::entities::{self, order_fee, order_payment};
use crate::graphql::ids::{self, Kind};
use crate::graphql::scalars::DateTime;
use crate::services::services;
use crate::ticketing::money::parse_minor;
use crate::ticketing::payments::{self, PaymentInput};

impl Kind {
    pub const ORDER_PAYMENT: Self = Self::named("OrderPayment");
    pub const ORDER_FEE: Self = Self::named("OrderFee");
}

/// A payment's state.
#[derive(Enum, Clone, Copy, PartialEq, Eq)]
#[graphql(remote = "entities::order_payment::PaymentState")]
pub enum PaymentState {
    Created,
    Pending,
    Confirmed,
    Failed,
    Canceled,
    Refunded,
}

/// How a payment is made.
#[derive(Enum, Clone, Copy, PartialEq, Eq)]
#[graphql(remote = "entities::order_payment::PaymentMethod")]
pub enum PaymentMethod {
    /// Recorded by the team (bank transfer, cash).
    Manual,
    /// Waived by the team.
    Complimentary,
    /// The buyer's store credit (`applyStoreCredit`).
    StoreCredit,
    /// A payment provider (`provider` names it), started by the buyer with
    /// `startOrderPayment`.
    Provider,
}

/// A payment of an order.
pub struct OrderPayment(pub order_payment::Model, pub String);

#[Object]
impl OrderPayment {
    async fn id(&self) -> ID {
        ids::encode(Kind::ORDER_PAYMENT, self.0.id)
    }
    /// 1, 2, … within the order.
    async fn local_id(&self) -> i32 {
        self.0.local_id
    }
    async fn state(&self) -> PaymentState {
        self.0.state.into()
    }
    async fn method(&self) -> PaymentMethod {
        self.0.method.into()
    }
    async fn amount(&self) -> Money {
        Money::new(self.0.amount_minor, &self.1)
    }
    async fn fee_id(&self) -> Option<ID> {
        self.0.fee_id.map(|id| ids::encode(Kind::ORDER_FEE, id))
    }
    /// The provider's name (`test`, `stripe`) for a `PROVIDER` payment.
    async fn provider(&self) -> Option<&str> {
        self.0.provider.as_deref()
    }
    /// What the provider calls the payment (Stripe's payment intent id).
    async fn provider_payment_id(&self) -> Option<&str> {
        self.0.provider_payment_id.as_deref()
    }
    /// The provider's own word for the payment's state, as last reported
    /// (e.g. `requires_payment_method`, `succeeded`).
    async fn provider_state(&self) -> Option<&str> {
        self.0.provider_state.as_deref()
    }
    /// The provider's charge that moved the money.
    async fn provider_charge_id(&self) -> Option<&str> {
        self.0.provider_charge_id.as_deref()
    }
    /// Whether the provider was asked to start it.
    async fn process_initiated(&self) -> bool {
        self.0.process_initiated
    }
    /// The bank's or provider's reference.
    async fn reference(&self) -> Option<&str> {
        self.0.reference.as_deref()
    }
    async fn note(&self) -> &str {
        &self.0.note
    }
    async fn created_at(&self) -> DateTime {
        self.0.created_at.into()
    }
    /// When it was confirmed.
    async fn payment_date(&self) -> Option<DateTime> {
        self.0.payment_date.map(Into::into)
    }
}

/// A fee of an order.
pub struct OrderFee(pub order_fee::Model, pub String);

#[Object]
impl OrderFee {
    async fn id(&self) -> ID {
        ids::encode(Kind::ORDER_FEE, self.0.id)
    }
    /// `payment`, `service`, `shipping`, `cancellation` or `other`.
    async fn fee_type(&self) -> &str {
        &self.0.fee_type
    }
    async fn description(&self) -> &str {
        &self.0.description
    }
    async fn value(&self) -> Money {
        Money::new(self.0.value_minor, &self.1)
    }
    async fn canceled(&self) -> bool {
        self.0.canceled
    }
}

#[derive(InputObject)]
pub struct CreateOrderPaymentInput {
    pub order_id: ID,
    pub method: PaymentMethod,
    /// A decimal amount; the open balance (after the fee) when not given.
    pub amount: Option<String>,
    /// A payment fee added to the order's total, e.g. `"1.50"`.
    pub fee: Option<String>,
    pub reference: Option<String>,
    #[graphql(default)]
    pub note: String,
}

#[derive(InputObject)]
pub struct OrderPaymentChangeInput {
    pub payment_id: ID,
}

#[derive(SimpleObject)]
pub struct OrderPaymentPayload {
    pub payment: OrderPayment,
    pub order: Order,
}

#[derive(Default)]
pub struct PaymentMutation;

impl PaymentMutation {
    pub(super) async fn payload(
        ctx: &Context<'_>,
        payment: order_payment::Model,
        order: Option<entities::order::Model>,
    ) -> Result<OrderPaymentPayload> {
        use sea_orm::EntityTrait as _;
        let db = &services(ctx)?.db;
        let order = match order {
            Some(order) => order,
            None => entities::order::Entity::find_by_id(payment.order_id)
                .one(db)
                .await
                .map_err(crate::error::AppError::from)?
                .ok_or(crate::error::AppError::not_found("order"))?,
        };
        let currency = entities::event::Entity::find_by_id(order.event_id)
            .one(db)
            .await
            .map_err(crate::error::AppError::from)?
            .map(|e| e.currency)
            .unwrap_or_default();
        Ok(OrderPaymentPayload {
            payment: OrderPayment(payment, currency),
            order: Order(order),
        })
    }

    async fn close(
        ctx: &Context<'_>,
        input: OrderPaymentChangeInput,
        to: entities::order_payment::PaymentState,
    ) -> Result<OrderPaymentPayload> {
        let services = services(ctx)?;
        let payment_id = ids::decode(&input.payment_id, Kind::ORDER_PAYMENT, "paymentId")?;
        let payment =
            payments::close(&services.db, principal(ctx), services.now(), payment_id, to).await?;
        Self::payload(ctx, payment, None).await
    }
}

#[Object]
impl PaymentMutation {
    /// Team permission `CHANGE_ORDERS`: records a payment of a pending order
    /// (state `CREATED`), with its fee as an order fee.
    async fn create_order_payment(
        &self,
        ctx: &Context<'_>,
        input: CreateOrderPaymentInput,
    ) -> Result<OrderPaymentPayload> {
        let services = services(ctx)?;
        let order_id = ids::decode(&input.order_id, Kind::ORDER, "orderId")?;
        let payment = payments::create(
            &services.db,
            principal(ctx),
            services.now(),
            order_id,
            PaymentInput {
                amount_minor: input
                    .amount
                    .as_deref()
                    .map(|a| parse_minor("amount", a))
                    .transpose()?,
                method: input.method.into(),
                fee_minor: input
                    .fee
                    .as_deref()
                    .map(|f| parse_minor("fee", f))
                    .transpose()?
                    .unwrap_or(0),
                reference: input.reference,
                note: input.note,
            },
        )
        .await?;
        Self::payload(ctx, payment, None).await
    }

    /// Team permission `CHANGE_ORDERS`: confirms a payment; the order is
    /// marked paid once its confirmed payments cover its total.
    async fn confirm_order_payment(
        &self,
        ctx: &Context<'_>,
        input: OrderPaymentChangeInput,
    ) -> Result<OrderPaymentPayload> {
        let services = services(ctx)?;
        let payment_id = ids::decode(&input.payment_id, Kind::ORDER_PAYMENT, "paymentId")?;
        let (payment, order) =
            payments::confirm(&services.db, principal(ctx), services.now(), payment_id).await?;
        // A pending order that became paid moves its units from ORDERED to GONE.
        crate::ticketing::live::announce(services, [order.event_id]).await;
        Self::payload(ctx, payment, Some(order)).await
    }

    /// Team permission `CHANGE_ORDERS`: marks an open payment failed; its fee
    /// leaves the total.
    async fn fail_order_payment(
        &self,
        ctx: &Context<'_>,
        input: OrderPaymentChangeInput,
    ) -> Result<OrderPaymentPayload> {
        Self::close(ctx, input, entities::order_payment::PaymentState::Failed).await
    }

    /// Team permission `CHANGE_ORDERS`: cancels an open payment; its fee
    /// leaves the total.
    async fn cancel_order_payment(
        &self,
        ctx: &Context<'_>,
        input: OrderPaymentChangeInput,
    ) -> Result<OrderPaymentPayload> {
        Self::close(ctx, input, entities::order_payment::PaymentState::Canceled).await
    }
}
