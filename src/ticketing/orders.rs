//! Orders: checkout turns a cart into an order atomically, and teams mark
//! orders paid or cancel them.
//!
//! A checkout runs in one transaction, batched with the other checkouts of
//! its event's lane (`ticketing::rush`, [`place_all`]): it removes the cart's
//! positions (one expired position refuses the whole checkout with
//! `EXPIRED`), moves their quota units from carts to pending orders, and
//! inserts the order and its positions. An admission position is
//! a ticket: a random secret for its QR code, and the olympic ticket's unique
//! key, SHA-256 over the buyer, the purchase date and the position's id,
//! inserted with the row: the ids are drawn before the insert.

use std::collections::{BTreeMap, HashMap, HashSet};

use chrono::{DateTime, TimeDelta, Utc};
use sea_orm::sea_query::OnConflict;
use sea_orm::{
    ColumnTrait, ConnectionTrait, DatabaseBackend, DatabaseConnection, DatabaseTransaction,
    EntityTrait, QueryFilter, QueryOrder, QuerySelect, Set, Statement, TransactionTrait,
};
use serde_json::json;
use sha2::{Digest, Sha256};

use super::access::{self, Actor};
use super::audit::{Audited, Change};
use super::carts;
use super::money::included_tax;
use super::questions::CheckoutAnswers;
use super::quotas::{self, Counter};
use super::vouchers;
use crate::auth::tokens::random_token;
use crate::auth::{Principal, TeamPermission};
use crate::db::page_by_id;
use crate::entities::order::OrderStatus;
use crate::entities::{
    cart_position, checkout_key, event, order, order_position, product, voucher,
};
use crate::error::{AppError, Reason};
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

/// A checkout: which cart becomes whose order, checked by [`Checkout::new`]
/// before it joins its event's lane.
#[derive(Debug, Clone)]
pub struct Checkout {
    pub cart_id: String,
    pub user_id: Option<i32>,
    pub email: String,
    pub key: Option<String>,
}

/// An order with its positions.
pub type PlacedOrder = (order::Model, Vec<order_position::Model>);

/// What one checkout of a batch came to.
#[derive(Debug)]
pub enum Placed {
    Order(order::Model, Vec<order_position::Model>),
    /// Another checkout holds the idempotency key: its order is the answer.
    KeyTaken,
}

impl Checkout {
    /// # Errors
    /// `BAD_USER_INPUT` on a bad cart id, email or key.
    pub fn new(
        principal: &Principal,
        cart_id: &str,
        email: &str,
        idempotency_key: Option<&str>,
    ) -> Result<Self, AppError> {
        let user_id = match principal {
            Principal::Person(_) => Some(principal.person()?.id),
            _ => None,
        };
        Ok(Self {
            cart_id: carts::parse_cart_id(cart_id)?,
            user_id,
            email: parse_email(email)?,
            key: idempotency_key.map(parse_idempotency_key).transpose()?,
        })
    }

    /// The order an earlier checkout of this cart with this key placed.
    ///
    /// # Errors
    /// On database errors.
    pub async fn first_result(
        &self,
        db: &impl ConnectionTrait,
    ) -> Result<Option<PlacedOrder>, AppError> {
        match &self.key {
            Some(key) => checked_out(db, &self.cart_id, key).await,
            None => Ok(None),
        }
    }

