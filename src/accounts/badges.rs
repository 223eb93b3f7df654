//! Saved authentication methods (`Authentification`): RFID badges.
//!
//! A badge UID is stored only under a keyed hash and shown as a hint (its last
//! four characters). An active badge belongs to one account at a time, which a
//! partial unique index enforces even when two registrations race.
//!
//! **Keyed hash.** A UID has at most 80 bits and many badges far fewer, so a
//! plain SHA-256 falls to brute force once the database leaks. The stored value
//! is `h1:<key id>:<hex>`: HMAC-SHA256 under a server secret
//! (`VOLTGATE_BADGE_KEY`, or generated once into `server_secrets`), its first
//! 208 bits in hex so the value fits the column's 64 characters, where the key
//! id is the first 8 hex digits of the key's SHA-256.
//!
//! **Rotation.** Set the new key in `VOLTGATE_BADGE_KEY` and the old one in
//! `VOLTGATE_BADGE_PREVIOUS_KEYS` (comma-separated). Lookups accept a hash under
//! any of these keys (and a plain SHA-256 stored before keyed hashes), and a
//! badge found under an older one is re-hashed under the current key at once.
//! Drop an old key when no stored value names its id any more
//! (`SELECT count(*) FROM auth_methods WHERE value_hash LIKE 'h1:<id>:%'`).

use std::sync::Arc;

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use chrono::Utc;
use hmac::{Hmac, Mac as _};
use sea_orm::sea_query::Expr;
use sea_orm::{
    ActiveModelTrait, ColumnTrait, ConnectionTrait, DatabaseConnection, EntityTrait,
    PaginatorTrait, QueryFilter, QueryOrder, Select, Set, SqlErr,
};
use serde_json::json;
use sha2::{Digest as _, Sha256};

use super::journal::{self, action};
use crate::auth::tokens::sha256_hex;
use crate::entities::{auth_method, auth_type, server_secret};
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

/// The `server_secrets` row of a generated badge key.
const SECRET_NAME: &str = "badge_hmac";

/// The prefix of a keyed badge hash (HMAC-SHA256, version 1 of the message).
const KEYED: &str = "h1";

/// Bytes of the HMAC kept: `h1:` + 8 + `:` + 52 hex digits fill the 64-character column.
const KEPT_BYTES: usize = 26;

/// One badge key and its id.
struct BadgeKey {
    id: String,
    key: Vec<u8>,
}

impl BadgeKey {
    fn new(key: Vec<u8>) -> Self {
        let id = Sha256::digest(&key)
            .iter()
            .take(4)
            .map(|b| format!("{b:02x}"))
            .collect();
        Self { id, key }
    }

    fn parse(text: &str) -> anyhow::Result<Self> {
        let text = text.trim();
        if text.len() < 32 {
            anyhow::bail!("a badge key has at least 32 characters");
        }
        Ok(Self::new(text.as_bytes().to_vec()))
    }

    fn hash(&self, uid: &str) -> String {
        let mut mac = <Hmac<Sha256> as hmac::KeyInit>::new_from_slice(&self.key)
            .unwrap_or_else(|_| unreachable!("HMAC accepts any key length"));
        mac.update(b"voltgate-badge-v1\n");
        mac.update(uid.as_bytes());
        let digest: String = mac
            .finalize()
            .into_bytes()
            .iter()
            .take(KEPT_BYTES)
            .map(|b| format!("{b:02x}"))
            .collect();
        format!("{KEYED}:{}:{digest}", self.id)
    }
}

/// The badge keys in use: the current one hashes, every one (and a plain
/// SHA-256 from before keyed hashes) is accepted for lookups.
pub struct BadgeKeyring {
    current: BadgeKey,
    previous: Vec<BadgeKey>,
}

impl std::fmt::Debug for BadgeKeyring {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("BadgeKeyring")
            .field("current", &self.current.id)
            .finish_non_exhaustive()
    }
}

impl BadgeKeyring {
    /// A keyring of raw keys (tests and the stored key).
    pub fn from_keys(current: &[u8], previous: &[&[u8]]) -> Self {
        Self {
            current: BadgeKey::new(current.to_vec()),
            previous: previous.iter().map(|k| BadgeKey::new(k.to_vec())).collect(),
        }
    }

