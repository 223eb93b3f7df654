//! Provider payments from the buyer's side (start one for a pending order)
//! and the team's (settle a test payment, read the provider's state again).
//!
//! Starting is three steps so that no provider call happens inside a
//! transaction: store the payment (`created`, order row locked, so two
//! starts of one order reuse one payment), ask the provider (idempotency key
//! from the payment), then store what it answered (`pending`, by a
//! conditional `UPDATE` from `created`). A start that fails at the provider
//! leaves the payment `created`; starting again retries it.

use chrono::{DateTime, Utc};
use sea_orm::sea_query::Expr;
use sea_orm::{
    ActiveModelTrait, ColumnTrait, ConnectionTrait, DatabaseConnection, EntityTrait, QueryFilter,
    QueryOrder, Set,
};
use serde_json::json;

use super::outcomes::{self, Applied, Report};
use super::{Outcome, PaymentProvider, Providers, StartRequest, test_provider};
use crate::auth::{Principal, TeamPermission};
use crate::entities::order::OrderStatus;
use crate::entities::order_payment::{PaymentMethod, PaymentState};
use crate::entities::{event, order, order_payment, payment_provider_customer, user};
use crate::error::{AppError, Reason};
use crate::services::ServiceContext;
use crate::ticketing::access::{self, Actor};
use crate::ticketing::audit::{Audited, Change};
use crate::ticketing::payments::{confirmed_total, lock_order, payment_change, payment_for_change};

/// How a buyer reaches the order to pay.
#[derive(Debug, Clone)]
pub struct StartPayment {
    pub event_id: i32,
    pub code: String,
    /// The order's secret; without it, the signed-in owner's order.
    pub secret: Option<String>,
    pub provider: String,
}

/// A started provider payment and what the buyer pays it with.
pub struct Started {
    pub payment: order_payment::Model,
    pub order: order::Model,
    pub client_secret: Option<String>,
    pub redirect_url: Option<String>,
}

/// What `info` keeps of a started payment: what the buyer needs to pay it.
fn info_of(client_secret: Option<&str>, redirect_url: Option<&str>) -> String {
    json!({ "client_secret": client_secret, "redirect_url": redirect_url }).to_string()
}

fn read_info(payment: &order_payment::Model) -> (Option<String>, Option<String>) {
    let info: serde_json::Value = serde_json::from_str(&payment.info).unwrap_or_default();
    let text = |key: &str| info[key].as_str().map(str::to_owned);
    (text("client_secret"), text("redirect_url"))
}

/// The order the buyer points at: by code and secret, or the signed-in
/// owner's by code. A wrong secret or someone else's order is `NOT_FOUND`.
async fn buyers_order(
    db: &impl ConnectionTrait,
    principal: &Principal,
    input: &StartPayment,
) -> Result<(order::Model, Option<i32>), AppError> {
    // With the secret anyone may pay; a signed-in owner is still recognized
    // (and pays as the provider's customer).
    let owner = match (principal, &input.secret) {
        (Principal::Person(_), None) => Some(principal.person()?.id),
        (Principal::Person(_), Some(_)) => principal.person().ok().map(|p| p.id),
        _ => None,
    };
    let order = match &input.secret {
        Some(secret) => {
            crate::ticketing::orders::by_code(db, input.event_id, &input.code, secret).await?
        }
        None => {
            let owner = owner.ok_or(AppError::Unauthenticated)?;
            order::Entity::find()
                .filter(order::Column::EventId.eq(input.event_id))
                .filter(order::Column::Code.eq(input.code.as_str()))
                .filter(order::Column::UserId.eq(owner))
                .one(db)
                .await?
                .ok_or(AppError::not_found("order"))?
        }
    };
    // A provider customer is the account's own: only its owner makes one.
    let customer_of = owner.filter(|id| order.user_id == Some(*id));
    Ok((order, customer_of))
}

