//! The catalog: categories, products (one model for admission tickets,
//! add-ons and merchandise), variations and quotas.
//!
//! A product is available only through its quotas (pretix's rule): a product
//! in no quota cannot be bought. A product created with a total quantity gets
//! a quota of that size (django-program's `total_quantity`), so there is one
//! mechanism for both.
//!
//! A quota may name variations of its products (pretix's `Quota.variations`):
//! [`counts`] is the one rule of which positions it counts, and
//! [`ProductQuotas::counting`] the one place that applies it, for holds,
//! vouchers and every availability shown.

use std::collections::HashMap;

use chrono::{DateTime, Utc};
use sea_orm::{
    ActiveModelTrait, ColumnTrait, ConnectionTrait, EntityTrait, QueryFilter, QueryOrder,
    QuerySelect, Set,
};
use serde_json::json;

use super::access;
use super::audit::{Audited, Change};
use super::organizers::parse_name;
use crate::auth::{Principal, TeamPermission};
use crate::entities::product::ProductKind;
use crate::entities::quota::Availability;
use crate::entities::{
    event, product, product_category, product_variation, quota, quota_product, quota_variation,
};
use crate::error::AppError;

/// What a category is created or changed with.
#[derive(Debug, Clone)]
pub struct CategoryInput {
    pub name: String,
    pub position: i32,
    pub is_addon: bool,
}

impl From<&product_category::Model> for CategoryInput {
    fn from(row: &product_category::Model) -> Self {
        Self {
            name: row.name.clone(),
            position: row.position,
            is_addon: row.is_addon,
        }
    }
}

/// The one validation of a category, for creation and changes: its name.
///
/// # Errors
/// `BAD_USER_INPUT` on `name`.
pub fn check_category(input: &CategoryInput) -> Result<String, AppError> {
    parse_name(&input.name)
}

/// Creates a category (team permission `ChangeItems`).
///
/// # Errors
/// `BAD_USER_INPUT` on a bad name; as [`access::on_event`].
pub async fn create_category(
    db: &sea_orm::DatabaseConnection,
    principal: &Principal,
    now: DateTime<Utc>,
    event_id: i32,
    name: &str,
    position: i32,
    is_addon: bool,
) -> Result<product_category::Model, AppError> {
    let (change, event) =
        Audited::on_event(db, principal, now, TeamPermission::ChangeItems, event_id).await?;
    let input = CategoryInput {
        name: name.to_owned(),
        position,
        is_addon,
    };
    let category = product_category::ActiveModel {
        event_id: Set(event.id),
        name: Set(check_category(&input)?),
        position: Set(input.position),
        is_addon: Set(input.is_addon),
        ..Default::default()
    }
    .insert(change.txn())
    .await?;
    change
        .commit(Change::on_event(
            &event,
            "voltgate.category.added",
            "category",
            category.id,
            json!({ "name": category.name }),
        ))
        .await?;
    Ok(category)
}

/// What a product is created with.
#[derive(Debug, Clone)]
pub struct ProductInput {
    pub name: String,
    /// django-program's slug: unique within the event when given.
    pub slug: Option<String>,
    pub description: String,
    pub kind: ProductKind,
    pub category_id: Option<i32>,
    pub price_minor: i64,
    pub tax_rate_bp: i32,
    pub active: bool,
    pub available_from: Option<DateTime<Utc>>,
    pub available_until: Option<DateTime<Utc>>,
    pub min_per_order: Option<i32>,
    pub max_per_order: Option<i32>,
    pub limit_per_user: Option<i32>,
    pub require_voucher: bool,
    pub hide_without_voucher: bool,
    pub require_approval: bool,
    pub personalized: bool,
    pub checkin_attention: bool,
    pub position: i32,
    /// A quota of this size is created for the product alone.
    pub total_quantity: Option<i32>,
}

impl From<&product::Model> for ProductInput {
    /// The product as it is, for a change to start from.
    fn from(row: &product::Model) -> Self {
        Self {
            name: row.name.clone(),
            slug: row.slug.clone(),
            description: row.description.clone(),
            kind: row.kind,
            category_id: row.category_id,
            price_minor: row.price_minor,
            tax_rate_bp: row.tax_rate_bp,
            active: row.active,
            available_from: row.available_from,
            available_until: row.available_until,
            min_per_order: row.min_per_order,
            max_per_order: row.max_per_order,
            limit_per_user: row.limit_per_user,
            require_voucher: row.require_voucher,
            hide_without_voucher: row.hide_without_voucher,
            require_approval: row.require_approval,
            personalized: row.personalized,
            checkin_attention: row.checkin_attention,
            position: row.position,
            total_quantity: None,
        }
    }
}

