//! Vouchers: created by teams with `ChangeVouchers` (one or many at once),
//! applied to cart positions by their code, redeemed at checkout.
//!
//! A voucher's usages are counted by one conditional `UPDATE vouchers SET
//! redeemed = redeemed + n WHERE id = ? AND redeemed + n <= max_usages` in the
//! checkout's transaction: the database decides under the row's lock, so
//! concurrent checkouts on any replica never redeem it more often than
//! allowed. Adding to a cart checks the usages left only as a courtesy; the
//! checkout decides. Prices are computed here, on the server, never taken from
//! the client.
//!
//! A voucher that blocks quota (pretix's `block_quota`) keeps a unit of each
//! quota it applies to for every unused usage (`blocked`, counted in the
//! quotas' `blocked`), so nobody else can buy them: its creation takes them by
//! the conditional `UPDATE` of [`quotas::block`] (all vouchers of a bulk
//! creation or none); adding it to a cart moves units from the block to the
//! cart ([`take_blocked`]) instead of taking new ones; an expired cart gives
//! them back to the block ([`return_blocked`]); checkout moves them on like
//! any cart's. Once its validity ends, the expiry job releases what it still
//! keeps ([`release_ended_blocks`]).

use std::collections::BTreeMap;

use chrono::{DateTime, Utc};
use sea_orm::sea_query::Expr;
use sea_orm::{
    ActiveModelTrait, ColumnTrait, ConnectionTrait, DatabaseConnection, DbErr, EntityTrait,
    PaginatorTrait, QueryFilter, QuerySelect, Set, SqlErr,
};
use serde::Serialize;
use serde_json::json;

use super::audit::{Audited, Change};
use super::catalog;
use super::quotas::{self, Counter, Units};
use crate::auth::tokens::random_token;
use crate::auth::{Principal, TeamPermission};
use crate::db::page_by_id;
use crate::entities::cart_position::{self, format_quota_ids, quota_ids};
use crate::entities::voucher::{self, PriceMode};
use crate::entities::{event, product, product_variation, quota, sub_event, voucher_product};
use crate::error::{AppError, Reason};
use crate::pagination::{Page, PageRequest};

/// The most vouchers one bulk creation makes.
pub const MAX_BULK: usize = 1000;

/// What a voucher applies to: all of these that are given must match.
#[derive(Debug, Clone, Default)]
pub struct Applies {
    /// Any of these products (any product of the event when empty).
    pub product_ids: Vec<i32>,
    /// Only this variation of one of them.
    pub variation_id: Option<i32>,
    /// Only what this quota counts (its products, and of those the
    /// variations it names).
    pub quota_id: Option<i32>,
    /// Only this date of a series.
    pub sub_event_id: Option<i32>,
}

/// What vouchers are created with.
#[derive(Debug, Clone)]
pub struct VoucherInput {
    pub max_usages: i32,
    pub min_usages: i32,
    pub valid_from: Option<DateTime<Utc>>,
    pub valid_until: Option<DateTime<Utc>>,
    pub active: bool,
    pub price_mode: PriceMode,
    pub value_minor: Option<i64>,
    pub percent_bp: Option<i32>,
    pub applies: Applies,
    /// Unlocks products hidden without a voucher.
    pub show_hidden_items: bool,
    pub block_quota: bool,
    pub allow_ignore_quota: bool,
    pub tag: Option<String>,
    pub comment: String,
}

/// The price of a position of `base_minor` bought with a voucher: set, a fixed
/// amount or a percentage off (rounded half up to the minor unit), or free;
/// never below zero.
pub fn price_with(voucher: &voucher::Model, base_minor: i64) -> i64 {
    let value = voucher.value_minor.unwrap_or(0);
    let price = match voucher.price_mode {
        PriceMode::None => base_minor,
        PriceMode::Set => value,
        PriceMode::Subtract => base_minor.saturating_sub(value),
        PriceMode::Percent => {
            let off = i128::from(base_minor) * i128::from(voucher.percent_bp.unwrap_or(0));
            let off = (off * 2 + 10_000) / 20_000;
            base_minor.saturating_sub(i64::try_from(off).unwrap_or(i64::MAX))
        }
        PriceMode::Complimentary => 0,
    };
    price.max(0)
}

/// A voucher code: 1 to 100 letters, digits, dashes and underscores (stored
/// in capitals, so codes are read back without regard to case).
///
/// # Errors
/// `BAD_USER_INPUT` on `field` otherwise.
pub fn parse_code(field: &'static str, code: &str) -> Result<String, AppError> {
    let code = code.trim();
    let ok = (1..=100).contains(&code.len())
        && code
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_');
    if ok {
        Ok(code.to_ascii_uppercase())
    } else {
        Err(AppError::bad_input(
            field,
            "1 to 100 letters, digits, dashes and underscores",
        ))
    }
}

