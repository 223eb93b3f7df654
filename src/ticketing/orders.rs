//! Orders: checkout turns a cart into an order atomically, and teams mark
//! orders paid or cancel them.
//!
//! Checkout runs in one transaction: it removes each cart position that has
//! not expired (`carts::take_live`; one expired position refuses the whole
//! checkout with `EXPIRED`), moves their quota units from carts to pending
//! orders, and inserts the order and its positions. An admission position is
//! a ticket: a random secret for its QR code, and the olympic ticket's unique
//! key, SHA-256 over the buyer, the purchase date and the position's id,
//! written once the insert has given the id.

use std::collections::HashMap;

use chrono::{DateTime, TimeDelta, Utc};
use sea_orm::{
    ActiveModelTrait, ColumnTrait, ConnectionTrait, DatabaseConnection, DatabaseTransaction,
    EntityTrait, QueryFilter, QueryOrder, Set, SqlErr, TransactionTrait,
};
use serde_json::json;
use sha2::{Digest, Sha256};

use super::access::{self, Actor};
use super::audit::{Audited, Change};
use super::carts;
use super::money::included_tax;
use super::quotas::{self, Counter};
use super::vouchers;
use crate::auth::tokens::random_token;
use crate::auth::{Principal, TeamPermission};
use crate::db::page_by_id;
use crate::entities::order::OrderStatus;
use crate::entities::{cart_position, checkout_key, event, order, order_position, product};
use crate::error::{AppError, Reason};
use crate::lanes::Lanes;
use crate::pagination::{Page, PageRequest};

/// How long a pending order waits for its payment before it expires.
pub const PAYMENT_TERM: TimeDelta = TimeDelta::days(14);

/// Order codes: capitals and digits without look-alikes (pretix's alphabet).
const CODE_ALPHABET: &[u8] = b"ABCDEFGHJKLMNPQRSTUVWXYZ3789";
const CODE_LENGTH: usize = 6;

fn order_code() -> Result<String, AppError> {
    let mut bytes = [0_u8; CODE_LENGTH];
    getrandom::fill(&mut bytes).map_err(|e| AppError::internal(anyhow::anyhow!("{e}")))?;
    Ok(bytes
        .iter()
        .map(|b| char::from(CODE_ALPHABET[usize::from(*b) % CODE_ALPHABET.len()]))
        .collect())
}

/// The olympic ticket's key: hex SHA-256 of `client|purchase date|id`, where
/// the client is the buyer's account id or, without an account, their email.
pub fn ticket_key(client: &str, purchased: DateTime<Utc>, position_id: i32) -> String {
    let digest = Sha256::digest(format!("{client}|{}|{position_id}", purchased.to_rfc3339()));
    digest.iter().map(|b| format!("{b:02x}")).collect()
}

fn parse_email(email: &str) -> Result<String, AppError> {
    let email = email.trim();
    let valid = email.len() <= 254
        && email
            .split_once('@')
            .is_some_and(|(local, domain)| !local.is_empty() && domain.contains('.'));
    if valid {
        Ok(email.to_owned())
    } else {
        Err(AppError::bad_input("email", "not an email address"))
    }
}

fn parse_idempotency_key(key: &str) -> Result<String, AppError> {
    if (1..=200).contains(&key.len()) && key.bytes().all(|b| b.is_ascii_graphic()) {
        Ok(key.to_owned())
    } else {
        Err(AppError::bad_input(
            "idempotencyKey",
            "1 to 200 visible ASCII characters",
        ))
    }
}

/// The order a checkout of `cart_id` with `key` placed, with its positions.
async fn checked_out(
    db: &impl ConnectionTrait,
    cart_id: &str,
    key: &str,
) -> Result<Option<(order::Model, Vec<order_position::Model>)>, AppError> {
    let Some(stored) = checkout_key::Entity::find()
        .filter(checkout_key::Column::CartId.eq(cart_id))
        .filter(checkout_key::Column::IdempotencyKey.eq(key))
        .one(db)
        .await?
    else {
        return Ok(None);
    };
    let order = reload(db, stored.order_id.unwrap_or(0)).await?;
    let positions = positions_of(db, order.id).await?;
    Ok(Some((order, positions)))
}

