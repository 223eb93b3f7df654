//! Refunds (pretix `OrderRefund`): a team gives back all or part of what an
//! order's payments brought in, by hand or as a store credit for the buyer's
//! later orders, and may cancel the order in the same transaction.
//!
//! The order's row is locked first (as for payments), so two refunds of one
//! order serialize and together never give back more than was paid.

use chrono::{DateTime, TimeDelta, Utc};
use sea_orm::sea_query::Expr;
use sea_orm::{
    ActiveModelTrait, ColumnTrait, ConnectionTrait, DatabaseConnection, EntityTrait, QueryFilter,
    QueryOrder, QuerySelect, Set,
};
use serde_json::json;

use super::audit::Change;
use super::orders::{cancel_within, order_changed, order_for_change, reload};
use super::payments::lock_order;
use crate::auth::Principal;
use crate::entities::order_payment::PaymentState;
use crate::entities::order_refund::{RefundMethod, RefundSource, RefundState};
use crate::entities::store_credit::CreditStatus;
use crate::entities::{order, order_payment, order_refund, store_credit};
use crate::error::AppError;

/// How long a store credit lasts when the team does not say.
const CREDIT_TERM: TimeDelta = TimeDelta::days(365);

/// What a refund is made with.
#[derive(Debug, Clone)]
pub struct RefundInput {
    /// Everything not refunded yet when not given.
    pub amount_minor: Option<i64>,
    pub method: RefundMethod,
    /// Cancel the order too (its positions, quota and ledger).
    pub cancel: bool,
    pub comment: String,
    /// For a store credit: when it expires (a year from now by default).
    pub credit_expires: Option<DateTime<Utc>>,
}

/// What a refund made.
pub struct Refunded {
    pub refund: order_refund::Model,
    pub credit: Option<store_credit::Model>,
    pub order: order::Model,
}

/// What the order's payments brought in and its refunds have not given back.
pub(super) async fn refundable(db: &impl ConnectionTrait, order_id: i32) -> Result<i64, AppError> {
    let paid: i64 = order_payment::Entity::find()
        .filter(order_payment::Column::OrderId.eq(order_id))
        .filter(
            order_payment::Column::State.is_in([PaymentState::Confirmed, PaymentState::Refunded]),
        )
        .all(db)
        .await?
        .iter()
        .map(|p| p.amount_minor)
        .sum();
    let refunded: i64 = order_refund::Entity::find()
        .filter(order_refund::Column::OrderId.eq(order_id))
        .filter(order_refund::Column::State.is_in([
            RefundState::Created,
            RefundState::Transit,
            RefundState::Done,
        ]))
        .all(db)
        .await?
        .iter()
        .map(|r| r.amount_minor)
        .sum();
    Ok(paid - refunded)
}

