//! Changing and deleting the catalog: categories, products, variations and
//! quotas (team permission `ChangeItems` on their event).
//!
//! A change starts from the stored object, applies what the caller gave
//! (`None`: unchanged; `Some(None)`: cleared, for optional members) and runs
//! the same validation as creation (`catalog::check_*`). Every change and
//! deletion writes its audit entry in its own transaction.
//!
//! Deleting refuses (`IN_USE`) what sold or is held, as pretix does: a
//! product or variation that was ordered (deactivate it instead), anything a
//! live cart holds, and anything a voucher names (deleting it would delete or
//! widen the voucher). A quota that orders count may be deleted (pretix
//! allows it: the orders stand); one that carts hold may not, decided by a
//! conditional `DELETE … WHERE in_carts = 0` under the row's lock.
//!
//! A quota's size may shrink below what is taken: `carts::hold_all` compares
//! against the size under the row's lock, so no unit is sold beyond the size
//! a buyer's batch finds, and the quota's state says what takes it.
//! Prices are copied into cart and order positions when they are made, so a
//! changed price never changes them.

use chrono::{DateTime, Utc};
use sea_orm::{
    ActiveModelTrait, ColumnTrait, ConnectionTrait, DatabaseConnection, EntityTrait,
    PaginatorTrait, QueryFilter, Set,
};
use serde::Serialize;
use serde_json::json;

use super::audit::{Audited, Change};
use super::catalog::{
    self, CategoryInput, ProductInput, QuotaInput, VariationInput, check_category, check_variation,
};
use crate::auth::{Principal, TeamPermission};
use crate::db::find_locked;
use crate::entities::product::ProductKind;
use crate::entities::{
    cart_position, order_position, product, product_category, product_variation, quota,
    quota_product, quota_variation, voucher, voucher_product,
};
use crate::error::{AppError, Reason};

/// Opens a change by a signed-in caller; the permission is checked once the
/// object's event is known.
async fn begin(
    db: &DatabaseConnection,
    principal: &Principal,
    now: DateTime<Utc>,
) -> Result<Audited, AppError> {
    if matches!(principal, Principal::Anonymous) {
        return Err(AppError::Unauthenticated);
    }
    Audited::begin(db, None, now).await
}

fn in_use(message: &str) -> AppError {
    AppError::refused(Reason::InUse, message)
}

/// What changes in a category.
#[derive(Debug, Clone, Default, Serialize)]
pub struct CategoryPatch {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub position: Option<i32>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub is_addon: Option<bool>,
}

/// Changes a category (team permission `ChangeItems` on its event).
///
/// # Errors
/// As [`catalog::create_category`]; a category that does not exist is
/// refused like an event the caller may not change (`NOT_FOUND` for staff).
pub async fn update_category(
    db: &DatabaseConnection,
    principal: &Principal,
    now: DateTime<Utc>,
    category_id: i32,
    patch: CategoryPatch,
) -> Result<product_category::Model, AppError> {
    let mut change = begin(db, principal, now).await?;
    let row = product_category::Entity::find_by_id(category_id)
        .one(change.txn())
        .await?;
    let (event, row) = change
        .check_found(
            principal,
            TeamPermission::ChangeItems,
            row,
            |c| c.event_id,
            "category",
        )
        .await?;
    let mut input = CategoryInput::from(&row);
    if let Some(name) = &patch.name {
        input.name.clone_from(name);
    }
    if let Some(position) = patch.position {
        input.position = position;
    }
    if let Some(is_addon) = patch.is_addon {
        input.is_addon = is_addon;
    }
    let name = check_category(&input)?;
    let mut active: product_category::ActiveModel = row.into();
    active.name = Set(name);
    active.position = Set(input.position);
    active.is_addon = Set(input.is_addon);
    let row = active.update(change.txn()).await?;
    change
        .commit(Change::on_event(
            &event,
            "voltgate.category.changed",
            "category",
            row.id,
            json!(patch),
        ))
        .await?;
    Ok(row)
}

