//! Badge linking at a kiosk: a signed-in customer asks for a one-use code for
//! one cabinet ([`create`]), types it at that cabinet's kiosk and scans their
//! badge; the kiosk sends both ([`link`]) and the badge is saved to the
//! customer's account like `addRfidBadge` does (keyed hash, one account per
//! badge).
//!
//! The code is 8 digits, valid [`CODE_TTL`], stored as a SHA-256 over the
//! cabinet and the code (so it opens nothing at another cabinet), and used once:
//! a conditional `UPDATE` claims it in the transaction that saves the badge.
//! Asking for a new code ends the customer's previous one. Wrong codes are
//! stored per cabinet and counted over the kiosk failure window: past
//! [`FAILURES_PER_KIOSK`] the kiosk is `RATE_LIMITED`, so 10^8 codes cannot be
//! tried. The answer never says whether a code was wrong, expired, used or
//! meant for another kiosk.

use chrono::{DateTime, TimeDelta, Utc};
use sea_orm::sea_query::Expr;
use sea_orm::{
    ActiveModelTrait, ColumnTrait, EntityTrait, PaginatorTrait, QueryFilter, Set, TransactionTrait,
};

use crate::accounts::badges;
use crate::auth::tokens::sha256_hex;
use crate::entities::{auth_method, badge_link_code, badge_link_failure, cabinet};
use crate::error::{AppError, AppResult, Reason};
use crate::services::ServiceContext;

/// How long a linking code is valid.
pub const CODE_TTL: TimeDelta = TimeDelta::minutes(10);

/// Wrong codes at one kiosk within the kiosk failure window before it is refused.
pub const FAILURES_PER_KIOSK: u64 = 10;

/// Digits of a linking code.
const CODE_DIGITS: usize = 8;

fn code_hash(cabinet_id: i32, code: &str) -> String {
    sha256_hex(&format!("badge-link:{cabinet_id}:{code}"))
}

fn random_code() -> AppResult<String> {
    let mut bytes = [0_u8; CODE_DIGITS];
    getrandom::fill(&mut bytes)
        .map_err(|e| AppError::internal(anyhow::anyhow!("the system random source failed: {e}")))?;
    // 256 is not a multiple of 10; the bias (under 1 %) costs a guesser nothing usable.
    Ok(bytes.iter().map(|b| char::from(b'0' + b % 10)).collect())
}

/// A code just issued: the only time it exists in clear.
pub struct IssuedCode {
    pub code: String,
    pub row: badge_link_code::Model,
}

impl std::fmt::Debug for IssuedCode {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("IssuedCode")
            .field("id", &self.row.id)
            .finish_non_exhaustive()
    }
}

/// Issues `user_id` a code for `cabinet_id`'s kiosk, ending their previous one.
///
/// # Errors
/// `NOT_FOUND` for an unknown cabinet.
pub async fn create(
    services: &ServiceContext,
    user_id: i32,
    cabinet_id: i32,
) -> AppResult<IssuedCode> {
    let now = services.now();
    let txn = services.db.begin().await?;
    cabinet::Entity::find_by_id(cabinet_id)
        .one(&txn)
        .await?
        .ok_or(AppError::not_found("cabinet"))?;
    badge_link_code::Entity::update_many()
        .col_expr(
            badge_link_code::Column::ExpiresAtUs,
            Expr::value(now.timestamp_micros()),
        )
        .filter(badge_link_code::Column::UserId.eq(user_id))
        .filter(badge_link_code::Column::UsedAt.is_null())
        .filter(badge_link_code::Column::ExpiresAtUs.gt(now.timestamp_micros()))
        .exec(&txn)
        .await?;
    let code = random_code()?;
    let row = badge_link_code::ActiveModel {
        user_id: Set(user_id),
        cabinet_id: Set(cabinet_id),
        code_hash: Set(code_hash(cabinet_id, &code)),
        expires_at_us: Set((now + CODE_TTL).timestamp_micros()),
        used_at: Set(None),
        auth_method_id: Set(None),
        created_at: Set(now),
        ..Default::default()
    }
    .insert(&txn)
    .await?;
    txn.commit().await?;
    Ok(IssuedCode { code, row })
}