fn check_input(input: &VoucherInput) -> Result<(), AppError> {
    if input.block_quota && input.allow_ignore_quota {
        return Err(AppError::bad_input(
            "blockQuota",
            "a voucher that ignores quotas has nothing to block",
        ));
    }
    if input.max_usages < 1 {
        return Err(AppError::bad_input("maxUsages", "at least 1"));
    }
    if !(1..=input.max_usages).contains(&input.min_usages) {
        return Err(AppError::bad_input(
            "minUsages",
            "between 1 and the maximum usages",
        ));
    }
    if let (Some(from), Some(until)) = (input.valid_from, input.valid_until)
        && until <= from
    {
        return Err(AppError::bad_input("validUntil", "ends before it starts"));
    }
    let needs_value = matches!(input.price_mode, PriceMode::Set | PriceMode::Subtract);
    if needs_value != input.value_minor.is_some() {
        return Err(AppError::bad_input(
            "value",
            "a value goes with the price modes SET and SUBTRACT, and only with them",
        ));
    }
    let is_percent = input.price_mode == PriceMode::Percent;
    match input.percent_bp {
        Some(bp) if is_percent && (0..=10_000).contains(&bp) => {}
        None if !is_percent => {}
        _ => {
            return Err(AppError::bad_input(
                "percent",
                "a percentage from 0 to 100 goes with the price mode PERCENT, and only with it",
            ));
        }
    }
    if input.tag.as_ref().is_some_and(|t| t.chars().count() > 255) {
        return Err(AppError::bad_input("tag", "at most 255 characters"));
    }
    if input.comment.chars().count() > 10_000 {
        return Err(AppError::bad_input("comment", "at most 10,000 characters"));
    }
    Ok(())
}

fn code_taken(err: DbErr) -> AppError {
    match err.sql_err() {
        Some(SqlErr::UniqueConstraintViolation(_)) => {
            AppError::refused(Reason::CodeTaken, "this voucher code is used already")
        }
        _ => AppError::from(err),
    }
}

/// A random code of 16 capitals and digits.
fn random_code() -> Result<String, AppError> {
    Ok(random_token()?
        .bytes()
        .filter(u8::is_ascii_alphanumeric)
        .map(|b| char::from(b.to_ascii_uppercase()))
        .take(16)
        .collect())
}

/// Checks that what the voucher applies to belongs to the event; returns the
/// product ids, each once.
async fn check_applies(
    db: &impl ConnectionTrait,
    event_id: i32,
    applies: &Applies,
) -> Result<Vec<i32>, AppError> {
    let mut ids = applies.product_ids.clone();
    ids.sort_unstable();
    ids.dedup();
    let found = product::Entity::find()
        .filter(product::Column::Id.is_in(ids.clone()))
        .filter(product::Column::EventId.eq(event_id))
        .count(db)
        .await?;
    if usize::try_from(found).ok() != Some(ids.len()) {
        return Err(AppError::bad_input(
            "productIds",
            "every product must belong to the event",
        ));
    }
    if let Some(variation_id) = applies.variation_id {
        let found = product_variation::Entity::find_by_id(variation_id)
            .one(db)
            .await?;
        if found.is_none_or(|v| !ids.contains(&v.product_id)) {
            return Err(AppError::bad_input(
                "variationId",
                "a variation of one of the voucher's products",
            ));
        }
    }
    if let Some(quota_id) = applies.quota_id {
        let found = quota::Entity::find_by_id(quota_id).one(db).await?;
        if found.is_none_or(|q| q.event_id != event_id) {
            return Err(AppError::bad_input(
                "quotaId",
                "no such quota in this event",
            ));
        }
    }
    if let Some(date) = applies.sub_event_id {
        let found = sub_event::Entity::find_by_id(date).one(db).await?;
        if found.is_none_or(|d| d.event_id != event_id) {
            return Err(AppError::bad_input(
                "subEventId",
                "no such date of this event",
            ));
        }
    }
    Ok(ids)
}

/// The quotas a voucher that blocks quota keeps units of: its quota, or the
/// quotas counting its one product (on its date, for a series). pretix's
/// rule: a product with variations needs the variation chosen.
async fn quotas_to_block(
    db: &impl ConnectionTrait,
    event: &event::Model,
    applies: &Applies,
    product_ids: &[i32],
) -> Result<Vec<i32>, AppError> {
    if let Some(quota_id) = applies.quota_id {
        return Ok(vec![quota_id]);
    }
    let [product_id] = product_ids else {
        return Err(AppError::bad_input(
            "blockQuota",
            "choose one product or a quota for a voucher that blocks quota",
        ));
    };
    if applies.variation_id.is_none()
        && product_variation::Entity::find()
            .filter(product_variation::Column::ProductId.eq(*product_id))
            .filter(product_variation::Column::Active.eq(true))
            .count(db)
            .await?
            > 0
    {
        return Err(AppError::bad_input(
            "variationId",
            "choose a variation for a voucher that blocks quota",
        ));
    }
    if event.has_subevents && applies.sub_event_id.is_none() {
        return Err(AppError::bad_input(
            "subEventId",
            "choose a date for a voucher that blocks quota",
        ));
    }
    let linked = catalog::quotas_of_products(db, &[*product_id], false)
        .await?
        .remove(product_id)
        .unwrap_or_default();
    if applies.variation_id.is_none() && linked.names_variations(applies.sub_event_id) {
        return Err(AppError::bad_input(
            "variationId",
            "choose a variation for a voucher that blocks quota",
        ));
    }
    let ids: Vec<i32> = linked
        .counting(applies.variation_id, applies.sub_event_id)
        .into_iter()
        .map(|q| q.id)
        .collect();
    if ids.is_empty() {
        return Err(AppError::bad_input(
            "blockQuota",
            "the product is in no quota to block",
        ));
    }
    Ok(ids)
}

