//! Saved authentication methods (`Authentification`): RFID badges.
//!
//! A badge UID is stored only as its SHA-256 and shown as a hint (its last four
//! characters). An active badge belongs to one account at a time, which a
//! partial unique index enforces even when two registrations race.

use chrono::Utc;
use sea_orm::{
    ActiveModelTrait, ColumnTrait, ConnectionTrait, DatabaseConnection, EntityTrait,
    PaginatorTrait, QueryFilter, QueryOrder, Select, Set, SqlErr,
};
use serde_json::json;

use super::journal::{self, action};
use crate::auth::tokens::sha256_hex;
use crate::entities::{auth_method, auth_type};
use crate::error::{AppError, AppResult, Reason};

/// A badge UID: 4 to 10 bytes in hex, separators ignored, upper-case.
pub fn normalize_uid(raw: &str) -> AppResult<String> {
    let uid: String = raw
        .chars()
        .filter(|c| !matches!(c, ':' | '-' | ' '))
        .collect::<String>()
        .to_ascii_uppercase();
    if (8..=20).contains(&uid.len())
        && uid.len().is_multiple_of(2)
        && uid.chars().all(|c| c.is_ascii_hexdigit())
    {
        Ok(uid)
    } else {
        Err(AppError::bad_input(
            "uid",
            "a badge UID is 4 to 10 bytes in hexadecimal",
        ))
    }
}

/// The hint shown for a secret: its last four characters.
pub fn hint(secret: &str) -> String {
    let tail: String = secret
        .chars()
        .rev()
        .take(4)
        .collect::<Vec<_>>()
        .into_iter()
        .rev()
        .collect();
    format!("••••{tail}")
}

async fn rfid_type(db: &impl ConnectionTrait) -> AppResult<auth_type::Model> {
    auth_type::Entity::find()
        .filter(auth_type::Column::Label.eq("rfid"))
        .one(db)
        .await?
        .ok_or_else(|| AppError::internal(anyhow::anyhow!("auth type rfid is missing")))
}

/// Active badges one account may hold.
pub const MAX_ACTIVE_BADGES: u64 = 10;

/// Saves a badge for `user_id`.
///
/// # Errors
/// `BAD_USER_INPUT` for a malformed UID or beyond [`MAX_ACTIVE_BADGES`],
/// `CONFLICT` when the badge is active on an account.
pub async fn add(
    db: &DatabaseConnection,
    user_id: i32,
    raw_uid: &str,
    label: Option<&str>,
    ip: Option<&str>,
) -> AppResult<auth_method::Model> {
    let uid = normalize_uid(raw_uid)?;
    let held = auth_method::Entity::find()
        .filter(auth_method::Column::UserId.eq(user_id))
        .filter(auth_method::Column::IsActive.eq(true))
        .count(db)
        .await?;
    if held >= MAX_ACTIVE_BADGES {
        return Err(AppError::bad_input(
            "uid",
            format!("an account holds at most {MAX_ACTIVE_BADGES} active badges"),
        ));
    }
    let kind = rfid_type(db).await?;
    let label: String = label.unwrap_or("Badge").trim().chars().take(60).collect();
    let saved = auth_method::ActiveModel {
        user_id: Set(user_id),
        auth_type_id: Set(kind.id),
        value_hash: Set(sha256_hex(&uid)),
        display_value: Set(hint(&uid)),
        metadata: Set(json!({ "label": label })),
        is_active: Set(true),
        created_at: Set(Utc::now()),
        ..Default::default()
    }
    .insert(db)
    .await
    .map_err(|err| match err.sql_err() {
        Some(SqlErr::UniqueConstraintViolation(_)) => {
            AppError::refused(Reason::BadgeTaken, "this badge is already registered")
        }
        _ => AppError::from(err),
    })?;
    journal::at(db, ip)
        .success(Some(user_id), action::BADGE, "badge registered")
        .await;
    Ok(saved)
}

/// Active badges, newest first.
pub fn active_newest_first() -> Select<auth_method::Entity> {
    auth_method::Entity::find()
        .filter(auth_method::Column::IsActive.eq(true))
        .order_by_desc(auth_method::Column::CreatedAt)
        .order_by_desc(auth_method::Column::Id)
}

/// Deletes one of the user's own badges.
///
/// # Errors
/// `NOT_FOUND` when the badge is not theirs.
pub async fn delete_own(
    db: &DatabaseConnection,
    user_id: i32,
    id: i32,
    ip: Option<&str>,
) -> AppResult<()> {
    let result = auth_method::Entity::delete_many()
        .filter(auth_method::Column::Id.eq(id))
        .filter(auth_method::Column::UserId.eq(user_id))
        .exec(db)
        .await?;
    if result.rows_affected == 0 {
        return Err(AppError::not_found("authentication method"));
    }
    journal::at(db, ip)
        .success(Some(user_id), action::BADGE, "badge deleted")
        .await;
    Ok(())
}

/// Staff: deactivates a badge, keeping its record.
///
/// # Errors
/// `NOT_FOUND` for unknown badges.
pub async fn revoke(
    db: &DatabaseConnection,
    id: i32,
    actor_id: i32,
    ip: Option<&str>,
) -> AppResult<auth_method::Model> {
    let method = auth_method::Entity::find_by_id(id)
        .one(db)
        .await?
        .ok_or(AppError::not_found("authentication method"))?;
    let owner = method.user_id;
    let mut active: auth_method::ActiveModel = method.into();
    active.is_active = Set(false);
    active.revoked_at = Set(Some(Utc::now()));
    let revoked = active.update(db).await?;
    journal::at(db, ip)
        .success(
            Some(owner),
            action::BADGE,
            &format!("badge revoked by user {actor_id}"),
        )
        .await;
    Ok(revoked)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn uids_normalize_and_hints_hide_all_but_the_tail() {
        assert_eq!(
            normalize_uid("04:a2:2b:1a").ok().as_deref(),
            Some("04A22B1A")
        );
        assert!(normalize_uid("04A").is_err());
        assert!(normalize_uid("ZZZZZZZZ").is_err());
        assert!(normalize_uid("04A22B1").is_err(), "whole bytes only");
        assert_eq!(hint("04A22B1A"), "••••2B1A");
    }
}