    /// The answer once `placed` committed: its order, or the order of the
    /// checkout that holds the key.
    ///
    /// # Errors
    /// `CONFLICT` when the key's checkout stored nothing after all.
    pub async fn answer(
        &self,
        db: &impl ConnectionTrait,
        placed: Placed,
    ) -> Result<PlacedOrder, AppError> {
        match placed {
            Placed::Order(order, positions) => Ok((order, positions)),
            // A concurrent checkout with this key committed first.
            Placed::KeyTaken => self
                .first_result(db)
                .await?
                .ok_or_else(|| AppError::Conflict("the checkout is being retried".into())),
        }
    }
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
/// As [`place_all`], for the one checkout.
pub async fn checkout(
    db: &(impl ConnectionTrait + TransactionTrait<Transaction = DatabaseTransaction>),
    principal: &Principal,
    now: DateTime<Utc>,
    cart_id: &str,
    email: &str,
    idempotency_key: Option<&str>,
) -> Result<PlacedOrder, AppError> {
    let request = Checkout::new(principal, cart_id, email, idempotency_key)?;
    if let Some(first) = request.first_result(db).await? {
        return Ok(first);
    }
    let txn = db.begin().await?;
    let placed = place_all(&txn, now, vec![request.clone()]).await?.pop();
    let placed = placed.ok_or_else(|| AppError::internal(anyhow::anyhow!("no answer")))??;
    txn.commit().await?;
    request.answer(db, placed).await
}

/// The event whose lane a checkout of `cart_id` joins, or `None` for a cart
/// with no positions left (a retry of a checkout that succeeded, or an empty
/// cart: [`checkout`] finds the first order or refuses).
///
/// # Errors
/// On database errors.
pub async fn event_of_cart(
    db: &impl ConnectionTrait,
    cart_id: &str,
) -> Result<Option<i32>, AppError> {
    Ok(cart_position::Entity::find()
        .filter(cart_position::Column::CartId.eq(cart_id))
        .one(db)
        .await?
        .map(|p| p.event_id))
}

/// What a batch of checkouts reads before it decides; carts and vouchers are
/// locked until the commit (PostgreSQL; SQLite has one writer).
struct CheckoutReads {
    carts: HashMap<String, Vec<cart_position::Model>>,
    events: HashMap<i32, event::Model>,
    products: HashMap<i32, product::Model>,
    vouchers: HashMap<i32, voucher::Model>,
    /// Positions each account already holds of each product limited per
    /// account, in its pending and paid orders.
    bought: HashMap<(i32, i32), i64>,
    addon_rules: super::addons::CartRules,
    questions: super::questions::CheckoutQuestions,
}

impl CheckoutReads {
    async fn of(
        txn: &impl ConnectionTrait,
        requests: &[Checkout],
        also_vouchers: &[i32],
    ) -> Result<Self, AppError> {
        let carts = carts::of_carts(txn, requests.iter().map(|r| r.cart_id.clone()), true).await?;
        let positions = || carts.values().flatten();
        let events = event::Entity::find()
            .filter(event::Column::Id.is_in(positions().map(|p| p.event_id)))
            .all(txn)
            .await?
            .into_iter()
            .map(|e| (e.id, e))
            .collect();
        let products: HashMap<i32, product::Model> = product::Entity::find()
            .filter(product::Column::Id.is_in(positions().map(|p| p.product_id)))
            .all(txn)
            .await?
            .into_iter()
            .map(|p| (p.id, p))
            .collect();
        // In id order, so checkouts redeeming several vouchers never deadlock.
        let vouchers = voucher::Entity::find()
            .filter(
                voucher::Column::Id.is_in(
                    positions()
                        .filter_map(|p| p.voucher_id)
                        .chain(also_vouchers.iter().copied()),
                ),
            )
            .order_by_asc(voucher::Column::Id)
            .lock_exclusive()
            .all(txn)
            .await?
            .into_iter()
            .map(|v| (v.id, v))
            .collect();
        let addon_rules = super::addons::CartRules::read(txn, &products).await?;
        let questions = super::questions::CheckoutQuestions::read(txn, positions()).await?;
        Ok(Self {
            carts,
            events,
            products,
            vouchers,
            // Read by `place`, once the batch holds its quotas.
            bought: HashMap::new(),
            addon_rules,
            questions,
        })
    }
}

impl CheckoutReads {
    /// What the batch's buyers already bought of its products limited per
    /// account. Read only once the batch holds its quotas: a batch of another
    /// replica selling the same product to the same account has committed by
    /// then, so the two cannot both sell the last one allowed.
    async fn read_bought(
        &mut self,
        txn: &impl ConnectionTrait,
        requests: &[Checkout],
    ) -> Result<(), AppError> {
        let limited: Vec<i32> = self
            .products
            .values()
            .filter(|p| p.limit_per_user.is_some())
            .map(|p| p.id)
            .collect();
        let buyers: Vec<i32> = requests.iter().filter_map(|r| r.user_id).collect();
        if !limited.is_empty() && !buyers.is_empty() {
            self.bought = bought_by(txn, &buyers, &limited).await?;
        }
        Ok(())
    }
}

/// How many positions of each of `products` each of `buyers` holds in their
/// pending and paid orders.
async fn bought_by(
    db: &impl ConnectionTrait,
    buyers: &[i32],
    products: &[i32],
) -> Result<HashMap<(i32, i32), i64>, AppError> {
    let orders: HashMap<i32, i32> = order::Entity::find()
        .filter(order::Column::UserId.is_in(buyers.iter().copied()))
        .filter(order::Column::Status.is_in([OrderStatus::Pending, OrderStatus::Paid]))
        .all(db)
        .await?
        .into_iter()
        .filter_map(|o| o.user_id.map(|user| (o.id, user)))
        .collect();
    let mut bought = HashMap::new();
    for position in order_position::Entity::find()
        .filter(order_position::Column::OrderId.is_in(orders.keys().copied()))
        .filter(order_position::Column::ProductId.is_in(products.iter().copied()))
        .filter(order_position::Column::Canceled.eq(false))
        .all(db)
        .await?
    {
        if let Some(user) = orders.get(&position.order_id) {
            *bought.entry((*user, position.product_id)).or_default() += 1;
        }
    }
    Ok(bought)
}

/// What the checkouts decided so far in a batch have taken.
#[derive(Default)]
struct CheckoutTally {
    carts: HashSet<String>,
    redeemed: BTreeMap<i32, i32>,
    bought: HashMap<(i32, i32), i64>,
}

/// A checkout the batch accepted, before its order is written.
struct Accepted {
    index: usize,
    positions: Vec<cart_position::Model>,
    event: event::Model,
    total: i64,
    status: OrderStatus,
    key_id: Option<i32>,
    answers: CheckoutAnswers,
}

/// Applies a batch of checkouts in `txn`: the idempotency keys claimed in
/// one statement, one read per table for all of them (carts and vouchers
/// locked), one decision per checkout in their order, then a few statements
/// for the whole batch: positions taken from the carts, vouchers redeemed,
/// quota units moved, orders, their positions, tickets' keys, ledger and
/// audit entries. A refused checkout stores nothing, its key included.
///
/// # Errors
/// Per checkout: `BAD_USER_INPUT` on an empty cart or fewer than a product's
/// minimum per order; `UNAUTHENTICATED` for an anonymous buyer of a product
/// limited per account; `CONFLICT` (no reason) beyond that limit; `EXPIRED`
/// when a position's hold or a voucher has expired; `ALREADY_REDEEMED` when a
/// voucher has too few usages left. The whole batch on database errors.
pub async fn place_all(
    txn: &DatabaseTransaction,
    now: DateTime<Utc>,
    requests: Vec<Checkout>,
) -> Result<Vec<Result<Placed, AppError>>, AppError> {
    Prepared::read(txn, now, &requests, &[])
        .await?
        .place(txn, now, requests)
        .await
}

/// A batch of checkouts with their keys claimed and what they read locked
/// (carts, then vouchers): the first half of [`place_all`], so a lane can
/// lock the batch's quotas after them, in that one order everywhere.
pub struct Prepared {
    keys: HashMap<(String, String), (usize, i32)>,
    reads: CheckoutReads,
}

impl Prepared {
    /// Locks `also_vouchers` (the blocking vouchers of a batch's holds) with
    /// the checkouts' vouchers, in one statement in id order.
    ///
    /// # Errors
    /// On database errors.
    pub async fn read(
        txn: &DatabaseTransaction,
        now: DateTime<Utc>,
        requests: &[Checkout],
        also_vouchers: &[i32],
    ) -> Result<Self, AppError> {
        let keys = claim_keys(txn, requests, now).await?;
        let reads = CheckoutReads::of(txn, requests, also_vouchers).await?;
        Ok(Self { keys, reads })
    }