/// Deletes a category; its products stay, in no category (pretix's rule).
///
/// # Errors
/// As [`update_category`].
pub async fn delete_category(
    db: &DatabaseConnection,
    principal: &Principal,
    now: DateTime<Utc>,
    category_id: i32,
) -> Result<(), AppError> {
    let mut change = begin(db, principal, now).await?;
    let row = product_category::Entity::find_by_id(category_id)
        .one(change.txn())
        .await?;
    let (event, row) = change
        .check_found(
            principal,
            TeamPermission::ChangeItems,
            row,
            |c| c.event_id,
            "category",
        )
        .await?;
    let moved = product::Entity::update_many()
        .col_expr(
            product::Column::CategoryId,
            sea_orm::sea_query::Expr::value(Option::<i32>::None),
        )
        .col_expr(
            product::Column::UpdatedAt,
            sea_orm::sea_query::Expr::value(now),
        )
        .filter(product::Column::CategoryId.eq(row.id))
        .exec(change.txn())
        .await?
        .rows_affected;
    product_category::Entity::delete_by_id(row.id)
        .exec(change.txn())
        .await?;
    change
        .commit(Change::on_event(
            &event,
            "voltgate.category.deleted",
            "category",
            row.id,
            json!({ "name": row.name, "products_moved": moved }),
        ))
        .await?;
    Ok(())
}

/// What changes in a product: `None` keeps a member, `Some(None)` clears an
/// optional one.
#[derive(Debug, Clone, Default, Serialize)]
pub struct ProductPatch {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub slug: Option<Option<String>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub kind: Option<ProductKind>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub category_id: Option<Option<i32>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub price_minor: Option<i64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub tax_rate_bp: Option<i32>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub active: Option<bool>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub available_from: Option<Option<DateTime<Utc>>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub available_until: Option<Option<DateTime<Utc>>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub min_per_order: Option<Option<i32>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub max_per_order: Option<Option<i32>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub limit_per_user: Option<Option<i32>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub require_voucher: Option<bool>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub hide_without_voucher: Option<bool>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub require_approval: Option<bool>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub personalized: Option<bool>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub checkin_attention: Option<bool>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub position: Option<i32>,
}

/// Sets `target` to the patch's value when one is given.
fn put<T: Clone>(target: &mut T, value: Option<&T>) {
    if let Some(value) = value {
        target.clone_from(value);
    }
}

impl ProductPatch {
    fn apply(&self, input: &mut ProductInput) {
        put(&mut input.name, self.name.as_ref());
        put(&mut input.slug, self.slug.as_ref());
        put(&mut input.description, self.description.as_ref());
        put(&mut input.kind, self.kind.as_ref());
        put(&mut input.category_id, self.category_id.as_ref());
        put(&mut input.price_minor, self.price_minor.as_ref());
        put(&mut input.tax_rate_bp, self.tax_rate_bp.as_ref());
        put(&mut input.active, self.active.as_ref());
        put(&mut input.available_from, self.available_from.as_ref());
        put(&mut input.available_until, self.available_until.as_ref());
        put(&mut input.min_per_order, self.min_per_order.as_ref());
        put(&mut input.max_per_order, self.max_per_order.as_ref());
        put(&mut input.limit_per_user, self.limit_per_user.as_ref());
        put(&mut input.require_voucher, self.require_voucher.as_ref());
        put(
            &mut input.hide_without_voucher,
            self.hide_without_voucher.as_ref(),
        );
        put(&mut input.require_approval, self.require_approval.as_ref());
        put(&mut input.personalized, self.personalized.as_ref());
        put(
            &mut input.checkin_attention,
            self.checkin_attention.as_ref(),
        );
        put(&mut input.position, self.position.as_ref());
    }
}

