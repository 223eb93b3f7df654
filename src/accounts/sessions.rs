//! Signing in and out, refreshing sessions, changing passwords.

use chrono::{DateTime, TimeDelta, Utc};
use sea_orm::sea_query::{Expr, ExprTrait};
use sea_orm::{
    ActiveModelTrait, ColumnTrait, Condition, ConnectionTrait, DatabaseConnection, EntityTrait,
    QueryFilter, Set, TransactionTrait,
};
use uuid::Uuid;

use super::RequestMeta;
use super::journal::{self, action};
use super::registration::{normalize_email, normalize_username};
use crate::auth::rate_limit::{Limit, RateLimiter, ip_key};
use crate::auth::tokens::{TokenKeys, random_token, sha256_hex};
use crate::auth::{Person, password};
use crate::entities::{refresh_token, user};
use crate::error::{AppError, AppResult};

/// Failed sign-ins allowed before the account locks.
pub const LOCK_AFTER_FAILURES: i32 = 5;
/// First lock duration; each further failure doubles it, up to [`MAX_LOCK`].
const FIRST_LOCK: TimeDelta = TimeDelta::seconds(30);
const MAX_LOCK: TimeDelta = TimeDelta::hours(1);

pub const LOGIN_PER_IP: Limit = Limit {
    max: 30,
    window: std::time::Duration::from_secs(60),
};
pub const LOGIN_PER_ACCOUNT: Limit = Limit {
    max: 10,
    window: std::time::Duration::from_secs(60),
};

/// Checks of a signed-in account's current password (changing it or the email,
/// deleting the account): a stolen session must not be able to guess it.
const PASSWORD_CHECKS_PER_ACCOUNT: Limit = Limit {
    max: 5,
    window: std::time::Duration::from_secs(900),
};

/// Whether `attempt` is the account's current password, within the account's
/// budget of such checks.
///
/// # Errors
/// `RATE_LIMITED` beyond [`PASSWORD_CHECKS_PER_ACCOUNT`].
pub async fn is_current_password(
    limiter: &RateLimiter,
    account: &user::Model,
    attempt: &str,
) -> AppResult<bool> {
    limiter.hit(
        &format!("password-check:{}", account.id),
        PASSWORD_CHECKS_PER_ACCOUNT,
    )?;
    Ok(password::verify(attempt, &account.password_hash).await)
}

/// A signed-in session: what the client keeps.
#[derive(Debug, Clone)]
pub struct Session {
    pub access_token: String,
    pub access_expires_at: DateTime<Utc>,
    pub refresh_token: String,
    pub refresh_expires_at: DateTime<Utc>,
    pub user: user::Model,
}

/// How long an account stays locked after `failures` consecutive failures.
pub fn lock_duration(failures: i32) -> Option<TimeDelta> {
    let beyond = failures - LOCK_AFTER_FAILURES;
    (beyond >= 0).then(|| {
        Ord::min(
            FIRST_LOCK * 2_i32.saturating_pow(Ord::min(beyond, 10) as u32),
            MAX_LOCK,
        )
    })
}

/// The sign-in a refresh token continues: its family and when it ends.
#[derive(Debug, Clone, Copy)]
pub struct SignIn {
    pub family: Uuid,
    pub expires_at: DateTime<Utc>,
}

/// Issues an access token and a refresh token, for a new sign-in or continuing
/// `sign_in`. A sign-in keeps the expiry it started with: refreshing renews the
/// tokens, never the sign-in's lifetime.
pub async fn issue(
    db: &impl ConnectionTrait,
    keys: &TokenKeys,
    account: user::Model,
    sign_in: Option<SignIn>,
    meta: &RequestMeta,
) -> AppResult<Session> {
    let now = meta.now();
    let (access_token, access_expires_at) =
        keys.issue_access(account.id, account.token_version, now)?;
    let refresh = random_token()?;
    let sign_in = sign_in.unwrap_or_else(|| SignIn {
        family: Uuid::new_v4(),
        expires_at: now + keys.refresh_ttl,
    });
    let refresh_expires_at = sign_in.expires_at;
    refresh_token::ActiveModel {
        user_id: Set(account.id),
        family_id: Set(sign_in.family),
        token_hash: Set(sha256_hex(&refresh)),
        issued_at: Set(now),
        expires_at: Set(refresh_expires_at),
        ip: Set(meta.ip.clone()),
        user_agent: Set(meta
            .user_agent
            .as_ref()
            .map(|ua| ua.chars().take(255).collect())),
        ..Default::default()
    }
    .insert(db)
    .await?;
    Ok(Session {
        access_token,
        access_expires_at,
        refresh_token: refresh,
        refresh_expires_at,
        user: account,
    })
}