    /// The quotas the carts' positions hold units of.
    pub fn quota_ids(&self) -> impl Iterator<Item = i32> + '_ {
        self.reads
            .carts
            .values()
            .flatten()
            .flat_map(|p| cart_position::quota_ids(&p.quota_ids))
    }

    /// Decides and writes the checkouts (the second half of [`place_all`]).
    ///
    /// # Errors
    /// As [`place_all`].
    pub async fn place(
        self,
        txn: &DatabaseTransaction,
        now: DateTime<Utc>,
        requests: Vec<Checkout>,
    ) -> Result<Vec<Result<Placed, AppError>>, AppError> {
        let Self { keys, mut reads } = self;
        reads.read_bought(txn, &requests).await?;
        let mut tally = CheckoutTally::default();
        let mut outcomes: Vec<Option<Result<Placed, AppError>>> =
            Vec::with_capacity(requests.len());
        let mut accepted = Vec::new();
        let mut unclaimed = Vec::new();
        for (index, request) in requests.iter().enumerate() {
            let key_id = match &request.key {
                Some(key) => match keys.get(&(request.cart_id.clone(), key.clone())) {
                    Some((owner, id)) if *owner == index => Some(*id),
                    _ => {
                        outcomes.push(Some(Ok(Placed::KeyTaken)));
                        continue;
                    }
                },
                None => None,
            };
            match decide_checkout(&reads, &mut tally, request, now) {
                Ok((positions, event, total, answers)) => {
                    let status = if total == 0 {
                        OrderStatus::Paid
                    } else {
                        OrderStatus::Pending
                    };
                    accepted.push(Accepted {
                        index,
                        positions,
                        event,
                        total,
                        status,
                        key_id,
                        answers,
                    });
                    outcomes.push(None);
                }
                Err(err) => {
                    unclaimed.extend(key_id);
                    outcomes.push(Some(Err(err)));
                }
            }
        }
        if !unclaimed.is_empty() {
            checkout_key::Entity::delete_many()
                .filter(checkout_key::Column::Id.is_in(unclaimed))
                .exec(txn)
                .await?;
        }
        let written = write_orders(txn, now, &requests, &reads.products, &tally, accepted).await?;
        for (index, placed) in written {
            outcomes[index] = Some(Ok(placed));
        }
        outcomes
            .into_iter()
            .map(|o| {
                o.ok_or_else(|| AppError::internal(anyhow::anyhow!("a checkout went unanswered")))
            })
            .collect()
    }
}