/// Turns a cart into a pending order (a paid one when it costs nothing).
///
/// With an idempotency key, a checkout of the same cart with the same key
/// returns the order the first one placed: the key's row is inserted first in
/// the checkout's transaction, so a racing retry waits on its unique index
/// (PostgreSQL) or on the single writer (SQLite), finds it taken, and reads
/// the committed order. A checkout that failed stored nothing, key included,
/// so retrying it tries again.
///
/// # Errors
/// `BAD_USER_INPUT` on an empty cart, a bad email or key, or fewer than a
/// product's minimum per order; `UNAUTHENTICATED` for an anonymous buyer of a
/// product limited per account; `CONFLICT` (no reason) beyond that limit;
/// `EXPIRED` when a position's hold has expired.
pub async fn checkout(
    db: &(impl ConnectionTrait + TransactionTrait<Transaction = DatabaseTransaction>),
    principal: &Principal,
    now: DateTime<Utc>,
    cart_id: &str,
    email: &str,
    idempotency_key: Option<&str>,
) -> Result<(order::Model, Vec<order_position::Model>), AppError> {
    let email = parse_email(email)?;
    let key = idempotency_key.map(parse_idempotency_key).transpose()?;
    if let Some(key) = &key {
        let cart_id = carts::parse_cart_id(cart_id)?;
        if let Some(first) = checked_out(db, &cart_id, key).await? {
            return Ok(first);
        }
        match place(db, principal, now, &cart_id, email, Some(key)).await? {
            Placed::Order(order, positions) => Ok((order, positions)),
            // A concurrent checkout with this key committed first.
            Placed::KeyTaken => checked_out(db, &cart_id, key)
                .await?
                .ok_or_else(|| AppError::Conflict("the checkout is being retried".into())),
        }
    } else {
        match place(db, principal, now, cart_id, email, None).await? {
            Placed::Order(order, positions) => Ok((order, positions)),
            Placed::KeyTaken => Err(AppError::internal(anyhow::anyhow!("no key was given"))),
        }
    }
}

/// [`checkout`] in the lane of the cart's event, batched with the event's
/// other holds and checkouts (see `crate::lanes`). A cart with no positions left (a
/// retry of a checkout that succeeded, or an empty cart) goes straight to
/// [`checkout`], which finds the first order or refuses.
///
/// # Errors
/// As [`checkout`].
pub async fn checkout_in_lane(
    lanes: &Lanes,
    db: &DatabaseConnection,
    principal: &Principal,
    now: DateTime<Utc>,
    cart_id: &str,
    email: &str,
    idempotency_key: Option<&str>,
) -> Result<(order::Model, Vec<order_position::Model>), AppError> {
    let first = cart_position::Entity::find()
        .filter(cart_position::Column::CartId.eq(carts::parse_cart_id(cart_id)?))
        .one(db)
        .await?;
    let Some(first) = first else {
        return checkout(db, principal, now, cart_id, email, idempotency_key).await;
    };
    let (principal, cart_id, email) = (principal.clone(), cart_id.to_owned(), email.to_owned());
    let key = idempotency_key.map(str::to_owned);
    lanes
        .run(db, first.event_id, move |txn| {
            Box::pin(async move {
                checkout(txn, &principal, now, &cart_id, &email, key.as_deref()).await
            })
        })
        .await
}

enum Placed {
    Order(order::Model, Vec<order_position::Model>),
    /// Another checkout holds the idempotency key.
    KeyTaken,
}