fn invalid_credentials() -> AppError {
    AppError::Unauthenticated
}

/// Signs in by username or email.
///
/// Unknown accounts and wrong passwords get the same error after the same work,
/// so the answer does not tell whether an account exists.
///
/// # Errors
/// `UNAUTHENTICATED` for bad credentials, `RATE_LIMITED` while locked or over the
/// rate limits, `FORBIDDEN` for a suspended or archived account (after a correct password).
pub async fn login(
    db: &DatabaseConnection,
    keys: &TokenKeys,
    limiter: &RateLimiter,
    login: &str,
    password_attempt: &str,
    meta: &RequestMeta,
) -> AppResult<Session> {
    let ip = meta.ip.as_deref();
    let key = login.trim().to_lowercase();
    limiter.hit(&format!("login:ip:{}", ip_key(ip)), LOGIN_PER_IP)?;
    limiter.hit(&format!("login:account:{key}"), LOGIN_PER_ACCOUNT)?;

    let by = if key.contains('@') {
        normalize_email(&key).map(|e| user::Column::Email.eq(e))
    } else {
        normalize_username(&key).map(|u| user::Column::Username.eq(u))
    };
    let account = match by {
        Ok(condition) => user::Entity::find().filter(condition).one(db).await?,
        Err(_) => None,
    };
    let Some(account) = account else {
        // An unknown account locks like a real one (same failures, same delays),
        // so a lockout does not tell which accounts exist.
        let unknown = format!("login:unknown:{key}");
        let (failures, since_last) = limiter.failures(&unknown);
        let locked = lock_duration(i32::try_from(failures).unwrap_or(i32::MAX))
            .and_then(|d| d.to_std().ok())
            .is_some_and(|d| since_last < d);
        if !locked {
            password::verify_nobody(password_attempt).await;
            limiter.record_failure(&unknown);
        }
        journal::at(db, ip)
            .failure(
                None,
                action::LOGIN,
                if locked { "locked" } else { "unknown account" },
            )
            .await;
        return Err(if locked {
            AppError::RateLimited
        } else {
            invalid_credentials()
        });
    };
    let now = meta.now();
    if account.locked_until.is_some_and(|until| until > now) {
        journal::at(db, ip)
            .failure(Some(account.id), action::LOGIN, "locked")
            .await;
        return Err(AppError::RateLimited);
    }
    if !password::verify(password_attempt, &account.password_hash).await {
        // Counted in SQL so concurrent failures are all counted, and the lock is
        // set from the count that update produced, not from the earlier read.
        let counted = user::Entity::update_many()
            .col_expr(
                user::Column::FailedAttempts,
                Expr::col(user::Column::FailedAttempts).add(1),
            )
            .filter(user::Column::Id.eq(account.id))
            .exec_with_returning(db)
            .await?;
        let failures = counted
            .first()
            .map_or(account.failed_attempts + 1, |a| a.failed_attempts);
        if let Some(lock) = lock_duration(failures) {
            user::Entity::update_many()
                .col_expr(user::Column::LockedUntil, Expr::value(Some(now + lock)))
                .filter(user::Column::Id.eq(account.id))
                .exec(db)
                .await?;
        }
        journal::at(db, ip)
            .failure(Some(account.id), action::LOGIN, "wrong password")
            .await;
        return Err(invalid_credentials());
    }
    if !account.can_sign_in() {
        journal::at(db, ip)
            .failure(Some(account.id), action::LOGIN, "account not active")
            .await;
        return Err(AppError::Forbidden);
    }
    let mut active: user::ActiveModel = account.into();
    active.failed_attempts = Set(0);
    active.locked_until = Set(None);
    active.last_login = Set(Some(now));
    let account = active.update(db).await?;
    let session = issue(db, keys, account, None, meta).await?;
    journal::at(db, ip)
        .success(Some(session.user.id), action::LOGIN, "")
        .await;
    Ok(session)
}