/// The one validation of a product of `event_id`, for creation and changes:
/// returns its name as stored.
///
/// # Errors
/// `BAD_USER_INPUT` on the member at fault, or on `categoryId` for a category
/// of another event.
pub async fn check_product(
    db: &impl ConnectionTrait,
    event_id: i32,
    input: &ProductInput,
) -> Result<String, AppError> {
    let name = parse_name(&input.name)?;
    check_product_members(input)?;
    if input.price_minor < 0 {
        return Err(AppError::bad_input("price", "not negative"));
    }
    if input.description.chars().count() > 10_000 {
        return Err(AppError::bad_input(
            "description",
            "at most 10,000 characters",
        ));
    }
    if let Some(category) = input.category_id {
        let found = product_category::Entity::find_by_id(category)
            .one(db)
            .await?;
        if found.is_none_or(|c| c.event_id != event_id) {
            return Err(AppError::bad_input(
                "categoryId",
                "no such category in this event",
            ));
        }
    }
    Ok(name)
}

fn check_product_members(input: &ProductInput) -> Result<(), AppError> {
    if !(0..=10_000).contains(&input.tax_rate_bp) {
        return Err(AppError::bad_input("taxRate", "between 0 and 100 percent"));
    }
    let positive = |v: Option<i32>| v.is_none_or(|n| n >= 1);
    if !positive(input.min_per_order)
        || !positive(input.max_per_order)
        || !positive(input.limit_per_user)
    {
        return Err(AppError::bad_input("maxPerOrder", "limits are at least 1"));
    }
    if let (Some(min), Some(max)) = (input.min_per_order, input.max_per_order)
        && min > max
    {
        return Err(AppError::bad_input(
            "minPerOrder",
            "more than the maximum per order",
        ));
    }
    if let (Some(from), Some(until)) = (input.available_from, input.available_until)
        && until <= from
    {
        return Err(AppError::bad_input(
            "availableUntil",
            "ends before it starts",
        ));
    }
    if input.total_quantity.is_some_and(|n| n < 0) {
        return Err(AppError::bad_input("totalQuantity", "not negative"));
    }
    Ok(())
}

/// The product's slug, checked like an organizer's.
///
/// # Errors
/// `BAD_USER_INPUT` on a malformed slug.
pub(crate) fn product_slug(input: &ProductInput) -> Result<Option<String>, AppError> {
    input
        .slug
        .as_deref()
        .map(super::organizers::parse_slug)
        .transpose()
}

/// A write of a product refused by the unique slug within its event (the
/// only unique key a product's own columns have) as `SLUG_TAKEN`.
pub(crate) fn slug_taken(err: sea_orm::DbErr) -> AppError {
    match err.sql_err() {
        Some(sea_orm::SqlErr::UniqueConstraintViolation(_)) => AppError::refused(
            crate::error::Reason::SlugTaken,
            "the event has a product with this slug already",
        ),
        _ => AppError::from(err),
    }
}