/// The account's customer at `provider`, made on first use. Two first
/// payments at once may both ask the provider; the first stored wins and
/// both use it.
///
/// # Errors
/// `PROVIDER_UNAVAILABLE` when the provider fails; on database errors.
pub async fn customer_for(
    db: &DatabaseConnection,
    provider: &dyn PaymentProvider,
    user_id: i32,
    now: DateTime<Utc>,
) -> Result<String, AppError> {
    let stored = || async {
        payment_provider_customer::Entity::find()
            .filter(payment_provider_customer::Column::UserId.eq(user_id))
            .filter(payment_provider_customer::Column::Provider.eq(provider.name()))
            .one(db)
            .await
    };
    if let Some(customer) = stored().await? {
        return Ok(customer.customer_id);
    }
    let email = user::Entity::find_by_id(user_id)
        .one(db)
        .await?
        .map(|u| u.email)
        .unwrap_or_default();
    let customer_id = provider.create_customer(user_id, &email).await?;
    payment_provider_customer::Entity::insert(payment_provider_customer::ActiveModel {
        user_id: Set(user_id),
        provider: Set(provider.name().to_owned()),
        customer_id: Set(customer_id),
        created_at: Set(now),
        ..Default::default()
    })
    .on_conflict_do_nothing_on([
        payment_provider_customer::Column::UserId,
        payment_provider_customer::Column::Provider,
    ])
    .exec_without_returning(db)
    .await?;
    stored()
        .await?
        .map(|c| c.customer_id)
        .ok_or_else(|| AppError::internal(anyhow::anyhow!("the provider customer was not stored")))
}

/// Stores a `created` provider payment of the open balance, or finds the one
/// a previous start stored (same provider, still open, same amount).
async fn payment_to_start(
    db: &DatabaseConnection,
    now: DateTime<Utc>,
    actor: Option<Actor>,
    order_id: i32,
    provider: &str,
) -> Result<(order_payment::Model, order::Model), AppError> {
    let change = Audited::begin(db, actor, now).await?;
    let txn = change.txn();
    let order = lock_order(txn, order_id, now).await?;
    if order.status != OrderStatus::Pending {
        return Err(AppError::refused(
            Reason::InvalidTransition,
            "only a pending order takes payments",
        ));
    }
    let balance = order.total_minor - confirmed_total(txn, order.id).await?;
    if balance <= 0 {
        return Err(AppError::refused(
            Reason::InvalidTransition,
            "nothing is left to pay",
        ));
    }
    let open = order_payment::Entity::find()
        .filter(order_payment::Column::OrderId.eq(order.id))
        .filter(order_payment::Column::Method.eq(PaymentMethod::Provider))
        .filter(order_payment::Column::Provider.eq(provider))
        .filter(order_payment::Column::State.is_in([PaymentState::Created, PaymentState::Pending]))
        .filter(order_payment::Column::AmountMinor.eq(balance))
        .order_by_desc(order_payment::Column::Id)
        .one(txn)
        .await?;
    if let Some(open) = open {
        return Ok((open, order));
    }
    let event = event::Entity::find_by_id(order.event_id)
        .one(txn)
        .await?
        .ok_or(AppError::not_found("event"))?;
    // The provider's fee for this event is added to the order: the payment
    // covers the balance and its fee, and a retry finds it by that amount.
    let fee_minor = super::fees::of_provider(txn, event.id, provider)
        .await?
        .map_or(0, |fee| super::fees::fee_for(&fee, balance));
    let fee = crate::ticketing::payments::add_payment_fee(txn, order.id, provider, fee_minor, now)
        .await?;
    let local_id = crate::ticketing::payments::next_payment_number(txn, order.id).await?;
    let payment = order_payment::ActiveModel {
        order_id: Set(order.id),
        local_id: Set(local_id),
        state: Set(PaymentState::Created),
        method: Set(PaymentMethod::Provider),
        amount_minor: Set(balance + fee_minor),
        fee_id: Set(fee.map(|f| f.id)),
        provider: Set(Some(provider.to_owned())),
        reference: Set(None),
        info: Set("{}".to_owned()),
        note: Set(String::new()),
        created_by: Set(actor.and_then(Actor::user_id)),
        created_at: Set(now),
        payment_date: Set(None),
        process_initiated: Set(false),
        ..Default::default()
    }
    .insert(txn)
    .await?;
    let order = if fee_minor > 0 {
        crate::ticketing::orders::reload(txn, order.id).await?
    } else {
        order
    };
    change
        .commit(payment_change(
            &event,
            &order,
            &payment,
            "voltgate.order.payment.started",
        ))
        .await?;
    Ok((payment, order))
}

