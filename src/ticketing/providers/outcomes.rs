//! What a provider's answer does to a payment: success confirms it (and pays
//! the order once payments cover it) through `payments::confirm_locked`,
//! failure or cancellation closes it through `payments::close_locked`, and a
//! refund the provider reports is recorded as a refund of that payment.
//!
//! Each function works in the caller's transaction after locking the order's
//! row, and reads the payment again under that lock, so an answer applied
//! twice (a replayed event, a webhook racing the team) changes nothing the
//! second time.

use chrono::{DateTime, Utc};
use sea_orm::sea_query::Expr;
use sea_orm::{ActiveModelTrait, ColumnTrait, ConnectionTrait, EntityTrait, QueryFilter, Set};
use serde_json::json;

use super::Outcome;
use crate::entities::order::OrderStatus;
use crate::entities::order_payment::PaymentState;
use crate::entities::order_refund::{RefundMethod, RefundSource, RefundState};
use crate::entities::{event, order, order_payment, order_refund};
use crate::error::AppError;
use crate::ticketing::access::Actor;
use crate::ticketing::audit::{self, Change};
use crate::ticketing::payments::{
    close_locked, confirm_locked, lock_order, move_payment, payment_change,
};

/// A provider's word on a payment.
#[derive(Debug, Clone)]
pub struct Report {
    pub outcome: Outcome,
    /// The provider's own state name, stored on the payment.
    pub state: Option<String>,
    pub charge_id: Option<String>,
}

/// The payment and its order after an answer was applied.
pub struct Applied {
    pub payment: order_payment::Model,
    pub order: order::Model,
    /// Whether the answer changed the payment's state.
    pub changed: bool,
}

/// The payment a provider calls `provider_payment_id`.
///
/// # Errors
/// On database errors.
pub async fn by_provider_id(
    db: &impl ConnectionTrait,
    provider: &str,
    provider_payment_id: &str,
) -> Result<Option<order_payment::Model>, AppError> {
    Ok(order_payment::Entity::find()
        .filter(order_payment::Column::Provider.eq(provider))
        .filter(order_payment::Column::ProviderPaymentId.eq(provider_payment_id))
        .one(db)
        .await?)
}

/// Locks the payment's order and reads both (and the event) fresh.
async fn locked(
    txn: &impl ConnectionTrait,
    now: DateTime<Utc>,
    payment_id: i32,
) -> Result<(order_payment::Model, order::Model, event::Model), AppError> {
    let payment = order_payment::Entity::find_by_id(payment_id)
        .one(txn)
        .await?
        .ok_or(AppError::not_found("payment"))?;
    let order = lock_order(txn, payment.order_id, now).await?;
    let payment = order_payment::Entity::find_by_id(payment_id)
        .one(txn)
        .await?
        .ok_or(AppError::not_found("payment"))?;
    let event = event::Entity::find_by_id(order.event_id)
        .one(txn)
        .await?
        .ok_or(AppError::not_found("event"))?;
    Ok((payment, order, event))
}