/// Creates a product (team permission `ChangeItems`), with a quota of its
/// total quantity when one is given.
///
/// # Errors
/// `BAD_USER_INPUT` on bad members or a category of another event; as
/// [`access::on_event`].
pub async fn create_product(
    db: &sea_orm::DatabaseConnection,
    principal: &Principal,
    now: DateTime<Utc>,
    event_id: i32,
    input: ProductInput,
) -> Result<product::Model, AppError> {
    let (change, event) =
        Audited::on_event(db, principal, now, TeamPermission::ChangeItems, event_id).await?;
    let txn = change.txn();
    let name = check_product(txn, event.id, &input).await?;
    let slug = product_slug(&input)?;
    let product = product::ActiveModel {
        event_id: Set(event.id),
        category_id: Set(input.category_id),
        name: Set(name),
        slug: Set(slug),
        description: Set(input.description.clone()),
        kind: Set(input.kind),
        active: Set(input.active),
        admission: Set(input.kind == ProductKind::Admission),
        price_minor: Set(input.price_minor),
        tax_rate_bp: Set(input.tax_rate_bp),
        available_from: Set(input.available_from),
        available_until: Set(input.available_until),
        min_per_order: Set(input.min_per_order),
        max_per_order: Set(input.max_per_order),
        limit_per_user: Set(input.limit_per_user),
        require_voucher: Set(input.require_voucher),
        hide_without_voucher: Set(input.hide_without_voucher),
        require_approval: Set(input.require_approval),
        personalized: Set(input.personalized),
        checkin_attention: Set(input.checkin_attention),
        position: Set(input.position),
        created_at: Set(now),
        updated_at: Set(now),
        ..Default::default()
    }
    .insert(txn)
    .await
    .map_err(slug_taken)?;
    let added = Change::on_event(
        &event,
        "voltgate.product.added",
        "product",
        product.id,
        json!({ "name": product.name, "price_minor": product.price_minor, "kind": product.kind }),
    );
    match input.total_quantity {
        Some(size) => {
            let ids = [product.id];
            let quota =
                insert_quota(&change, &event, &product.name, Some(size), None, &ids).await?;
            change.log(added).await?;
            change
                .commit(quota_added(&event, &quota, &ids, &[]))
                .await?;
        }
        None => change.commit(added).await?,
    }
    Ok(product)
}

/// What a variation is created or changed with.
#[derive(Debug, Clone)]
pub struct VariationInput {
    pub value: String,
    pub description: String,
    pub active: bool,
    /// `None`: the product's price.
    pub price_minor: Option<i64>,
    pub position: i32,
}

impl From<&product_variation::Model> for VariationInput {
    fn from(row: &product_variation::Model) -> Self {
        Self {
            value: row.value.clone(),
            description: row.description.clone(),
            active: row.active,
            price_minor: row.price_minor,
            position: row.position,
        }
    }
}

/// The one validation of a variation, for creation and changes: returns its
/// value as stored.
///
/// # Errors
/// `BAD_USER_INPUT` on `value`, `description` or `price`.
pub fn check_variation(input: &VariationInput) -> Result<String, AppError> {
    let value = parse_name(&input.value)
        .map_err(|_| AppError::bad_input("value", "use 1 to 200 characters"))?;
    if input.description.chars().count() > 10_000 {
        return Err(AppError::bad_input(
            "description",
            "at most 10,000 characters",
        ));
    }
    if input.price_minor.is_some_and(|p| p < 0) {
        return Err(AppError::bad_input("price", "not negative"));
    }
    Ok(value)
}

/// Adds a variation to a product (team permission `ChangeItems` on its event).
///
/// # Errors
/// `BAD_USER_INPUT` on a bad value; `FORBIDDEN` for an unknown product; as
/// [`access::on_event`].
pub async fn create_variation(
    db: &sea_orm::DatabaseConnection,
    principal: &Principal,
    now: DateTime<Utc>,
    product_id: i32,
    value: &str,
    price_minor: Option<i64>,
) -> Result<product_variation::Model, AppError> {
    if matches!(principal, Principal::Anonymous) {
        return Err(AppError::Unauthenticated);
    }
    let mut change = Audited::begin(db, None, now).await?;
    let product = product::Entity::find_by_id(product_id)
        .one(change.txn())
        .await?;
    let event_id = product.as_ref().map_or(0, |p| p.event_id);
    let event = change
        .check_event(principal, TeamPermission::ChangeItems, event_id)
        .await?;
    let product = product.ok_or(AppError::not_found("product"))?;
    let input = VariationInput {
        value: value.to_owned(),
        description: String::new(),
        active: true,
        price_minor,
        position: 0,
    };
    let variation = product_variation::ActiveModel {
        product_id: Set(product.id),
        value: Set(check_variation(&input)?),
        description: Set(input.description),
        active: Set(input.active),
        price_minor: Set(input.price_minor),
        position: Set(input.position),
        ..Default::default()
    }
    .insert(change.txn())
    .await?;
    change
        .commit(Change::on_event(
            &event,
            "voltgate.product.variation.added",
            "product",
            product.id,
            json!({ "variation": variation.id, "value": variation.value }),
        ))
        .await?;
    Ok(variation)
}

