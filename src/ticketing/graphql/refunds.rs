//! Refunds (team permission `CHANGE_ORDERS`) and store credits: a refund
//! gives money back by hand or as a credit, optionally canceling the order;
//! the customer spends their credit on a later order of the same event.

use async_graphql::{Context, Enum, ID, InputObject, Object, Result, SimpleObject};
use sea_orm::EntityTrait as _;

use super::payments::{OrderPaymentPayload, PaymentMutation};
use super::types::{Money, Order};
use crate::auth::guards::principal;
use crate::entities::{self, order_refund, store_credit};
use crate::error::AppError;
use crate::graphql::ids::{self, Kind};
use crate::graphql::scalars::DateTime;
use crate::services::services;
use crate::ticketing::credits;
use crate::ticketing::money::parse_minor;
use crate::ticketing::refunds::{self, RefundInput};

impl Kind {
    pub const ORDER_REFUND: Self = Self::named("OrderRefund");
    pub const STORE_CREDIT: Self = Self::named("StoreCredit");
}

/// A refund's state (pretix's).
#[derive(Enum, Clone, Copy, PartialEq, Eq)]
#[graphql(remote = "entities::order_refund::RefundState")]
pub enum RefundState {
    Created,
    Transit,
    Done,
    Failed,
    Canceled,
    External,
}

/// Who started a refund.
#[derive(Enum, Clone, Copy, PartialEq, Eq)]
#[graphql(remote = "entities::order_refund::RefundSource")]
pub enum RefundSource {
    Admin,
    Buyer,
    External,
}

/// How a refund gives the money back.
#[derive(Enum, Clone, Copy, PartialEq, Eq)]
#[graphql(remote = "entities::order_refund::RefundMethod")]
pub enum RefundMethod {
    /// Paid back by the team (bank transfer, cash).
    Manual,
    /// As a store credit for the buyer's later orders of the event.
    StoreCredit,
    /// Through the payment's provider: started with `refundOrder`, or
    /// reported by the provider (`charge.refunded`).
    Provider,
}

/// A store credit's status; `EXPIRED` once past `expires`.
#[derive(Enum, Clone, Copy, PartialEq, Eq)]
#[graphql(remote = "entities::store_credit::CreditStatus")]
pub enum CreditStatus {
    Available,
    Applied,
    Expired,
}

/// A refund of an order.
pub struct OrderRefund(pub order_refund::Model, pub String);

#[Object]
impl OrderRefund {
    async fn id(&self) -> ID {
        ids::encode(Kind::ORDER_REFUND, self.0.id)
    }
    /// 1, 2, … within the order.
    async fn local_id(&self) -> i32 {
        self.0.local_id
    }
    async fn state(&self) -> RefundState {
        self.0.state.into()
    }
    async fn source(&self) -> RefundSource {
        self.0.source.into()
    }
    async fn method(&self) -> RefundMethod {
        self.0.method.into()
    }
    async fn amount(&self) -> Money {
        Money::new(self.0.amount_minor, &self.1)
    }
    async fn comment(&self) -> &str {
        &self.0.comment
    }
    async fn created_at(&self) -> DateTime {
        self.0.created_at.into()
    }
    /// When it was done.
    async fn execution_date(&self) -> Option<DateTime> {
        self.0.execution_date.map(Into::into)
    }
}

/// A store credit of a customer for one event.
pub struct StoreCredit(pub store_credit::Model, pub String);

#[Object]
impl StoreCredit {
    async fn id(&self) -> ID {
        ids::encode(Kind::STORE_CREDIT, self.0.id)
    }
    async fn amount(&self) -> Money {
        Money::new(self.0.amount_minor, &self.1)
    }
    async fn remaining_amount(&self) -> Money {
        Money::new(self.0.remaining_minor, &self.1)
    }
    async fn status(&self, ctx: &Context<'_>) -> Result<CreditStatus> {
        Ok(self.0.status_at(services(ctx)?.now()).into())
    }
    async fn expires(&self) -> DateTime {
        self.0.expires.into()
    }
    async fn source_order_id(&self) -> Option<ID> {
        self.0
            .source_order_id
            .map(|id| ids::encode(Kind::ORDER, id))
    }
    /// The last order it paid for.
    async fn applied_to_order_id(&self) -> Option<ID> {
        self.0
            .applied_to_order_id
            .map(|id| ids::encode(Kind::ORDER, id))
    }
    async fn note(&self) -> &str {
        &self.0.note
    }
    async fn created_at(&self) -> DateTime {
        self.0.created_at.into()
    }
}

#[derive(InputObject)]
pub struct RefundOrderInput {
    pub order_id: ID,
    pub method: RefundMethod,
    /// A decimal amount; everything paid and not refunded yet when not given.
    pub amount: Option<String>,
    /// Cancel the order in the same step.
    #[graphql(default)]
    pub cancel: bool,
    #[graphql(default)]
    pub comment: String,
    /// For a store credit: when it expires (a year from now when not given).
    pub credit_expires: Option<DateTime>,
}

