//! Carts: positions that hold a unit of each quota counting them (their
//! product's quotas, by the variation rule of `catalog::counts`) until
//! they expire (the event's `cart_hold_minutes`). Adding to a cart takes the
//! units in the transaction that inserts the positions, so a position exists
//! exactly when its units are held. Holds run in batches ([`hold_all`], in
//! the event's lane: `ticketing::rush`): the batch locks the quotas' rows,
//! decides each hold in order against what is left, and writes them all at
//! once.
//!
//! A cart position leaves by one conditional `DELETE` (checkout: only while it
//! has not expired; expiry: only once it has). Only the transaction whose
//! `DELETE` removed the row moves its units on, so checkout and the expiry job
//! never both act on one position, on any replica. Adding to a cart extends
//! the holds of its running positions, and the expiry job takes every
//! expired position of a cart at once, so a checkout finds a cart whole or
//! empty, never a part of it.

use std::collections::{BTreeSet, HashMap};

use chrono::{DateTime, SubsecRound, TimeDelta, Utc};
use sea_orm::sea_query::Expr;
use sea_orm::{
    ColumnTrait, ConnectionTrait, DatabaseTransaction, EntityTrait, QueryFilter, QueryOrder,
    QuerySelect, Set, TransactionTrait,
};

use super::quotas::{self, Counter, Units};
use super::{catalog, dates, vouchers};
use crate::auth::Principal;
use crate::auth::tokens::random_token;
use crate::entities::cart_position::format_quota_ids;
use crate::entities::{
    cart_position, event, product, product_variation, quota, quota_product, sub_event,
};
use crate::error::{AppError, Reason};

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
    /// A position of the same cart the new positions are add-ons to.
    pub addon_to: Option<i32>,
}

/// The most positions one call adds.
pub const MAX_QUANTITY: i32 = 100;

/// The most positions one cart holds unless configured
/// (`VOLTGATE_CART_MAX_POSITIONS`): a cart is checked out, priced and
/// ticketed as one, so its size bounds that work.
pub const DEFAULT_CART_MAX_POSITIONS: usize = 100;

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

/// A hold: what one buyer adds to which cart, checked by [`Hold::new`]
/// before it joins its event's lane.
#[derive(Debug, Clone)]
pub struct Hold {
    pub cart_id: String,
    pub user_id: Option<i32>,
    pub input: CartAdd,
    /// The most positions the cart may hold after this one.
    pub max_positions: usize,
}

impl Hold {
    /// A hold into a cart that may hold `max_positions` positions at most.
    ///
    /// # Errors
    /// `BAD_USER_INPUT` on a bad quantity or cart id.
    pub fn new(
        principal: &Principal,
        input: CartAdd,
        max_positions: usize,
    ) -> Result<Self, AppError> {
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
        Ok(Self {
            cart_id,
            user_id,
            input,
            max_positions,
        })
    }
}

/// A cart after a hold: its id and every position it holds.
pub type Held = (String, Vec<cart_position::Model>);

/// Adds `quantity` of a product to a cart, holding its quotas; anyone may buy.
///
/// # Errors
/// As [`hold_all`], for the one hold.
pub async fn add(
    db: &impl TransactionTrait<Transaction = DatabaseTransaction>,
    principal: &Principal,
    now: DateTime<Utc>,
    input: CartAdd,
) -> Result<Held, AppError> {
    let hold = Hold::new(principal, input, DEFAULT_CART_MAX_POSITIONS)?;
    let txn = db.begin().await?;
    let held = hold_all(&txn, now, vec![hold]).await?.pop();
    let held = held.ok_or_else(|| AppError::internal(anyhow::anyhow!("no answer")))??;
    txn.commit().await?;
    Ok(held)
}

/// What a batch of holds reads before it decides: everything its holds name,
/// and the quotas they count against, locked (in id order) until the commit.
struct HoldReads {
    products: HashMap<i32, product::Model>,
    events: HashMap<i32, event::Model>,
    variations: HashMap<i32, product_variation::Model>,
    dates: HashMap<i32, sub_event::Model>,
    carts: HashMap<String, Vec<cart_position::Model>>,
    /// The quotas linked to each product, with the variations they name.
    links: HashMap<i32, catalog::ProductQuotas>,
    quotas: HashMap<i32, quota::Model>,
}

