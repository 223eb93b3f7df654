//! Payments and payment fees: a team records a payment (manual or
//! complimentary), confirms it, or marks it failed or canceled; confirmed
//! payments that cover the total mark the order paid.
//!
//! Every change first locks the order's row (a no-op `UPDATE`), so changes to
//! one order's payments serialize on PostgreSQL (SQLite has one writer): two
//! payments confirmed at once both count, and the order is marked paid once.
//! A payment changes state by a conditional `UPDATE` from the states it may
//! leave. A payment's fee is an order fee: it raises the order's total when
//! the payment is created, and is canceled (lowering the total) with it.
//!
//! Provider payments are started by their buyer (`providers::service`) and
//! settled by their provider through [`confirm_locked`] and [`close_locked`],
//! like the team's. Store credit payments are made by `credits::apply` only.

use chrono::{DateTime, Utc};
use sea_orm::sea_query::Expr;
use sea_orm::{
    ActiveModelTrait, ColumnTrait, ConnectionTrait, DatabaseConnection, EntityTrait, QueryFilter,
    QuerySelect, Set,
};
use serde_json::json;

use super::access::Actor;
use super::audit::{Audited, Change};
use super::orders::{order_changed, order_for_change, reload, settle};
use crate::auth::Principal;
use crate::entities::order::OrderStatus;
use crate::entities::order_payment::{PaymentMethod, PaymentState};
use crate::entities::{event, order, order_fee, order_payment};
use crate::error::{AppError, Reason};

/// What a payment is recorded with.
#[derive(Debug, Clone)]
pub struct PaymentInput {
    /// The open balance (after the fee) when not given.
    pub amount_minor: Option<i64>,
    pub method: PaymentMethod,
    /// A payment fee, added to the order's total.
    pub fee_minor: i64,
    pub reference: Option<String>,
    pub note: String,
}

/// Locks the order's row for the rest of the transaction and reads it fresh.
pub(super) async fn lock_order(
    db: &impl ConnectionTrait,
    order_id: i32,
    now: DateTime<Utc>,
) -> Result<order::Model, AppError> {
    order::Entity::update_many()
        .col_expr(order::Column::UpdatedAt, Expr::value(now))
        .filter(order::Column::Id.eq(order_id))
        .exec(db)
        .await?;
    reload(db, order_id).await
}

/// The number the order's next payment takes within it (1, 2, …).
pub(super) async fn next_payment_number(
    db: &impl ConnectionTrait,
    order_id: i32,
) -> Result<i32, sea_orm::DbErr> {
    let last: Option<i32> = order_payment::Entity::find()
        .select_only()
        .column_as(order_payment::Column::LocalId.max(), "last")
        .filter(order_payment::Column::OrderId.eq(order_id))
        .into_tuple::<Option<i32>>()
        .one(db)
        .await?
        .flatten();
    Ok(last.unwrap_or(0) + 1)
}

/// What the order's confirmed payments add up to.
pub(super) async fn confirmed_total(
    db: &impl ConnectionTrait,
    order_id: i32,
) -> Result<i64, AppError> {
    let payments = order_payment::Entity::find()
        .filter(order_payment::Column::OrderId.eq(order_id))
        .filter(order_payment::Column::State.eq(PaymentState::Confirmed))
        .all(db)
        .await?;
    Ok(payments.iter().map(|p| p.amount_minor).sum())
}

/// Adds `delta` to the order's total.
async fn add_to_total(
    db: &impl ConnectionTrait,
    order_id: i32,
    delta: i64,
) -> Result<(), AppError> {
    order::Entity::update_many()
        .col_expr(
            order::Column::TotalMinor,
            Expr::cust(format!("total_minor + ({delta})")),
        )
        .filter(order::Column::Id.eq(order_id))
        .exec(db)
        .await?;
    Ok(())
}

/// Adds a payment fee of `fee_minor` (none when zero) to an order whose row
/// the transaction has locked: an order fee raising its total, written to the
/// ledger.
///
/// # Errors
/// On database errors.
pub(super) async fn add_payment_fee(
    txn: &impl ConnectionTrait,
    order_id: i32,
    internal_type: &str,
    fee_minor: i64,
    now: DateTime<Utc>,
) -> Result<Option<order_fee::Model>, AppError> {
    if fee_minor <= 0 {
        return Ok(None);
    }
    add_to_total(txn, order_id, fee_minor).await?;
    let fee = order_fee::ActiveModel {
        order_id: Set(order_id),
        fee_type: Set("payment".to_owned()),
        internal_type: Set(internal_type.to_owned()),
        description: Set("Payment fee".to_owned()),
        value_minor: Set(fee_minor),
        tax_rate_bp: Set(0),
        tax_value_minor: Set(0),
        canceled: Set(false),
        created_at: Set(now),
        ..Default::default()
    }
    .insert(txn)
    .await?;
    super::ledger::sync(txn, order_id, now).await?;
    Ok(Some(fee))
}