/// Changes a product (team permission `ChangeItems` on its event). Carts and
/// orders keep the price they were made with.
///
/// # Errors
/// As [`catalog::create_product`]; a product that does not exist is refused
/// like an event the caller may not change (`NOT_FOUND` for staff).
pub async fn update_product(
    db: &DatabaseConnection,
    principal: &Principal,
    now: DateTime<Utc>,
    product_id: i32,
    patch: ProductPatch,
) -> Result<product::Model, AppError> {
    let mut change = begin(db, principal, now).await?;
    let row = product::Entity::find_by_id(product_id)
        .one(change.txn())
        .await?;
    let (event, row) = change
        .check_found(
            principal,
            TeamPermission::ChangeItems,
            row,
            |p| p.event_id,
            "product",
        )
        .await?;
    let mut input = ProductInput::from(&row);
    patch.apply(&mut input);
    let name = catalog::check_product(change.txn(), event.id, &input).await?;
    let slug = catalog::product_slug(&input)?;
    let mut active: product::ActiveModel = row.into();
    active.name = Set(name);
    active.slug = Set(slug);
    active.description = Set(input.description);
    active.kind = Set(input.kind);
    active.admission = Set(input.kind == ProductKind::Admission);
    active.category_id = Set(input.category_id);
    active.price_minor = Set(input.price_minor);
    active.tax_rate_bp = Set(input.tax_rate_bp);
    active.active = Set(input.active);
    active.available_from = Set(input.available_from);
    active.available_until = Set(input.available_until);
    active.min_per_order = Set(input.min_per_order);
    active.max_per_order = Set(input.max_per_order);
    active.limit_per_user = Set(input.limit_per_user);
    active.require_voucher = Set(input.require_voucher);
    active.hide_without_voucher = Set(input.hide_without_voucher);
    active.require_approval = Set(input.require_approval);
    active.personalized = Set(input.personalized);
    active.checkin_attention = Set(input.checkin_attention);
    active.position = Set(input.position);
    active.updated_at = Set(now);
    let row = active
        .update(change.txn())
        .await
        .map_err(catalog::slug_taken)?;
    change
        .commit(Change::on_event(
            &event,
            "voltgate.product.changed",
            "product",
            row.id,
            json!(patch),
        ))
        .await?;
    Ok(row)
}

/// Whether rows of `query` exist.
async fn any<E: EntityTrait>(
    db: &impl ConnectionTrait,
    query: sea_orm::Select<E>,
) -> Result<bool, AppError>
where
    E::Model: Sync,
{
    Ok(query.count(db).await? > 0)
}

/// Deletes a product with its variations, unless it was ordered, a cart holds
/// it or a voucher names it (`IN_USE`; pretix: deactivate it instead).
///
/// # Errors
/// `IN_USE`; as [`update_product`].
pub async fn delete_product(
    db: &DatabaseConnection,
    principal: &Principal,
    now: DateTime<Utc>,
    product_id: i32,
) -> Result<(), AppError> {
    let mut change = begin(db, principal, now).await?;
    let row = find_locked(change.txn(), product::Entity::find_by_id(product_id)).await?;
    let (event, row) = change
        .check_found(
            principal,
            TeamPermission::ChangeItems,
            row,
            |p| p.event_id,
            "product",
        )
        .await?;
    let txn = change.txn();
    if any(
        txn,
        order_position::Entity::find().filter(order_position::Column::ProductId.eq(row.id)),
    )
    .await?
    {
        return Err(in_use(
            "this product has been ordered: deactivate it instead",
        ));
    }
    if any(
        txn,
        cart_position::Entity::find().filter(cart_position::Column::ProductId.eq(row.id)),
    )
    .await?
    {
        return Err(in_use("carts hold this product"));
    }
    let variations: Vec<i32> = catalog::variations_of(txn, row.id)
        .await?
        .into_iter()
        .map(|v| v.id)
        .collect();
    let named = any(
        txn,
        voucher_product::Entity::find().filter(voucher_product::Column::ProductId.eq(row.id)),
    )
    .await?
        || any(
            txn,
            voucher::Entity::find().filter(voucher::Column::VariationId.is_in(variations)),
        )
        .await?;
    if named {
        return Err(in_use("vouchers apply to this product"));
    }
    // The foreign keys cascade too; deleting here does not depend on them.
    quota_variation::Entity::delete_many()
        .filter(quota_variation::Column::ProductId.eq(row.id))
        .exec(txn)
        .await?;
    quota_product::Entity::delete_many()
        .filter(quota_product::Column::ProductId.eq(row.id))
        .exec(txn)
        .await?;
    product_variation::Entity::delete_many()
        .filter(product_variation::Column::ProductId.eq(row.id))
        .exec(txn)
        .await?;
    product::Entity::delete_by_id(row.id).exec(txn).await?;
    change
        .commit(Change::on_event(
            &event,
            "voltgate.product.deleted",
            "product",
            row.id,
            json!({ "name": row.name }),
        ))
        .await?;
    Ok(())
}