#[derive(SimpleObject)]
pub struct RefundOrderPayload {
    pub refund: OrderRefund,
    /// The store credit it issued.
    pub credit: Option<StoreCredit>,
    pub order: Order,
}

#[derive(InputObject)]
pub struct ApplyStoreCreditInput {
    pub order_id: ID,
    pub credit_id: ID,
}

async fn currency(ctx: &Context<'_>, event_id: i32) -> Result<String> {
    Ok(entities::event::Entity::find_by_id(event_id)
        .one(&services(ctx)?.db)
        .await
        .map_err(AppError::from)?
        .map(|e| e.currency)
        .unwrap_or_default())
}

#[derive(Default)]
pub struct RefundMutation;

#[Object]
impl RefundMutation {
    /// Team permission `CHANGE_ORDERS`: refunds all or part of what an
    /// order's payments brought in, by hand, as a store credit, or through
    /// the provider of a confirmed provider payment (`PROVIDER`, without
    /// `cancel`), and cancels the order when `cancel` is set.
    async fn refund_order(
        &self,
        ctx: &Context<'_>,
        input: RefundOrderInput,
    ) -> Result<RefundOrderPayload> {
        let services = services(ctx)?;
        let order_id = ids::decode(&input.order_id, Kind::ORDER, "orderId")?;
        if input.method == RefundMethod::Provider {
            if input.cancel {
                return Err(crate::error::AppError::bad_input(
                    "cancel",
                    "refund through the provider first, then cancelOrder",
                )
                .into());
            }
            let refunded = crate::ticketing::providers::refunds::refund(
                services,
                principal(ctx),
                order_id,
                input
                    .amount
                    .as_deref()
                    .map(|a| parse_minor("amount", a))
                    .transpose()?,
                input.comment,
            )
            .await?;
            let currency = currency(ctx, refunded.order.event_id).await?;
            return Ok(RefundOrderPayload {
                refund: OrderRefund(refunded.refund, currency),
                credit: None,
                order: Order(refunded.order),
            });
        }
        let refunded = refunds::refund(
            &services.db,
            principal(ctx),
            services.now(),
            order_id,
            RefundInput {
                amount_minor: input
                    .amount
                    .as_deref()
                    .map(|a| parse_minor("amount", a))
                    .transpose()?,
                method: input.method.into(),
                cancel: input.cancel,
                comment: input.comment,
                credit_expires: input.credit_expires.map(|t| t.0),
            },
        )
        .await?;
        if input.cancel {
            // The canceled order's units return to its quotas.
            crate::ticketing::live::announce(services, [refunded.order.event_id]).await;
        }
        let currency = currency(ctx, refunded.order.event_id).await?;
        Ok(RefundOrderPayload {
            refund: OrderRefund(refunded.refund, currency.clone()),
            credit: refunded.credit.map(|c| StoreCredit(c, currency)),
            order: Order(refunded.order),
        })
    }

    /// The customer pays their own pending order with their store credit for
    /// its event, as far as the credit goes.
    async fn apply_store_credit(
        &self,
        ctx: &Context<'_>,
        input: ApplyStoreCreditInput,
    ) -> Result<OrderPaymentPayload> {
        let services = services(ctx)?;
        let order_id = ids::decode(&input.order_id, Kind::ORDER, "orderId")?;
        let credit_id = ids::decode(&input.credit_id, Kind::STORE_CREDIT, "creditId")?;
        let (payment, order) = credits::apply(
            &services.db,
            principal(ctx),
            services.now(),
            order_id,
            credit_id,
        )
        .await?;
        // A pending order that became paid moves its units from ORDERED to GONE.
        crate::ticketing::live::announce(services, [order.event_id]).await;
        PaymentMutation::payload(ctx, payment, Some(order)).await
    }
}

#[derive(Default)]
pub struct StoreCreditQuery;

#[Object]
impl StoreCreditQuery {
    /// The signed-in customer's store credits for an event.
    async fn store_credits(&self, ctx: &Context<'_>, event_id: ID) -> Result<Vec<StoreCredit>> {
        let event_id = ids::decode(&event_id, Kind::EVENT, "eventId")?;
        let credits = credits::of_person(&services(ctx)?.db, principal(ctx), event_id).await?;
        let currency = currency(ctx, event_id).await?;
        Ok(credits
            .into_iter()
            .map(|c| StoreCredit(c, currency.clone()))
            .collect())
    }
}

/// The refunds of `Order`, by number.
pub(super) async fn of_order(ctx: &Context<'_>, order: &Order) -> Result<Vec<OrderRefund>> {
    let rows = refunds::of_order(&services(ctx)?.db, order.0.id).await?;
    let currency = currency(ctx, order.0.event_id).await?;
    Ok(rows
        .into_iter()
        .map(|row| OrderRefund(row, currency.clone()))
        .collect())
}