/// Records a payment of a pending order (team permission `ChangeOrders`), in
/// state `created`, with its fee.
///
/// # Errors
/// `BAD_USER_INPUT` on a store credit or provider method, a negative fee, an amount
/// that is not positive, or a reference over 200 characters;
/// `INVALID_TRANSITION` unless the order is pending; as
/// [`super::access::on_event`].
pub async fn create(
    db: &DatabaseConnection,
    principal: &Principal,
    now: DateTime<Utc>,
    order_id: i32,
    input: PaymentInput,
) -> Result<order_payment::Model, AppError> {
    // A credit belongs to its customer, who spends it with `applyStoreCredit`
    // (`credits::apply`): that is the one way a store credit pays.
    if input.method == PaymentMethod::StoreCredit {
        return Err(AppError::bad_input(
            "method",
            "a store credit is spent by its owner with applyStoreCredit",
        ));
    }
    // A provider payment is started by its buyer (`startOrderPayment`), who
    // pays the provider; the team does not record one by hand.
    if input.method == PaymentMethod::Provider {
        return Err(AppError::bad_input(
            "method",
            "a provider payment is started by its buyer with startOrderPayment",
        ));
    }
    if input.fee_minor < 0 {
        return Err(AppError::bad_input("fee", "not negative"));
    }
    if input
        .reference
        .as_ref()
        .is_some_and(|r| r.chars().count() > 200)
    {
        return Err(AppError::bad_input("reference", "at most 200 characters"));
    }
    let (change, order, event) = order_for_change(db, principal, now, order_id).await?;
    let txn = change.txn();
    let order = lock_order(txn, order.id, now).await?;
    if order.status != OrderStatus::Pending {
        return Err(AppError::refused(
            Reason::InvalidTransition,
            "only a pending order takes payments",
        ));
    }
    let fee = add_payment_fee(
        txn,
        order.id,
        method_name(input.method),
        input.fee_minor,
        now,
    )
    .await?;
    let balance = order.total_minor + input.fee_minor - confirmed_total(txn, order.id).await?;
    let amount = input.amount_minor.unwrap_or(balance);
    if amount <= 0 {
        return Err(AppError::bad_input("amount", "more than zero"));
    }
    let local_id = next_payment_number(txn, order.id).await?;
    let payment = order_payment::ActiveModel {
        order_id: Set(order.id),
        local_id: Set(local_id),
        state: Set(PaymentState::Created),
        method: Set(input.method),
        amount_minor: Set(amount),
        fee_id: Set(fee.as_ref().map(|f| f.id)),
        provider: Set(None),
        reference: Set(input.reference),
        info: Set("{}".to_owned()),
        note: Set(input.note),
        created_by: Set(change.actor().and_then(super::access::Actor::user_id)),
        created_at: Set(now),
        payment_date: Set(None),
        ..Default::default()
    }
    .insert(txn)
    .await?;
    change
        .commit(payment_change(
            &event,
            &order,
            &payment,
            "voltgate.order.payment.started",
        ))
        .await?;
    Ok(payment)
}

/// The stored name of a method (also a payment fee's internal type).
fn method_name(method: PaymentMethod) -> &'static str {
    match method {
        PaymentMethod::Manual => "manual",
        PaymentMethod::Complimentary => "complimentary",
        PaymentMethod::StoreCredit => "store_credit",
        PaymentMethod::Provider => "provider",
    }
}

pub(super) fn payment_change<'a>(
    event: &event::Model,
    order: &order::Model,
    payment: &order_payment::Model,
    action: &'a str,
) -> Change<'a> {
    let data = json!({
        "code": order.code, "payment": payment.local_id, "amount_minor": payment.amount_minor,
        "method": payment.method, "fee": payment.fee_id,
    });
    Change::on_event(event, action, "order", order.id, data)
}

/// Opens a change of a payment: its order's team permission `ChangeOrders`,
/// the order's row locked.
pub(super) async fn payment_for_change(
    db: &DatabaseConnection,
    principal: &Principal,
    now: DateTime<Utc>,
    payment_id: i32,
) -> Result<(Audited, order_payment::Model, order::Model, event::Model), AppError> {
    let payment = order_payment::Entity::find_by_id(payment_id)
        .one(db)
        .await?;
    // A payment that does not exist is refused like one the caller may not change.
    let order_id = payment.as_ref().map_or(0, |p| p.order_id);
    let (change, _, event) = order_for_change(db, principal, now, order_id).await?;
    let payment = payment.ok_or(AppError::not_found("payment"))?;
    let order = lock_order(change.txn(), order_id, now).await?;
    Ok((change, payment, order, event))
}

/// Moves a payment from one of `from` to `to` by one conditional `UPDATE`.
pub(super) async fn move_payment(
    db: &impl ConnectionTrait,
    payment: &order_payment::Model,
    from: &[PaymentState],
    to: PaymentState,
    now: DateTime<Utc>,
) -> Result<order_payment::Model, AppError> {
    let mut update = order_payment::Entity::update_many()
        .col_expr(order_payment::Column::State, Expr::value(to))
        .filter(order_payment::Column::Id.eq(payment.id))
        .filter(order_payment::Column::State.is_in(from.iter().copied()));
    if to == PaymentState::Confirmed {
        update = update.col_expr(order_payment::Column::PaymentDate, Expr::value(now));
    }
    if update.exec(db).await?.rows_affected != 1 {
        return Err(AppError::refused(
            Reason::InvalidTransition,
            "the payment is not open any more",
        ));
    }
    order_payment::Entity::find_by_id(payment.id)
        .one(db)
        .await?
        .ok_or(AppError::not_found("payment"))
}

