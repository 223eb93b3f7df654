//! Add-on rules (pretix `ItemAddOn`; django-program's `AddOn` with its
//! `requires_ticket_types`): an add-on is a product like any other, of an
//! add-on category; a rule on a base product lets each of its positions carry
//! between `min_count` and `max_count` add-ons from one such category.
//!
//! Rules change with the team permission `ChangeItems`, in the audit log. A
//! cart position is added as an add-on to another position of the same cart
//! only when the parent's product has a rule for the add-on's category, and
//! products of an add-on category are sold only that way. Checkout checks
//! every parent against its rules, all positions at once; each add-on
//! product at most once per parent (pretix's `multi_allowed` is not in the
//! documented model). Orders are canceled whole, so a parent is never
//! canceled without its add-ons.

use std::collections::{HashMap, HashSet};

use chrono::{DateTime, Utc};
use sea_orm::sea_query::{CaseStatement, Expr};
use sea_orm::{
    ActiveModelTrait, ColumnTrait, ConnectionTrait, DatabaseConnection, DbErr, EntityTrait,
    QueryFilter, QueryOrder, Set, SqlErr,
};
use serde_json::json;

use super::audit::{Audited, Change};
use crate::auth::{Principal, TeamPermission};
use crate::entities::{
    cart_position, event, order_position, product, product_addon_rule as rule, product_category,
};
use crate::error::AppError;

/// The most add-ons one rule allows per position.
pub const MAX_COUNT: i32 = 100;

fn check_counts(min: i32, max: i32) -> Result<(), AppError> {
    if min < 0 {
        return Err(AppError::bad_input("minCount", "not negative"));
    }
    if !(1..=MAX_COUNT).contains(&max) {
        return Err(AppError::bad_input("maxCount", "between 1 and 100"));
    }
    if min > max {
        return Err(AppError::bad_input("minCount", "more than maxCount"));
    }
    Ok(())
}

fn rule_taken(err: DbErr) -> AppError {
    match err.sql_err() {
        Some(SqlErr::UniqueConstraintViolation(_)) => {
            AppError::Conflict("the product has a rule for this add-on category already".to_owned())
        }
        _ => AppError::from(err),
    }
}

/// Adds an add-on rule to a product (team permission `ChangeItems`): its
/// positions may carry `min_count` to `max_count` add-ons from an add-on
/// category of the same event.
///
/// # Errors
/// `BAD_USER_INPUT` on bad counts or a category that is not an add-on
/// category of the event; `CONFLICT` when the product has a rule for that
/// category; as [`super::access::on_event`] (an unknown product is refused
/// like one the caller may not change).
pub async fn create_rule(
    db: &DatabaseConnection,
    principal: &Principal,
    now: DateTime<Utc>,
    product_id: i32,
    category_id: i32,
    (min_count, max_count): (i32, i32),
    position: i32,
) -> Result<rule::Model, AppError> {
    if matches!(principal, Principal::Anonymous) {
        return Err(AppError::Unauthenticated);
    }
    let mut change = Audited::begin(db, None, now).await?;
    let base = product::Entity::find_by_id(product_id)
        .one(change.txn())
        .await?;
    let event = change
        .check_event(
            principal,
            TeamPermission::ChangeItems,
            base.as_ref().map_or(0, |p| p.event_id),
        )
        .await?;
    let base = base.ok_or(AppError::not_found("product"))?;
    check_counts(min_count, max_count)?;
    product_category::Entity::find_by_id(category_id)
        .one(change.txn())
        .await?
        .filter(|c| c.event_id == event.id && c.is_addon)
        .ok_or_else(|| {
            AppError::bad_input("addonCategoryId", "no such add-on category in this event")
        })?;
    let row = rule::ActiveModel {
        base_product_id: Set(base.id),
        addon_category_id: Set(category_id),
        min_count: Set(min_count),
        max_count: Set(max_count),
        position: Set(position),
        created_at: Set(now),
        ..Default::default()
    }
    .insert(change.txn())
    .await
    .map_err(rule_taken)?;
    change
        .commit(Change::on_event(
            &event,
            "voltgate.product.addon_rule.added",
            "product",
            base.id,
            json!({ "rule": row.id, "category": category_id, "min_count": min_count, "max_count": max_count }),
        ))
        .await?;
    Ok(row)
}