/// Creates a quota over products of the event, and over chosen variations of
/// them (team permission `ChangeItems`).
///
/// # Errors
/// `BAD_USER_INPUT` on a negative size, products of another event, variations
/// of products the quota does not count or a date of another event; as
/// [`access::on_event`].
pub async fn create_quota(
    db: &sea_orm::DatabaseConnection,
    principal: &Principal,
    now: DateTime<Utc>,
    event_id: i32,
    input: QuotaInput,
) -> Result<quota::Model, AppError> {
    let (change, event) =
        Audited::on_event(db, principal, now, TeamPermission::ChangeItems, event_id).await?;
    let checked = check_quota(change.txn(), event.id, &input).await?;
    let quota = insert_quota(
        &change,
        &event,
        &checked.name,
        input.size,
        input.sub_event_id,
        &checked.product_ids,
    )
    .await?;
    link_variations(change.txn(), quota.id, &checked.variations, now).await?;
    let variation_ids: Vec<i32> = checked.variations.iter().map(|(v, _)| *v).collect();
    change
        .commit(quota_added(
            &event,
            &quota,
            &checked.product_ids,
            &variation_ids,
        ))
        .await?;
    Ok(quota)
}

/// What a quota is created or changed with.
#[derive(Debug, Clone)]
pub struct QuotaInput {
    pub name: String,
    /// `None`: unlimited.
    pub size: Option<i32>,
    pub sub_event_id: Option<i32>,
    pub product_ids: Vec<i32>,
    /// Variations of its products it counts; a product none of whose
    /// variations is named counts with all of them.
    pub variation_ids: Vec<i32>,
}

/// A quota's input as [`check_quota`] accepts it.
#[derive(Debug, Clone)]
pub struct CheckedQuota {
    pub name: String,
    /// Each once, in id order.
    pub product_ids: Vec<i32>,
    /// `(variation, its product)`, each once, in variation id order.
    pub variations: Vec<(i32, i32)>,
}

/// The one validation of a quota of `event_id`, for creation and changes:
/// its name as stored, its products and the variations it names.
///
/// # Errors
/// `BAD_USER_INPUT` on a bad name, a negative size, products of another
/// event, variations that are not of a product the quota counts
/// (`variationIds`) or a date of another event.
pub async fn check_quota(
    txn: &impl ConnectionTrait,
    event_id: i32,
    input: &QuotaInput,
) -> Result<CheckedQuota, AppError> {
    let name = parse_name(&input.name)?;
    if input.size.is_some_and(|n| n < 0) {
        return Err(AppError::bad_input("size", "not negative"));
    }
    let mut ids = input.product_ids.clone();
    ids.sort_unstable();
    ids.dedup();
    let found = product::Entity::find()
        .filter(product::Column::Id.is_in(ids.clone()))
        .filter(product::Column::EventId.eq(event_id))
        .all(txn)
        .await?;
    if found.len() != ids.len() {
        return Err(AppError::bad_input(
            "productIds",
            "every product must belong to the event",
        ));
    }
    let mut variation_ids = input.variation_ids.clone();
    variation_ids.sort_unstable();
    variation_ids.dedup();
    let variations: Vec<(i32, i32)> = product_variation::Entity::find()
        .filter(product_variation::Column::Id.is_in(variation_ids.clone()))
        .order_by_asc(product_variation::Column::Id)
        .all(txn)
        .await?
        .into_iter()
        .filter(|v| ids.contains(&v.product_id))
        .map(|v| (v.id, v.product_id))
        .collect();
    if variations.len() != variation_ids.len() {
        return Err(AppError::bad_input(
            "variationIds",
            "every variation must be of a product the quota counts",
        ));
    }
    if let Some(date) = input.sub_event_id {
        let found = crate::entities::sub_event::Entity::find_by_id(date)
            .one(txn)
            .await?;
        if found.is_none_or(|d| d.event_id != event_id) {
            return Err(AppError::bad_input(
                "subEventId",
                "no such date of this event",
            ));
        }
    }
    Ok(CheckedQuota {
        name,
        product_ids: ids,
        variations,
    })
}

fn quota_added<'a>(
    event: &event::Model,
    quota: &quota::Model,
    product_ids: &[i32],
    variation_ids: &[i32],
) -> Change<'a> {
    Change::on_event(
        event,
        "voltgate.quota.added",
        "quota",
        quota.id,
        json!({
            "name": quota.name, "size": quota.size, "products": product_ids,
            "variations": variation_ids,
        }),
    )
}