/// Whether `voucher` applies to a position of `product_id`, `variation_id`
/// and `sub_event_id`.
async fn applies_to(
    db: &impl ConnectionTrait,
    voucher: &voucher::Model,
    product_id: i32,
    variation_id: Option<i32>,
    sub_event_id: Option<i32>,
) -> Result<bool, AppError> {
    if voucher
        .variation_id
        .is_some_and(|v| Some(v) != variation_id)
        || voucher
            .sub_event_id
            .is_some_and(|d| Some(d) != sub_event_id)
    {
        return Ok(false);
    }
    if let Some(quota_id) = voucher.quota_id {
        let linked = catalog::quotas_of_products(db, &[product_id], false)
            .await?
            .remove(&product_id)
            .unwrap_or_default();
        let counted = linked
            .0
            .iter()
            .any(|(q, named)| q.id == quota_id && catalog::counts(named, variation_id));
        if !counted {
            return Ok(false);
        }
    }
    let products: Vec<i32> = voucher_product::Entity::find()
        .filter(voucher_product::Column::VoucherId.eq(voucher.id))
        .all(db)
        .await?
        .into_iter()
        .map(|link| link.product_id)
        .collect();
    Ok(products.is_empty() || products.contains(&product_id))
}

/// Creates vouchers of `event_id` (team permission `ChangeVouchers`): one per
/// code in `codes`, or `count` with random codes; all or none.
///
/// # Errors
/// `BAD_USER_INPUT` on a bad member, code or count, a product or variation of
/// another event, or a code given twice; `CODE_TAKEN`; as
/// [`super::access::on_event`].
pub async fn create(
    db: &DatabaseConnection,
    principal: &Principal,
    now: DateTime<Utc>,
    event_id: i32,
    input: VoucherInput,
    codes: Vec<String>,
    count: Option<usize>,
) -> Result<Vec<voucher::Model>, AppError> {
    let (change, event) =
        Audited::on_event(db, principal, now, TeamPermission::ChangeVouchers, event_id).await?;
    check_input(&input)?;
    let codes = match (codes.is_empty(), count) {
        (false, None) => codes
            .iter()
            .map(|c| parse_code("codes", c))
            .collect::<Result<Vec<_>, _>>()?,
        (true, Some(n)) => (0..n).map(|_| random_code()).collect::<Result<_, _>>()?,
        _ => return Err(AppError::bad_input("codes", "give codes or a count")),
    };
    if !(1..=MAX_BULK).contains(&codes.len()) {
        return Err(AppError::bad_input(
            "codes",
            format!("from 1 to {MAX_BULK} vouchers at once"),
        ));
    }
    let mut unique = codes.clone();
    unique.sort_unstable();
    unique.dedup();
    if unique.len() != codes.len() {
        return Err(AppError::bad_input("codes", "a code is given twice"));
    }
    let txn = change.txn();
    let product_ids = check_applies(txn, event.id, &input.applies).await?;
    // A voucher whose validity ended already keeps nothing.
    let blocks = input.block_quota && input.valid_until.is_none_or(|until| now < until);
    let blocked_quotas = if blocks {
        quotas_to_block(txn, &event, &input.applies, &product_ids).await?
    } else {
        Vec::new()
    };
    if blocks {
        let per_quota =
            i64::from(input.max_usages) * i64::try_from(codes.len()).unwrap_or(i64::MAX);
        let per_quota = i32::try_from(per_quota)
            .map_err(|_| AppError::bad_input("maxUsages", "too many usages to block"))?;
        let units: Units = blocked_quotas.iter().map(|id| (*id, per_quota)).collect();
        quotas::block(txn, &units).await?;
    }
    let mut created = Vec::with_capacity(codes.len());
    for code in codes {
        let row = voucher::ActiveModel {
            event_id: Set(event.id),
            code: Set(code),
            max_usages: Set(input.max_usages),
            min_usages: Set(input.min_usages),
            redeemed: Set(0),
            valid_from: Set(input.valid_from),
            valid_until: Set(input.valid_until),
            price_mode: Set(input.price_mode),
            value_minor: Set(input.value_minor),
            percent_bp: Set(input.percent_bp),
            variation_id: Set(input.applies.variation_id),
            quota_id: Set(input.applies.quota_id),
            sub_event_id: Set(input.applies.sub_event_id),
            active: Set(input.active),
            show_hidden_items: Set(input.show_hidden_items),
            block_quota: Set(input.block_quota),
            blocked: Set(if blocks { input.max_usages } else { 0 }),
            blocked_quota_ids: Set(format_quota_ids(&blocked_quotas)),
            allow_ignore_quota: Set(input.allow_ignore_quota),
            tag: Set(input.tag.clone()),
            comment: Set(input.comment.clone()),
            created_at: Set(now),
            updated_at: Set(Some(now)),
            ..Default::default()
        }
        .insert(txn)
        .await
        .map_err(code_taken)?;
        for product_id in &product_ids {
            voucher_product::ActiveModel {
                voucher_id: Set(row.id),
                product_id: Set(*product_id),
                added_at: Set(now),
            }
            .insert(txn)
            .await?;
        }
        created.push(row);
    }
    let ids: Vec<i32> = created.iter().map(|v| v.id).collect();
    change
        .commit(Change::on_event(
            &event,
            "voltgate.voucher.added",
            "voucher",
            ids[0],
            json!({
                "vouchers": ids, "max_usages": input.max_usages,
                "price_mode": input.price_mode, "tag": input.tag,
                "blocked_quotas": blocked_quotas,
            }),
        ))
        .await?;
    Ok(created)
}

