//! Creating accounts.

use sea_orm::{
    ActiveModelTrait, ColumnTrait, ConnectionTrait, DbErr, EntityTrait, PaginatorTrait,
    QueryFilter, Set, SqlErr, TransactionSession, TransactionTrait,
};

use super::journal::{self, action};
use crate::auth::password;
use crate::entities::RoleName;
use crate::entities::{ConsentStatus, ConsentType, UserStatus, consent, profile, user};
use crate::error::{AppError, AppResult, Reason};

/// A username: 3 to 30 characters of letters, digits, `.`, `_` or `-`, stored lower-case.
pub fn normalize_username(raw: &str) -> AppResult<String> {
    let name = raw.trim().to_lowercase();
    // ASCII only: look-alike letters from other scripts (Cyrillic `а`, fullwidth
    // `ａ`) would otherwise make a second "admin".
    let valid_chars = name
        .chars()
        .all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-'));
    if !(3..=30).contains(&name.len()) || !valid_chars {
        return Err(AppError::bad_input(
            "username",
            "3 to 30 letters (a-z), digits, dots, dashes or underscores",
        ));
    }
    Ok(name)
}

/// Locale and time zone of new accounts.
pub const DEFAULT_LOCALE: &str = "fr";
pub const DEFAULT_TIMEZONE: &str = "Europe/Paris";

/// An email address, trimmed and lower-cased, with one `@` and a dotted domain.
pub fn normalize_email(raw: &str) -> AppResult<String> {
    let email = raw.trim().to_lowercase();
    let valid = email.len() <= 254
        && !email.contains(|c: char| c.is_whitespace() || c.is_control())
        && email.split_once('@').is_some_and(|(local, domain)| {
            !local.is_empty()
                && !domain.contains('@')
                && domain.contains('.')
                && !domain.starts_with('.')
                && !domain.ends_with('.')
        });
    if valid {
        Ok(email)
    } else {
        Err(AppError::bad_input("email", "not a valid email address"))
    }
}

/// A phone number: digits with an optional leading `+`, spaces and dashes removed.
pub fn normalize_phone(raw: &str) -> AppResult<Option<String>> {
    let phone: String = raw
        .chars()
        .filter(|c| !matches!(c, ' ' | '-' | '.' | '(' | ')'))
        .collect();
    if phone.is_empty() {
        return Ok(None);
    }
    let digits = phone.strip_prefix('+').unwrap_or(&phone);
    if (6..=15).contains(&digits.len()) && digits.chars().all(|c| c.is_ascii_digit()) {
        Ok(Some(phone))
    } else {
        Err(AppError::bad_input("phone", "not a valid phone number"))
    }
}

/// Whether a username and an email are still free (each `None` when not asked or malformed).
pub async fn availability(
    db: &impl ConnectionTrait,
    username: Option<&str>,
    email: Option<&str>,
) -> AppResult<(Option<bool>, Option<bool>)> {
    let mut result = (None, None);
    if let Some(name) = username.and_then(|u| normalize_username(u).ok()) {
        result.0 = Some(
            user::Entity::find()
                .filter(user::Column::Username.eq(name))
                .count(db)
                .await?
                == 0,
        );
    }
    if let Some(email) = email.and_then(|e| normalize_email(e).ok()) {
        result.1 = Some(
            user::Entity::find()
                .filter(user::Column::Email.eq(email))
                .count(db)
                .await?
                == 0,
        );
    }
    Ok(result)
}

pub struct Registration {
    pub username: String,
    pub email: String,
    pub password: String,
    pub phone: Option<String>,
    pub full_name: Option<String>,
    pub accept_terms: bool,
    pub accept_privacy_policy: bool,
    pub accept_notifications: bool,
}

/// Maps a unique-index violation to the field it concerns.
pub fn conflict(err: DbErr) -> AppError {
    match err.sql_err() {
        Some(SqlErr::UniqueConstraintViolation(message)) if message.contains("email") => {
            AppError::refused(Reason::EmailTaken, "this email is already registered")
        }
        Some(SqlErr::UniqueConstraintViolation(message)) if message.contains("username") => {
            AppError::refused(Reason::UsernameTaken, "this username is taken")
        }
        _ => AppError::from(err),
    }
}