async fn place(
    db: &impl TransactionTrait<Transaction = DatabaseTransaction>,
    principal: &Principal,
    now: DateTime<Utc>,
    cart_id: &str,
    email: String,
    key: Option<&str>,
) -> Result<Placed, AppError> {
    let user_id = match principal {
        Principal::Person(_) => Some(principal.person()?.id),
        _ => None,
    };
    let change = Audited::begin(db, user_id.map(Actor::Person), now).await?;
    let txn = change.txn();
    let claimed = match key {
        Some(key) => {
            let inserted = checkout_key::ActiveModel {
                cart_id: Set(cart_id.to_owned()),
                idempotency_key: Set(key.to_owned()),
                order_id: Set(None),
                created_at: Set(now),
                ..Default::default()
            }
            .insert(txn)
            .await;
            match inserted {
                Ok(row) => Some(row),
                Err(err) if matches!(err.sql_err(), Some(SqlErr::UniqueConstraintViolation(_))) => {
                    return Ok(Placed::KeyTaken);
                }
                Err(err) => return Err(err.into()),
            }
        }
        None => None,
    };
    let cart = carts::positions(txn, cart_id).await?;
    let Some(first) = cart.first() else {
        return Err(AppError::bad_input("cartId", "the cart is empty"));
    };
    let event = event::Entity::find_by_id(first.event_id)
        .one(txn)
        .await?
        .ok_or(AppError::not_found("event"))?;
    let products: HashMap<i32, product::Model> = product::Entity::find()
        .filter(product::Column::Id.is_in(cart.iter().map(|p| p.product_id)))
        .all(txn)
        .await?
        .into_iter()
        .map(|p| (p.id, p))
        .collect();
    check_limits(txn, &cart, &products, user_id).await?;
    super::addons::check_cart(txn, &cart, &products).await?;
    let answers = super::questions::for_checkout(txn, &cart, &products).await?;
    for position in &cart {
        if !carts::take_live(txn, position, now).await? {
            return Err(AppError::refused(
                Reason::Expired,
                "the cart has expired; add the products again",
            ));
        }
    }
    let mut redemptions: std::collections::BTreeMap<i32, i32> = std::collections::BTreeMap::new();
    for voucher_id in cart.iter().filter_map(|p| p.voucher_id) {
        *redemptions.entry(voucher_id).or_default() += 1;
    }
    // In id order, so checkouts redeeming several vouchers never deadlock.
    for (voucher_id, n) in redemptions {
        vouchers::redeem(txn, voucher_id, n, now).await?;
    }
    let total: i64 = cart.iter().map(|p| p.price_minor).sum();
    let status = if total == 0 {
        OrderStatus::Paid
    } else {
        OrderStatus::Pending
    };
    let units = quotas::units(cart.iter().map(|p| p.quota_ids.as_str()));
    let target = if status == OrderStatus::Paid {
        Counter::Paid
    } else {
        Counter::Pending
    };
    quotas::shift(txn, &units, Counter::InCarts, target).await?;
    let mut code = order_code()?;
    // Codes are unique per event; a clash (rare) draws again.
    while order::Entity::find()
        .filter(order::Column::EventId.eq(event.id))
        .filter(order::Column::Code.eq(code.clone()))
        .one(txn)
        .await?
        .is_some()
    {
        code = order_code()?;
    }
    let order = order::ActiveModel {
        event_id: Set(event.id),
        code: Set(code),
        secret: Set(random_token()?),
        status: Set(status),
        user_id: Set(user_id),
        email: Set(email.clone()),
        total_minor: Set(total),
        testmode: Set(event.testmode),
        sales_channel: Set("web".to_owned()),
        datetime: Set(now),
        expires: Set(now + PAYMENT_TERM),
        updated_at: Set(now),
        ..Default::default()
    }
    .insert(txn)
    .await?;
    if let Some(claimed) = claimed {
        let mut row: checkout_key::ActiveModel = claimed.into();
        row.order_id = Set(Some(order.id));
        row.update(txn).await?;
    }
    let client = user_id.map_or_else(|| email.clone(), |id| id.to_string());
    let mut positions = Vec::with_capacity(cart.len());
    for (index, item) in cart.iter().enumerate() {
        let product = products.get(&item.product_id);
        let tax_rate = product.map_or(0, |p| p.tax_rate_bp);
        let admission = product.is_some_and(|p| p.admission);
        let position = order_position::ActiveModel {
            order_id: Set(order.id),
            positionid: Set(i32::try_from(index + 1).unwrap_or(i32::MAX)),
            product_id: Set(item.product_id),
            variation_id: Set(item.variation_id),
            sub_event_id: Set(item.sub_event_id),
            price_minor: Set(item.price_minor),
            tax_rate_bp: Set(tax_rate),
            tax_value_minor: Set(included_tax(item.price_minor, tax_rate)),
            secret: Set(random_token()?),
            ticket_key: Set(None),
            canceled: Set(false),
            attendee_name: Set(None),
            attendee_email: Set(None),
            quota_ids: Set(item.quota_ids.clone()),
            created_at: Set(now),
            voucher_id: Set(item.voucher_id),
            ..Default::default()
        }
        .insert(txn)
        .await?;
        let position = if admission {
            let key = ticket_key(&client, order.datetime, position.id);
            let mut row: order_position::ActiveModel = position.into();
            row.ticket_key = Set(Some(key));
            row.update(txn).await?
        } else {
            position
        };
        positions.push(position);
    }
    super::addons::link_order_positions(txn, &cart, &positions).await?;
    super::questions::copy_to_order(txn, answers, &positions).await?;
    super::ledger::record_placed(txn, &order, &positions, now).await?;
    change
        .commit(Change::on_event(
            &event,
            "voltgate.order.placed",
            "order",
            order.id,
            json!({ "code": order.code, "total_minor": total, "positions": positions.len() }),
        ))
        .await?;
    Ok(Placed::Order(order, positions))
}