/// Refunds a paid or pending order (team permission `ChangeOrders`): a
/// manual refund is done at once; a store credit refund issues a credit to the
/// order's account for this event. With `cancel`, the order is canceled in the
/// same transaction. Once refunds give back everything paid, the confirmed
/// payments become `refunded`.
///
/// # Errors
/// `BAD_USER_INPUT` on an amount that is not positive or more than the
/// payments not yet refunded (`amount`), a store credit for an order without
/// an account (`method`), an expiry in the past (`creditExpires`), a comment
/// over 2000 characters; `INVALID_TRANSITION` when canceling an order that is
/// not pending or paid; as [`super::access::on_event`].
pub async fn refund(
    db: &DatabaseConnection,
    principal: &Principal,
    now: DateTime<Utc>,
    order_id: i32,
    input: RefundInput,
) -> Result<Refunded, AppError> {
    if input.comment.chars().count() > 2000 {
        return Err(AppError::bad_input("comment", "at most 2000 characters"));
    }
    let expires = input.credit_expires.unwrap_or(now + CREDIT_TERM);
    if expires <= now {
        return Err(AppError::bad_input("creditExpires", "in the future"));
    }
    let (change, order, event) = order_for_change(db, principal, now, order_id).await?;
    let txn = change.txn();
    let order = lock_order(txn, order.id, now).await?;
    let open = refundable(txn, order.id).await?;
    let amount = input.amount_minor.unwrap_or(open);
    if amount <= 0 {
        return Err(AppError::bad_input(
            "amount",
            "more than zero (nothing paid is left to refund)",
        ));
    }
    if amount > open {
        return Err(AppError::bad_input(
            "amount",
            "at most what the payments brought in and refunds have not given back",
        ));
    }
    let credit_to = match (input.method, order.user_id) {
        (RefundMethod::StoreCredit, None) => {
            return Err(AppError::bad_input(
                "method",
                "a store credit needs an order placed with an account",
            ));
        }
        (RefundMethod::StoreCredit, Some(user_id)) => Some(user_id),
        (RefundMethod::Manual, _) => None,
        // Money goes back through the provider in `providers::refunds`,
        // which calls it outside any transaction.
        (RefundMethod::Provider, _) => {
            return Err(AppError::bad_input(
                "method",
                "a provider refund is made through the payment's provider",
            ));
        }
    };
    let refund = order_refund::ActiveModel {
        order_id: Set(order.id),
        local_id: Set(next_refund_number(txn, order.id).await?),
        state: Set(RefundState::Done),
        source: Set(RefundSource::Admin),
        method: Set(input.method),
        amount_minor: Set(amount),
        payment_id: Set(None),
        provider: Set(None),
        reference: Set(None),
        info: Set("{}".to_owned()),
        comment: Set(input.comment),
        created_by: Set(change.actor().and_then(super::access::Actor::user_id)),
        created_at: Set(now),
        execution_date: Set(Some(now)),
        ..Default::default()
    }
    .insert(txn)
    .await?;
    let credit = match credit_to {
        Some(user_id) => Some(
            store_credit::ActiveModel {
                user_id: Set(user_id),
                event_id: Set(order.event_id),
                amount_minor: Set(amount),
                remaining_minor: Set(amount),
                status: Set(CreditStatus::Available),
                source_order_id: Set(Some(order.id)),
                source_refund_id: Set(Some(refund.id)),
                applied_to_order_id: Set(None),
                note: Set(format!("Refund {}-R-{}", order.code, refund.local_id)),
                expires: Set(expires),
                created_at: Set(now),
                updated_at: Set(now),
                ..Default::default()
            }
            .insert(txn)
            .await?,
        ),
        None => None,
    };
    if amount == open {
        order_payment::Entity::update_many()
            .col_expr(
                order_payment::Column::State,
                Expr::value(PaymentState::Refunded),
            )
            .filter(order_payment::Column::OrderId.eq(order.id))
            .filter(order_payment::Column::State.eq(PaymentState::Confirmed))
            .exec(txn)
            .await?;
    }
    if input.cancel {
        cancel_within(txn, &order, now).await?;
        change
            .log(order_changed(&event, &order, "voltgate.order.canceled"))
            .await?;
    }
    let stored = reload(txn, order.id).await?;
    let data = json!({
        "code": order.code, "refund": refund.local_id, "amount_minor": amount,
        "method": refund.method, "credit": credit.as_ref().map(|c| c.id),
    });
    change
        .commit(Change::on_event(
            &event,
            "voltgate.order.refund.done",
            "order",
            order.id,
            data,
        ))
        .await?;
    Ok(Refunded {
        refund,
        credit,
        order: stored,
    })
}

/// An order's refunds, by number.
///
/// # Errors
/// On database errors.
pub async fn of_order(
    db: &impl ConnectionTrait,
    order_id: i32,
) -> Result<Vec<order_refund::Model>, AppError> {
    Ok(order_refund::Entity::find()
        .filter(order_refund::Column::OrderId.eq(order_id))
        .order_by_asc(order_refund::Column::LocalId)
        .all(db)
        .await?)
}

/// The number the order's next refund takes within it (1, 2, …).
pub(crate) async fn next_refund_number(
    db: &impl sea_orm::ConnectionTrait,
    order_id: i32,
) -> Result<i32, sea_orm::DbErr> {
    let last: Option<i32> = order_refund::Entity::find()
        .select_only()
        .column_as(order_refund::Column::LocalId.max(), "last")
        .filter(order_refund::Column::OrderId.eq(order_id))
        .into_tuple::<Option<i32>>()
        .one(db)
        .await?
        .flatten();
    Ok(last.unwrap_or(0) + 1)
}
