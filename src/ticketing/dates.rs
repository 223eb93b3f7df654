//! Per-date product settings (pretix `SubEventItem`, `SubEventItemVariation`):
//! a date of a series may give a product, or one of its variations, its own
//! price, disable it, or sell it only within a window.
//!
//! The rule lives in [`terms`]: the price is the variation's date price, else
//! the product's date price, else the variation's own price, else the
//! product's; a product or variation disabled on the date, or outside a
//! date window of either, is not on sale. [`price_on_date`] reads what it
//! needs in one query, for `carts::add` and the storefront alike. Settings
//! change with the team permission `ChangeEvents` on the date's event, each
//! change in the audit log.

use std::collections::HashMap;

use chrono::{DateTime, Utc};
use sea_orm::sea_query::Expr;
use sea_orm::{
    ActiveModelTrait, ColumnTrait, ConnectionTrait, DatabaseConnection, EntityTrait, QueryFilter,
    QueryOrder, Set, SqlErr,
};
use serde_json::json;

use super::audit::{Audited, Change};
use super::catalog;
use crate::auth::{Principal, TeamPermission};
use crate::entities::quota::Availability;
use crate::entities::sub_event_product_setting as setting;
use crate::entities::{event, product, product_variation, sub_event};
use crate::error::AppError;

/// What a date changes for a product or a variation; `None` keeps the
/// product's (or variation's) own.
#[derive(Debug, Clone, Default)]
pub struct DateSettings {
    pub price_minor: Option<i64>,
    pub disabled: bool,
    pub available_from: Option<DateTime<Utc>>,
    pub available_until: Option<DateTime<Utc>>,
}

/// A product's (or variation's) price on a date and whether the date sells it now.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct DateTerms {
    pub price_minor: i64,
    pub on_sale: bool,
}

/// Whether a date's row lets its product (or variation) be sold at `now`.
fn row_allows(row: &setting::Model, now: DateTime<Utc>) -> bool {
    !row.disabled
        && row.available_from.is_none_or(|from| from <= now)
        && row.available_until.is_none_or(|until| now < until)
}

/// The terms of `product` (and `variation`) on a date with `rows` (the
/// date's settings of that product; rows of other variations are ignored).
/// The product's own window is checked apart (`product::Model::on_sale_at`).
pub fn terms(
    product: &product::Model,
    variation: Option<&product_variation::Model>,
    rows: &[setting::Model],
    now: DateTime<Utc>,
) -> DateTerms {
    let of_product = rows
        .iter()
        .find(|r| r.product_id == product.id && r.variation_id.is_none());
    let of_variation = variation.and_then(|v| rows.iter().find(|r| r.variation_id == Some(v.id)));
    let price_minor = of_variation
        .and_then(|r| r.price_minor)
        .or_else(|| of_product.and_then(|r| r.price_minor))
        .or_else(|| variation.and_then(|v| v.price_minor))
        .unwrap_or(product.price_minor);
    let on_sale = [of_product, of_variation]
        .into_iter()
        .flatten()
        .all(|row| row_allows(row, now));
    DateTerms {
        price_minor,
        on_sale,
    }
}

/// [`terms`] of `product` (and `variation`) on date `sub_event_id`, read in
/// one query.
///
/// # Errors
/// On database errors.
pub async fn price_on_date(
    db: &impl ConnectionTrait,
    sub_event_id: i32,
    product: &product::Model,
    variation: Option<&product_variation::Model>,
    now: DateTime<Utc>,
) -> Result<DateTerms, AppError> {
    let rows = setting::Entity::find()
        .filter(setting::Column::SubEventId.eq(sub_event_id))
        .filter(setting::Column::ProductId.eq(product.id))
        .all(db)
        .await?;
    Ok(terms(product, variation, &rows, now))
}

fn check(settings: &DateSettings) -> Result<(), AppError> {
    if settings.price_minor.is_some_and(|p| p < 0) {
        return Err(AppError::bad_input("price", "not negative"));
    }
    if let (Some(from), Some(until)) = (settings.available_from, settings.available_until)
        && until <= from
    {
        return Err(AppError::bad_input(
            "availableUntil",
            "ends before it starts",
        ));
    }
    Ok(())
}