impl VoucherInput {
    /// The voucher as it is (with its products), for a change to start from.
    fn of(row: &voucher::Model, product_ids: Vec<i32>) -> Self {
        Self {
            max_usages: row.max_usages,
            min_usages: row.min_usages,
            valid_from: row.valid_from,
            valid_until: row.valid_until,
            active: row.active,
            price_mode: row.price_mode,
            value_minor: row.value_minor,
            percent_bp: row.percent_bp,
            applies: Applies {
                product_ids,
                variation_id: row.variation_id,
                quota_id: row.quota_id,
                sub_event_id: row.sub_event_id,
            },
            show_hidden_items: row.show_hidden_items,
            block_quota: row.block_quota,
            allow_ignore_quota: row.allow_ignore_quota,
            tag: row.tag.clone(),
            comment: row.comment.clone(),
        }
    }
}

/// What changes in a voucher: `None` keeps a member, `Some(None)` clears an
/// optional one, `product_ids` replaces its products.
#[derive(Debug, Clone, Default, Serialize)]
pub struct VoucherPatch {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub code: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub max_usages: Option<i32>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub min_usages: Option<i32>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub valid_from: Option<Option<DateTime<Utc>>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub valid_until: Option<Option<DateTime<Utc>>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub active: Option<bool>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub price_mode: Option<PriceMode>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub value_minor: Option<Option<i64>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub percent_bp: Option<Option<i32>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub product_ids: Option<Vec<i32>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub variation_id: Option<Option<i32>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub quota_id: Option<Option<i32>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub sub_event_id: Option<Option<i32>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub show_hidden_items: Option<bool>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub block_quota: Option<bool>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub allow_ignore_quota: Option<bool>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub tag: Option<Option<String>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub comment: Option<String>,
}

/// Sets `target` to the patch's value when one is given.
fn put<T: Clone>(target: &mut T, value: Option<&T>) {
    if let Some(value) = value {
        target.clone_from(value);
    }
}

impl VoucherPatch {
    fn apply(&self, input: &mut VoucherInput) {
        put(&mut input.max_usages, self.max_usages.as_ref());
        put(&mut input.min_usages, self.min_usages.as_ref());
        put(&mut input.valid_from, self.valid_from.as_ref());
        put(&mut input.valid_until, self.valid_until.as_ref());
        put(&mut input.active, self.active.as_ref());
        put(&mut input.price_mode, self.price_mode.as_ref());
        put(&mut input.value_minor, self.value_minor.as_ref());
        put(&mut input.percent_bp, self.percent_bp.as_ref());
        put(&mut input.applies.product_ids, self.product_ids.as_ref());
        put(&mut input.applies.variation_id, self.variation_id.as_ref());
        put(&mut input.applies.quota_id, self.quota_id.as_ref());
        put(&mut input.applies.sub_event_id, self.sub_event_id.as_ref());
        put(
            &mut input.show_hidden_items,
            self.show_hidden_items.as_ref(),
        );
        put(&mut input.block_quota, self.block_quota.as_ref());
        put(
            &mut input.allow_ignore_quota,
            self.allow_ignore_quota.as_ref(),
        );
        put(&mut input.tag, self.tag.as_ref());
        put(&mut input.comment, self.comment.as_ref());
    }
}

