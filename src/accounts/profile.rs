//! Self-service: profile, consents, account deletion and data export.

use chrono::Utc;
use sea_orm::sea_query::Expr;
use sea_orm::{
    ActiveModelTrait, ColumnTrait, ConnectionTrait, DatabaseConnection, EntityTrait, QueryFilter,
    QueryOrder, Select, Set, TransactionSession, TransactionTrait,
};
use serde_json::{Value, json};

use super::journal::{self, action};
use super::registration::{DEFAULT_LOCALE, DEFAULT_TIMEZONE, normalize_email, normalize_phone};
use super::sessions::{is_current_password, revoke_all};
use crate::auth::rate_limit::RateLimiter;
use crate::auth::tokens::random_token;
use crate::entities::{
    ConsentStatus, ConsentType, UserStatus, auth_method, consent, profile, refresh_token,
    security_log, user, user_role,
};
use crate::error::{AppError, AppResult};

/// Editable account and profile fields; `None` leaves a field as it is.
#[derive(Debug, Default)]
pub struct ProfileChanges {
    pub email: Option<String>,
    pub full_name: Option<String>,
    pub phone: Option<String>,
    pub locale: Option<String>,
    pub timezone: Option<String>,
}

/// Applies profile changes; the account's full name and the profile's name stay in sync.
///
/// # Errors
/// `BAD_USER_INPUT` for malformed values, `CONFLICT` when the email is taken.
pub async fn update(
    db: &impl TransactionTrait,
    user_id: i32,
    changes: ProfileChanges,
) -> AppResult<user::Model> {
    let txn = db.begin().await?;
    let account = super::account(&txn, user_id).await?;
    let mut account_update: user::ActiveModel = account.into();
    let profile_row = profile::Entity::find()
        .filter(profile::Column::UserId.eq(user_id))
        .one(&txn)
        .await?;
    let mut profile_update: profile::ActiveModel = match profile_row {
        Some(row) => row.into(),
        None => profile::ActiveModel {
            user_id: Set(user_id),
            name: Set(String::new()),
            phone_verified: Set(false),
            ..Default::default()
        },
    };
    if let Some(email) = changes.email {
        account_update.email = Set(normalize_email(&email)?);
    }
    if let Some(name) = changes.full_name {
        let name: String = name.trim().chars().take(150).collect();
        account_update.full_name = Set(name.clone());
        profile_update.name = Set(name);
    }
    if let Some(phone) = changes.phone {
        let phone = normalize_phone(&phone)?;
        // A new number has not been verified yet.
        profile_update.phone_verified = Set(false);
        profile_update.phone = Set(phone);
    }
    if let Some(locale) = changes.locale {
        let valid = (2..=16).contains(&locale.len())
            && locale
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_');
        if !valid {
            return Err(AppError::bad_input(
                "locale",
                "a language tag such as fr or en-GB",
            ));
        }
        account_update.locale = Set(locale);
    }
    if let Some(timezone) = changes.timezone {
        let valid = (1..=64).contains(&timezone.len())
            && timezone
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || "/_+-".contains(c));
        if !valid {
            return Err(AppError::bad_input(
                "timezone",
                "an IANA time zone such as Europe/Paris",
            ));
        }
        account_update.timezone = Set(timezone);
    }
    let account = account_update
        .update(&txn)
        .await
        .map_err(super::registration::conflict)?;
    profile_update.save(&txn).await?;
    txn.commit().await?;
    Ok(account)
}

/// Consent decisions, newest first.
pub fn consents_newest_first() -> Select<consent::Entity> {
    consent::Entity::find()
        .order_by_desc(consent::Column::ConsentedAt)
        .order_by_desc(consent::Column::Id)
}

pub async fn consents(
    db: &impl ConnectionTrait,
    user_ids: &[i32],
) -> AppResult<Vec<consent::Model>> {
    Ok(consents_newest_first()
        .filter(consent::Column::UserId.is_in(user_ids.iter().copied()))
        .all(db)
        .await?)
}

/// Records a new notifications preference (the history is append-only).
pub async fn set_notifications(
    db: &impl ConnectionTrait,
    user_id: i32,
    accepted: bool,
) -> AppResult<consent::Model> {
    Ok(consent::ActiveModel {
        user_id: Set(user_id),
        consent_type: Set(ConsentType::Notifications),
        status: Set(if accepted {
            ConsentStatus::Accepted
        } else {
            ConsentStatus::Refused
        }),
        consented_at: Set(Utc::now()),
        ..Default::default()
    }
    .insert(db)
    .await?)
}