/// Opens a change of date `sub_event_id` (team permission `ChangeEvents` on
/// its event) and reads the product (and variation) it is about: a date that
/// does not exist is refused like one the caller may not change; a product of
/// another event is `BAD_USER_INPUT` on `productId`, a variation of another
/// product on `variationId`.
async fn open(
    db: &DatabaseConnection,
    principal: &Principal,
    now: DateTime<Utc>,
    sub_event_id: i32,
    product_id: i32,
    variation_id: Option<i32>,
) -> Result<(Audited, event::Model, sub_event::Model, product::Model), AppError> {
    if matches!(principal, Principal::Anonymous) {
        return Err(AppError::Unauthenticated);
    }
    let mut change = Audited::begin(db, None, now).await?;
    let date = sub_event::Entity::find_by_id(sub_event_id)
        .one(change.txn())
        .await?;
    let event = change
        .check_event(
            principal,
            TeamPermission::ChangeEvents,
            date.as_ref().map_or(0, |d| d.event_id),
        )
        .await?;
    let date = date.ok_or(AppError::not_found("subEvent"))?;
    let product = product::Entity::find_by_id(product_id)
        .one(change.txn())
        .await?
        .filter(|p| p.event_id == event.id)
        .ok_or_else(|| AppError::bad_input("productId", "no such product in this event"))?;
    if let Some(variation_id) = variation_id {
        product_variation::Entity::find_by_id(variation_id)
            .one(change.txn())
            .await?
            .filter(|v| v.product_id == product.id)
            .ok_or_else(|| {
                AppError::bad_input("variationId", "no such variation of this product")
            })?;
    }
    Ok((change, event, date, product))
}

/// The date's row for a product (`variation_id` `None`) or a variation.
async fn row_of(
    db: &impl ConnectionTrait,
    sub_event_id: i32,
    product_id: i32,
    variation_id: Option<i32>,
) -> Result<Option<setting::Model>, AppError> {
    let query = setting::Entity::find()
        .filter(setting::Column::SubEventId.eq(sub_event_id))
        .filter(setting::Column::ProductId.eq(product_id));
    let query = match variation_id {
        Some(id) => query.filter(setting::Column::VariationId.eq(id)),
        None => query.filter(setting::Column::VariationId.is_null()),
    };
    Ok(query.one(db).await?)
}

/// Sets a date's settings of a product, or of one of its variations (team
/// permission `ChangeEvents`), replacing what the date had for it.
///
/// # Errors
/// `BAD_USER_INPUT` on a negative price, a window that ends before it starts,
/// a product of another event or a variation of another product; as
/// [`super::access::on_event`].
pub async fn set(
    db: &DatabaseConnection,
    principal: &Principal,
    now: DateTime<Utc>,
    sub_event_id: i32,
    product_id: i32,
    variation_id: Option<i32>,
    settings: DateSettings,
) -> Result<sub_event::Model, AppError> {
    check(&settings)?;
    let (change, event, date, product) =
        open(db, principal, now, sub_event_id, product_id, variation_id).await?;
    let existing = row_of(change.txn(), date.id, product.id, variation_id).await?;
    let is_new = existing.is_none();
    let mut row: setting::ActiveModel = match existing {
        Some(row) => row.into(),
        None => setting::ActiveModel {
            sub_event_id: Set(date.id),
            product_id: Set(product.id),
            variation_id: Set(variation_id),
            ..Default::default()
        },
    };
    row.price_minor = Set(settings.price_minor);
    row.disabled = Set(settings.disabled);
    row.available_from = Set(settings.available_from);
    row.available_until = Set(settings.available_until);
    row.updated_at = Set(now);
    let id = if is_new {
        row.insert(change.txn())
            .await
            .map_err(|err| match err.sql_err() {
                // Another change inserted the same row first.
                Some(SqlErr::UniqueConstraintViolation(_)) => AppError::Conflict(
                    "these settings were changed at the same time; try again".to_owned(),
                ),
                _ => AppError::from(err),
            })?
            .id
    } else {
        row.update(change.txn()).await?.id
    };
    change
        .commit(Change::on_event(
            &event,
            "voltgate.subevent.product_settings.set",
            "subevent_product_settings",
            id,
            json!({
                "subevent": date.id, "product": product.id, "variation": variation_id,
                "price_minor": settings.price_minor, "disabled": settings.disabled,
                "available_from": settings.available_from,
                "available_until": settings.available_until,
            }),
        ))
        .await?;
    Ok(date)
}