    /// What a normalized `uid` is stored as now.
    pub fn hash(&self, uid: &str) -> String {
        self.current.hash(uid)
    }

    /// Every value `uid` may be stored as, the current one first.
    pub fn accepted_hashes(&self, uid: &str) -> Vec<String> {
        let mut all = vec![self.current.hash(uid)];
        all.extend(self.previous.iter().map(|k| k.hash(uid)));
        all.push(sha256_hex(uid));
        all
    }

    /// Whether `stored` is a hash of the normalized `uid` under an accepted key.
    pub fn matches(&self, uid: &str, stored: &str) -> bool {
        self.accepted_hashes(uid)
            .iter()
            .any(|h| constant_time_eq(h.as_bytes(), stored.as_bytes()))
    }

    /// Whether `stored` is under an older key and should be re-hashed.
    pub fn is_outdated(&self, stored: &str) -> bool {
        !stored.starts_with(&format!("{KEYED}:{}:", self.current.id))
    }
}

fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a.iter().zip(b).fold(0_u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

/// The server's badge keys: configured, or the stored key read on first use.
#[derive(Debug, Default)]
pub struct BadgeKeys {
    configured: Option<Arc<BadgeKeyring>>,
    previous: Vec<String>,
    loaded: tokio::sync::OnceCell<Arc<BadgeKeyring>>,
}

impl BadgeKeys {
    /// # Errors
    /// When a configured key is shorter than 32 characters.
    pub fn new(configured: Option<&str>, previous: &[String]) -> anyhow::Result<Self> {
        let parse_previous = || -> anyhow::Result<Vec<BadgeKey>> {
            previous
                .iter()
                .filter(|k| !k.trim().is_empty())
                .map(|k| BadgeKey::parse(k))
                .collect()
        };
        let configured = match configured.filter(|k| !k.trim().is_empty()) {
            Some(key) => Some(Arc::new(BadgeKeyring {
                current: BadgeKey::parse(key)?,
                previous: parse_previous()?,
            })),
            None => {
                parse_previous()?;
                None
            }
        };
        Ok(Self {
            configured,
            previous: previous.to_vec(),
            loaded: tokio::sync::OnceCell::new(),
        })
    }

    /// The keyring.
    ///
    /// # Errors
    /// On database errors.
    pub async fn get(&self, db: &impl ConnectionTrait) -> AppResult<Arc<BadgeKeyring>> {
        if let Some(ring) = &self.configured {
            return Ok(Arc::clone(ring));
        }
        self.loaded
            .get_or_try_init(|| async {
                let key = stored_key(db).await?;
                let previous = self
                    .previous
                    .iter()
                    .filter(|k| !k.trim().is_empty())
                    .map(|k| BadgeKey::parse(k))
                    .collect::<anyhow::Result<Vec<_>>>()
                    .map_err(AppError::internal)?;
                Ok::<_, AppError>(Arc::new(BadgeKeyring {
                    current: BadgeKey::new(key),
                    previous,
                }))
            })
            .await
            .cloned()
    }
}

/// The stored key, created on first use (replicas starting together insert one).
async fn stored_key(db: &impl ConnectionTrait) -> AppResult<Vec<u8>> {
    if let Some(row) = server_secret::Entity::find_by_id(SECRET_NAME)
        .one(db)
        .await?
    {
        return URL_SAFE_NO_PAD.decode(row.value.as_bytes()).map_err(|_| {
            AppError::internal(anyhow::anyhow!("the stored badge key is not base64"))
        });
    }
    let mut key = [0_u8; 32];
    getrandom::fill(&mut key)
        .map_err(|e| AppError::internal(anyhow::anyhow!("the system random source failed: {e}")))?;
    server_secret::Entity::insert(server_secret::ActiveModel {
        name: Set(SECRET_NAME.to_owned()),
        value: Set(URL_SAFE_NO_PAD.encode(key)),
        created_at: Set(Utc::now()),
    })
    .on_conflict_do_nothing_on([server_secret::Column::Name])
    .exec(db)
    .await?;
    let row = server_secret::Entity::find_by_id(SECRET_NAME)
        .one(db)
        .await?
        .ok_or_else(|| AppError::internal(anyhow::anyhow!("the badge key was not stored")))?;
    URL_SAFE_NO_PAD
        .decode(row.value.as_bytes())
        .map_err(|_| AppError::internal(anyhow::anyhow!("the stored badge key is not base64")))
}

/// The active badge stored for a normalized `uid`, under any accepted key;
/// one found under an older key is re-hashed under the current one.
///
/// # Errors
/// On database errors.
pub async fn find_active(
    db: &impl ConnectionTrait,
    keys: &BadgeKeyring,
    uid: &str,
) -> AppResult<Option<auth_method::Model>> {
    let kind = rfid_type(db).await?;
    let found = auth_method::Entity::find()
        .filter(auth_method::Column::AuthTypeId.eq(kind.id))
        .filter(auth_method::Column::IsActive.eq(true))
        .filter(auth_method::Column::ValueHash.is_in(keys.accepted_hashes(uid)))
        .one(db)
        .await?;
    match found {
        Some(badge) if keys.is_outdated(&badge.value_hash) => {
            rehash(db, keys, &badge, uid).await?;
            Ok(auth_method::Entity::find_by_id(badge.id).one(db).await?)
        }
        other => Ok(other),
    }
}

/// Stores `badge` under the current key, if it still holds the value it was read with.
///
/// # Errors
/// On database errors.
pub async fn rehash(
    db: &impl ConnectionTrait,
    keys: &BadgeKeyring,
    badge: &auth_method::Model,
    uid: &str,
) -> AppResult<()> {
    if !keys.is_outdated(&badge.value_hash) || !keys.matches(uid, &badge.value_hash) {
        return Ok(());
    }
    auth_method::Entity::update_many()
        .col_expr(auth_method::Column::ValueHash, Expr::value(keys.hash(uid)))
        .filter(auth_method::Column::Id.eq(badge.id))
        .filter(auth_method::Column::ValueHash.eq(badge.value_hash.clone()))
        .exec(db)
        .await?;
    tracing::info!(badge = badge.id, "badge re-hashed under the current key");
    Ok(())
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
    db: &impl ConnectionTrait,
    keys: &BadgeKeys,
    user_id: i32,
    raw_uid: &str,
    label: Option<&str>,
    ip: Option<&str>,
) -> AppResult<auth_method::Model> {
    let uid = normalize_uid(raw_uid)?;
    let keys = keys.get(db).await?;
    // The unique index sees one hash; under an older key the same badge has another.
    if find_active(db, &keys, &uid).await?.is_some() {
        return Err(AppError::refused(
            Reason::BadgeTaken,
            "this badge is already registered",
        ));
    }
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
        value_hash: Set(keys.hash(&uid)),
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

    #[test]
    fn badge_hashes_are_keyed_and_old_keys_still_match() {
        let old = BadgeKeyring::from_keys(b"old key", &[]);
        let new = BadgeKeyring::from_keys(b"new key", &[b"old key"]);
        let stored_old = old.hash("04A22B1A");
        assert!(stored_old.starts_with("h1:"));
        assert_eq!(stored_old.len(), 64, "fits the column");
        assert_ne!(stored_old, sha256_hex("04A22B1A"), "not a plain SHA-256");
        assert_ne!(new.hash("04A22B1A"), stored_old, "the key changes the hash");
        assert!(new.matches("04A22B1A", &stored_old));
        assert!(new.is_outdated(&stored_old));
        assert!(!new.is_outdated(&new.hash("04A22B1A")));
        assert!(
            new.matches("04A22B1A", &sha256_hex("04A22B1A")),
            "legacy rows"
        );
        assert!(!new.matches("04A22B1B", &stored_old));
        let without_old = BadgeKeyring::from_keys(b"new key", &[]);
        assert!(!without_old.matches("04A22B1A", &stored_old));
    }

    #[test]
    fn configured_badge_keys_are_long_enough() {
        assert!(BadgeKeys::new(Some("short"), &[]).is_err());
        assert!(BadgeKeys::new(Some(&"k".repeat(32)), &["short".to_owned()]).is_err());
        assert!(BadgeKeys::new(Some(&"k".repeat(32)), &[]).is_ok());
        assert!(BadgeKeys::new(None, &[]).is_ok());
    }
}