/// What changes in a variation.
#[derive(Debug, Clone, Default, Serialize)]
pub struct VariationPatch {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub value: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub active: Option<bool>,
    /// `Some(None)`: the product's price again.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub price_minor: Option<Option<i64>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub position: Option<i32>,
}

/// Opens a change of a variation: the variation and its product.
async fn variation_for_change(
    db: &DatabaseConnection,
    principal: &Principal,
    now: DateTime<Utc>,
    variation_id: i32,
    lock: bool,
) -> Result<
    (
        Audited,
        crate::entities::event::Model,
        product_variation::Model,
    ),
    AppError,
> {
    let mut change = begin(db, principal, now).await?;
    let query = product_variation::Entity::find_by_id(variation_id);
    let row = if lock {
        find_locked(change.txn(), query).await?
    } else {
        query.one(change.txn()).await?
    };
    let product = match &row {
        Some(v) => {
            product::Entity::find_by_id(v.product_id)
                .one(change.txn())
                .await?
        }
        None => None,
    };
    let event = change
        .check_event(
            principal,
            TeamPermission::ChangeItems,
            product.as_ref().map_or(0, |p| p.event_id),
        )
        .await?;
    let row = row.ok_or(AppError::not_found("variation"))?;
    Ok((change, event, row))
}

/// Changes a variation (team permission `ChangeItems` on its product's event).
///
/// # Errors
/// As [`catalog::create_variation`].
pub async fn update_variation(
    db: &DatabaseConnection,
    principal: &Principal,
    now: DateTime<Utc>,
    variation_id: i32,
    patch: VariationPatch,
) -> Result<product_variation::Model, AppError> {
    let (change, event, row) =
        variation_for_change(db, principal, now, variation_id, false).await?;
    let mut input = VariationInput::from(&row);
    put(&mut input.value, patch.value.as_ref());
    put(&mut input.description, patch.description.as_ref());
    put(&mut input.active, patch.active.as_ref());
    put(&mut input.price_minor, patch.price_minor.as_ref());
    put(&mut input.position, patch.position.as_ref());
    let value = check_variation(&input)?;
    let mut active: product_variation::ActiveModel = row.into();
    active.value = Set(value);
    active.description = Set(input.description);
    active.active = Set(input.active);
    active.price_minor = Set(input.price_minor);
    active.position = Set(input.position);
    let row = active.update(change.txn()).await?;
    change
        .commit(Change::on_event(
            &event,
            "voltgate.product.variation.changed",
            "product",
            row.product_id,
            json!({ "variation": row.id, "changes": patch }),
        ))
        .await?;
    Ok(row)
}

