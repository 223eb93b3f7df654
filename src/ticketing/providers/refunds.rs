//! Refunds through the payment's provider, started by the team
//! (`refundOrder` with method `PROVIDER`).
//!
//! Like starting a payment, this is three steps so that the provider is not
//! called inside a transaction: the refund is stored `transit` (order row
//! locked, so refunds of one order never give back more than was paid),
//! the provider is asked, and its answer moves the refund to `done` or
//! `failed`. A refund in transit counts as given back, so the provider's
//! `charge.refunded` event arriving meanwhile records nothing twice.

use sea_orm::sea_query::Expr;
use sea_orm::{ActiveModelTrait, ColumnTrait, EntityTrait, QueryFilter, QueryOrder, Set};
use serde_json::json;

use crate::auth::{Principal, TeamPermission};
use crate::entities::order_payment::{PaymentMethod, PaymentState};
use crate::entities::order_refund::{RefundMethod, RefundSource, RefundState};
use crate::entities::{order, order_payment, order_refund};
use crate::error::{AppError, Reason};
use crate::services::ServiceContext;
use crate::ticketing::access;
use crate::ticketing::audit::{Audited, Change};
use crate::ticketing::payments::lock_order;

/// A refund made through a provider, and its order.
pub struct ProviderRefunded {
    pub refund: order_refund::Model,
    pub order: order::Model,
}

/// What of `payment` has not gone back through its provider yet (refunds in
/// transit count as gone).
async fn left_of(
    db: &impl sea_orm::ConnectionTrait,
    payment: &order_payment::Model,
) -> Result<i64, AppError> {
    Ok(payment.amount_minor - given_back(db, payment.id).await?)
}

/// What of a payment has gone back through its provider: refunds done, and
/// those started and in transit (the provider's later event about one must
/// not count it again).
pub(super) async fn given_back(
    db: &impl sea_orm::ConnectionTrait,
    payment_id: i32,
) -> Result<i64, sea_orm::DbErr> {
    Ok(order_refund::Entity::find()
        .filter(order_refund::Column::PaymentId.eq(payment_id))
        .filter(order_refund::Column::Method.eq(RefundMethod::Provider))
        .filter(order_refund::Column::State.is_in([
            RefundState::Created,
            RefundState::Transit,
            RefundState::Done,
        ]))
        .all(db)
        .await?
        .iter()
        .map(|r| r.amount_minor)
        .sum())
}