/// Starts a provider payment of a pending order's open balance for its
/// buyer: with the order's code and secret, or as its signed-in owner (who
/// then pays as the provider's customer, made on first use).
///
/// # Errors
/// `BAD_USER_INPUT` for a provider not offered (`provider`); `NOT_FOUND` for
/// a wrong code or secret; `UNAUTHENTICATED` without a secret when signed
/// out; `INVALID_TRANSITION` unless the order is pending with something left
/// to pay; `PROVIDER_UNAVAILABLE` when the provider fails (the payment stays
/// `created`; starting again retries it).
pub async fn start(
    db: &DatabaseConnection,
    providers: &Providers,
    now: DateTime<Utc>,
    principal: &Principal,
    input: StartPayment,
) -> Result<Started, AppError> {
    let provider = providers.get(&input.provider).ok_or_else(|| {
        AppError::bad_input(
            "provider",
            format!("not offered; offered: {}", providers.names().join(", ")),
        )
    })?;
    let (order, customer_of) = buyers_order(db, principal, &input).await?;
    let actor = customer_of.map(Actor::Person);
    let (payment, order) = payment_to_start(db, now, actor, order.id, provider.name()).await?;
    if payment.state == PaymentState::Pending {
        let (client_secret, redirect_url) = read_info(&payment);
        return Ok(Started {
            payment,
            order,
            client_secret,
            redirect_url,
        });
    }
    let customer_id = match customer_of {
        Some(user_id) => Some(customer_for(db, provider.as_ref(), user_id, now).await?),
        None => None,
    };
    let currency = event::Entity::find_by_id(order.event_id)
        .one(db)
        .await?
        .map(|e| e.currency)
        .unwrap_or_default();
    let started = provider
        .start(&StartRequest {
            amount_minor: payment.amount_minor,
            currency,
            full_id: format!("{}-P-{}", order.code, payment.local_id),
            order_code: order.code.clone(),
            customer_id,
            idempotency_key: format!("{}-{}", payment.id, payment.created_at.timestamp_micros()),
        })
        .await?;
    order_payment::Entity::update_many()
        .col_expr(
            order_payment::Column::State,
            Expr::value(PaymentState::Pending),
        )
        .col_expr(
            order_payment::Column::ProviderPaymentId,
            Expr::value(started.id.clone()),
        )
        .col_expr(
            order_payment::Column::ProviderState,
            Expr::value(started.state.chars().take(64).collect::<String>()),
        )
        .col_expr(
            order_payment::Column::Info,
            Expr::value(info_of(
                started.client_secret.as_deref(),
                started.redirect_url.as_deref(),
            )),
        )
        .col_expr(order_payment::Column::ProcessInitiated, Expr::value(true))
        .filter(order_payment::Column::Id.eq(payment.id))
        .filter(order_payment::Column::State.eq(PaymentState::Created))
        .exec(db)
        .await?;
    // Stored by this start, or by a concurrent one with the same answer.
    let payment = order_payment::Entity::find_by_id(payment.id)
        .one(db)
        .await?
        .ok_or(AppError::not_found("payment"))?;
    Ok(Started {
        payment,
        order,
        client_secret: started.client_secret,
        redirect_url: started.redirect_url,
    })
}

