//! Carts: positions that hold a unit of each of their product's quotas until
//! they expire (the event's `cart_hold_minutes`). Adding to a cart takes the
//! units (`quotas::hold`) in the transaction that inserts the positions, so a
//! position exists exactly when its units are held.
//!
//! A cart position leaves by one conditional `DELETE` (checkout: only while it
//! has not expired; expiry: only once it has). Only the transaction whose
//! `DELETE` removed the row moves its units on, so checkout and the expiry job
//! never both act on one position, on any replica.

use std::collections::BTreeSet;

use chrono::{DateTime, TimeDelta, Utc};
use sea_orm::{
    ActiveModelTrait, ColumnTrait, ConnectionTrait, DatabaseTransaction, EntityTrait, QueryFilter,
    QueryOrder, Set, TransactionTrait,
};

use super::quotas::{self, Counter, Units};
use super::{dates, vouchers};
use crate::auth::Principal;
use crate::auth::tokens::random_token;
use crate::entities::cart_position::format_quota_ids;
use crate::entities::{
    cart_position, event, product, product_variation, quota, quota_product, sub_event,
};
use crate::error::{AppError, Reason};
use crate::lanes::Lanes;

/// What to put in a cart.
#[derive(Debug, Clone)]
pub struct CartAdd {
    /// An existing cart, or `None` to start one.
    pub cart_id: Option<String>,
    pub product_id: i32,
    pub variation_id: Option<i32>,
    pub sub_event_id: Option<i32>,
    pub quantity: i32,
    /// A voucher's code: its price applies, and it may unlock the product.
    pub voucher_code: Option<String>,
}

/// The most positions one call adds.
pub const MAX_QUANTITY: i32 = 100;

/// A cart id as clients present it.
///
/// # Errors
/// `BAD_USER_INPUT` on `cartId` for anything else.
pub fn parse_cart_id(cart_id: &str) -> Result<String, AppError> {
    let ok = (16..=64).contains(&cart_id.len())
        && cart_id
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_');
    if ok {
        Ok(cart_id.to_owned())
    } else {
        Err(AppError::bad_input("cartId", "not a cart id"))
    }
}