/// Inserts the keys of the checkouts that carry one, in one statement: a key
/// another checkout stored (or one earlier in this batch) is not inserted.
/// Returns, per claimed key, the index of its checkout and the row's id.
async fn claim_keys(
    txn: &DatabaseTransaction,
    requests: &[Checkout],
    now: DateTime<Utc>,
) -> Result<HashMap<(String, String), (usize, i32)>, AppError> {
    let mut owners: HashMap<(String, String), usize> = HashMap::new();
    for (index, request) in requests.iter().enumerate() {
        if let Some(key) = &request.key {
            owners
                .entry((request.cart_id.clone(), key.clone()))
                .or_insert(index);
        }
    }
    if owners.is_empty() {
        return Ok(HashMap::new());
    }
    let rows = owners
        .keys()
        .map(|(cart_id, key)| checkout_key::ActiveModel {
            cart_id: Set(cart_id.clone()),
            idempotency_key: Set(key.clone()),
            order_id: Set(None),
            created_at: Set(now),
            ..Default::default()
        });
    let inserted = checkout_key::Entity::insert_many(rows)
        .on_conflict(
            OnConflict::columns([
                checkout_key::Column::CartId,
                checkout_key::Column::IdempotencyKey,
            ])
            .do_nothing()
            .to_owned(),
        )
        .exec_with_returning(txn)
        .await?;
    Ok(inserted
        .into_iter()
        .filter_map(|row| {
            let pair = (row.cart_id, row.idempotency_key);
            owners.get(&pair).map(|owner| (pair, (*owner, row.id)))
        })
        .collect())
}

/// Decides one checkout of a batch against what the batch read and what the
/// checkouts before it took: its cart's positions, its event, its total and
/// the answers it carries to the order, or why not.
fn decide_checkout(
    reads: &CheckoutReads,
    tally: &mut CheckoutTally,
    request: &Checkout,
    now: DateTime<Utc>,
) -> Result<
    (
        Vec<cart_position::Model>,
        event::Model,
        i64,
        CheckoutAnswers,
    ),
    AppError,