/// Creates a customer account, its profile and its consent history in one transaction.
///
/// # Errors
/// `BAD_USER_INPUT` for malformed fields, a weak password or missing required
/// consents; `CONFLICT` when the username or email is taken (also when two
/// registrations race: the unique indexes decide).
pub async fn register<C: ConnectionTrait + TransactionTrait>(
    db: &C,
    input: Registration,
    ip: Option<&str>,
) -> AppResult<user::Model> {
    let username = normalize_username(&input.username)?;
    let email = normalize_email(&input.email)?;
    let phone = normalize_phone(input.phone.as_deref().unwrap_or_default())?;
    if !input.accept_terms {
        return Err(AppError::bad_input(
            "acceptTerms",
            "the terms of use must be accepted",
        ));
    }
    if !input.accept_privacy_policy {
        return Err(AppError::bad_input(
            "acceptPrivacyPolicy",
            "the privacy policy must be accepted",
        ));
    }
    password::check_policy(&input.password, &username, &email, "password")?;
    let password_hash = password::hash(&input.password).await?;

    // The journal is written after the transaction ends (SQLite has one connection).
    let created = store(db, input, username, email, phone, password_hash).await;
    let account = match created {
        Ok(account) => account,
        Err(taken @ AppError::Refused { .. }) => {
            journal::at(db, ip)
                .failure(None, action::REGISTER, "username or email already taken")
                .await;
            return Err(taken);
        }
        Err(err) => return Err(err),
    };
    journal::at(db, ip)
        .success(Some(account.id), action::REGISTER, "")
        .await;
    Ok(account)
}

/// Inserts the account, its profile, its customer role and its consents in one
/// transaction.
async fn store<C: ConnectionTrait + TransactionTrait>(
    db: &C,
    input: Registration,
    username: String,
    email: String,
    phone: Option<String>,
    password_hash: String,
) -> AppResult<user::Model> {
    let txn = db.begin().await?;
    let now = chrono::Utc::now();
    let full_name = input
        .full_name
        .unwrap_or_default()
        .trim()
        .chars()
        .take(150)
        .collect::<String>();
    let account = user::ActiveModel {
        username: Set(username),
        email: Set(email),
        password_hash: Set(password_hash),
        status: Set(UserStatus::Active),
        is_active: Set(true),
        is_staff: Set(false),
        is_superuser: Set(false),
        failed_attempts: Set(0),
        date_joined: Set(now),
        full_name: Set(full_name.clone()),
        locale: Set(DEFAULT_LOCALE.into()),
        timezone: Set(DEFAULT_TIMEZONE.into()),
        needs_password_change: Set(false),
        auth_backend: Set("native".into()),
        token_version: Set(0),
        created_at: Set(now),
        ..Default::default()
    }
    .insert(&txn)
    .await
    .map_err(conflict)?;
    profile::ActiveModel {
        user_id: Set(account.id),
        name: Set(full_name),
        phone: Set(phone),
        phone_verified: Set(false),
        ..Default::default()
    }
    .insert(&txn)
    .await?;
    super::roles::assign(&txn, account.id, RoleName::Customer).await?;
    for (kind, accepted) in [
        (ConsentType::Terms, true),
        (ConsentType::PrivacyPolicy, true),
        (ConsentType::Notifications, input.accept_notifications),
    ] {
        consent::ActiveModel {
            user_id: Set(account.id),
            consent_type: Set(kind),
            status: Set(if accepted {
                ConsentStatus::Accepted
            } else {
                ConsentStatus::Refused
            }),
            consented_at: Set(now),
            ..Default::default()
        }
        .insert(&txn)
        .await?;
    }
    txn.commit().await?;
    Ok(account)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn usernames_and_emails_are_normalized() {
        assert_eq!(
            normalize_username("  Alice_01 ").ok().as_deref(),
            Some("alice_01")
        );
        assert!(normalize_username("al").is_err());
        assert!(normalize_username("al ice").is_err());
        assert!(
            normalize_username("\u{430}dmin").is_err(),
            "Cyrillic look-alike"
        );
        assert!(normalize_username("ａｄｍｉｎ").is_err(), "fullwidth");
        assert_eq!(
            normalize_email(" Alice@Example.COM ").ok().as_deref(),
            Some("alice@example.com")
        );
        for bad in [
            "alice",
            "alice@",
            "@example.com",
            "a@b",
            "a b@c.d",
            "a@.com",
            "a@b@c.d",
            "a\u{0}b@c.d",
        ] {
            assert!(normalize_email(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn phones_are_normalized() {
        assert_eq!(
            normalize_phone("+33 6 12-34-56-78")
                .ok()
                .flatten()
                .as_deref(),
            Some("+33612345678")
        );
        assert_eq!(normalize_phone("").ok(), Some(None));
        assert!(normalize_phone("call me").is_err());
    }
}
