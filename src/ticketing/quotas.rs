//! Quota counters, changed only by conditional `UPDATE`s.
//!
//! Whether units are left is decided under the quota row's lock: carts read
//! the rows `FOR UPDATE` and decide each hold of a batch against what is left
//! (`carts::hold_all`); vouchers that block quota take theirs by one
//! conditional `UPDATE … WHERE paid + pending + in_carts + blocked + n <=
//! size` ([`block`]; PostgreSQL re-checks the condition on the row a waiting
//! `UPDATE` finds after the lock holder commits); SQLite has one writer. So concurrent buyers on any number of replicas can never oversell.
//! Quotas are locked and updated in id order, so transactions taking several
//! never deadlock. Units then move between the counters (`in_carts` →
//! `pending` → `paid`) or are released, in the transaction that changes the
//! positions holding them.
//!
//! Vouchers that block quota keep units in the `blocked` counter, taken by
//! [`block`] under the same condition; every condition counts them, so what
//! vouchers keep is never sold to anyone else.

use std::collections::BTreeMap;

use sea_orm::sea_query::Expr;
use sea_orm::{ColumnTrait, ConnectionTrait, EntityTrait, QueryFilter, QueryOrder, QuerySelect};

use crate::entities::quota;
use crate::error::{AppError, Reason};

/// A counter of a quota.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Counter {
    InCarts,
    Pending,
    Paid,
    /// Kept by vouchers that block quota for their unused usages.
    Blocked,
}

impl Counter {
    const fn column(self) -> &'static str {
        match self {
            Self::InCarts => "in_carts",
            Self::Pending => "pending",
            Self::Paid => "paid",
            Self::Blocked => "blocked",
        }
    }

    const fn entity_column(self) -> quota::Column {
        match self {
            Self::InCarts => quota::Column::InCarts,
            Self::Pending => quota::Column::Pending,
            Self::Paid => quota::Column::Paid,
            Self::Blocked => quota::Column::Blocked,
        }
    }
}

/// Units per quota id, in id order.
pub type Units = BTreeMap<i32, i32>;

/// The units positions take: one of each quota in each position's `quota_ids`.
pub fn units<'a>(quota_ids: impl IntoIterator<Item = &'a str>) -> Units {
    let mut units = Units::new();
    for ids in quota_ids {
        for id in crate::entities::cart_position::quota_ids(ids) {
            *units.entry(id).or_default() += 1;
        }
    }
    units
}

/// Locks the quotas' rows until the transaction ends, in id order
/// (PostgreSQL; SQLite has one writer), so a batch takes every quota lock it
/// needs in the one order all transactions use.
///
/// # Errors
/// On database errors.
pub async fn lock(
    db: &impl ConnectionTrait,
    ids: impl IntoIterator<Item = i32>,
) -> Result<(), AppError> {
    let ids: std::collections::BTreeSet<i32> = ids.into_iter().collect();
    if ids.is_empty() {
        return Ok(());
    }
    quota::Entity::find()
        .select_only()
        .column(quota::Column::Id)
        .filter(quota::Column::Id.is_in(ids))
        .order_by_asc(quota::Column::Id)
        .lock_exclusive()
        .into_tuple::<i32>()
        .all(db)
        .await?;
    Ok(())
}

/// Adds the units of each quota to `counter`, unconditionally: for units
/// whose room was decided under the rows' locks in this transaction.
///
/// # Errors
/// On database errors.
pub async fn add_to(
    db: &impl ConnectionTrait,
    units: &Units,
    counter: Counter,
) -> Result<(), AppError> {
    change(db, units, &[(counter, '+')]).await
}

/// Applies `counter ± n` to each quota's counters, one `UPDATE` per quota.
async fn change(
    db: &impl ConnectionTrait,
    units: &Units,
    counters: &[(Counter, char)],
) -> Result<(), AppError> {
    for (&id, &n) in units {
        let mut update = quota::Entity::update_many();
        for &(counter, sign) in counters {
            update = update.col_expr(
                counter.entity_column(),
                Expr::cust(format!("{} {sign} {n}", counter.column())),
            );
        }
        update.filter(quota::Column::Id.eq(id)).exec(db).await?;
    }
    Ok(())
}

/// Takes the units of each quota for vouchers that block quota, or none of
/// them: `SOLD_OUT` when one has fewer than `n` left.
///
/// # Errors
/// `SOLD_OUT`; on database errors.
pub async fn block(db: &impl ConnectionTrait, units: &Units) -> Result<(), AppError> {
    for (&id, &n) in units {
        let taken = quota::Entity::update_many()
            .col_expr(quota::Column::Blocked, Expr::cust(format!("blocked + {n}")))
            .filter(quota::Column::Id.eq(id))
            .filter(Expr::cust(format!(
                "(size IS NULL OR paid + pending + in_carts + blocked + {n} <= size)"
            )))
            .exec(db)
            .await?;
        if taken.rows_affected != 1 {
            return Err(AppError::refused(
                Reason::SoldOut,
                "not enough left of this quota for the vouchers",
            ));
        }
    }
    Ok(())
}

/// Moves the units of each quota from one counter to another (a checkout moves
/// cart holds to pending orders; a payment moves them to paid).
///
/// # Errors
/// On database errors.
pub async fn shift(
    db: &impl ConnectionTrait,
    units: &Units,
    from: Counter,
    to: Counter,
) -> Result<(), AppError> {
    change(db, units, &[(from, '-'), (to, '+')]).await
}

/// Releases the units of each quota from `counter`.
///
/// # Errors
/// On database errors.
pub async fn release(
    db: &impl ConnectionTrait,
    units: &Units,
    counter: Counter,
) -> Result<(), AppError> {
    change(db, units, &[(counter, '-')]).await
}