async fn check_limits(
    db: &impl ConnectionTrait,
    cart: &[crate::entities::cart_position::Model],
    products: &HashMap<i32, product::Model>,
    user_id: Option<i32>,
) -> Result<(), AppError> {
    let mut counts: HashMap<i32, i32> = HashMap::new();
    for position in cart {
        *counts.entry(position.product_id).or_default() += 1;
    }
    for (product_id, count) in counts {
        let Some(product) = products.get(&product_id) else {
            continue;
        };
        if product.min_per_order.is_some_and(|min| count < min) {
            return Err(AppError::bad_input(
                "cartId",
                format!(
                    "{} needs at least {} per order",
                    product.name,
                    product.min_per_order.unwrap_or(1)
                ),
            ));
        }
        if let Some(limit) = product.limit_per_user {
            let Some(user_id) = user_id else {
                return Err(AppError::Unauthenticated);
            };
            let orders: Vec<i32> = order::Entity::find()
                .filter(order::Column::UserId.eq(user_id))
                .filter(order::Column::Status.is_in([OrderStatus::Pending, OrderStatus::Paid]))
                .all(db)
                .await?
                .into_iter()
                .map(|o| o.id)
                .collect();
            let bought = order_position::Entity::find()
                .filter(order_position::Column::OrderId.is_in(orders))
                .filter(order_position::Column::ProductId.eq(product_id))
                .filter(order_position::Column::Canceled.eq(false))
                .all(db)
                .await?
                .len();
            if i64::try_from(bought).unwrap_or(i64::MAX) + i64::from(count) > i64::from(limit) {
                return Err(AppError::Conflict(format!(
                    "{} is limited to {limit} per account",
                    product.name
                )));
            }
        }
    }
    Ok(())
}

/// Opens a change of `order_id` (team permission `ChangeOrders` on its event).
pub(super) async fn order_for_change(
    db: &DatabaseConnection,
    principal: &Principal,
    now: DateTime<Utc>,
    order_id: i32,
) -> Result<(Audited, order::Model, event::Model), AppError> {
    if matches!(principal, Principal::Anonymous) {
        return Err(AppError::Unauthenticated);
    }
    let mut change = Audited::begin(db, None, now).await?;
    let order = order::Entity::find_by_id(order_id)
        .one(change.txn())
        .await?;
    let event_id = order.as_ref().map_or(0, |o| o.event_id);
    let event = change
        .check_event(principal, TeamPermission::ChangeOrders, event_id)
        .await?;
    let order = order.ok_or(AppError::not_found("order"))?;
    Ok((change, order, event))
}

/// Changes an order's status from `from` to `to` by one conditional `UPDATE`,
/// so two concurrent changes never both apply.
async fn transition(
    db: &impl ConnectionTrait,
    order: &order::Model,
    from: &[OrderStatus],
    to: OrderStatus,
    now: DateTime<Utc>,
) -> Result<bool, AppError> {
    let changed = order::Entity::update_many()
        .col_expr(order::Column::Status, sea_orm::sea_query::Expr::value(to))
        .col_expr(
            order::Column::UpdatedAt,
            sea_orm::sea_query::Expr::value(now),
        )
        .filter(order::Column::Id.eq(order.id))
        .filter(order::Column::Status.is_in(from.iter().copied()))
        .exec(db)
        .await?;
    Ok(changed.rows_affected == 1)
}

/// Marks a pending order paid (team permission `ChangeOrders`): its quota
/// units move from pending to paid.
///
/// # Errors
/// `INVALID_TRANSITION` unless the order is pending; as [`access::on_event`].
pub async fn mark_paid(
    db: &DatabaseConnection,
    principal: &Principal,
    now: DateTime<Utc>,
    order_id: i32,
) -> Result<order::Model, AppError> {
    let (change, order, event) = order_for_change(db, principal, now, order_id).await?;
    let txn = change.txn();
    if !settle(txn, &order, now).await? {
        return Err(AppError::refused(
            Reason::InvalidTransition,
            "only a pending order can be marked paid",
        ));
    }
    let stored = reload(txn, order.id).await?;
    change
        .commit(order_changed(&event, &order, "voltgate.order.paid"))
        .await?;
    Ok(stored)
}