/// Opens a change of a voucher (team permission `ChangeVouchers` on its
/// event), its row locked so that checkouts redeeming it wait for the change
/// and then count against what it stored.
async fn voucher_for_change(
    db: &DatabaseConnection,
    principal: &Principal,
    now: DateTime<Utc>,
    voucher_id: i32,
) -> Result<(Audited, crate::entities::event::Model, voucher::Model), AppError> {
    if matches!(principal, Principal::Anonymous) {
        return Err(AppError::Unauthenticated);
    }
    let mut change = Audited::begin(db, None, now).await?;
    let row = crate::db::find_locked(change.txn(), voucher::Entity::find_by_id(voucher_id)).await?;
    let event = change
        .check_event(
            principal,
            TeamPermission::ChangeVouchers,
            row.as_ref().map_or(0, |v| v.event_id),
        )
        .await?;
    let row = row.ok_or(AppError::not_found("voucher"))?;
    Ok((change, event, row))
}

/// Changes a voucher (team permission `ChangeVouchers`). Its maximum usages
/// may not go below what was redeemed; positions already in carts or orders
/// keep the price they got.
///
/// # Errors
/// As [`create`]; `BAD_USER_INPUT` on `maxUsages` below the redeemed usages; a
/// voucher that does not exist is refused like an event the caller may not
/// change (`NOT_FOUND` for staff).
pub async fn update(
    db: &DatabaseConnection,
    principal: &Principal,
    now: DateTime<Utc>,
    voucher_id: i32,
    patch: VoucherPatch,
) -> Result<voucher::Model, AppError> {
    let (change, event, row) = voucher_for_change(db, principal, now, voucher_id).await?;
    let txn = change.txn();
    let current: Vec<i32> = voucher_product::Entity::find()
        .filter(voucher_product::Column::VoucherId.eq(row.id))
        .all(txn)
        .await?
        .into_iter()
        .map(|l| l.product_id)
        .collect();
    let mut input = VoucherInput::of(&row, current);
    patch.apply(&mut input);
    check_input(&input)?;
    if input.max_usages < row.redeemed {
        return Err(AppError::bad_input(
            "maxUsages",
            format!("it has been redeemed {} times already", row.redeemed),
        ));
    }
    let code = patch
        .code
        .as_deref()
        .map(|c| parse_code("code", c))
        .transpose()?;
    let product_ids = check_applies(txn, event.id, &input.applies).await?;
    // What a blocking voucher keeps was taken for its usages and products
    // when it was made: those stay as they are (delete it and create another).
    if input.block_quota != row.block_quota {
        return Err(AppError::bad_input(
            "blockQuota",
            "set when the voucher is created",
        ));
    }
    if row.block_quota
        && (input.max_usages != row.max_usages
            || input.applies.variation_id != row.variation_id
            || input.applies.quota_id != row.quota_id
            || input.applies.sub_event_id != row.sub_event_id
            || patch.product_ids.is_some())
    {
        return Err(AppError::refused(
            Reason::InUse,
            "this voucher keeps quota for its usages and products: delete it and create another",
        ));
    }
    let mut active: voucher::ActiveModel = row.into();
    if let Some(code) = code {
        active.code = Set(code);
    }
    active.max_usages = Set(input.max_usages);
    active.min_usages = Set(input.min_usages);
    active.valid_from = Set(input.valid_from);
    active.valid_until = Set(input.valid_until);
    active.active = Set(input.active);
    active.price_mode = Set(input.price_mode);
    active.value_minor = Set(input.value_minor);
    active.percent_bp = Set(input.percent_bp);
    active.variation_id = Set(input.applies.variation_id);
    active.quota_id = Set(input.applies.quota_id);
    active.sub_event_id = Set(input.applies.sub_event_id);
    active.show_hidden_items = Set(input.show_hidden_items);
    active.block_quota = Set(input.block_quota);
    active.allow_ignore_quota = Set(input.allow_ignore_quota);
    active.tag = Set(input.tag);
    active.comment = Set(input.comment);
    active.updated_at = Set(Some(now));
    let row = active.update(txn).await.map_err(code_taken)?;
    if patch.product_ids.is_some() {
        voucher_product::Entity::delete_many()
            .filter(voucher_product::Column::VoucherId.eq(row.id))
            .exec(txn)
            .await?;
        for product_id in &product_ids {
            voucher_product::ActiveModel {
                voucher_id: Set(row.id),
                product_id: Set(*product_id),
                added_at: Set(now),
            }
            .insert(txn)
            .await?;
        }
    }
    change
        .commit(Change::on_event(
            &event,
            "voltgate.voucher.changed",
            "voucher",
            row.id,
            json!(patch),
        ))
        .await?;
    Ok(row)
}