/// Refunds `amount_minor` (everything left when not given) of the order's
/// latest confirmed provider payment with something left, through its
/// provider (team permission `ChangeOrders`).
///
/// # Errors
/// `BAD_USER_INPUT` without a confirmed provider payment to refund
/// (`method`), on an amount that is not positive or more than is left of
/// that payment and the order (`amount`), or a comment over 2000
/// characters; `PROVIDER_UNAVAILABLE` when the provider fails (the refund is
/// then `failed`); as [`access::on_event`].
pub async fn refund(
    services: &ServiceContext,
    principal: &Principal,
    order_id: i32,
    amount_minor: Option<i64>,
    comment: String,
) -> Result<ProviderRefunded, AppError> {
    if comment.chars().count() > 2000 {
        return Err(AppError::bad_input("comment", "at most 2000 characters"));
    }
    let db = &services.db;
    let now = services.now();
    let order = order::Entity::find_by_id(order_id).one(db).await?;
    let (event, actor) = access::on_event(
        db,
        principal,
        TeamPermission::ChangeOrders,
        order.as_ref().map_or(0, |o| o.event_id),
    )
    .await?;
    let order = order.ok_or(AppError::not_found("order"))?;

    let change = Audited::begin(db, Some(actor), now).await?;
    let txn = change.txn();
    let order = lock_order(txn, order.id, now).await?;
    let payments = order_payment::Entity::find()
        .filter(order_payment::Column::OrderId.eq(order.id))
        .filter(order_payment::Column::Method.eq(PaymentMethod::Provider))
        .filter(order_payment::Column::State.eq(PaymentState::Confirmed))
        .order_by_desc(order_payment::Column::Id)
        .all(txn)
        .await?;
    let mut chosen = None;
    for payment in payments {
        let left = left_of(txn, &payment).await?;
        let offered = payment
            .provider
            .as_deref()
            .and_then(|name| services.payments.get(name));
        if left > 0
            && let Some(provider) = offered
        {
            chosen = Some((payment, left, provider));
            break;
        }
    }
    let (payment, left, provider) = chosen.ok_or_else(|| {
        AppError::bad_input(
            "method",
            "no confirmed payment of a provider offered here is left to refund",
        )
    })?;
    let order_left = crate::ticketing::refunds::refundable(txn, order.id).await?;
    let amount = amount_minor.unwrap_or(left.min(order_left));
    if amount <= 0 || amount > left || amount > order_left {
        return Err(AppError::bad_input(
            "amount",
            "more than zero and at most what is left of the provider payment",
        ));
    }
    let refund = order_refund::ActiveModel {
        order_id: Set(order.id),
        local_id: Set(crate::ticketing::refunds::next_refund_number(txn, order.id).await?),
        state: Set(RefundState::Transit),
        source: Set(RefundSource::Admin),
        method: Set(RefundMethod::Provider),
        amount_minor: Set(amount),
        payment_id: Set(Some(payment.id)),
        provider: Set(payment.provider.clone()),
        reference: Set(None),
        info: Set("{}".to_owned()),
        comment: Set(comment),
        created_by: Set(actor.user_id()),
        created_at: Set(now),
        execution_date: Set(None),
        ..Default::default()
    }
    .insert(txn)
    .await?;
    let entry = |action| {
        Change::on_event(
            &event,
            action,
            "order",
            order.id,
            json!({
                "code": order.code, "refund": refund.local_id, "amount_minor": amount,
                "method": RefundMethod::Provider, "payment": payment.local_id,
            }),
        )
    };
    change
        .commit(entry("voltgate.order.refund.created"))
        .await?;

    let answer = provider.refund(&payment, amount).await;
    let change = Audited::begin(db, Some(actor), services.now()).await?;
    let txn = change.txn();
    lock_order(txn, order.id, now).await?;
    let (to, reference, action) = match &answer {
        Ok(done) => (
            RefundState::Done,
            Some(done.id.chars().take(200).collect::<String>()),
            "voltgate.order.refund.done",
        ),
        Err(_) => (RefundState::Failed, None, "voltgate.order.refund.failed"),
    };
    let moved = order_refund::Entity::update_many()
        .col_expr(order_refund::Column::State, Expr::value(to))
        .col_expr(order_refund::Column::Reference, Expr::value(reference))
        .col_expr(order_refund::Column::ExecutionDate, Expr::value(Some(now)))
        .filter(order_refund::Column::Id.eq(refund.id))
        .filter(order_refund::Column::State.eq(RefundState::Transit))
        .exec(txn)
        .await?;
    if moved.rows_affected != 1 {
        return Err(AppError::refused(
            Reason::InvalidTransition,
            "the refund changed meanwhile",
        ));
    }
    if to == RefundState::Done && left_of(txn, &payment).await? <= 0 {
        order_payment::Entity::update_many()
            .col_expr(
                order_payment::Column::State,
                Expr::value(PaymentState::Refunded),
            )
            .filter(order_payment::Column::Id.eq(payment.id))
            .filter(order_payment::Column::State.eq(PaymentState::Confirmed))
            .exec(txn)
            .await?;
    }
    let refund = order_refund::Entity::find_by_id(refund.id)
        .one(txn)
        .await?
        .ok_or(AppError::not_found("refund"))?;
    let order = order::Entity::find_by_id(order.id)
        .one(txn)
        .await?
        .ok_or(AppError::not_found("order"))?;
    change.commit(entry(action)).await?;
    answer?;
    Ok(ProviderRefunded { refund, order })
}