/// Adds `quantity` of a product to a cart, holding its quotas; anyone may buy.
///
/// # Errors
/// `NOT_FOUND` for an unknown product (or one of an event that is not live);
/// `NOT_ON_SALE` outside the presale or the product's window, or for a product
/// that needs a voucher; `BAD_USER_INPUT` on a bad quantity, variation, date or
/// cart; `SOLD_OUT` when a quota has less left than asked.
pub async fn add(
    db: &impl TransactionTrait<Transaction = DatabaseTransaction>,
    principal: &Principal,
    now: DateTime<Utc>,
    input: CartAdd,
) -> Result<(String, Vec<cart_position::Model>), AppError> {
    if !(1..=MAX_QUANTITY).contains(&input.quantity) {
        return Err(AppError::bad_input("quantity", "between 1 and 100"));
    }
    let cart_id = match &input.cart_id {
        Some(id) => parse_cart_id(id)?,
        None => random_token()?,
    };
    let user_id = match principal {
        Principal::Person(person) => Some(person.id),
        _ => None,
    };
    let txn = db.begin().await?;
    let product = product::Entity::find_by_id(input.product_id)
        .one(&txn)
        .await?
        .ok_or(AppError::not_found("product"))?;
    let event = event::Entity::find_by_id(product.event_id)
        .one(&txn)
        .await?
        .filter(|e| e.live)
        .ok_or(AppError::not_found("product"))?;
    if !event.presale_is_running(now) {
        return Err(AppError::refused(Reason::NotOnSale, "the shop is closed"));
    }
    if !product.on_sale_at(now) {
        return Err(AppError::refused(
            Reason::NotOnSale,
            "this product is not on sale now",
        ));
    }
    let voucher = match &input.voucher_code {
        Some(code) => Some(
            vouchers::usable(
                &txn,
                event.id,
                code,
                now,
                product.id,
                input.variation_id,
                input.sub_event_id,
            )
            .await?,
        ),
        None => None,
    };
    // Any voucher for the product opens one that requires a voucher; a hidden
    // one only a voucher that shows hidden products.
    let unlocked = voucher
        .as_ref()
        .is_some_and(|v| !product.hide_without_voucher || v.show_hidden_items);
    if (product.require_voucher || product.hide_without_voucher) && !unlocked {
        return Err(AppError::refused(
            Reason::NotOnSale,
            "this product needs a voucher",
        ));
    }
    let variation = match input.variation_id {
        Some(variation_id) => Some(
            product_variation::Entity::find_by_id(variation_id)
                .one(&txn)
                .await?
                .filter(|v| v.product_id == product.id && v.active)
                .ok_or_else(|| {
                    AppError::bad_input("variationId", "no such variation of this product")
                })?,
        ),
        None => None,
    };
    let mut price = variation
        .as_ref()
        .and_then(|v| v.price_minor)
        .unwrap_or(product.price_minor);
    match (event.has_subevents, input.sub_event_id) {
        (true, Some(date)) => {
            let date = sub_event::Entity::find_by_id(date)
                .one(&txn)
                .await?
                .filter(|d| d.event_id == event.id && d.active)
                .ok_or_else(|| AppError::bad_input("subEventId", "no such date of this event"))?;
            if date.presale_end.is_some_and(|end| end <= now)
                || date.presale_start.is_some_and(|start| now < start)
            {
                return Err(AppError::refused(
                    Reason::NotOnSale,
                    "this date is not on sale now",
                ));
            }
            let terms =
                dates::price_on_date(&txn, date.id, &product, variation.as_ref(), now).await?;
            if !terms.on_sale {
                return Err(AppError::refused(
                    Reason::NotOnSale,
                    "this product is not on sale on this date now",
                ));
            }
            price = terms.price_minor;
        }
        (true, None) => return Err(AppError::bad_input("subEventId", "choose a date")),
        (false, Some(_)) => {
            return Err(AppError::bad_input("subEventId", "this event has no dates"));
        }
        (false, None) => {}
    }
    if let Some(voucher) = &voucher {
        price = vouchers::price_with(voucher, price);
    }
    let existing = cart_position::Entity::find()
        .filter(cart_position::Column::CartId.eq(cart_id.clone()))
        .all(&txn)
        .await?;
    if existing.iter().any(|p| p.event_id != event.id) {
        return Err(AppError::bad_input(
            "cartId",
            "this cart is for another event",
        ));
    }
    let in_cart = existing
        .iter()
        .filter(|p| p.product_id == product.id)
        .count();
    let in_cart = i32::try_from(in_cart).unwrap_or(i32::MAX);
    if let Some(max) = product.max_per_order
        && in_cart.saturating_add(input.quantity) > max
    {
        return Err(AppError::bad_input(
            "quantity",
            format!("at most {max} per order"),
        ));
    }
    if let Some(voucher) = &voucher {
        let in_cart = existing
            .iter()
            .filter(|p| p.voucher_id == Some(voucher.id))
            .count();
        let wanted = i64::try_from(in_cart).unwrap_or(i64::MAX) + i64::from(input.quantity);
        // A courtesy: checkout redeems usages under the voucher row's lock.
        if i64::from(voucher.redeemed) + wanted > i64::from(voucher.max_usages) {
            return Err(AppError::refused(
                Reason::AlreadyRedeemed,
                "this voucher has fewer usages left",
            ));
        }
    }
    let ignore_quota = voucher.as_ref().is_some_and(|v| v.allow_ignore_quota);
    let quota_ids = if ignore_quota {
        Vec::new()
    } else {
        quotas_for(&txn, product.id, input.sub_event_id).await?
    };
    if quota_ids.is_empty() && !ignore_quota {
        return Err(AppError::refused(
            Reason::SoldOut,
            "this product is not available",
        ));
    }
    // Units a blocking voucher keeps move to the cart; only the rest are taken.
    let from_block = match &voucher {
        Some(v) => vouchers::take_blocked(&txn, v, &quota_ids, input.quantity).await?,
        None => Vec::new(),
    };
    let units: Units = quota_ids
        .iter()
        .filter(|id| !from_block.contains(id))
        .map(|id| (*id, input.quantity))
        .collect();
    quotas::hold(&txn, &units).await?;
    let expires = now + TimeDelta::minutes(i64::from(event.cart_hold_minutes));
    let mut added = Vec::new();
    for _ in 0..input.quantity {
        let position = cart_position::ActiveModel {
            event_id: Set(event.id),
            cart_id: Set(cart_id.clone()),
            product_id: Set(product.id),
            variation_id: Set(input.variation_id),
            sub_event_id: Set(input.sub_event_id),
            price_minor: Set(price),
            quota_ids: Set(format_quota_ids(&quota_ids)),
            user_id: Set(user_id),
            datetime: Set(now),
            expires: Set(expires),
            voucher_id: Set(voucher.as_ref().map(|v| v.id)),
            blocked_quota_ids: Set(format_quota_ids(&from_block)),
            ..Default::default()
        }
        .insert(&txn)
        .await?;
        added.push(position);
    }
    txn.commit().await?;
    Ok((cart_id, added))
}