/// Inserts a quota over `product_ids`, in `change`'s transaction.
async fn insert_quota(
    change: &Audited,
    event: &event::Model,
    name: &str,
    size: Option<i32>,
    sub_event_id: Option<i32>,
    product_ids: &[i32],
) -> Result<quota::Model, AppError> {
    let quota = quota::ActiveModel {
        event_id: Set(event.id),
        sub_event_id: Set(sub_event_id),
        name: Set(name.to_owned()),
        size: Set(size),
        paid: Set(0),
        pending: Set(0),
        in_carts: Set(0),
        blocked: Set(0),
        ..Default::default()
    }
    .insert(change.txn())
    .await?;
    link_products(change.txn(), quota.id, product_ids, change.now()).await?;
    Ok(quota)
}

/// Links a quota to products, in the caller's transaction.
///
/// # Errors
/// On database errors.
pub async fn link_products(
    txn: &impl ConnectionTrait,
    quota_id: i32,
    product_ids: &[i32],
    now: DateTime<Utc>,
) -> Result<(), AppError> {
    for product_id in product_ids {
        quota_product::ActiveModel {
            quota_id: Set(quota_id),
            product_id: Set(*product_id),
            added_at: Set(now),
        }
        .insert(txn)
        .await?;
    }
    Ok(())
}

/// Names variations (`(variation, its product)`, checked by [`check_quota`])
/// in a quota, in the caller's transaction.
///
/// # Errors
/// On database errors.
pub async fn link_variations(
    txn: &impl ConnectionTrait,
    quota_id: i32,
    variations: &[(i32, i32)],
    now: DateTime<Utc>,
) -> Result<(), AppError> {
    for (variation_id, product_id) in variations {
        quota_variation::ActiveModel {
            quota_id: Set(quota_id),
            variation_id: Set(*variation_id),
            product_id: Set(*product_id),
            added_at: Set(now),
        }
        .insert(txn)
        .await?;
    }
    Ok(())
}

/// The products the shop shows: active ones that are not hidden without a voucher.
/// Teams with `ChangeItems` see them all.
///
/// # Errors
/// On database errors.
pub async fn products_of(
    db: &impl ConnectionTrait,
    principal: &Principal,
    event_id: i32,
) -> Result<Vec<product::Model>, AppError> {
    let mut query = product::Entity::find().filter(product::Column::EventId.eq(event_id));
    let team = access::on_event(db, principal, TeamPermission::ChangeItems, event_id)
        .await
        .is_ok();
    if !team {
        query = query
            .filter(product::Column::Active.eq(true))
            .filter(product::Column::HideWithoutVoucher.eq(false));
    }
    Ok(query
        .order_by_asc(product::Column::Position)
        .order_by_asc(product::Column::Id)
        .all(db)
        .await?)
}

/// The quotas of an event (team permission `ChangeItems` or `ViewOrders`).
///
/// # Errors
/// As [`access::on_event`].
pub async fn quotas_of_event(
    db: &impl ConnectionTrait,
    principal: &Principal,
    event_id: i32,
) -> Result<Vec<quota::Model>, AppError> {
    if access::on_event(db, principal, TeamPermission::ChangeItems, event_id)
        .await
        .is_err()
    {
        access::on_event(db, principal, TeamPermission::ViewOrders, event_id).await?;
    }
    Ok(quota::Entity::find()
        .filter(quota::Column::EventId.eq(event_id))
        .order_by_asc(quota::Column::Id)
        .all(db)
        .await?)
}

/// Whether a quota linked to a product, naming `named` of its variations,
/// counts a position of that product with `variation_id`: the one rule of
/// per-variation quotas (pretix's `Quota.variations`). A quota that names no
/// variation of the product counts all of them (and positions without one);
/// one that names some counts only those.
pub fn counts(named: &[i32], variation_id: Option<i32>) -> bool {
    named.is_empty() || variation_id.is_some_and(|v| named.contains(&v))
}

/// The quotas linked to one product, each with the variations of that product
/// it names (none: all), in quota id order. Everything that decides or shows
/// what a position of the product takes reads them through [`Self::counting`].
#[derive(Debug, Clone, Default)]
pub struct ProductQuotas(pub Vec<(quota::Model, Vec<i32>)>);