/// Confirms a payment (team permission `ChangeOrders`); when the confirmed
/// payments then cover the total, the order is marked paid in the same
/// transaction. Returns the payment and the order.
///
/// # Errors
/// `INVALID_TRANSITION` for a payment that is not `created` or `pending`, or
/// an order that is not pending; as [`super::access::on_event`].
pub async fn confirm(
    db: &DatabaseConnection,
    principal: &Principal,
    now: DateTime<Utc>,
    payment_id: i32,
) -> Result<(order_payment::Model, order::Model), AppError> {
    let (change, payment, order, event) =
        payment_for_change(db, principal, now, payment_id).await?;
    let (payment, stored) = confirm_locked(
        change.txn(),
        change.actor(),
        now,
        &event,
        &order,
        &payment,
        &[PaymentState::Created, PaymentState::Pending],
    )
    .await?;
    change
        .commit(payment_change(
            &event,
            &order,
            &payment,
            "voltgate.order.payment.confirmed",
        ))
        .await?;
    Ok((payment, stored))
}

/// Confirms `payment` (in one of `from`) of `order`, whose row the caller's
/// transaction has locked; when the confirmed payments then cover the total,
/// the order is marked paid (and that is logged). Every confirmation, by the
/// team or by a provider, goes through here, so an order is marked paid once.
///
/// # Errors
/// `INVALID_TRANSITION` for a payment not in `from` or an order that is not
/// pending.
pub(super) async fn confirm_locked(
    txn: &impl ConnectionTrait,
    actor: Option<Actor>,
    now: DateTime<Utc>,
    event: &event::Model,
    order: &order::Model,
    payment: &order_payment::Model,
    from: &[PaymentState],
) -> Result<(order_payment::Model, order::Model), AppError> {
    if order.status != OrderStatus::Pending {
        return Err(AppError::refused(
            Reason::InvalidTransition,
            "the order is not pending",
        ));
    }
    let payment = move_payment(txn, payment, from, PaymentState::Confirmed, now).await?;
    if confirmed_total(txn, order.id).await? >= order.total_minor && settle(txn, order, now).await?
    {
        super::audit::record(
            txn,
            actor,
            now,
            order_changed(event, order, "voltgate.order.paid"),
        )
        .await?;
    }
    let stored = reload(txn, order.id).await?;
    Ok((payment, stored))
}

/// Marks an open payment failed or canceled (team permission `ChangeOrders`);
/// its fee is canceled and leaves the order's total.
///
/// # Errors
/// `BAD_USER_INPUT` on another target state; `INVALID_TRANSITION` for a
/// payment that is not `created` or `pending`; as [`super::access::on_event`].
pub async fn close(
    db: &DatabaseConnection,
    principal: &Principal,
    now: DateTime<Utc>,
    payment_id: i32,
    to: PaymentState,
) -> Result<order_payment::Model, AppError> {
    let action = match to {
        PaymentState::Failed => "voltgate.order.payment.failed",
        PaymentState::Canceled => "voltgate.order.payment.canceled",
        _ => return Err(AppError::bad_input("state", "FAILED or CANCELED")),
    };
    let (change, payment, order, event) =
        payment_for_change(db, principal, now, payment_id).await?;
    let payment = close_locked(
        change.txn(),
        now,
        &order,
        &payment,
        &[PaymentState::Created, PaymentState::Pending],
        to,
    )
    .await?;
    change
        .commit(payment_change(&event, &order, &payment, action))
        .await?;
    Ok(payment)
}

/// Moves `payment` (in one of `from`) of `order`, whose row the caller's
/// transaction has locked, to `to` (failed or canceled); its fee is canceled
/// and leaves the order's total.
///
/// # Errors
/// `INVALID_TRANSITION` for a payment not in `from`.
pub(super) async fn close_locked(
    txn: &impl ConnectionTrait,
    now: DateTime<Utc>,
    order: &order::Model,
    payment: &order_payment::Model,
    from: &[PaymentState],
    to: PaymentState,
) -> Result<order_payment::Model, AppError> {
    let payment = move_payment(txn, payment, from, to, now).await?;
    if let Some(fee) = order_fee::Entity::find_by_id(payment.fee_id.unwrap_or(0))
        .one(txn)
        .await?
    {
        let canceled = order_fee::Entity::update_many()
            .col_expr(order_fee::Column::Canceled, Expr::value(true))
            .filter(order_fee::Column::Id.eq(fee.id))
            .filter(order_fee::Column::Canceled.eq(false))
            .exec(txn)
            .await?;
        // Only the statement that canceled the fee takes it off the total.
        if canceled.rows_affected == 1 {
            add_to_total(txn, order.id, -fee.value_minor).await?;
            super::ledger::sync(txn, order.id, now).await?;
        }
    }
    Ok(payment)
}
