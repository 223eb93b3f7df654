//! Store credits (django-program `Credit`): issued by refunds, spent by their
//! owner on a later pending order of the same event as a confirmed payment
//! (method `store_credit`).
//!
//! A credit is spent by one conditional `UPDATE` that checks what remains
//! and that it has not expired, in the payment's transaction, so two orders
//! paid at once with one credit never spend more than it holds.

use chrono::{DateTime, Utc};
use sea_orm::sea_query::{Expr, ExprTrait};
use sea_orm::{
    ActiveModelTrait, ColumnTrait, ConnectionTrait, DatabaseConnection, EntityTrait, QueryFilter,
    QueryOrder, Set,
};
use serde_json::json;

use super::access::Actor;
use super::audit::{Audited, Change};
use super::orders::{order_changed, reload, settle};
use super::payments::{confirmed_total, lock_order};
use crate::auth::Principal;
use crate::entities::order::OrderStatus;
use crate::entities::order_payment::{PaymentMethod, PaymentState};
use crate::entities::store_credit::CreditStatus;
use crate::entities::{event, order, order_payment, store_credit};
use crate::error::{AppError, Reason};

/// The signed-in person's store credits for `event_id`, oldest first.
///
/// # Errors
/// As [`Principal::person`].
pub async fn of_person(
    db: &impl ConnectionTrait,
    principal: &Principal,
    event_id: i32,
) -> Result<Vec<store_credit::Model>, AppError> {
    let person = principal.person()?;
    Ok(store_credit::Entity::find()
        .filter(store_credit::Column::UserId.eq(person.id))
        .filter(store_credit::Column::EventId.eq(event_id))
        .order_by_asc(store_credit::Column::Id)
        .all(db)
        .await?)
}

/// Pays the open balance of one's own pending order with one's store credit,
/// as far as it goes: a confirmed `store_credit` payment; the order is paid
/// once its confirmed payments cover the total. Returns the payment and the
/// order.
///
/// # Errors
/// `BAD_USER_INPUT` on an order (`orderId`) or credit (`creditId`) that is not
/// the caller's or not of the same event; `EXPIRED` for an expired credit;
/// `ALREADY_REDEEMED` when nothing of it remains; `INVALID_TRANSITION`
/// unless the order is pending; as [`Principal::person`].
pub async fn apply(
    db: &DatabaseConnection,
    principal: &Principal,
    now: DateTime<Utc>,
    order_id: i32,
    credit_id: i32,
) -> Result<(order_payment::Model, order::Model), AppError> {
    let person = principal.person()?;
    let change = Audited::begin(db, Some(Actor::Person(person.id)), now).await?;
    let txn = change.txn();
    let order = order::Entity::find_by_id(order_id).one(txn).await?;
    if order.as_ref().and_then(|o| o.user_id) != Some(person.id) {
        return Err(AppError::bad_input("orderId", "not one of your orders"));
    }
    let order = lock_order(txn, order_id, now).await?;
    // The credit's row is read locked, so concurrent payments from one
    // credit each see what the one before left: read unlocked, they would
    // all size their payment from the same balance and every one but the
    // first would find it short and spend nothing of what remains.
    let credit = crate::db::find_locked(txn, store_credit::Entity::find_by_id(credit_id)).await?;
    let credit = match credit {
        Some(c) if c.user_id == person.id && c.event_id == order.event_id => c,
        _ => {
            return Err(AppError::bad_input(
                "creditId",
                "not one of your credits for this event",
            ));
        }
    };
    if order.status != OrderStatus::Pending {
        return Err(AppError::refused(
            Reason::InvalidTransition,
            "only a pending order takes payments",
        ));
    }
    match credit.status_at(now) {
        CreditStatus::Expired => {
            return Err(AppError::refused(Reason::Expired, "the credit has expired"));
        }
        CreditStatus::Applied => {
            return Err(AppError::refused(
                Reason::AlreadyRedeemed,
                "nothing of the credit remains",
            ));
        }
        CreditStatus::Available => {}
    }
    let balance = order.total_minor - confirmed_total(txn, order.id).await?;
    let amount = std::cmp::Ord::min(balance, credit.remaining_minor);
    if amount <= 0 {
        return Err(AppError::refused(
            Reason::InvalidTransition,
            "nothing is left to pay",
        ));
    }
    spend(txn, credit.id, amount, order.id, now).await?;
    let local_id = super::payments::next_payment_number(txn, order.id).await?;
    let payment = order_payment::ActiveModel {
        order_id: Set(order.id),
        local_id: Set(local_id),
        state: Set(PaymentState::Confirmed),
        method: Set(PaymentMethod::StoreCredit),
        amount_minor: Set(amount),
        fee_id: Set(None),
        provider: Set(None),
        reference: Set(Some(format!("credit {}", credit.id))),
        info: Set(json!({ "credit": credit.id }).to_string()),
        note: Set(String::new()),
        created_by: Set(Some(person.id)),
        created_at: Set(now),
        payment_date: Set(Some(now)),
        ..Default::default()
    }
    .insert(txn)
    .await?;
    let event = event::Entity::find_by_id(order.event_id)
        .one(txn)
        .await?
        .ok_or(AppError::not_found("event"))?;
    if amount == balance && settle(txn, &order, now).await? {
        change
            .log(order_changed(&event, &order, "voltgate.order.paid"))
            .await?;
    }
    let stored = reload(txn, order.id).await?;
    let data = json!({
        "code": order.code, "payment": payment.local_id, "amount_minor": amount,
        "method": payment.method, "credit": credit.id,
    });
    change
        .commit(Change::on_event(
            &event,
            "voltgate.order.payment.confirmed",
            "order",
            order.id,
            data,
        ))
        .await?;
    Ok((payment, stored))
}

/// Takes `amount` off the credit by one conditional `UPDATE`: only while that
/// much remains and it has not expired.
async fn spend(
    db: &impl ConnectionTrait,
    credit_id: i32,
    amount: i64,
    order_id: i32,
    now: DateTime<Utc>,
) -> Result<(), AppError> {
    let spent = store_credit::Entity::update_many()
        .col_expr(
            store_credit::Column::RemainingMinor,
            Expr::col(store_credit::Column::RemainingMinor).sub(amount),
        )
        .col_expr(
            store_credit::Column::AppliedToOrderId,
            Expr::value(order_id),
        )
        .col_expr(store_credit::Column::UpdatedAt, Expr::value(now))
        .filter(store_credit::Column::Id.eq(credit_id))
        .filter(store_credit::Column::Status.eq(CreditStatus::Available))
        .filter(store_credit::Column::RemainingMinor.gte(amount))
        .filter(store_credit::Column::Expires.gt(now))
        .exec(db)
        .await?;
    if spent.rows_affected != 1 {
        return Err(AppError::refused(
            Reason::AlreadyRedeemed,
            "the credit was spent meanwhile",
        ));
    }
    store_credit::Entity::update_many()
        .col_expr(
            store_credit::Column::Status,
            Expr::value(CreditStatus::Applied),
        )
        .filter(store_credit::Column::Id.eq(credit_id))
        .filter(store_credit::Column::RemainingMinor.eq(0))
        .exec(db)
        .await?;
    Ok(())
}