> {
    let cart = reads
        .carts
        .get(&request.cart_id)
        .filter(|_| !tally.carts.contains(&request.cart_id))
        .filter(|cart| !cart.is_empty())
        .ok_or_else(|| AppError::bad_input("cartId", "the cart is empty"))?;
    let event = reads
        .events
        .get(&cart[0].event_id)
        .ok_or(AppError::not_found("event"))?;
    let mut counts: BTreeMap<i32, i64> = BTreeMap::new();
    for position in cart {
        *counts.entry(position.product_id).or_default() += 1;
    }
    for (&product_id, &count) in &counts {
        let Some(product) = reads.products.get(&product_id) else {
            continue;
        };
        if let Some(min) = product.min_per_order
            && count < i64::from(min)
        {
            return Err(AppError::bad_input(
                "cartId",
                format!("{} needs at least {min} per order", product.name),
            ));
        }
        if let Some(limit) = product.limit_per_user {
            let user = request.user_id.ok_or(AppError::Unauthenticated)?;
            let held = reads.bought.get(&(user, product_id)).copied().unwrap_or(0)
                + tally.bought.get(&(user, product_id)).copied().unwrap_or(0);
            if held + count > i64::from(limit) {
                return Err(AppError::Conflict(format!(
                    "{} is limited to {limit} per account",
                    product.name
                )));
            }
        }
    }
    reads.addon_rules.check_cart(cart, &reads.products)?;
    let answers = reads.questions.for_checkout(cart, &reads.products)?;
    if cart.iter().any(|p| p.expires <= now) {
        return Err(AppError::refused(
            Reason::Expired,
            "the cart has expired; add the products again",
        ));
    }
    let mut redemptions: BTreeMap<i32, i32> = BTreeMap::new();
    for voucher_id in cart.iter().filter_map(|p| p.voucher_id) {
        *redemptions.entry(voucher_id).or_default() += 1;
    }
    for (&voucher_id, &n) in &redemptions {
        let voucher = reads
            .vouchers
            .get(&voucher_id)
            .ok_or_else(|| AppError::bad_input("cartId", "a voucher in the cart was deleted"))?;
        let before = voucher.redeemed + tally.redeemed.get(&voucher_id).copied().unwrap_or(0);
        vouchers::check_redemption(voucher, before, n, now)?;
    }
    tally.carts.insert(request.cart_id.clone());
    for (voucher_id, n) in redemptions {
        *tally.redeemed.entry(voucher_id).or_default() += n;
    }
    if let Some(user) = request.user_id {
        for (product_id, count) in counts {
            *tally.bought.entry((user, product_id)).or_default() += count;
        }
    }
    let total = cart.iter().map(|p| p.price_minor).sum();
    Ok((cart.clone(), event.clone(), total, answers))
}

/// Order codes for the accepted checkouts, unique per event: drawn, and
/// drawn again (rarely) where one is taken or drawn twice.
async fn unique_codes(
    txn: &DatabaseTransaction,
    accepted: &[Accepted],
) -> Result<Vec<String>, AppError> {
    let mut codes: Vec<String> = accepted
        .iter()
        .map(|_| order_code())
        .collect::<Result<_, _>>()?;
    loop {
        let pairs: Vec<(i32, &str)> = accepted
            .iter()
            .zip(&codes)
            .map(|(a, code)| (a.event.id, code.as_str()))
            .collect();
        let stored = crate::db::find_by_pairs::<order::Entity, _, _>(
            txn,
            (order::Column::EventId, "int4"),
            (order::Column::Code, "text"),
            &pairs,
        );
        let taken: HashSet<(i32, String)> = stored
            .await?
            .into_iter()
            .map(|o| (o.event_id, o.code))
            .collect();
        let mut seen = HashSet::new();
        let mut clashed = false;
        for (a, code) in accepted.iter().zip(codes.iter_mut()) {
            while taken.contains(&(a.event.id, code.clone()))
                || !seen.insert((a.event.id, code.clone()))
            {
                *code = order_code()?;
                clashed = true;
            }
        }
        if !clashed {
            return Ok(codes);
        }
    }
}

/// `n` ids for new order positions, taken before their insert so that each
/// ticket's key (over its id) is stored with its row: no `UPDATE` after the
/// insert, whose new row versions would touch every index of the table.
/// PostgreSQL draws them from the table's sequence in one statement (taken
/// ids are never handed out again, committed or not); SQLite has one writer
/// and the batch already wrote, so the ids after the highest one ever given
/// (`AUTOINCREMENT`'s counter) are this transaction's until it commits.
async fn position_ids(txn: &DatabaseTransaction, n: usize) -> Result<Vec<i32>, AppError> {
    if n == 0 {
        return Ok(Vec::new());
    }
    let count = i32::try_from(n).map_err(|e| AppError::internal(anyhow::anyhow!("{e}")))?;
    let backend = txn.get_database_backend();
    if backend == DatabaseBackend::Postgres {
        let rows = txn
            .query_all_raw(Statement::from_sql_and_values(
                backend,
                "SELECT nextval(pg_get_serial_sequence('order_positions', 'id'))::int4 AS id \
                 FROM generate_series(1, $1)",
                [count.into()],
            ))
            .await?;
        return rows
            .iter()
            .map(|row| row.try_get::<i32>("", "id").map_err(AppError::from))
            .collect();
    }
    let last = txn
        .query_one_raw(Statement::from_string(
            backend,
            "SELECT MAX(COALESCE((SELECT seq FROM sqlite_sequence WHERE name = 'order_positions'), 0), \
             COALESCE((SELECT MAX(id) FROM order_positions), 0)) AS last",
        ))
        .await?
        .map(|row| row.try_get::<i64>("", "last"))
        .transpose()?
        .unwrap_or(0);
    let first = i32::try_from(last + 1).map_err(|e| AppError::internal(anyhow::anyhow!("{e}")))?;
    Ok((first..first.saturating_add(count)).collect())
}