/// Opens a change of rule `rule_id`: one that does not exist is refused like
/// one the caller may not change.
async fn rule_for_change(
    db: &DatabaseConnection,
    principal: &Principal,
    now: DateTime<Utc>,
    rule_id: i32,
) -> Result<(Audited, rule::Model, event::Model), AppError> {
    if matches!(principal, Principal::Anonymous) {
        return Err(AppError::Unauthenticated);
    }
    let mut change = Audited::begin(db, None, now).await?;
    let row = rule::Entity::find_by_id(rule_id).one(change.txn()).await?;
    let base = match &row {
        Some(r) => {
            product::Entity::find_by_id(r.base_product_id)
                .one(change.txn())
                .await?
        }
        None => None,
    };
    let event = change
        .check_event(
            principal,
            TeamPermission::ChangeItems,
            base.as_ref().map_or(0, |p| p.event_id),
        )
        .await?;
    let row = row.ok_or(AppError::not_found("add-on rule"))?;
    Ok((change, row, event))
}

/// Changes a rule's counts or position (team permission `ChangeItems`);
/// what is not given is kept. Carts already filled are checked against the
/// new counts at checkout.
///
/// # Errors
/// As [`create_rule`]; `NOT_FOUND` for staff on an unknown rule.
pub async fn update_rule(
    db: &DatabaseConnection,
    principal: &Principal,
    now: DateTime<Utc>,
    rule_id: i32,
    min_count: Option<i32>,
    max_count: Option<i32>,
    position: Option<i32>,
) -> Result<rule::Model, AppError> {
    let (change, current, event) = rule_for_change(db, principal, now, rule_id).await?;
    check_counts(
        min_count.unwrap_or(current.min_count),
        max_count.unwrap_or(current.max_count),
    )?;
    let mut row: rule::ActiveModel = current.into();
    if let Some(min) = min_count {
        row.min_count = Set(min);
    }
    if let Some(max) = max_count {
        row.max_count = Set(max);
    }
    if let Some(position) = position {
        row.position = Set(position);
    }
    let row = row.update(change.txn()).await?;
    change
        .commit(Change::on_event(
            &event,
            "voltgate.product.addon_rule.changed",
            "product",
            row.base_product_id,
            json!({ "rule": row.id, "min_count": min_count, "max_count": max_count, "position": position }),
        ))
        .await?;
    Ok(row)
}

/// Deletes a rule (team permission `ChangeItems`).
///
/// # Errors
/// As [`update_rule`].
pub async fn delete_rule(
    db: &DatabaseConnection,
    principal: &Principal,
    now: DateTime<Utc>,
    rule_id: i32,
) -> Result<(), AppError> {
    let (change, row, event) = rule_for_change(db, principal, now, rule_id).await?;
    rule::Entity::delete_by_id(row.id)
        .exec(change.txn())
        .await?;
    change
        .commit(Change::on_event(
            &event,
            "voltgate.product.addon_rule.deleted",
            "product",
            row.base_product_id,
            json!({ "rule": row.id, "category": row.addon_category_id }),
        ))
        .await?;
    Ok(())
}

/// The rules of the given base products, by position, in one query.
///
/// # Errors
/// On database errors.
pub async fn rules_of(
    db: &impl ConnectionTrait,
    product_ids: impl IntoIterator<Item = i32>,
) -> Result<Vec<rule::Model>, AppError> {
    Ok(rule::Entity::find()
        .filter(rule::Column::BaseProductId.is_in(product_ids))
        .order_by_asc(rule::Column::Position)
        .order_by_asc(rule::Column::Id)
        .all(db)
        .await?)
}

/// Whether the product's category is an add-on category (its products are
/// sold only as add-ons).
async fn addon_only(db: &impl ConnectionTrait, product: &product::Model) -> Result<bool, AppError> {
    let Some(category_id) = product.category_id else {
        return Ok(false);
    };
    Ok(product_category::Entity::find_by_id(category_id)
        .one(db)
        .await?
        .is_some_and(|c| c.is_addon))
}