impl ProductQuotas {
    /// The quotas counting a position with `variation_id` on `sub_event_id`
    /// (`None`: an event without dates), in id order.
    pub fn counting(
        &self,
        variation_id: Option<i32>,
        sub_event_id: Option<i32>,
    ) -> Vec<&quota::Model> {
        self.0
            .iter()
            .filter(|(q, named)| q.sub_event_id == sub_event_id && counts(named, variation_id))
            .map(|(q, _)| q)
            .collect()
    }

    /// Whether a quota of `sub_event_id` names variations of the product:
    /// then a position must choose one of them.
    pub fn names_variations(&self, sub_event_id: Option<i32>) -> bool {
        self.0
            .iter()
            .any(|(q, named)| q.sub_event_id == sub_event_id && !named.is_empty())
    }

    /// A variation's availability on `sub_event_id`, over the quotas counting it.
    pub fn of_variation(
        &self,
        variation_id: i32,
        sub_event_id: Option<i32>,
    ) -> (Availability, Option<i32>) {
        availability(self.counting(Some(variation_id), sub_event_id))
    }

    /// The product's availability on `sub_event_id`: over its quotas, or,
    /// when they name variations, that of its best variation among `active`
    /// ones (it is bought as one of them).
    pub fn of_product(
        &self,
        active: &[product_variation::Model],
        sub_event_id: Option<i32>,
    ) -> (Availability, Option<i32>) {
        if !self.names_variations(sub_event_id) {
            return availability(self.counting(None, sub_event_id));
        }
        active
            .iter()
            .map(|v| self.of_variation(v.id, sub_event_id))
            .min_by_key(|(state, remaining)| {
                (
                    *state,
                    std::cmp::Reverse(remaining.map_or(i64::MAX, i64::from)),
                )
            })
            .unwrap_or((Availability::Gone, Some(0)))
    }
}

/// The quotas linked to each product, with the variations of it they name;
/// their rows locked in id order until the transaction ends when `lock`
/// (PostgreSQL; SQLite has one writer).
///
/// # Errors
/// On database errors.
pub async fn quotas_of_products(
    db: &impl ConnectionTrait,
    product_ids: &[i32],
    lock: bool,
) -> Result<HashMap<i32, ProductQuotas>, AppError> {
    let links = quota_product::Entity::find()
        .filter(quota_product::Column::ProductId.is_in(product_ids.iter().copied()))
        .all(db)
        .await?;
    let mut named: HashMap<(i32, i32), Vec<i32>> = HashMap::new();
    for link in quota_variation::Entity::find()
        .filter(quota_variation::Column::ProductId.is_in(product_ids.iter().copied()))
        .order_by_asc(quota_variation::Column::VariationId)
        .all(db)
        .await?
    {
        named
            .entry((link.quota_id, link.product_id))
            .or_default()
            .push(link.variation_id);
    }
    let mut query = quota::Entity::find()
        .filter(quota::Column::Id.is_in(links.iter().map(|l| l.quota_id)))
        .order_by_asc(quota::Column::Id);
    if lock {
        query = query.lock_exclusive();
    }
    let quotas: HashMap<i32, quota::Model> = query
        .all(db)
        .await?
        .into_iter()
        .map(|q| (q.id, q))
        .collect();
    let mut by_product: HashMap<i32, ProductQuotas> = product_ids
        .iter()
        .map(|id| (*id, ProductQuotas::default()))
        .collect();
    for link in links {
        if let Some(quota) = quotas.get(&link.quota_id) {
            let names = named
                .remove(&(link.quota_id, link.product_id))
                .unwrap_or_default();
            by_product
                .entry(link.product_id)
                .or_default()
                .0
                .push((quota.clone(), names));
        }
    }
    for quotas in by_product.values_mut() {
        quotas.0.sort_by_key(|(q, _)| q.id);
    }
    Ok(by_product)
}

/// Availability over quotas: the worst state and the least remaining
/// (`None`: unlimited). Over no quota it is `Gone` with nothing left.
pub fn availability<'a>(
    quotas: impl IntoIterator<Item = &'a quota::Model>,
) -> (Availability, Option<i32>) {
    let mut state = None;
    let mut remaining = None;
    for quota in quotas {
        state = state.max(Some(quota.availability()));
        remaining = match (remaining, quota.remaining()) {
            (Some(a), Some(b)) => Some(std::cmp::min(a, b)),
            (a, b) => a.or(b),
        };
    }
    match state {
        Some(state) => (state, remaining),
        None => (Availability::Gone, Some(0)),
    }
}