/// Deletes a variation, unless it was ordered, a cart holds it, a voucher
/// names it or a quota names it alone of its product (`IN_USE`); quotas that
/// name it among others stop naming it.
///
/// # Errors
/// `IN_USE`; as [`update_variation`].
pub async fn delete_variation(
    db: &DatabaseConnection,
    principal: &Principal,
    now: DateTime<Utc>,
    variation_id: i32,
) -> Result<(), AppError> {
    let (change, event, row) = variation_for_change(db, principal, now, variation_id, true).await?;
    let txn = change.txn();
    if any(
        txn,
        order_position::Entity::find().filter(order_position::Column::VariationId.eq(row.id)),
    )
    .await?
    {
        return Err(in_use(
            "this variation has been ordered: deactivate it instead",
        ));
    }
    if any(
        txn,
        cart_position::Entity::find().filter(cart_position::Column::VariationId.eq(row.id)),
    )
    .await?
    {
        return Err(in_use("carts hold this variation"));
    }
    if any(
        txn,
        voucher::Entity::find().filter(voucher::Column::VariationId.eq(row.id)),
    )
    .await?
    {
        return Err(in_use("vouchers apply to this variation"));
    }
    // A quota naming only this variation of the product would count all of
    // them once it is gone: change that quota first.
    let mut named_per_quota: std::collections::HashMap<i32, usize> =
        std::collections::HashMap::new();
    let naming = quota_variation::Entity::find()
        .filter(quota_variation::Column::VariationId.eq(row.id))
        .all(txn)
        .await?;
    for link in quota_variation::Entity::find()
        .filter(quota_variation::Column::QuotaId.is_in(naming.iter().map(|l| l.quota_id)))
        .filter(quota_variation::Column::ProductId.eq(row.product_id))
        .all(txn)
        .await?
    {
        *named_per_quota.entry(link.quota_id).or_default() += 1;
    }
    if named_per_quota.values().any(|n| *n == 1) {
        return Err(in_use(
            "a quota counts this variation alone: change the quota first",
        ));
    }
    quota_variation::Entity::delete_many()
        .filter(quota_variation::Column::VariationId.eq(row.id))
        .exec(txn)
        .await?;
    product_variation::Entity::delete_by_id(row.id)
        .exec(txn)
        .await?;
    change
        .commit(Change::on_event(
            &event,
            "voltgate.product.variation.deleted",
            "product",
            row.product_id,
            json!({ "variation": row.id, "value": row.value }),
        ))
        .await?;
    Ok(())
}

/// What changes in a quota: `size: Some(None)` makes it unlimited,
/// `sub_event_id: Some(None)` takes it off its date, `product_ids` replaces
/// its products, `variation_ids` the variations it names (without it, those
/// of products it still counts stay named).
#[derive(Debug, Clone, Default, Serialize)]
pub struct QuotaPatch {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub size: Option<Option<i32>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub sub_event_id: Option<Option<i32>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub product_ids: Option<Vec<i32>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub variation_ids: Option<Vec<i32>>,
}