/// Decides the parent of positions of `product` about to be added at `now`
/// to a cart whose positions are `cart`: `addon_to` must be a held position
/// of that cart that is not an add-on itself, for the same date, whose
/// product has a rule for the add-on's category with room left; a product of
/// an add-on category needs a parent. The counts are a courtesy: checkout
/// checks them again.
///
/// # Errors
/// `BAD_USER_INPUT` on `addonTo` (or `quantity`, `subEventId`) otherwise.
pub async fn parent_for(
    db: &impl ConnectionTrait,
    now: DateTime<Utc>,
    product: &product::Model,
    sub_event_id: Option<i32>,
    quantity: i32,
    addon_to: Option<i32>,
    cart: &[cart_position::Model],
) -> Result<Option<i32>, AppError> {
    let Some(parent_id) = addon_to else {
        if addon_only(db, product).await? {
            return Err(AppError::bad_input(
                "addonTo",
                "this product is sold only as an add-on to another position",
            ));
        }
        return Ok(None);
    };
    let parent = cart
        .iter()
        .find(|p| p.id == parent_id)
        .ok_or_else(|| AppError::bad_input("addonTo", "no such position in this cart"))?;
    if parent.expires <= now {
        return Err(AppError::bad_input(
            "addonTo",
            "that position's hold has expired",
        ));
    }
    if parent.addon_to.is_some() {
        return Err(AppError::bad_input(
            "addonTo",
            "an add-on cannot carry add-ons",
        ));
    }
    if parent.sub_event_id != sub_event_id {
        return Err(AppError::bad_input(
            "subEventId",
            "an add-on is for its parent's date",
        ));
    }
    let rule = match product.category_id {
        Some(category) => {
            rule::Entity::find()
                .filter(rule::Column::BaseProductId.eq(parent.product_id))
                .filter(rule::Column::AddonCategoryId.eq(category))
                .one(db)
                .await?
        }
        None => None,
    }
    .ok_or_else(|| {
        AppError::bad_input(
            "addonTo",
            "that position's product takes no add-ons of this product's category",
        )
    })?;
    let siblings: Vec<&cart_position::Model> = cart
        .iter()
        .filter(|p| p.addon_to == Some(parent.id))
        .collect();
    if quantity > 1 || siblings.iter().any(|p| p.product_id == product.id) {
        return Err(AppError::bad_input(
            "addonTo",
            "an add-on product is added once per position",
        ));
    }
    let sibling_products: HashSet<i32> = siblings.iter().map(|p| p.product_id).collect();
    let in_category = if sibling_products.is_empty() {
        0
    } else {
        product::Entity::find()
            .filter(product::Column::Id.is_in(sibling_products))
            .filter(product::Column::CategoryId.eq(rule.addon_category_id))
            .all(db)
            .await?
            .into_iter()
            .map(|p| siblings.iter().filter(|s| s.product_id == p.id).count())
            .sum::<usize>()
    };
    if i64::try_from(in_category).unwrap_or(i64::MAX) + i64::from(quantity)
        > i64::from(rule.max_count)
    {
        return Err(AppError::bad_input(
            "quantity",
            format!(
                "at most {} add-ons of this category per position",
                rule.max_count
            ),
        ));
    }
    Ok(Some(parent.id))
}

/// When the hold of an add-on to `addon_to` ends: never after its parent's,
/// so a parent is never released while its add-ons stay in the cart.
pub fn hold_until(
    expires: DateTime<Utc>,
    addon_to: Option<i32>,
    cart: &[cart_position::Model],
) -> DateTime<Utc> {
    cart.iter()
        .find(|p| Some(p.id) == addon_to)
        .map_or(expires, |parent| expires.min(parent.expires))
}

/// The add-on rules and categories of a batch's products, read once for all
/// its checkouts (two queries, whatever the batch's size).
#[derive(Debug, Default)]
pub struct CartRules {
    rules: Vec<rule::Model>,
    categories: HashMap<i32, product_category::Model>,
}

impl CartRules {
    /// # Errors
    /// On database errors.
    pub async fn read(
        db: &impl ConnectionTrait,
        products: &HashMap<i32, product::Model>,
    ) -> Result<Self, AppError> {
        let rules = rules_of(db, products.keys().copied()).await?;
        let category_ids: HashSet<i32> = products
            .values()
            .filter_map(|p| p.category_id)
            .chain(rules.iter().map(|r| r.addon_category_id))
            .collect();
        if category_ids.is_empty() {
            return Ok(Self {
                rules,
                categories: HashMap::new(),
            });
        }
        let categories = product_category::Entity::find()
            .filter(product_category::Column::Id.is_in(category_ids))
            .all(db)
            .await?
            .into_iter()
            .map(|c| (c.id, c))
            .collect();
        Ok(Self { rules, categories })
    }

    /// Checks a cart's add-ons before checkout: every add-on's parent is in
    /// the cart and its product has a rule for the add-on's category; a
    /// product of an add-on category has a parent; each add-on product is
    /// once per parent; each parent carries between the minimum and the
    /// maximum of each of its product's rules.
    ///
    /// # Errors
    /// `BAD_USER_INPUT` on `cartId`, saying which product and rule.
    pub fn check_cart(
        &self,
        cart: &[cart_position::Model],
        products: &HashMap<i32, product::Model>,
    ) -> Result<(), AppError> {
        check_cart(&self.rules, &self.categories, cart, products)
    }
}