/// Marks a pending order paid in the caller's transaction and moves its quota
/// units from pending to paid; `false` when it was not pending.
///
/// # Errors
/// On database errors.
pub(super) async fn settle(
    txn: &impl ConnectionTrait,
    order: &order::Model,
    now: DateTime<Utc>,
) -> Result<bool, AppError> {
    if !transition(txn, order, &[OrderStatus::Pending], OrderStatus::Paid, now).await? {
        return Ok(false);
    }
    let positions = live_positions(txn, order.id).await?;
    let units = quotas::units(positions.iter().map(|p| p.quota_ids.as_str()));
    quotas::shift(txn, &units, Counter::Pending, Counter::Paid).await?;
    super::invoices::on_paid(txn, order, now).await?;
    Ok(true)
}

/// Cancels a pending or paid order (team permission `ChangeOrders`): its
/// positions are canceled and their quota units released.
///
/// # Errors
/// `INVALID_TRANSITION` for an order already canceled or expired; as
/// [`access::on_event`].
pub async fn cancel(
    db: &DatabaseConnection,
    principal: &Principal,
    now: DateTime<Utc>,
    order_id: i32,
) -> Result<order::Model, AppError> {
    let (change, order, event) = order_for_change(db, principal, now, order_id).await?;
    let txn = change.txn();
    cancel_within(txn, &order, now).await?;
    let stored = reload(txn, order.id).await?;
    change
        .commit(order_changed(&event, &order, "voltgate.order.canceled"))
        .await?;
    Ok(stored)
}

/// Cancels a pending or paid order in the caller's transaction: its positions
/// are canceled, their quota units released and the ledger follows.
///
/// # Errors
/// `INVALID_TRANSITION` for an order already canceled or expired.
pub(super) async fn cancel_within(
    txn: &impl ConnectionTrait,
    order: &order::Model,
    now: DateTime<Utc>,
) -> Result<(), AppError> {
    let counter = match order.status {
        OrderStatus::Paid => Counter::Paid,
        _ => Counter::Pending,
    };
    if !matches!(order.status, OrderStatus::Pending | OrderStatus::Paid)
        || !transition(txn, order, &[order.status], OrderStatus::Canceled, now).await?
    {
        return Err(AppError::refused(
            Reason::InvalidTransition,
            "the order is canceled or expired already",
        ));
    }
    let positions = live_positions(txn, order.id).await?;
    let units = quotas::units(positions.iter().map(|p| p.quota_ids.as_str()));
    quotas::release(txn, &units, counter).await?;
    order_position::Entity::update_many()
        .col_expr(
            order_position::Column::Canceled,
            sea_orm::sea_query::Expr::value(true),
        )
        .filter(order_position::Column::OrderId.eq(order.id))
        .exec(txn)
        .await?;
    super::ledger::sync(txn, order.id, now).await?;
    super::invoices::on_canceled(txn, order, now).await?;
    Ok(())
}

/// Expires pending orders past their payment deadline and releases their
/// quota units; returns the events whose orders expired. Each order changes
/// by a conditional `UPDATE`, so replicas running this at once expire each
/// order once.
///
/// # Errors
/// On database errors.
pub async fn expire_unpaid(
    db: &DatabaseConnection,
    now: DateTime<Utc>,
) -> Result<std::collections::BTreeSet<i32>, AppError> {
    let due = order::Entity::find()
        .filter(order::Column::Status.eq(OrderStatus::Pending))
        .filter(order::Column::Expires.lte(now))
        .order_by_asc(order::Column::Id)
        .all(db)
        .await?;
    let mut expired = std::collections::BTreeSet::new();
    for order in due {
        let change = Audited::begin(db, None, now).await?;
        let txn = change.txn();
        // Another replica expired (or someone paid) it first: nothing to do.
        if !transition(
            txn,
            &order,
            &[OrderStatus::Pending],
            OrderStatus::Expired,
            now,
        )
        .await?
        {
            continue;
        }
        let positions = live_positions(txn, order.id).await?;
        let units = quotas::units(positions.iter().map(|p| p.quota_ids.as_str()));
        quotas::release(txn, &units, Counter::Pending).await?;
        super::ledger::sync(txn, order.id, now).await?;
        super::invoices::on_canceled(txn, &order, now).await?;
        let event = event::Entity::find_by_id(order.event_id)
            .one(txn)
            .await?
            .ok_or(AppError::not_found("event"))?;
        change
            .commit(Change::on_event(
                &event,
                "voltgate.order.expired",
                "order",
                order.id,
                json!({ "code": order.code }),
            ))
            .await?;
        expired.insert(order.event_id);
    }
    Ok(expired)
}