/// Changes a quota (team permission `ChangeItems` on its event). The size may
/// shrink below what is taken (pretix allows it): nothing more is sold until
/// units come back, and its state says what takes it. Carts and orders keep
/// the units they hold of it, whatever its products become.
///
/// The new size is written by one `UPDATE` of the quota's row, so it is
/// ordered with the buyers' conditional `UPDATE`s on that row: each hold
/// compares against the size it finds under the lock. The quota is returned
/// as read after the change, in its transaction.
///
/// # Errors
/// As [`catalog::create_quota`].
pub async fn update_quota(
    db: &DatabaseConnection,
    principal: &Principal,
    now: DateTime<Utc>,
    quota_id: i32,
    patch: QuotaPatch,
) -> Result<quota::Model, AppError> {
    let mut change = begin(db, principal, now).await?;
    let row = quota::Entity::find_by_id(quota_id)
        .one(change.txn())
        .await?;
    let (event, row) = change
        .check_found(
            principal,
            TeamPermission::ChangeItems,
            row,
            |q| q.event_id,
            "quota",
        )
        .await?;
    let txn = change.txn();
    let current_products: Vec<i32> = quota_product::Entity::find()
        .filter(quota_product::Column::QuotaId.eq(row.id))
        .all(txn)
        .await?
        .into_iter()
        .map(|l| l.product_id)
        .collect();
    let current_variations = quota_variation::Entity::find()
        .filter(quota_variation::Column::QuotaId.eq(row.id))
        .all(txn)
        .await?;
    let mut input = QuotaInput {
        name: row.name.clone(),
        size: row.size,
        sub_event_id: row.sub_event_id,
        product_ids: current_products,
        variation_ids: Vec::new(),
    };
    put(&mut input.name, patch.name.as_ref());
    put(&mut input.size, patch.size.as_ref());
    put(&mut input.sub_event_id, patch.sub_event_id.as_ref());
    put(&mut input.product_ids, patch.product_ids.as_ref());
    // A product taken off the quota takes its named variations with it.
    input.variation_ids = match &patch.variation_ids {
        Some(ids) => ids.clone(),
        None => current_variations
            .iter()
            .filter(|l| input.product_ids.contains(&l.product_id))
            .map(|l| l.variation_id)
            .collect(),
    };
    let checked = catalog::check_quota(txn, event.id, &input).await?;
    // Only these columns: the counters are the buyers', never written back
    // from what was read.
    quota::Entity::update_many()
        .col_expr(
            quota::Column::Name,
            sea_orm::sea_query::Expr::value(checked.name),
        )
        .col_expr(
            quota::Column::Size,
            sea_orm::sea_query::Expr::value(input.size),
        )
        .col_expr(
            quota::Column::SubEventId,
            sea_orm::sea_query::Expr::value(input.sub_event_id),
        )
        .filter(quota::Column::Id.eq(row.id))
        .exec(txn)
        .await?;
    if patch.product_ids.is_some() {
        quota_product::Entity::delete_many()
            .filter(quota_product::Column::QuotaId.eq(row.id))
            .exec(txn)
            .await?;
        catalog::link_products(txn, row.id, &checked.product_ids, now).await?;
    }
    let mut named: Vec<(i32, i32)> = current_variations
        .iter()
        .map(|l| (l.variation_id, l.product_id))
        .collect();
    named.sort_unstable();
    if named != checked.variations {
        quota_variation::Entity::delete_many()
            .filter(quota_variation::Column::QuotaId.eq(row.id))
            .exec(txn)
            .await?;
        catalog::link_variations(txn, row.id, &checked.variations, now).await?;
    }
    let row = quota::Entity::find_by_id(row.id)
        .one(txn)
        .await?
        .ok_or(AppError::not_found("quota"))?;
    change
        .commit(Change::on_event(
            &event,
            "voltgate.quota.changed",
            "quota",
            row.id,
            json!({
                "changes": patch, "paid": row.paid, "pending": row.pending, "in_carts": row.in_carts,
                "variations": checked.variations.iter().map(|(v, _)| v).collect::<Vec<_>>(),
            }),
        ))
        .await?;
    Ok(row)
}

/// Deletes a quota, unless carts hold units of it or a voucher names it
/// (`IN_USE`). Orders it counted stand (pretix allows it); their products
/// are then sold only through their other quotas.
///
/// # Errors
/// `IN_USE`; as [`update_quota`].
pub async fn delete_quota(
    db: &DatabaseConnection,
    principal: &Principal,
    now: DateTime<Utc>,
    quota_id: i32,
) -> Result<quota::Model, AppError> {
    let mut change = begin(db, principal, now).await?;
    let row = find_locked(change.txn(), quota::Entity::find_by_id(quota_id)).await?;
    let (event, row) = change
        .check_found(
            principal,
            TeamPermission::ChangeItems,
            row,
            |q| q.event_id,
            "quota",
        )
        .await?;
    let txn = change.txn();
    if any(
        txn,
        voucher::Entity::find().filter(voucher::Column::QuotaId.eq(row.id)),
    )
    .await?
    {
        return Err(in_use("vouchers apply to this quota"));
    }
    quota_product::Entity::delete_many()
        .filter(quota_product::Column::QuotaId.eq(row.id))
        .exec(txn)
        .await?;
    quota_variation::Entity::delete_many()
        .filter(quota_variation::Column::QuotaId.eq(row.id))
        .exec(txn)
        .await?;
    // The row decides: a hold that committed meanwhile shows in `in_carts`.
    let deleted = quota::Entity::delete_many()
        .filter(quota::Column::Id.eq(row.id))
        .filter(quota::Column::InCarts.eq(0))
        .exec(txn)
        .await?;
    if deleted.rows_affected != 1 {
        return Err(in_use("carts hold units of this quota"));
    }
    change
        .commit(Change::on_event(
            &event,
            "voltgate.quota.deleted",
            "quota",
            row.id,
            json!({ "name": row.name, "size": row.size, "paid": row.paid, "pending": row.pending }),
        ))
        .await?;
    Ok(row)
}