fn check_cart(
    rules: &[rule::Model],
    categories: &HashMap<i32, product_category::Model>,
    cart: &[cart_position::Model],
    products: &HashMap<i32, product::Model>,
) -> Result<(), AppError> {
    if rules.is_empty() && products.values().all(|p| p.category_id.is_none()) {
        return Ok(());
    }
    let name = |product_id: i32| {
        products
            .get(&product_id)
            .map_or_else(|| "a product".to_owned(), |p| p.name.clone())
    };
    let category_of = |product_id: i32| products.get(&product_id).and_then(|p| p.category_id);
    let refuse = |message: String| Err(AppError::bad_input("cartId", message));
    let by_id: HashMap<i32, &cart_position::Model> = cart.iter().map(|p| (p.id, p)).collect();
    let mut children: HashMap<i32, Vec<&cart_position::Model>> = HashMap::new();
    for position in cart {
        match position.addon_to {
            Some(parent_id) => {
                let Some(parent) = by_id.get(&parent_id) else {
                    return refuse(format!(
                        "{} is an add-on without its ticket; add the ticket again",
                        name(position.product_id)
                    ));
                };
                let allowed = rules.iter().any(|r| {
                    r.base_product_id == parent.product_id
                        && Some(r.addon_category_id) == category_of(position.product_id)
                });
                if !allowed {
                    return refuse(format!(
                        "{} takes no add-on {}",
                        name(parent.product_id),
                        name(position.product_id)
                    ));
                }
                children.entry(parent_id).or_default().push(position);
            }
            None => {
                let addon_only = category_of(position.product_id)
                    .and_then(|c| categories.get(&c))
                    .is_some_and(|c| c.is_addon);
                if addon_only {
                    return refuse(format!(
                        "{} is an add-on without its ticket",
                        name(position.product_id)
                    ));
                }
            }
        }
    }
    for parent in cart.iter().filter(|p| p.addon_to.is_none()) {
        let mine = children.get(&parent.id).map_or(&[][..], Vec::as_slice);
        let mut distinct = HashSet::new();
        if let Some(twice) = mine.iter().find(|c| !distinct.insert(c.product_id)) {
            return refuse(format!(
                "{} is added twice to one {}",
                name(twice.product_id),
                name(parent.product_id)
            ));
        }
        for rule in rules
            .iter()
            .filter(|r| r.base_product_id == parent.product_id)
        {
            let count = mine
                .iter()
                .filter(|c| category_of(c.product_id) == Some(rule.addon_category_id))
                .count();
            let count = i32::try_from(count).unwrap_or(i32::MAX);
            if count < rule.min_count || count > rule.max_count {
                let category = categories
                    .get(&rule.addon_category_id)
                    .map_or("an add-on category", |c| c.name.as_str());
                return refuse(format!(
                    "each {} takes {} to {} add-ons from {category} ({count} chosen)",
                    name(parent.product_id),
                    rule.min_count,
                    rule.max_count
                ));
            }
        }
    }
    Ok(())
}

/// Links the add-on positions of a new order to their parents, which come in
/// the cart's order (`positions[i]` was `cart[i]`), by one `UPDATE`.
///
/// # Errors
/// On database errors.
pub async fn link_order_positions(
    db: &impl ConnectionTrait,
    cart: &[cart_position::Model],
    positions: &[order_position::Model],
) -> Result<(), AppError> {
    let placed: HashMap<i32, i32> = cart
        .iter()
        .zip(positions)
        .map(|(item, position)| (item.id, position.id))
        .collect();
    let links: Vec<(i32, i32)> = cart
        .iter()
        .zip(positions)
        .filter_map(|(item, position)| {
            item.addon_to
                .and_then(|parent| placed.get(&parent))
                .map(|parent| (position.id, *parent))
        })
        .collect();
    if links.is_empty() {
        return Ok(());
    }
    let mut case = CaseStatement::new();
    for (child, parent) in &links {
        case = case.case(order_position::Column::Id.eq(*child), Expr::value(*parent));
    }
    order_position::Entity::update_many()
        .col_expr(order_position::Column::AddonTo, case.into())
        .filter(order_position::Column::Id.is_in(links.iter().map(|(child, _)| *child)))
        .exec(db)
        .await?;
    Ok(())
}