impl HoldReads {
    async fn of(txn: &impl ConnectionTrait, holds: &[Hold]) -> Result<Self, AppError> {
        let products: HashMap<i32, product::Model> = product::Entity::find()
            .filter(product::Column::Id.is_in(holds.iter().map(|h| h.input.product_id)))
            .all(txn)
            .await?
            .into_iter()
            .map(|p| (p.id, p))
            .collect();
        let events = event::Entity::find()
            .filter(event::Column::Id.is_in(products.values().map(|p| p.event_id)))
            .all(txn)
            .await?
            .into_iter()
            .map(|e| (e.id, e))
            .collect();
        let variations = product_variation::Entity::find()
            .filter(
                product_variation::Column::Id
                    .is_in(holds.iter().filter_map(|h| h.input.variation_id)),
            )
            .all(txn)
            .await?
            .into_iter()
            .map(|v| (v.id, v))
            .collect();
        let dates = sub_event::Entity::find()
            .filter(sub_event::Column::Id.is_in(holds.iter().filter_map(|h| h.input.sub_event_id)))
            .all(txn)
            .await?
            .into_iter()
            .map(|d| (d.id, d))
            .collect();
        let carts = of_carts(txn, holds.iter().map(|h| h.cart_id.clone()), false).await?;
        // Locked in id order (PostgreSQL; SQLite has one writer): what is
        // left is decided here, for the whole batch, under the rows' locks.
        let product_ids: Vec<i32> = products.keys().copied().collect();
        let links = catalog::quotas_of_products(txn, &product_ids, true).await?;
        let quotas = links
            .values()
            .flat_map(|linked| linked.0.iter().map(|(q, _)| (q.id, q.clone())))
            .collect();
        Ok(Self {
            products,
            events,
            variations,
            dates,
            carts,
            links,
            quotas,
        })
    }

    /// The quotas counting a position of a product's variation (for one
    /// date of a series, its quotas), in id order; `None` when the product's
    /// quotas name variations and none was chosen.
    fn quotas_for(
        &self,
        product_id: i32,
        variation_id: Option<i32>,
        sub_event_id: Option<i32>,
    ) -> Option<Vec<i32>> {
        let linked = self.links.get(&product_id);
        if variation_id.is_none() && linked.is_some_and(|l| l.names_variations(sub_event_id)) {
            return None;
        }
        Some(linked.map_or_else(Vec::new, |l| {
            l.counting(variation_id, sub_event_id)
                .into_iter()
                .map(|q| q.id)
                .collect()
        }))
    }
}

/// What the holds decided so far in a batch have taken.
#[derive(Default)]
struct HoldTally {
    /// Units taken per quota by this batch.
    units: Units,
    /// What this batch added to each cart so far.
    added: HashMap<String, Vec<Added>>,
    /// The rows to insert, in the holds' order.
    rows: Vec<cart_position::ActiveModel>,
}

/// A position a batch adds, as the next holds of its cart count it.
#[derive(Debug, Clone, Copy)]
struct Added {
    event_id: i32,
    product_id: i32,
    voucher_id: Option<i32>,
    /// Until when the cart's hold runs after this addition.
    cart_expires: DateTime<Utc>,
}

impl HoldTally {
    fn left(&self, quota: &quota::Model) -> Option<i64> {
        quota.size.map(|size| {
            i64::from(size)
                - i64::from(quota.paid)
                - i64::from(quota.pending)
                - i64::from(quota.in_carts)
                - i64::from(quota.blocked)
                - i64::from(self.units.get(&quota.id).copied().unwrap_or(0))
        })
    }

    fn added_where(&self, cart_id: &str, test: impl Fn(&Added) -> bool) -> i64 {
        let n = self
            .added
            .get(cart_id)
            .map_or(0, |rows| rows.iter().filter(|r| test(r)).count());
        i64::try_from(n).unwrap_or(i64::MAX)
    }
}