/// Removes a date's settings of a product or variation (team permission
/// `ChangeEvents`): its own price and window apply again. Clearing what is
/// not set changes and logs nothing.
///
/// # Errors
/// As [`set`].
pub async fn clear(
    db: &DatabaseConnection,
    principal: &Principal,
    now: DateTime<Utc>,
    sub_event_id: i32,
    product_id: i32,
    variation_id: Option<i32>,
) -> Result<sub_event::Model, AppError> {
    let (change, event, date, product) =
        open(db, principal, now, sub_event_id, product_id, variation_id).await?;
    let Some(row) = row_of(change.txn(), date.id, product.id, variation_id).await? else {
        return Ok(date);
    };
    setting::Entity::delete_by_id(row.id)
        .exec(change.txn())
        .await?;
    change
        .commit(Change::on_event(
            &event,
            "voltgate.subevent.product_settings.cleared",
            "subevent_product_settings",
            row.id,
            json!({ "subevent": date.id, "product": product.id, "variation": variation_id }),
        ))
        .await?;
    Ok(date)
}

/// The settings a date has, by product and then variation.
///
/// # Errors
/// On database errors.
pub async fn settings_of(
    db: &impl ConnectionTrait,
    sub_event_id: i32,
) -> Result<Vec<setting::Model>, AppError> {
    Ok(setting::Entity::find()
        .filter(setting::Column::SubEventId.eq(sub_event_id))
        .order_by_asc(setting::Column::ProductId)
        // The product's row first: databases disagree on where NULLs sort.
        .order_by_asc(Expr::cust("variation_id IS NOT NULL"))
        .order_by_asc(setting::Column::VariationId)
        .order_by_asc(setting::Column::Id)
        .all(db)
        .await?)
}

/// A variation as a date sells it.
#[derive(Debug, Clone)]
pub struct VariationOnDate {
    pub variation: product_variation::Model,
    pub terms: DateTerms,
    /// Over the date's quotas counting the variation.
    pub availability: Availability,
    pub remaining: Option<i32>,
}

/// A product as a date sells it: its price there, whether it can be bought
/// now (date settings, the product's window, the date's quotas) and its
/// active variations.
#[derive(Debug, Clone)]
pub struct ProductOnDate {
    pub product: product::Model,
    pub terms: DateTerms,
    pub availability: Availability,
    pub remaining: Option<i32>,
    pub variations: Vec<VariationOnDate>,
}

/// The storefront of a date: the products the shop shows (as
/// [`catalog::products_of`]) with their terms on the date.
///
/// # Errors
/// On database errors.
pub async fn products_on_date(
    db: &impl ConnectionTrait,
    principal: &Principal,
    date: &sub_event::Model,
    now: DateTime<Utc>,
) -> Result<Vec<ProductOnDate>, AppError> {
    let products = catalog::products_of(db, principal, date.event_id).await?;
    let ids: Vec<i32> = products.iter().map(|p| p.id).collect();
    let rows = settings_of(db, date.id).await?;
    let mut quotas = catalog::quotas_of_products(db, &ids, false).await?;
    let mut variations: HashMap<i32, Vec<product_variation::Model>> = HashMap::new();
    for variation in product_variation::Entity::find()
        .filter(product_variation::Column::ProductId.is_in(ids.iter().copied()))
        .filter(product_variation::Column::Active.eq(true))
        .order_by_asc(product_variation::Column::Position)
        .order_by_asc(product_variation::Column::Id)
        .all(db)
        .await?
    {
        variations
            .entry(variation.product_id)
            .or_default()
            .push(variation);
    }
    Ok(products
        .into_iter()
        .map(|product| {
            let own: Vec<setting::Model> = rows
                .iter()
                .filter(|r| r.product_id == product.id)
                .cloned()
                .collect();
            let linked = quotas.remove(&product.id).unwrap_or_default();
            let active = variations.remove(&product.id).unwrap_or_default();
            let (availability, remaining) = linked.of_product(&active, Some(date.id));
            let mut terms = terms(&product, None, &own, now);
            terms.on_sale &= product.on_sale_at(now) && availability == Availability::Ok;
            let variations = active
                .into_iter()
                .map(|variation| {
                    let mut v = self::terms(&product, Some(&variation), &own, now);
                    let (availability, remaining) =
                        linked.of_variation(variation.id, Some(date.id));
                    v.on_sale &= terms.on_sale && availability == Availability::Ok;
                    VariationOnDate {
                        variation,
                        terms: v,
                        availability,
                        remaining,
                    }
                })
                .collect();
            ProductOnDate {
                product,
                terms,
                availability,
                remaining,
                variations,
            }
        })
        .collect())
}