/// Deletes an account: personal data is erased and the row is anonymized, so the
/// journal (and, as they land, orders and payments) keep a de-identified owner.
///
/// # Errors
/// `NOT_FOUND` for unknown users.
pub async fn anonymize(db: &DatabaseConnection, user_id: i32, detail: &str) -> AppResult<()> {
    let txn = db.begin().await?;
    let account = super::account(&txn, user_id).await?;
    let mut active: user::ActiveModel = account.into();
    // Neither value passes registration's rules (':' is never in a username,
    // and there is no '@'), so nobody can take them first and block a deletion.
    active.username = Set(format!("deleted:{user_id}"));
    active.email = Set(format!("deleted:{user_id}"));
    active.password_hash = Set(format!("!{}", random_token()?));
    active.full_name = Set(String::new());
    active.status = Set(UserStatus::Archived);
    active.is_active = Set(false);
    active.is_staff = Set(false);
    active.is_superuser = Set(false);
    active.auth_backend_identifier = Set(None);
    active.last_login = Set(None);
    active.locale = Set(DEFAULT_LOCALE.to_owned());
    active.timezone = Set(DEFAULT_TIMEZONE.to_owned());
    active.deleted_at = Set(Some(Utc::now()));
    active.update(&txn).await?;
    profile::Entity::update_many()
        .col_expr(profile::Column::Name, Expr::value(""))
        .col_expr(profile::Column::Phone, Expr::value(Option::<String>::None))
        .col_expr(profile::Column::PhoneVerified, Expr::value(false))
        .filter(profile::Column::UserId.eq(user_id))
        .exec(&txn)
        .await?;
    auth_method::Entity::delete_many()
        .filter(auth_method::Column::UserId.eq(user_id))
        .exec(&txn)
        .await?;
    user_role::Entity::delete_many()
        .filter(user_role::Column::UserId.eq(user_id))
        .exec(&txn)
        .await?;
    revoke_all(&txn, user_id).await?;
    // Sign-ins carry IPs and user agents; once revoked they serve no purpose.
    refresh_token::Entity::delete_many()
        .filter(refresh_token::Column::UserId.eq(user_id))
        .exec(&txn)
        .await?;
    // IPs in the journal are personal data too; the events themselves stay.
    security_log::Entity::update_many()
        .col_expr(
            security_log::Column::Ip,
            Expr::value(Option::<String>::None),
        )
        .filter(security_log::Column::UserId.eq(user_id))
        .exec(&txn)
        .await?;
    txn.commit().await?;
    // The deletion is journaled without the IP: it is the deleted person's data.
    journal::at(db, None)
        .success(Some(user_id), action::ACCOUNT_DELETE, detail)
        .await;
    Ok(())
}

/// The signed-in user's own profile changes. Changing the email, the address
/// that identifies the account, needs the current password, and is journaled.
///
/// # Errors
/// As [`update`]; `BAD_USER_INPUT` on `currentPassword` when an email change
/// comes without the right password.
pub async fn update_own(
    db: &DatabaseConnection,
    limiter: &RateLimiter,
    user_id: i32,
    changes: ProfileChanges,
    current_password: Option<&str>,
    ip: Option<&str>,
) -> AppResult<user::Model> {
    let account = user::Entity::find_by_id(user_id)
        .one(db)
        .await?
        .ok_or(AppError::Unauthenticated)?;
    let new_email = changes
        .email
        .as_deref()
        .map(normalize_email)
        .transpose()?
        .filter(|email| *email != account.email);
    if new_email.is_some() {
        let confirmed = match current_password {
            Some(attempt) => is_current_password(limiter, &account, attempt).await?,
            None => false,
        };
        if !confirmed {
            journal::at(db, ip)
                .failure(
                    Some(user_id),
                    action::ACCOUNT_UPDATE,
                    "email change without the right password",
                )
                .await;
            return Err(AppError::bad_input(
                "currentPassword",
                "changing the email needs the current password",
            ));
        }
    }
    let updated = update(db, user_id, changes).await?;
    if new_email.is_some() {
        journal::at(db, ip)
            .success(Some(user_id), action::ACCOUNT_UPDATE, "email changed")
            .await;
    }
    Ok(updated)
}