/// [`add`] in the lane of the product's event, batched with the event's other
/// holds and checkouts (see `crate::lanes`).
///
/// # Errors
/// As [`add`].
pub async fn add_in_lane(
    lanes: &Lanes,
    db: &sea_orm::DatabaseConnection,
    principal: &Principal,
    now: DateTime<Utc>,
    input: CartAdd,
) -> Result<(String, Vec<cart_position::Model>), AppError> {
    let event_id = product::Entity::find_by_id(input.product_id)
        .one(db)
        .await?
        .ok_or(AppError::not_found("product"))?
        .event_id;
    let principal = principal.clone();
    lanes
        .run(db, event_id, move |txn| {
            Box::pin(async move { add(txn, &principal, now, input).await })
        })
        .await
}

/// The quotas counting a product (for one date of a series, its quotas).
async fn quotas_for(
    db: &impl ConnectionTrait,
    product_id: i32,
    sub_event_id: Option<i32>,
) -> Result<Vec<i32>, AppError> {
    let links = quota_product::Entity::find()
        .filter(quota_product::Column::ProductId.eq(product_id))
        .all(db)
        .await?;
    let query =
        quota::Entity::find().filter(quota::Column::Id.is_in(links.iter().map(|l| l.quota_id)));
    let query = match sub_event_id {
        Some(date) => query.filter(quota::Column::SubEventId.eq(date)),
        None => query.filter(quota::Column::SubEventId.is_null()),
    };
    let mut ids: Vec<i32> = query.all(db).await?.into_iter().map(|q| q.id).collect();
    ids.sort_unstable();
    Ok(ids)
}

/// The positions of a cart, oldest first (expired ones included until the
/// expiry job removes them).
///
/// # Errors
/// `BAD_USER_INPUT` on a malformed cart id.
pub async fn positions(
    db: &impl ConnectionTrait,
    cart_id: &str,
) -> Result<Vec<cart_position::Model>, AppError> {
    let cart_id = parse_cart_id(cart_id)?;
    Ok(cart_position::Entity::find()
        .filter(cart_position::Column::CartId.eq(cart_id))
        .order_by_asc(cart_position::Column::Id)
        .all(db)
        .await?)
}

/// Removes a cart position that has not expired and returns it, or `None`
/// when it is gone or expired (the expiry job's to release).
///
/// # Errors
/// On database errors.
pub async fn take_live(
    db: &impl ConnectionTrait,
    position: &cart_position::Model,
    now: DateTime<Utc>,
) -> Result<bool, AppError> {
    let removed = cart_position::Entity::delete_many()
        .filter(cart_position::Column::Id.eq(position.id))
        .filter(cart_position::Column::Expires.gt(now))
        .exec(db)
        .await?;
    Ok(removed.rows_affected == 1)
}

/// How many expired cart positions one run releases per transaction.
pub const EXPIRY_BATCH: u64 = 200;

/// Releases expired cart positions: each is deleted and its units returned
/// in one transaction. Returns the events whose quotas got units back.
///
/// # Errors
/// On database errors.
pub async fn expire(
    db: &sea_orm::DatabaseConnection,
    now: DateTime<Utc>,
) -> Result<BTreeSet<i32>, AppError> {
    let mut events = BTreeSet::new();
    loop {
        let txn = db.begin().await?;
        let batch = crate::jobs::claim_batch(
            &txn,
            cart_position::Entity::find()
                .filter(cart_position::Column::Expires.lte(now))
                .order_by_asc(cart_position::Column::Id),
            EXPIRY_BATCH,
        )
        .await?;
        if batch.is_empty() {
            return Ok(events);
        }
        let mut gone = Vec::new();
        let mut removed_positions = Vec::new();
        for position in &batch {
            let removed = cart_position::Entity::delete_many()
                .filter(cart_position::Column::Id.eq(position.id))
                .filter(cart_position::Column::Expires.lte(now))
                .exec(&txn)
                .await?;
            if removed.rows_affected == 1 {
                gone.push(position.quota_ids.as_str());
                removed_positions.push(position);
                events.insert(position.event_id);
            }
        }
        let returned = vouchers::return_blocked(&txn, &removed_positions, now).await?;
        let mut released = quotas::units(gone.iter().copied());
        for (id, n) in returned {
            if let Some(units) = released.get_mut(&id) {
                *units -= n;
            }
        }
        quotas::release(&txn, &released, Counter::InCarts).await?;
        txn.commit().await?;
        if (batch.len() as u64) < EXPIRY_BATCH {
            return Ok(events);
        }
    }
}