/// Deletes a voucher that was never redeemed and that no cart or order uses
/// (`IN_USE` otherwise; pretix: deactivate it instead).
///
/// # Errors
/// `IN_USE`; as [`update`].
pub async fn delete(
    db: &DatabaseConnection,
    principal: &Principal,
    now: DateTime<Utc>,
    voucher_id: i32,
) -> Result<voucher::Model, AppError> {
    let (change, event, row) = voucher_for_change(db, principal, now, voucher_id).await?;
    let txn = change.txn();
    let ordered = crate::entities::order_position::Entity::find()
        .filter(crate::entities::order_position::Column::VoucherId.eq(row.id))
        .count(txn)
        .await?;
    if row.redeemed > 0 || ordered > 0 {
        return Err(AppError::refused(
            Reason::InUse,
            "this voucher has been redeemed: deactivate it instead",
        ));
    }
    let held = crate::entities::cart_position::Entity::find()
        .filter(crate::entities::cart_position::Column::VoucherId.eq(row.id))
        .count(txn)
        .await?;
    if held > 0 {
        return Err(AppError::refused(
            Reason::InUse,
            "carts hold positions bought with this voucher",
        ));
    }
    // What it still keeps goes back to its quotas.
    if row.block_quota && row.blocked > 0 {
        let units: Units = quota_ids(&row.blocked_quota_ids)
            .into_iter()
            .map(|id| (id, row.blocked))
            .collect();
        quotas::release(txn, &units, Counter::Blocked).await?;
    }
    voucher_product::Entity::delete_many()
        .filter(voucher_product::Column::VoucherId.eq(row.id))
        .exec(txn)
        .await?;
    voucher::Entity::delete_by_id(row.id).exec(txn).await?;
    change
        .commit(Change::on_event(
            &event,
            "voltgate.voucher.deleted",
            "voucher",
            row.id,
            json!({ "code": row.code }),
        ))
        .await?;
    Ok(row)
}

/// The ids of the blocking vouchers of `event_id` that `codes` name: a hold
/// with one updates the voucher's row ([`take_blocked`]), so a batch locks
/// them with its checkouts' vouchers, before any quota, in the one order
/// every transaction takes these rows.
///
/// # Errors
/// On database errors.
pub async fn blocking_ids<'a>(
    db: &impl ConnectionTrait,
    event_id: i32,
    codes: impl IntoIterator<Item = &'a str>,
) -> Result<Vec<i32>, AppError> {
    let codes: Vec<String> = codes
        .into_iter()
        .filter_map(|code| parse_code("voucherCode", code).ok())
        .collect();
    if codes.is_empty() {
        return Ok(Vec::new());
    }
    Ok(voucher::Entity::find()
        .select_only()
        .column(voucher::Column::Id)
        .filter(voucher::Column::EventId.eq(event_id))
        .filter(voucher::Column::Code.is_in(codes))
        .filter(voucher::Column::BlockQuota.eq(true))
        .into_tuple()
        .all(db)
        .await?)
}

/// The voucher of `event_id` with `code`, valid at `now`, applying to the
/// product (variation, date) asked for, with a usage left.
///
/// # Errors
/// `BAD_USER_INPUT` on `voucherCode` for an unknown code or one that does not
/// apply; `EXPIRED` outside its window; `ALREADY_REDEEMED` when every usage is
/// redeemed.
pub async fn usable(
    db: &impl ConnectionTrait,
    event_id: i32,
    code: &str,
    now: DateTime<Utc>,
    product_id: i32,
    variation_id: Option<i32>,
    sub_event_id: Option<i32>,
) -> Result<voucher::Model, AppError> {
    let code = parse_code("voucherCode", code)?;
    let voucher = voucher::Entity::find()
        .filter(voucher::Column::EventId.eq(event_id))
        .filter(voucher::Column::Code.eq(code))
        .one(db)
        .await?
        .ok_or_else(|| AppError::bad_input("voucherCode", "no such voucher"))?;
    if !voucher.valid_at(now) {
        return Err(AppError::refused(
            Reason::Expired,
            "this voucher is not valid now",
        ));
    }
    if !applies_to(db, &voucher, product_id, variation_id, sub_event_id).await? {
        return Err(AppError::bad_input(
            "voucherCode",
            "this voucher is not valid for this product",
        ));
    }
    if voucher.redeemed >= voucher.max_usages {
        return Err(AppError::refused(
            Reason::AlreadyRedeemed,
            "this voucher has been used up",
        ));
    }
    Ok(voucher)
}