/// Deletes the signed-in user's own account after checking the password.
///
/// # Errors
/// `BAD_USER_INPUT` on `password` when it is wrong.
pub async fn delete_own(
    db: &DatabaseConnection,
    limiter: &RateLimiter,
    user_id: i32,
    password_attempt: &str,
    ip: Option<&str>,
) -> AppResult<()> {
    let account = user::Entity::find_by_id(user_id)
        .one(db)
        .await?
        .ok_or(AppError::Unauthenticated)?;
    if !is_current_password(limiter, &account, password_attempt).await? {
        journal::at(db, ip)
            .failure(Some(user_id), action::ACCOUNT_DELETE, "wrong password")
            .await;
        return Err(AppError::bad_input("password", "the password is wrong"));
    }
    anonymize(db, user_id, "deleted by its owner").await
}

/// Everything held about a user, as one JSON document.
pub async fn export(db: &impl ConnectionTrait, user_id: i32) -> AppResult<Value> {
    let account = super::account(db, user_id).await?;
    let profile = profile::Entity::find()
        .filter(profile::Column::UserId.eq(user_id))
        .one(db)
        .await?;
    let consents = consents(db, &[user_id]).await?;
    let methods = auth_method::Entity::find()
        .filter(auth_method::Column::UserId.eq(user_id))
        .all(db)
        .await?;
    let journal = security_log::Entity::find()
        .filter(security_log::Column::UserId.eq(user_id))
        .order_by_desc(security_log::Column::OccurredAt)
        .all(db)
        .await?;
    let roles: Vec<&str> = super::roles::held_by(db, &[user_id])
        .await?
        .remove(&user_id)
        .unwrap_or_default()
        .into_iter()
        .map(crate::entities::RoleName::as_str)
        .collect();
    let sessions = refresh_token::Entity::find()
        .filter(refresh_token::Column::UserId.eq(user_id))
        .order_by_desc(refresh_token::Column::IssuedAt)
        .all(db)
        .await?;
    Ok(json!({
        "exportedAt": Utc::now(),
        "account": {
            "username": account.username, "email": account.email, "status": account.status,
            "fullName": account.full_name, "locale": account.locale, "timezone": account.timezone,
            "isStaff": account.is_staff, "dateJoined": account.date_joined, "lastLogin": account.last_login,
            "roles": roles,
        },
        "profile": profile.map(|p| json!({ "name": p.name, "phone": p.phone, "phoneVerified": p.phone_verified })),
        "consents": consents.iter().map(|c| json!({ "type": c.consent_type, "status": c.status, "at": c.consented_at })).collect::<Vec<_>>(),
        "authMethods": methods.iter().map(|m| json!({ "hint": m.display_value, "active": m.is_active, "createdAt": m.created_at, "revokedAt": m.revoked_at })).collect::<Vec<_>>(),
        "sessions": sessions.iter().map(|s| json!({ "issuedAt": s.issued_at, "expiresAt": s.expires_at, "ip": s.ip, "userAgent": s.user_agent, "revokedAt": s.revoked_at })).collect::<Vec<_>>(),
        "securityJournal": journal.iter().map(|j| json!({ "action": j.action, "status": j.status, "ip": j.ip, "at": j.occurred_at, "detail": j.detail })).collect::<Vec<_>>(),
        // Reservations, charging sessions, orders and tickets join this export as their domains land.
    }))
}

/// The newest security events of a user.
pub async fn journal_of(
    db: &impl ConnectionTrait,
    user_id: i32,
    limit: u64,
) -> AppResult<Vec<security_log::Model>> {
    use sea_orm::QuerySelect;
    Ok(security_log::Entity::find()
        .filter(security_log::Column::UserId.eq(user_id))
        .order_by_desc(security_log::Column::OccurredAt)
        .order_by_desc(security_log::Column::Id)
        .limit(limit)
        .all(db)
        .await?)
}

/// Marks a note in the journal that the user read their export (accountability of disclosures).
pub async fn record_export(db: &impl ConnectionTrait, user_id: i32, ip: Option<&str>) {
    journal::at(db, ip)
        .success(Some(user_id), action::EXPORT, "")
        .await;
}