/// Stores which order each claimed idempotency key's checkout placed: one
/// `UPDATE` joined to a `VALUES` list, so the database matches each key row
/// to its order by a join rather than testing one `CASE` arm per row.
async fn set_key_orders(txn: &DatabaseTransaction, keys: &[(i32, i32)]) -> Result<(), AppError> {
    if keys.is_empty() {
        return Ok(());
    }
    let backend = txn.get_database_backend();
    let mut values = Vec::with_capacity(keys.len() * 2);
    let mut rows = Vec::with_capacity(keys.len());
    for (n, (key_id, order_id)) in keys.iter().enumerate() {
        rows.push(format!("(${}, ${})", 2 * n + 1, 2 * n + 2));
        values.push((*key_id).into());
        values.push((*order_id).into());
    }
    let sql = format!(
        "UPDATE checkout_keys SET order_id = v.column2 FROM (VALUES {}) AS v \
         WHERE checkout_keys.id = v.column1",
        rows.join(", ")
    );
    let sql = if backend == DatabaseBackend::Postgres {
        sql
    } else {
        // SQLite numbers its parameters `?NNN`.
        sql.replace('$', "?")
    };
    txn.execute_raw(Statement::from_sql_and_values(backend, sql, values))
        .await?;
    Ok(())
}