/// Whether `n` more usages of `voucher` may be redeemed in one order at
/// `now`, when `before` are redeemed already (read under the voucher row's
/// lock, with what earlier checkouts of the batch redeemed). A voucher whose
/// minimum usages are not yet redeemed needs that many positions in one
/// order.
///
/// # Errors
/// `ALREADY_REDEEMED` without enough usages left; `EXPIRED` outside its
/// window; `BAD_USER_INPUT` on `cartId` below its minimum usages.
pub fn check_redemption(
    voucher: &voucher::Model,
    before: i32,
    n: i32,
    now: DateTime<Utc>,
) -> Result<(), AppError> {
    if !voucher.valid_at(now) {
        return Err(AppError::refused(
            Reason::Expired,
            "a voucher in the cart is not valid any more",
        ));
    }
    if i64::from(before) + i64::from(n) > i64::from(voucher.max_usages) {
        return Err(AppError::refused(
            Reason::AlreadyRedeemed,
            "a voucher in the cart has been used up",
        ));
    }
    let still_needed = voucher.min_usages - before;
    if n < still_needed {
        return Err(AppError::bad_input(
            "cartId",
            format!(
                "voucher {} must be used for at least {still_needed} positions in one order",
                voucher.code
            ),
        ));
    }
    Ok(())
}

/// Adds the usages checkouts redeemed, per voucher id, once each was
/// checked by [`check_redemption`] under the voucher rows' locks.
///
/// # Errors
/// On database errors.
pub async fn redeem_counted(
    db: &impl ConnectionTrait,
    redeemed: &BTreeMap<i32, i32>,
) -> Result<(), AppError> {
    for (&voucher_id, &n) in redeemed {
        voucher::Entity::update_many()
            .col_expr(
                voucher::Column::Redeemed,
                Expr::cust(format!("redeemed + {n}")),
            )
            .filter(voucher::Column::Id.eq(voucher_id))
            .exec(db)
            .await?;
    }
    Ok(())
}

/// Moves `n` units of the quotas among `quota_ids` that `voucher` blocks from
/// its block to a cart, and returns those quotas (the caller holds new units
/// of the others only). One conditional `UPDATE` of the voucher's `blocked`
/// decides, so its units go to at most as many cart positions as it keeps.
///
/// # Errors
/// `ALREADY_REDEEMED` when other carts hold what it keeps; on database errors.
pub async fn take_blocked(
    db: &impl ConnectionTrait,
    voucher: &voucher::Model,
    quota_ids_of_position: &[i32],
    n: i32,
) -> Result<Vec<i32>, AppError> {
    let from_block: Vec<i32> = quota_ids(&voucher.blocked_quota_ids)
        .into_iter()
        .filter(|id| quota_ids_of_position.contains(id))
        .collect();
    if !voucher.block_quota || from_block.is_empty() {
        return Ok(Vec::new());
    }
    let taken = voucher::Entity::update_many()
        .col_expr(
            voucher::Column::Blocked,
            Expr::cust(format!("blocked - {n}")),
        )
        .filter(voucher::Column::Id.eq(voucher.id))
        .filter(Expr::cust(format!("blocked >= {n}")))
        .exec(db)
        .await?;
    if taken.rows_affected != 1 {
        return Err(AppError::refused(
            Reason::AlreadyRedeemed,
            "this voucher's usages are held in other carts",
        ));
    }
    let units: Units = from_block.iter().map(|id| (*id, n)).collect();
    quotas::shift(db, &units, Counter::Blocked, Counter::InCarts).await?;
    Ok(from_block)
}

/// Gives the units expired cart positions took from their vouchers' blocks
/// back to those blocks, while the voucher is still valid, and returns the
/// units moved back (the caller releases the rest of the positions' units).
///
/// # Errors
/// On database errors.
pub async fn return_blocked(
    db: &impl ConnectionTrait,
    positions: &[&cart_position::Model],
    now: DateTime<Utc>,
) -> Result<Units, AppError> {
    let mut per_voucher: std::collections::BTreeMap<i32, (i32, Units)> =
        std::collections::BTreeMap::new();
    for position in positions {
        let Some(voucher_id) = position.voucher_id else {
            continue;
        };
        let ids = quota_ids(&position.blocked_quota_ids);
        if ids.is_empty() {
            continue;
        }
        let (n, units) = per_voucher.entry(voucher_id).or_default();
        *n += 1;
        for id in ids {
            *units.entry(id).or_default() += 1;
        }
    }
    let mut returned = Units::new();
    // In id order, like checkouts, so they never deadlock with each other.
    for (voucher_id, (n, units)) in per_voucher {
        let back = voucher::Entity::update_many()
            .col_expr(
                voucher::Column::Blocked,
                Expr::cust(format!("blocked + {n}")),
            )
            .filter(voucher::Column::Id.eq(voucher_id))
            .filter(voucher::Column::BlockQuota.eq(true))
            .filter(
                sea_orm::Condition::any()
                    .add(voucher::Column::ValidUntil.is_null())
                    .add(voucher::Column::ValidUntil.gt(now)),
            )
            .exec(db)
            .await?;
        if back.rows_affected == 1 {
            quotas::shift(db, &units, Counter::InCarts, Counter::Blocked).await?;
            for (id, k) in units {
                *returned.entry(id).or_default() += k;
            }
        }
    }
    Ok(returned)
}

/// How many vouchers one run releases per transaction.
pub const RELEASE_BATCH: u64 = 200;