/// When `row` stops being valid.
pub fn expires_at(row: &badge_link_code::Model) -> DateTime<Utc> {
    DateTime::from_timestamp_micros(row.expires_at_us).unwrap_or_default()
}

async fn check_failures(
    services: &ServiceContext,
    cabinet_id: i32,
    now: DateTime<Utc>,
) -> AppResult<()> {
    let since = (now - services.kiosks.failure_window()).timestamp_micros();
    let failures = badge_link_failure::Entity::find()
        .filter(badge_link_failure::Column::CabinetId.eq(cabinet_id))
        .filter(badge_link_failure::Column::CreatedAtUs.gt(since))
        .count(&services.db)
        .await?;
    if failures >= FAILURES_PER_KIOSK {
        tracing::warn!(
            cabinet = cabinet_id,
            security = true,
            "badge linking rate-limited"
        );
        return Err(AppError::RateLimited);
    }
    Ok(())
}

fn refused() -> AppError {
    AppError::refused(
        Reason::InvalidCredential,
        "this code links no badge at this kiosk",
    )
}

/// A kiosk links the scanned badge `raw_uid` to the account that issued `code`
/// for its cabinet.
///
/// # Errors
/// `BAD_USER_INPUT` (`code`, `uid`) for malformed input; `RATE_LIMITED` after
/// too many wrong codes at this kiosk; `FORBIDDEN` with `INVALID_CREDENTIAL`
/// when the code is wrong, expired, used or another kiosk's; `CONFLICT` with
/// `BADGE_TAKEN` when the badge is on an account already (the code stays usable).
pub async fn link(
    services: &ServiceContext,
    cabinet_id: i32,
    code: &str,
    raw_uid: &str,
) -> AppResult<auth_method::Model> {
    let now = services.now();
    let code = code.trim();
    if code.len() != CODE_DIGITS || !code.chars().all(|c| c.is_ascii_digit()) {
        return Err(AppError::bad_input("code", "8 digits"));
    }
    badges::normalize_uid(raw_uid)?;
    check_failures(services, cabinet_id, now).await?;
    let found = badge_link_code::Entity::find()
        .filter(badge_link_code::Column::CodeHash.eq(code_hash(cabinet_id, code)))
        .filter(badge_link_code::Column::CabinetId.eq(cabinet_id))
        .filter(badge_link_code::Column::UsedAt.is_null())
        .filter(badge_link_code::Column::ExpiresAtUs.gt(now.timestamp_micros()))
        .one(&services.db)
        .await?;
    let Some(found) = found else {
        badge_link_failure::ActiveModel {
            cabinet_id: Set(cabinet_id),
            created_at_us: Set(now.timestamp_micros()),
            ..Default::default()
        }
        .insert(&services.db)
        .await?;
        tracing::info!(
            cabinet = cabinet_id,
            security = true,
            "badge linking code refused"
        );
        return Err(refused());
    };
    let txn = services.db.begin().await?;
    let claimed = badge_link_code::Entity::update_many()
        .col_expr(badge_link_code::Column::UsedAt, Expr::value(now))
        .filter(badge_link_code::Column::Id.eq(found.id))
        .filter(badge_link_code::Column::UsedAt.is_null())
        .exec(&txn)
        .await?;
    if claimed.rows_affected != 1 {
        return Err(refused());
    }
    let badge = badges::add(
        &txn,
        &services.badge_keys,
        found.user_id,
        raw_uid,
        Some("Linked at a kiosk"),
        None,
    )
    .await?;
    badge_link_code::Entity::update_many()
        .col_expr(badge_link_code::Column::AuthMethodId, Expr::value(badge.id))
        .filter(badge_link_code::Column::Id.eq(found.id))
        .exec(&txn)
        .await?;
    txn.commit().await?;
    tracing::info!(
        cabinet = cabinet_id,
        user = found.user_id,
        badge = badge.id,
        "badge linked at a kiosk"
    );
    Ok(badge)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn codes_are_eight_digits_and_bound_to_their_cabinet() {
        let code = random_code().expect("random");
        assert_eq!(code.len(), CODE_DIGITS);
        assert!(code.chars().all(|c| c.is_ascii_digit()));
        assert_ne!(code_hash(1, &code), code_hash(2, &code));
    }
}