/// Writes the accepted checkouts of a batch, set-wise; returns each one's
/// order by its index in the batch.
async fn write_orders(
    txn: &DatabaseTransaction,
    now: DateTime<Utc>,
    requests: &[Checkout],
    products: &HashMap<i32, product::Model>,
    tally: &CheckoutTally,
    mut accepted: Vec<Accepted>,
) -> Result<Vec<(usize, Placed)>, AppError> {
    if accepted.is_empty() {
        return Ok(Vec::new());
    }
    cart_position::Entity::delete_many()
        .filter(
            cart_position::Column::Id.is_in(
                accepted
                    .iter()
                    .flat_map(|a| a.positions.iter().map(|p| p.id)),
            ),
        )
        .exec(txn)
        .await?;
    vouchers::redeem_counted(txn, &tally.redeemed).await?;
    for target in [OrderStatus::Pending, OrderStatus::Paid] {
        let units = quotas::units(
            accepted
                .iter()
                .filter(|a| a.status == target)
                .flat_map(|a| a.positions.iter().map(|p| p.quota_ids.as_str())),
        );
        let counter = if target == OrderStatus::Paid {
            Counter::Paid
        } else {
            Counter::Pending
        };
        quotas::shift(txn, &units, Counter::InCarts, counter).await?;
    }
    let codes = unique_codes(txn, &accepted).await?;
    let mut rows = Vec::with_capacity(accepted.len());
    for (a, code) in accepted.iter().zip(&codes) {
        let request = &requests[a.index];
        rows.push(order::ActiveModel {
            event_id: Set(a.event.id),
            code: Set(code.clone()),
            secret: Set(random_token()?),
            status: Set(a.status),
            user_id: Set(request.user_id),
            email: Set(request.email.clone()),
            total_minor: Set(a.total),
            testmode: Set(a.event.testmode),
            sales_channel: Set("web".to_owned()),
            datetime: Set(now),
            expires: Set(now + PAYMENT_TERM),
            updated_at: Set(now),
            ..Default::default()
        });
    }
    let mut orders: HashMap<(i32, String), order::Model> = order::Entity::insert_many(rows)
        .exec_with_returning(txn)
        .await?
        .into_iter()
        .map(|o| ((o.event_id, o.code.clone()), o))
        .collect();
    let mut placed: Vec<(usize, order::Model, Vec<order_position::ActiveModel>)> =
        Vec::with_capacity(accepted.len());
    let mut ids = position_ids(txn, accepted.iter().map(|a| a.positions.len()).sum())
        .await?
        .into_iter();
    for (a, code) in accepted.iter().zip(codes) {
        let order = orders
            .remove(&(a.event.id, code))
            .ok_or_else(|| AppError::internal(anyhow::anyhow!("an order was not stored")))?;
        let client = order
            .user_id
            .map_or_else(|| order.email.clone(), |id| id.to_string());
        let mut rows = Vec::with_capacity(a.positions.len());
        for (index, item) in a.positions.iter().enumerate() {
            let product = products.get(&item.product_id);
            let tax_rate = product.map_or(0, |p| p.tax_rate_bp);
            let id = ids
                .next()
                .ok_or_else(|| AppError::internal(anyhow::anyhow!("too few position ids")))?;
            // An admission position is a ticket: its key is known with its id.
            let ticket_key = product
                .is_some_and(|p| p.admission)
                .then(|| ticket_key(&client, order.datetime, id));
            rows.push(order_position::ActiveModel {
                id: Set(id),
                order_id: Set(order.id),
                positionid: Set(i32::try_from(index + 1).unwrap_or(i32::MAX)),
                product_id: Set(item.product_id),
                variation_id: Set(item.variation_id),
                sub_event_id: Set(item.sub_event_id),
                price_minor: Set(item.price_minor),
                tax_rate_bp: Set(tax_rate),
                tax_value_minor: Set(included_tax(item.price_minor, tax_rate)),
                secret: Set(random_token()?),
                ticket_key: Set(ticket_key),
                canceled: Set(false),
                attendee_name: Set(None),
                attendee_email: Set(None),
                quota_ids: Set(item.quota_ids.clone()),
                created_at: Set(now),
                voucher_id: Set(item.voucher_id),
                ..Default::default()
            });
        }
        placed.push((a.index, order, rows));
    }
    let keys: Vec<(i32, i32)> = accepted
        .iter()
        .zip(&placed)
        .filter_map(|(a, (_, order, _))| a.key_id.map(|id| (id, order.id)))
        .collect();
    set_key_orders(txn, &keys).await?;
    let mut stored: HashMap<(i32, i32), order_position::Model> =
        order_position::Entity::insert_many(placed.iter().flat_map(|(_, _, rows)| rows.clone()))
            .exec_with_returning(txn)
            .await?
            .into_iter()
            .map(|p| ((p.order_id, p.positionid), p))
            .collect();
    let mut done = Vec::with_capacity(placed.len());
    for ((index, order, rows), a) in placed.into_iter().zip(accepted.iter_mut()) {
        // In the cart's order: the add-on links and the answers follow it.
        let positions: Vec<order_position::Model> = (1..=i32::try_from(rows.len()).unwrap_or(0))
            .filter_map(|n| stored.remove(&(order.id, n)))
            .collect();
        super::addons::link_order_positions(txn, &a.positions, &positions).await?;
        let answers = std::mem::take(&mut a.answers);
        super::questions::copy_to_order(txn, answers, &positions).await?;
        done.push((index, order, positions));
    }
    let orders: Vec<PlacedOrder> = done
        .iter()
        .map(|(_, order, positions)| (order.clone(), positions.clone()))
        .collect();
    super::ledger::record_placed(txn, &orders, now).await?;
    let events: HashMap<i32, &event::Model> =
        accepted.iter().map(|a| (a.event.id, &a.event)).collect();
    super::audit::record_all(
        txn,
        now,
        orders
            .iter()
            .filter_map(|(order, positions)| {
                let event = events.get(&order.event_id)?;
                Some((
                    order.user_id.map(Actor::Person),
                    Change::on_event(
                        event,
                        "voltgate.order.placed",
                        "order",
                        order.id,
                        json!({
                            "code": order.code,
                            "total_minor": order.total_minor,
                            "positions": positions.len(),
                        }),
                    ),
                ))
            })
            .collect(),
    )
    .await?;
    Ok(done
        .into_iter()
        .map(|(index, order, positions)| (index, Placed::Order(order, positions)))
        .collect())
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