/// Trades a refresh token for a new session of the same sign-in.
///
/// The token is spent by a conditional `UPDATE`, so of two concurrent uses only
/// one succeeds; a token presented again revokes its whole family. The exchange
/// is one transaction that first locks the account's row, as [`revoke_all`]
/// does: a refresh racing a password change either sees its token revoked or
/// has the token it issues revoked by it, never outlives it.
///
/// # Errors
/// `UNAUTHENTICATED` for unknown, expired, revoked or reused tokens and accounts that cannot sign in.
pub async fn refresh(
    db: &DatabaseConnection,
    keys: &TokenKeys,
    token: &str,
    meta: &RequestMeta,
) -> AppResult<Session> {
    let ip = meta.ip.as_deref();
    let hash = sha256_hex(token);
    let Some(stored) = refresh_token::Entity::find()
        .filter(refresh_token::Column::TokenHash.eq(hash))
        .one(db)
        .await?
    else {
        journal::at(db, ip)
            .failure(None, action::REFRESH, "unknown refresh token")
            .await;
        return Err(AppError::Unauthenticated);
    };
    let failed = |detail: &'static str| async move {
        journal::at(db, ip)
            .failure(Some(stored.user_id), action::REFRESH, detail)
            .await;
        AppError::Unauthenticated
    };
    let now = meta.now();
    let txn = db.begin().await?;
    lock_account(&txn, stored.user_id).await?;
    let spent = refresh_token::Entity::update_many()
        .col_expr(refresh_token::Column::UsedAt, Expr::value(now))
        .filter(refresh_token::Column::Id.eq(stored.id))
        .filter(refresh_token::Column::UsedAt.is_null())
        .filter(refresh_token::Column::RevokedAt.is_null())
        .exec(&txn)
        .await?;
    if spent.rows_affected == 0 {
        revoke_family(&txn, stored.family_id).await?;
        txn.commit().await?;
        journal::at(db, ip)
            .failure(
                Some(stored.user_id),
                action::REFRESH_REUSE,
                "spent token presented; sign-in revoked",
            )
            .await;
        return Err(AppError::Unauthenticated);
    }
    if stored.expires_at <= now {
        txn.rollback().await?;
        return Err(failed("sign-in expired").await);
    }
    let account = user::Entity::find_by_id(stored.user_id)
        .one(&txn)
        .await?
        .ok_or(AppError::Unauthenticated)?;
    if !account.can_sign_in() {
        revoke_family(&txn, stored.family_id).await?;
        txn.commit().await?;
        return Err(failed("account not active").await);
    }
    let sign_in = SignIn {
        family: stored.family_id,
        expires_at: stored.expires_at,
    };
    let session = issue(&txn, keys, account, Some(sign_in), meta).await?;
    txn.commit().await?;
    journal::at(db, ip)
        .success(Some(session.user.id), action::REFRESH, "")
        .await;
    Ok(session)
}

/// Takes the account row's write lock for the rest of the transaction (a no-op
/// update, which every database supports), so that session changes of one
/// account run one after the other.
async fn lock_account(db: &impl ConnectionTrait, user_id: i32) -> AppResult<()> {
    user::Entity::update_many()
        .col_expr(
            user::Column::TokenVersion,
            Expr::col(user::Column::TokenVersion),
        )
        .filter(user::Column::Id.eq(user_id))
        .exec(db)
        .await?;
    Ok(())
}

/// Ends the sign-in a refresh token belongs to. Unknown tokens are ignored.
pub async fn logout(db: &DatabaseConnection, token: &str, meta: &RequestMeta) -> AppResult<()> {
    let stored = refresh_token::Entity::find()
        .filter(refresh_token::Column::TokenHash.eq(sha256_hex(token)))
        .one(db)
        .await?;
    if let Some(stored) = stored {
        revoke_family(db, stored.family_id).await?;
        journal::at(db, meta.ip.as_deref())
            .success(Some(stored.user_id), action::LOGOUT, "")
            .await;
    }
    Ok(())
}

