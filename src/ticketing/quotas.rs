//! Quota counters, changed only by conditional `UPDATE`s.
//!
//! Taking units is one `UPDATE quotas SET in_carts = in_carts + n WHERE id = ?
//! AND paid + pending + in_carts + n <= size`: the database decides, under the
//! row's lock, whether the units are left, so concurrent buyers on any number
//! of replicas can never oversell (PostgreSQL re-checks the condition on the
//! row a waiting `UPDATE` finds after the lock holder commits; SQLite has one
//! writer). Quotas are updated in id order, so transactions taking several
//! never deadlock. Units then move between the counters (`in_carts` →
//! `pending` → `paid`) or are released, in the transaction that changes the
//! positions holding them.
//!
//! Vouchers that block quota keep units in the `blocked` counter, taken by
//! [`block`] under the same condition; every condition counts them, so what
//! vouchers keep is never sold to anyone else.

use std::collections::BTreeMap;

use sea_orm::sea_query::Expr;
use sea_orm::{ColumnTrait, ConnectionTrait, EntityTrait, QueryFilter};

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

/// Takes the units of each quota for carts, or none of them: `SOLD_OUT` when
/// one has fewer than `n` left (the caller's transaction then rolls back).
///
/// # Errors
/// `SOLD_OUT`; on database errors.
pub async fn hold(db: &impl ConnectionTrait, units: &Units) -> Result<(), AppError> {
    for (&id, &n) in units {
        let taken = quota::Entity::update_many()
            .col_expr(
                quota::Column::InCarts,
                Expr::cust(format!("in_carts + {n}")),
            )
            .filter(quota::Column::Id.eq(id))
            .filter(Expr::cust(format!(
                "(size IS NULL OR paid + pending + in_carts + blocked + {n} <= size)"
            )))
            .exec(db)
            .await?;
        if taken.rows_affected != 1 {
            return Err(AppError::refused(
                Reason::SoldOut,
                "not enough left of this product",
            ));
        }
    }
    Ok(())
}

/// Takes the units of each quota for vouchers that block quota, or none of
/// them: `SOLD_OUT` when one has fewer than `n` left, as [`hold`].
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
    for (&id, &n) in units {
        quota::Entity::update_many()
            .col_expr(
                from.entity_column(),
                Expr::cust(format!("{} - {n}", from.column())),
            )
            .col_expr(
                to.entity_column(),
                Expr::cust(format!("{} + {n}", to.column())),
            )
            .filter(quota::Column::Id.eq(id))
            .exec(db)
            .await?;
    }
    Ok(())
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
    for (&id, &n) in units {
        quota::Entity::update_many()
            .col_expr(
                counter.entity_column(),
                Expr::cust(format!("{} - {n}", counter.column())),
            )
            .filter(quota::Column::Id.eq(id))
            .exec(db)
            .await?;
    }
    Ok(())
}