/// The variations of a product.
///
/// # Errors
/// On database errors.
pub async fn variations_of(
    db: &impl ConnectionTrait,
    product_id: i32,
) -> Result<Vec<product_variation::Model>, AppError> {
    Ok(product_variation::Entity::find()
        .filter(product_variation::Column::ProductId.eq(product_id))
        .order_by_asc(product_variation::Column::Position)
        .order_by_asc(product_variation::Column::Id)
        .all(db)
        .await?)
}

/// The product a variation belongs to.
///
/// # Errors
/// `NOT_FOUND` when it is gone; on database errors.
pub async fn product_of_variation(
    db: &impl ConnectionTrait,
    variation: &product_variation::Model,
) -> Result<product::Model, AppError> {
    product::Entity::find_by_id(variation.product_id)
        .one(db)
        .await?
        .ok_or(AppError::not_found("product"))
}

/// The products a quota counts, in id order.
///
/// # Errors
/// On database errors.
pub async fn products_of_quota(
    db: &impl ConnectionTrait,
    quota_id: i32,
) -> Result<Vec<i32>, AppError> {
    let mut ids: Vec<i32> = quota_product::Entity::find()
        .filter(quota_product::Column::QuotaId.eq(quota_id))
        .all(db)
        .await?
        .into_iter()
        .map(|link| link.product_id)
        .collect();
    ids.sort_unstable();
    Ok(ids)
}

/// The variations a quota names, in id order (none: every variation of its
/// products).
///
/// # Errors
/// On database errors.
pub async fn variations_of_quota(
    db: &impl ConnectionTrait,
    quota_id: i32,
) -> Result<Vec<product_variation::Model>, AppError> {
    let ids: Vec<i32> = quota_variation::Entity::find()
        .filter(quota_variation::Column::QuotaId.eq(quota_id))
        .all(db)
        .await?
        .into_iter()
        .map(|link| link.variation_id)
        .collect();
    Ok(product_variation::Entity::find()
        .filter(product_variation::Column::Id.is_in(ids))
        .order_by_asc(product_variation::Column::Id)
        .all(db)
        .await?)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn quota(id: i32, size: i32, in_carts: i32) -> quota::Model {
        quota::Model {
            id,
            event_id: 1,
            sub_event_id: None,
            name: String::new(),
            size: Some(size),
            paid: 0,
            pending: 0,
            in_carts,
            blocked: 0,
        }
    }

    fn variation(id: i32) -> product_variation::Model {
        product_variation::Model {
            id,
            product_id: 1,
            value: String::new(),
            description: String::new(),
            active: true,
            price_minor: None,
            position: 0,
        }
    }

    #[test]
    fn a_quota_counts_every_variation_unless_it_names_some() {
        assert!(counts(&[], Some(7)));
        assert!(counts(&[], None));
        assert!(counts(&[7, 8], Some(8)));
        assert!(!counts(&[7], Some(8)));
        assert!(!counts(&[7], None));
    }

    #[test]
    fn a_product_whose_quotas_name_variations_shows_its_best_variation() {
        // A venue of 10 over both; the balcony (7) has 2 left, the floor (8) 1.
        let quotas = ProductQuotas(vec![
            (quota(1, 10, 0), vec![]),
            (quota(2, 2, 0), vec![7]),
            (quota(3, 1, 1), vec![8]),
        ]);
        let ids = |v: Option<i32>| -> Vec<i32> {
            quotas.counting(v, None).iter().map(|q| q.id).collect()
        };
        assert_eq!(ids(Some(7)), vec![1, 2]);
        assert_eq!(ids(Some(8)), vec![1, 3]);
        assert_eq!(ids(Some(9)), vec![1]);
        assert_eq!(
            quotas.of_variation(8, None),
            (Availability::Reserved, Some(0))
        );
        assert_eq!(
            quotas.of_product(&[variation(7), variation(8)], None),
            (Availability::Ok, Some(2))
        );
        assert_eq!(quotas.of_product(&[], None), (Availability::Gone, Some(0)));
        // Of another date, they count nothing.
        assert!(quotas.counting(Some(7), Some(4)).is_empty());
    }
}