/// Settles a test provider payment as the provider would (team permission
/// `ChangeOrders`): `SUCCEEDED` confirms it (and pays the order once
/// covered), `FAILED` fails it. Settling it again changes nothing.
///
/// # Errors
/// `BAD_USER_INPUT` for a payment not made with the test provider
/// (`paymentId`) or an outcome other than succeeded or failed; as
/// [`crate::ticketing::access::on_event`].
pub async fn simulate_test_payment(
    db: &DatabaseConnection,
    principal: &Principal,
    now: DateTime<Utc>,
    payment_id: i32,
    outcome: Outcome,
) -> Result<Applied, AppError> {
    let state = match outcome {
        Outcome::Succeeded => "succeeded",
        Outcome::Failed => "failed",
        _ => return Err(AppError::bad_input("outcome", "SUCCEEDED or FAILED")),
    };
    let (change, payment, order, event) =
        payment_for_change(db, principal, now, payment_id).await?;
    if payment.method != PaymentMethod::Provider
        || payment.provider.as_deref() != Some(test_provider::NAME)
    {
        return Err(AppError::bad_input(
            "paymentId",
            "not a payment made with the test provider",
        ));
    }
    let report = Report {
        outcome,
        state: Some(state.to_owned()),
        charge_id: (outcome == Outcome::Succeeded).then(|| format!("test_ch_{}", payment.id)),
    };
    let applied = outcomes::apply(change.txn(), change.actor(), now, payment.id, &report).await?;
    change
        .commit(Change::on_event(
            &event,
            "voltgate.order.payment.test_settled",
            "order",
            order.id,
            json!({ "code": order.code, "payment": payment.local_id, "outcome": state }),
        ))
        .await?;
    Ok(applied)
}

/// Asks the provider for a payment's state and applies it (team permission
/// `ChangeOrders`): for a webhook that never came.
///
/// # Errors
/// `BAD_USER_INPUT` for a payment not started with a provider offered here;
/// `PROVIDER_UNAVAILABLE` when the provider fails; as
/// [`crate::ticketing::access::on_event`].
pub async fn refresh(
    services: &ServiceContext,
    principal: &Principal,
    payment_id: i32,
) -> Result<Applied, AppError> {
    let db = &services.db;
    let payment = order_payment::Entity::find_by_id(payment_id)
        .one(db)
        .await?;
    let order = match &payment {
        Some(p) => order::Entity::find_by_id(p.order_id).one(db).await?,
        None => None,
    };
    // Checked before the provider is called; the change checks again.
    access::on_event(
        db,
        principal,
        TeamPermission::ChangeOrders,
        order.as_ref().map_or(0, |o| o.event_id),
    )
    .await?;
    let payment = payment.ok_or(AppError::not_found("payment"))?;
    let provider = payment
        .provider
        .as_deref()
        .filter(|_| payment.provider_payment_id.is_some())
        .and_then(|name| services.payments.get(name))
        .ok_or_else(|| {
            AppError::bad_input(
                "paymentId",
                "not a payment started with a provider offered here",
            )
        })?;
    let seen = provider.fetch(&payment).await?;
    let now = services.now();
    let (change, _, order, event) = payment_for_change(db, principal, now, payment_id).await?;
    let report = Report {
        outcome: seen.outcome,
        state: Some(seen.state.clone()),
        charge_id: seen.charge_id.clone(),
    };
    let applied = outcomes::apply(change.txn(), change.actor(), now, payment_id, &report).await?;
    change
        .commit(Change::on_event(
            &event,
            "voltgate.order.payment.refreshed",
            "order",
            order.id,
            json!({ "code": order.code, "payment": payment.local_id, "state": seen.state }),
        ))
        .await?;
    Ok(applied)
}