/// The entry of a status change of `order` (as it was before).
pub(super) fn order_changed<'a>(
    event: &event::Model,
    order: &order::Model,
    action: &'a str,
) -> Change<'a> {
    let data = json!({ "code": order.code, "from": order.status });
    Change::on_event(event, action, "order", order.id, data)
}

pub(super) async fn reload(
    db: &impl ConnectionTrait,
    order_id: i32,
) -> Result<order::Model, AppError> {
    order::Entity::find_by_id(order_id)
        .one(db)
        .await?
        .ok_or(AppError::not_found("order"))
}

async fn live_positions(
    db: &impl ConnectionTrait,
    order_id: i32,
) -> Result<Vec<order_position::Model>, AppError> {
    Ok(order_position::Entity::find()
        .filter(order_position::Column::OrderId.eq(order_id))
        .filter(order_position::Column::Canceled.eq(false))
        .all(db)
        .await?)
}

/// The positions of an order, in order.
///
/// # Errors
/// On database errors.
pub async fn positions_of(
    db: &impl ConnectionTrait,
    order_id: i32,
) -> Result<Vec<order_position::Model>, AppError> {
    Ok(order_position::Entity::find()
        .filter(order_position::Column::OrderId.eq(order_id))
        .order_by_asc(order_position::Column::Positionid)
        .all(db)
        .await?)
}

/// An order reached by its code and secret, as a buyer without an account
/// does; a wrong secret is `NOT_FOUND` like a wrong code.
///
/// # Errors
/// `NOT_FOUND`.
pub async fn by_code(
    db: &impl ConnectionTrait,
    event_id: i32,
    code: &str,
    secret: &str,
) -> Result<order::Model, AppError> {
    order::Entity::find()
        .filter(order::Column::EventId.eq(event_id))
        .filter(order::Column::Code.eq(code))
        .one(db)
        .await?
        .filter(|o| {
            crate::auth::tokens::sha256_hex(&o.secret) == crate::auth::tokens::sha256_hex(secret)
        })
        .ok_or(AppError::not_found("order"))
}

/// An event's orders (team permission `ViewOrders`), oldest first.
///
/// # Errors
/// As [`access::on_event`].
pub async fn of_event(
    db: &impl ConnectionTrait,
    principal: &Principal,
    event_id: i32,
    page: PageRequest,
) -> Result<Page<order::Model>, AppError> {
    access::on_event(db, principal, TeamPermission::ViewOrders, event_id).await?;
    page_by_id(
        db,
        order::Entity::find().filter(order::Column::EventId.eq(event_id)),
        order::Column::Id,
        page,
    )
    .await
}

/// An account's own orders, oldest first.
///
/// # Errors
/// On database errors.
pub async fn of_user(
    db: &impl ConnectionTrait,
    user_id: i32,
    page: PageRequest,
) -> Result<Page<order::Model>, AppError> {
    page_by_id(
        db,
        order::Entity::find().filter(order::Column::UserId.eq(user_id)),
        order::Column::Id,
        page,
    )
    .await
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_ticket_key_hashes_client_date_and_id() {
        let at = DateTime::parse_from_rfc3339("2026-12-02T10:00:00Z")
            .map(|d| d.with_timezone(&Utc))
            .unwrap_or_default();
        let key = ticket_key("42", at, 7);
        assert_eq!(key.len(), 64);
        assert_eq!(key, ticket_key("42", at, 7));
        assert_ne!(key, ticket_key("42", at, 8));
        assert_ne!(key, ticket_key("43", at, 7));
    }

    #[test]
    fn order_codes_use_the_alphabet() {
        let code = order_code().unwrap_or_default();
        assert_eq!(code.len(), CODE_LENGTH);
        assert!(code.bytes().all(|b| CODE_ALPHABET.contains(&b)));
    }
}