/// Applies a batch of holds in `txn`: one read per table for all of them,
/// one decision per hold in their order under the quotas' row locks (`paid +
/// pending + in_carts + blocked + n <= size`), then one `UPDATE` of the
/// quotas and one `INSERT` of every position held.
///
/// # Errors
/// Per hold: `NOT_FOUND` for an unknown product (or one of an event that is
/// not live); `NOT_ON_SALE` outside the presale or the product's window, or
/// for a product that needs a voucher; `BAD_USER_INPUT` on a bad variation,
/// date or cart; `SOLD_OUT` when a quota has less left than asked. The whole
/// batch on database errors.
pub async fn hold_all(
    txn: &DatabaseTransaction,
    now: DateTime<Utc>,
    holds: Vec<Hold>,
) -> Result<Vec<Result<Held, AppError>>, AppError> {
    // At the precision PostgreSQL stores: a new position's hold read back
    // must equal the cart's new end, or every cart would seem to move.
    let now = now.trunc_subsecs(6);
    let reads = HoldReads::of(txn, &holds).await?;
    let mut tally = HoldTally::default();
    let mut decided = Vec::with_capacity(holds.len());
    for hold in &holds {
        let decision = decide_hold(txn, &reads, &tally, hold, now).await;
        if let Ok((units, row, added)) = decision.as_ref() {
            for (id, n) in units {
                *tally.units.entry(*id).or_default() += n;
            }
            let count = usize::try_from(hold.input.quantity).unwrap_or(0);
            tally
                .added
                .entry(hold.cart_id.clone())
                .or_default()
                .extend(std::iter::repeat_n(*added, count));
            tally.rows.extend(std::iter::repeat_n(row.clone(), count));
        }
        decided.push(decision.map(|_| ()));
    }
    if !tally.units.is_empty() {
        quotas::add_to(txn, &tally.units, Counter::InCarts).await?;
    }
    let rows = std::mem::take(&mut tally.rows);
    let mut inserted: HashMap<String, Vec<cart_position::Model>> = HashMap::new();
    if !rows.is_empty() {
        for row in cart_position::Entity::insert_many(rows)
            .exec_with_returning(txn)
            .await?
        {
            inserted.entry(row.cart_id.clone()).or_default().push(row);
        }
    }
    let extended = extend_carts(txn, now, &reads.carts, &inserted, &tally.added).await?;
    Ok(holds
        .into_iter()
        .zip(decided)
        .map(|(hold, decision)| {
            decision.map(|_| {
                let mut positions = reads.carts.get(&hold.cart_id).cloned().unwrap_or_default();
                positions.extend(inserted.get(&hold.cart_id).into_iter().flatten().cloned());
                if let Some(until) = extended.get(&hold.cart_id) {
                    for p in positions.iter_mut().filter(|p| extends(p, now, *until)) {
                        p.expires = *until;
                    }
                }
                positions.sort_by_key(|p| p.id);
                (hold.cart_id, positions)
            })
        })
        .collect())
}

/// Whether a cart's extension to `until` moves `position`'s hold: only a
/// hold still running, and only later.
fn extends(position: &cart_position::Model, now: DateTime<Utc>, until: DateTime<Utc>) -> bool {
    position.expires > now && position.expires < until
}

/// Adding to a cart extends the holds of its positions still running to the
/// new hold's end (as pretix does), so a cart's positions expire together:
/// the expiry job then takes a cart whole, never leaving part of it for a
/// checkout to order. One `UPDATE` per cart whose holds move (none for a
/// new cart of one product); returns each such cart's new end.
async fn extend_carts(
    txn: &DatabaseTransaction,
    now: DateTime<Utc>,
    before: &HashMap<String, Vec<cart_position::Model>>,
    inserted: &HashMap<String, Vec<cart_position::Model>>,
    added: &HashMap<String, Vec<Added>>,
) -> Result<HashMap<String, DateTime<Utc>>, AppError> {
    let mut extended = HashMap::new();
    for (cart_id, additions) in added {
        let Some(until) = additions.iter().map(|a| a.cart_expires).max() else {
            continue;
        };
        let moves = before
            .get(cart_id)
            .into_iter()
            .chain(inserted.get(cart_id))
            .flatten()
            .any(|p| extends(p, now, until));
        if !moves {
            continue;
        }
        cart_position::Entity::update_many()
            .col_expr(cart_position::Column::Expires, Expr::value(until))
            .filter(cart_position::Column::CartId.eq(cart_id.as_str()))
            .filter(cart_position::Column::Expires.gt(now))
            .filter(cart_position::Column::Expires.lt(until))
            .exec(txn)
            .await?;
        extended.insert(cart_id.clone(), until);
    }
    Ok(extended)
}