async fn revoke_family(db: &impl ConnectionTrait, family: Uuid) -> AppResult<()> {
    refresh_token::Entity::update_many()
        .col_expr(refresh_token::Column::RevokedAt, Expr::value(Utc::now()))
        .filter(refresh_token::Column::FamilyId.eq(family))
        .filter(refresh_token::Column::RevokedAt.is_null())
        .exec(db)
        .await?;
    Ok(())
}

/// Ends every session of a user: refresh tokens revoked, access tokens outdated.
///
/// The account row is updated first, which locks it: a concurrent [`refresh`]
/// waits, and its new token is then revoked here too (see there).
pub async fn revoke_all(db: &impl ConnectionTrait, user_id: i32) -> AppResult<()> {
    outdate_access_tokens(db, user_id).await?;
    refresh_token::Entity::update_many()
        .col_expr(refresh_token::Column::RevokedAt, Expr::value(Utc::now()))
        .filter(
            Condition::all()
                .add(refresh_token::Column::UserId.eq(user_id))
                .add(refresh_token::Column::RevokedAt.is_null()),
        )
        .exec(db)
        .await?;
    Ok(())
}

/// Makes every access token of a user stale (its `token_version` moves on), so
/// requests and live subscriptions holding one are refused at once; refresh
/// tokens keep working and mint tokens that carry the account's current rights.
/// Used whenever what a token stands for changes: status, password, staff
/// access, roles.
pub async fn outdate_access_tokens(db: &impl ConnectionTrait, user_id: i32) -> AppResult<()> {
    user::Entity::update_many()
        .col_expr(
            user::Column::TokenVersion,
            Expr::col(user::Column::TokenVersion).add(1),
        )
        .filter(user::Column::Id.eq(user_id))
        .exec(db)
        .await?;
    Ok(())
}

/// Changes the signed-in user's password; every other session ends and a fresh
/// one is returned for this client.
///
/// # Errors
/// `UNAUTHENTICATED` when the current password is wrong, `BAD_USER_INPUT` for a weak new one.
pub async fn change_password(
    db: &DatabaseConnection,
    keys: &TokenKeys,
    limiter: &RateLimiter,
    principal: &Person,
    current: &str,
    new: &str,
    meta: &RequestMeta,
) -> AppResult<Session> {
    let ip = meta.ip.as_deref();
    let account = user::Entity::find_by_id(principal.id)
        .one(db)
        .await?
        .ok_or(AppError::Unauthenticated)?;
    if !is_current_password(limiter, &account, current).await? {
        journal::at(db, ip)
            .failure(
                Some(account.id),
                action::PASSWORD_CHANGE,
                "wrong current password",
            )
            .await;
        return Err(AppError::bad_input(
            "currentPassword",
            "the current password is wrong",
        ));
    }
    password::check_policy(new, &account.username, &account.email, "newPassword")?;
    if password::verify(new, &account.password_hash).await {
        return Err(AppError::bad_input(
            "newPassword",
            "the new password must differ from the current one",
        ));
    }
    let hash = password::hash(new).await?;
    let txn = db.begin().await?;
    revoke_all(&txn, account.id).await?;
    let mut active: user::ActiveModel = account.into();
    active.password_hash = Set(hash);
    active.needs_password_change = Set(false);
    let account = active.update(&txn).await?;
    let account = user::Entity::find_by_id(account.id)
        .one(&txn)
        .await?
        .ok_or(AppError::Unauthenticated)?;
    txn.commit().await?;
    journal::at(db, ip)
        .success(Some(account.id), action::PASSWORD_CHANGE, "")
        .await;
    issue(db, keys, account, None, meta).await
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn locks_grow_with_failures_and_are_capped() {
        assert_eq!(lock_duration(4), None);
        assert_eq!(lock_duration(5), Some(TimeDelta::seconds(30)));
        assert_eq!(lock_duration(6), Some(TimeDelta::seconds(60)));
        assert_eq!(lock_duration(9), Some(TimeDelta::seconds(480)));
        assert_eq!(lock_duration(40), Some(TimeDelta::hours(1)));
    }
}