/// Releases what vouchers whose validity ended still keep. Each is emptied by
/// a conditional `UPDATE` on the amount read (a cart returning units at the
/// same time makes it miss; the next run releases the new amount), and its
/// units leave the quotas in the same transaction. Returns the events whose
/// quotas got units back.
///
/// # Errors
/// On database errors.
pub async fn release_ended_blocks(
    db: &DatabaseConnection,
    now: DateTime<Utc>,
) -> Result<std::collections::BTreeSet<i32>, AppError> {
    use sea_orm::{QueryOrder as _, TransactionTrait as _};
    let mut events = std::collections::BTreeSet::new();
    let mut after = 0;
    loop {
        let txn = db.begin().await?;
        let batch = crate::jobs::claim_batch(
            &txn,
            voucher::Entity::find()
                .filter(voucher::Column::Id.gt(after))
                .filter(voucher::Column::Blocked.gt(0))
                .filter(voucher::Column::ValidUntil.lte(now))
                .order_by_asc(voucher::Column::Id),
            RELEASE_BATCH,
        )
        .await?;
        let Some(last) = batch.last() else {
            return Ok(events);
        };
        after = last.id;
        for voucher in &batch {
            let emptied = voucher::Entity::update_many()
                .col_expr(voucher::Column::Blocked, Expr::value(0))
                .filter(voucher::Column::Id.eq(voucher.id))
                .filter(voucher::Column::Blocked.eq(voucher.blocked))
                .exec(&txn)
                .await?;
            if emptied.rows_affected == 1 {
                let units: Units = quota_ids(&voucher.blocked_quota_ids)
                    .into_iter()
                    .map(|id| (id, voucher.blocked))
                    .collect();
                quotas::release(&txn, &units, Counter::Blocked).await?;
                events.insert(voucher.event_id);
            }
        }
        txn.commit().await?;
        if (batch.len() as u64) < RELEASE_BATCH {
            return Ok(events);
        }
    }
}

/// The vouchers of an event, by id (team permission `ViewVouchers`).
///
/// # Errors
/// As [`super::access::on_event`].
pub async fn of_event(
    db: &impl ConnectionTrait,
    principal: &Principal,
    event_id: i32,
    tag: Option<&str>,
    page: PageRequest,
) -> Result<Page<voucher::Model>, AppError> {
    super::access::on_event(db, principal, TeamPermission::ViewVouchers, event_id).await?;
    let mut query = voucher::Entity::find().filter(voucher::Column::EventId.eq(event_id));
    if let Some(tag) = tag {
        query = query.filter(voucher::Column::Tag.eq(tag));
    }
    page_by_id(db, query, voucher::Column::Id, page).await
}

#[cfg(test)]
mod tests {
    use super::*;

    fn voucher(mode: PriceMode, value: Option<i64>, percent: Option<i32>) -> voucher::Model {
        voucher::Model {
            id: 1,
            event_id: 1,
            code: "X".into(),
            max_usages: 1,
            min_usages: 1,
            redeemed: 0,
            valid_from: None,
            valid_until: None,
            price_mode: mode,
            value_minor: value,
            percent_bp: percent,
            variation_id: None,
            quota_id: None,
            sub_event_id: None,
            active: true,
            show_hidden_items: false,
            block_quota: false,
            blocked: 0,
            blocked_quota_ids: String::new(),
            allow_ignore_quota: false,
            tag: None,
            comment: String::new(),
            created_at: Utc::now(),
            updated_at: None,
        }
    }

    #[test]
    fn voucher_prices_are_exact_and_never_negative() {
        assert_eq!(
            price_with(&voucher(PriceMode::None, None, None), 4000),
            4000
        );
        assert_eq!(
            price_with(&voucher(PriceMode::Set, Some(1250), None), 4000),
            1250
        );
        assert_eq!(
            price_with(&voucher(PriceMode::Subtract, Some(500), None), 4000),
            3500
        );
        assert_eq!(
            price_with(&voucher(PriceMode::Subtract, Some(5000), None), 4000),
            0
        );
        // 12.5 % of 9.99 is 1.24875 → 1.25 off.
        assert_eq!(
            price_with(&voucher(PriceMode::Percent, None, Some(1250)), 999),
            874
        );
        assert_eq!(
            price_with(&voucher(PriceMode::Percent, None, Some(10_000)), 999),
            0
        );
        assert_eq!(
            price_with(&voucher(PriceMode::Complimentary, None, None), 999),
            0
        );
    }

    #[test]
    fn codes_are_read_without_regard_to_case() {
        assert_eq!(
            parse_code("code", " early-Bird_1 ").ok().as_deref(),
            Some("EARLY-BIRD_1")
        );
        for bad in ["", "a b", "ü", &"x".repeat(101)] {
            assert!(parse_code("code", bad).is_err(), "{bad:?}");
        }
    }
}