/// Applies a provider's report on a payment.
///
/// # Errors
/// `INVALID_TRANSITION` when money arrived for an order that was canceled or
/// expired (the team decides: refund, or reopen); on database errors.
pub async fn apply(
    txn: &impl ConnectionTrait,
    actor: Option<Actor>,
    now: DateTime<Utc>,
    payment_id: i32,
    report: &Report,
) -> Result<Applied, AppError> {
    let (payment, order, event) = locked(txn, now, payment_id).await?;
    if report.state.is_some() || report.charge_id.is_some() {
        let mut update =
            order_payment::Entity::update_many().filter(order_payment::Column::Id.eq(payment.id));
        if let Some(state) = &report.state {
            update = update.col_expr(
                order_payment::Column::ProviderState,
                Expr::value(state.chars().take(64).collect::<String>()),
            );
        }
        if let Some(charge) = &report.charge_id {
            update = update.col_expr(
                order_payment::Column::ProviderChargeId,
                Expr::value(charge.chars().take(200).collect::<String>()),
            );
        }
        update.exec(txn).await?;
    }
    let open = [PaymentState::Created, PaymentState::Pending];
    let reopenable = [
        PaymentState::Created,
        PaymentState::Pending,
        PaymentState::Failed,
        PaymentState::Canceled,
    ];
    let (moved, action) = match report.outcome {
        Outcome::Pending => (None, ""),
        // Money the provider took always counts: also after a failed try
        // (the buyer's next card succeeded) or a cancellation on our side.
        Outcome::Succeeded if reopenable.contains(&payment.state) => {
            let moved = if order.status == OrderStatus::Paid {
                // Paid already by another payment (a second tab, a balance
                // that changed): an overpayment the team may refund.
                move_payment(txn, &payment, &reopenable, PaymentState::Confirmed, now).await?
            } else {
                confirm_locked(txn, actor, now, &event, &order, &payment, &reopenable)
                    .await?
                    .0
            };
            (Some(moved), "voltgate.order.payment.confirmed")
        }
        Outcome::Failed if open.contains(&payment.state) => (
            Some(close_locked(txn, now, &order, &payment, &open, PaymentState::Failed).await?),
            "voltgate.order.payment.failed",
        ),
        Outcome::Canceled if open.contains(&payment.state) => (
            Some(close_locked(txn, now, &order, &payment, &open, PaymentState::Canceled).await?),
            "voltgate.order.payment.canceled",
        ),
        // Already where the report leads, or past it (a late failure after
        // success): nothing to do.
        _ => (None, ""),
    };
    if let Some(moved) = &moved {
        audit::record(
            txn,
            actor,
            now,
            payment_change(&event, &order, moved, action),
        )
        .await?;
    }
    Ok(Applied {
        payment: order_payment::Entity::find_by_id(payment.id)
            .one(txn)
            .await?
            .ok_or(AppError::not_found("payment"))?,
        order: order::Entity::find_by_id(order.id)
            .one(txn)
            .await?
            .ok_or(AppError::not_found("order"))?,
        changed: moved.is_some(),
    })
}

/// Records what the provider says it gave back of a payment:
/// `refunded_total_minor` is everything refunded so far (Stripe's
/// `amount_refunded`), so only the part not recorded yet becomes a refund,
/// and a replayed report records nothing. The payment is `refunded` once
/// all of it went back.
///
/// # Errors
/// On database errors.
pub async fn apply_refund(
    txn: &impl ConnectionTrait,
    now: DateTime<Utc>,
    payment_id: i32,
    charge_id: Option<&str>,
    refunded_total_minor: i64,
) -> Result<Applied, AppError> {
    let (payment, order, event) = locked(txn, now, payment_id).await?;
    let recorded = super::refunds::given_back(txn, payment.id).await?;
    let refunded_total = refunded_total_minor.min(payment.amount_minor);
    let amount = refunded_total - recorded;
    let mut changed = false;
    if amount > 0 {
        let refund = order_refund::ActiveModel {
            order_id: Set(order.id),
            local_id: Set(crate::ticketing::refunds::next_refund_number(txn, order.id).await?),
            state: Set(RefundState::Done),
            source: Set(RefundSource::External),
            method: Set(RefundMethod::Provider),
            amount_minor: Set(amount),
            payment_id: Set(Some(payment.id)),
            provider: Set(payment.provider.clone()),
            reference: Set(charge_id.map(str::to_owned)),
            info: Set("{}".to_owned()),
            comment: Set(String::new()),
            created_by: Set(None),
            created_at: Set(now),
            execution_date: Set(Some(now)),
            ..Default::default()
        }
        .insert(txn)
        .await?;
        if refunded_total >= payment.amount_minor {
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
        let data = json!({
            "code": order.code, "refund": refund.local_id, "amount_minor": amount,
            "method": refund.method, "payment": payment.local_id,
        });
        audit::record(
            txn,
            None,
            now,
            Change::on_event(
                &event,
                "voltgate.order.refund.done",
                "order",
                order.id,
                data,
            ),
        )
        .await?;
        changed = true;
    }
    Ok(Applied {
        payment: order_payment::Entity::find_by_id(payment.id)
            .one(txn)
            .await?
            .ok_or(AppError::not_found("payment"))?,
        order,
        changed,
    })
}