/// Decides one hold of a batch: the units it takes and the row it adds
/// (`quantity` times), or why not.
async fn decide_hold(
    txn: &DatabaseTransaction,
    reads: &HoldReads,
    tally: &HoldTally,
    hold: &Hold,
    now: DateTime<Utc>,
) -> Result<(Units, cart_position::ActiveModel, Added), AppError> {
    let input = &hold.input;
    let product = reads
        .products
        .get(&input.product_id)
        .ok_or(AppError::not_found("product"))?;
    let event = reads
        .events
        .get(&product.event_id)
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
                txn,
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
            reads
                .variations
                .get(&variation_id)
                .filter(|v| v.product_id == product.id && v.active)
                .ok_or_else(|| {
                    AppError::bad_input("variationId", "no such variation of this product")
                })?,
        ),
        None => None,
    };
    let mut price = variation
        .and_then(|v| v.price_minor)
        .unwrap_or(product.price_minor);
    match (event.has_subevents, input.sub_event_id) {
        (true, Some(date)) => {
            let date = reads
                .dates
                .get(&date)
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
            let terms = dates::price_on_date(txn, date.id, product, variation, now).await?;
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
    let existing = reads
        .carts
        .get(&hold.cart_id)
        .map_or(&[][..], Vec::as_slice);
    let other_event = existing.iter().any(|p| p.event_id != event.id)
        || tally.added_where(&hold.cart_id, |a| a.event_id != event.id) > 0;
    if other_event {
        return Err(AppError::bad_input(
            "cartId",
            "this cart is for another event",
        ));
    }
    let positions = i64::try_from(existing.len()).unwrap_or(i64::MAX)
        + tally.added_where(&hold.cart_id, |_| true);
    let max_positions = i64::try_from(hold.max_positions).unwrap_or(i64::MAX);
    if positions + i64::from(input.quantity) > max_positions {
        return Err(AppError::bad_input(
            "quantity",
            format!("a cart holds at most {max_positions} items"),
        ));
    }
    if let Some(max) = product.max_per_order {
        let in_cart = existing
            .iter()
            .filter(|p| p.product_id == product.id)
            .count();
        let in_cart = i64::try_from(in_cart).unwrap_or(i64::MAX)
            + tally.added_where(&hold.cart_id, |a| a.product_id == product.id);
        if in_cart + i64::from(input.quantity) > i64::from(max) {
            return Err(AppError::bad_input(
                "quantity",
                format!("at most {max} per order"),
            ));
        }
    }
    let addon_to = super::addons::parent_for(
        txn,
        now,
        product,
        input.sub_event_id,
        input.quantity,
        input.addon_to,
        existing,
    )
    .await?;
    if let Some(voucher) = &voucher {
        let in_cart = existing
            .iter()
            .filter(|p| p.voucher_id == Some(voucher.id))
            .count();
        let in_cart = i64::try_from(in_cart).unwrap_or(i64::MAX)
            + tally.added_where(&hold.cart_id, |a| a.voucher_id == Some(voucher.id));
        // A courtesy: checkout redeems usages under the voucher row's lock.
        if i64::from(voucher.redeemed) + in_cart + i64::from(input.quantity)
            > i64::from(voucher.max_usages)
        {
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
        reads
            .quotas_for(product.id, input.variation_id, input.sub_event_id)
            .ok_or_else(|| {
                AppError::bad_input("variationId", "choose a variation of this product")
            })?
    };
    if quota_ids.is_empty() && !ignore_quota {
        return Err(AppError::refused(
            Reason::SoldOut,
            "this product is not available",
        ));
    }
    // Units a blocking voucher keeps move to the cart; only the rest are
    // taken from what is left.
    let kept: Vec<i32> = voucher
        .as_ref()
        .filter(|v| v.block_quota)
        .map(|v| cart_position::quota_ids(&v.blocked_quota_ids))
        .unwrap_or_default();
    for id in quota_ids.iter().filter(|id| !kept.contains(id)) {
        let left = reads.quotas.get(id).and_then(|q| tally.left(q));
        if left.is_some_and(|left| left < i64::from(input.quantity)) {
            return Err(AppError::refused(
                Reason::SoldOut,
                "not enough left of this product",
            ));
        }
    }
    // Last, as the only write of a decision: everything else has passed.
    let from_block = match &voucher {
        Some(v) => vouchers::take_blocked(txn, v, &quota_ids, input.quantity).await?,
        None => Vec::new(),
    };
    let units: Units = quota_ids
        .iter()
        .filter(|id| !from_block.contains(id))
        .map(|id| (*id, input.quantity))
        .collect();
    let cart_expires = now + TimeDelta::minutes(i64::from(event.cart_hold_minutes));
    let expires = super::addons::hold_until(cart_expires, addon_to, existing);
    let row = cart_position::ActiveModel {
        event_id: Set(event.id),
        cart_id: Set(hold.cart_id.clone()),
        product_id: Set(product.id),
        variation_id: Set(input.variation_id),
        sub_event_id: Set(input.sub_event_id),
        price_minor: Set(price),
        quota_ids: Set(format_quota_ids(&quota_ids)),
        user_id: Set(hold.user_id),
        datetime: Set(now),
        expires: Set(expires),
        voucher_id: Set(voucher.as_ref().map(|v| v.id)),
        addon_to: Set(addon_to),
        blocked_quota_ids: Set(format_quota_ids(&from_block)),
        ..Default::default()
    };
    let added = Added {
        event_id: event.id,
        product_id: product.id,
        voucher_id: voucher.as_ref().map(|v| v.id),
        cart_expires,
    };
    Ok((units, row, added))
}

/// The positions of each cart, oldest first; locked until the transaction
/// ends when `lock` (PostgreSQL; SQLite has one writer).
///
/// # Errors
/// On database errors.
pub async fn of_carts(
    db: &impl ConnectionTrait,
    cart_ids: impl IntoIterator<Item = String>,
    lock: bool,
) -> Result<HashMap<String, Vec<cart_position::Model>>, AppError> {
    let mut query = cart_position::Entity::find()
        .filter(cart_position::Column::CartId.is_in(cart_ids))
        .order_by_asc(cart_position::Column::Id);
    if lock {
        query = query.lock_exclusive();
    }
    let mut carts: HashMap<String, Vec<cart_position::Model>> = HashMap::new();
    for position in query.all(db).await? {
        carts
            .entry(position.cart_id.clone())
            .or_default()
            .push(position);
    }
    Ok(carts)
}

/// The quotas linked to the products of `holds`, of any date and variation:
/// every quota a hold of the batch may take from, the ones that name
/// variations included (they are linked to the variation's product too).
///
/// # Errors
/// On database errors.
pub async fn quota_ids_of(db: &impl ConnectionTrait, holds: &[Hold]) -> Result<Vec<i32>, AppError> {
    if holds.is_empty() {
        return Ok(Vec::new());
    }
    Ok(quota_product::Entity::find()
        .filter(quota_product::Column::ProductId.is_in(holds.iter().map(|h| h.input.product_id)))
        .all(db)
        .await?
        .into_iter()
        .map(|link| link.quota_id)
        .collect())
}

/// The event whose lane a hold of `product_id` joins.
///
/// # Errors
/// `NOT_FOUND` for an unknown product.
pub async fn event_of_product(db: &impl ConnectionTrait, product_id: i32) -> Result<i32, AppError> {
    Ok(product::Entity::find_by_id(product_id)
        .one(db)
        .await?
        .ok_or(AppError::not_found("product"))?
        .event_id)
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
        let claimed = batch.len();
        // The rest of the claimed carts' expired positions, so no cart is
        // left in part (positions a checkout holds locked are its own).
        let ids: BTreeSet<i32> = batch.iter().map(|p| p.id).collect();
        let mut rest = crate::jobs::claim_batch(
            &txn,
            cart_position::Entity::find()
                .filter(
                    cart_position::Column::CartId.is_in(batch.iter().map(|p| p.cart_id.clone())),
                )
                .filter(cart_position::Column::Expires.lte(now))
                .filter(cart_position::Column::Id.is_not_in(ids))
                .order_by_asc(cart_position::Column::Id),
            i64::MAX.unsigned_abs(),
        )
        .await?;
        let mut batch = batch;
        batch.append(&mut rest);
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
        if (claimed as u64) < EXPIRY_BATCH {
            return Ok(events);
        }
    }
}
