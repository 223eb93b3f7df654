//! Kiosk credentials: staff issue one per cabinet (the secret is shown once and
//! stored as its SHA-256: it is 256 random bits, so a slow hash adds nothing),
//! revoke it, and a kiosk exchanges it for a short-lived access token whose
//! principal is `Principal::Kiosk` of that cabinet.
//!
//! Issuing revokes the cabinet's previous credential in the same transaction;
//! a partial unique index keeps one live credential per cabinet even when two
//! staff issue at once. Revocation stops new sign-ins at once; tokens already
//! handed out live at most `VOLTGATE_KIOSK_TOKEN_TTL_SECS`, and taking the
//! cabinet out of service (inactive) ends them at once (the cabinet is read on
//! every request).

use chrono::{DateTime, Utc};
use sea_orm::sea_query::Expr;
use sea_orm::{
    ActiveModelTrait, ColumnTrait, ConnectionTrait, DatabaseConnection, EntityTrait, QueryFilter,
    QueryOrder, Set, TransactionTrait,
};

use crate::auth::tokens::{Credential, TokenKeys, random_token, sha256_hex};
use crate::db::FindOr;
use crate::entities::{CabinetStatus, cabinet, kiosk_credential};
use crate::error::{AppError, AppResult};

/// What a kiosk credential starts with, so it is recognizable in a configuration.
const PREFIX: &str = "vgk_";

/// A credential just issued: the stored row and the secret, shown once.
pub struct Issued {
    pub credential: kiosk_credential::Model,
    pub secret: String,
}

/// Issues a credential for `cabinet_id`, revoking the cabinet's live one.
///
/// # Errors
/// `NOT_FOUND` when the cabinet does not exist; `BAD_USER_INPUT` on a label
/// over 100 characters.
pub async fn issue(
    db: &DatabaseConnection,
    cabinet_id: i32,
    label: &str,
    issued_by: Option<i32>,
    now: DateTime<Utc>,
) -> AppResult<Issued> {
    let label = label.trim();
    if label.chars().count() > 100 {
        return Err(AppError::bad_input("label", "at most 100 characters"));
    }
    let secret = format!("{PREFIX}{}", random_token()?);
    let txn = db.begin().await?;
    cabinet::Entity::find_by_id(cabinet_id)
        .one_or_not_found(&txn, "cabinet")
        .await?;
    kiosk_credential::Entity::update_many()
        .col_expr(kiosk_credential::Column::RevokedAt, Expr::value(now))
        .filter(kiosk_credential::Column::CabinetId.eq(cabinet_id))
        .filter(kiosk_credential::Column::RevokedAt.is_null())
        .exec(&txn)
        .await?;
    let credential = kiosk_credential::ActiveModel {
        cabinet_id: Set(cabinet_id),
        secret_hash: Set(sha256_hex(&secret)),
        hint: Set(secret.chars().take(8).collect()),
        label: Set(label.to_owned()),
        created_by: Set(issued_by),
        created_at: Set(now),
        last_used_at: Set(None),
        revoked_at: Set(None),
        ..Default::default()
    }
    .insert(&txn)
    .await
    .map_err(|err| match err.sql_err() {
        // Another issue for this cabinet committed first.
        Some(sea_orm::SqlErr::UniqueConstraintViolation(_)) => AppError::Conflict(
            "another credential was issued for this cabinet at the same time".into(),
        ),
        _ => err.into(),
    })?;
    txn.commit().await?;
    Ok(Issued { credential, secret })
}

/// Revokes a credential; revoking a revoked one changes nothing.
///
/// # Errors
/// `NOT_FOUND` when there is no such credential.
pub async fn revoke(
    db: &impl ConnectionTrait,
    id: i32,
    now: DateTime<Utc>,
) -> AppResult<kiosk_credential::Model> {
    kiosk_credential::Entity::update_many()
        .col_expr(kiosk_credential::Column::RevokedAt, Expr::value(now))
        .filter(kiosk_credential::Column::Id.eq(id))
        .filter(kiosk_credential::Column::RevokedAt.is_null())
        .exec(db)
        .await?;
    kiosk_credential::Entity::find_by_id(id)
        .one_or_not_found(db, "kiosk credential")
        .await
}

/// A cabinet's credentials, newest first (revoked ones included, for the record).
///
/// # Errors
/// On database errors.
pub async fn of_cabinet(
    db: &impl ConnectionTrait,
    cabinet_id: i32,
) -> AppResult<Vec<kiosk_credential::Model>> {
    Ok(kiosk_credential::Entity::find()
        .filter(kiosk_credential::Column::CabinetId.eq(cabinet_id))
        .order_by_desc(kiosk_credential::Column::Id)
        .all(db)
        .await?)
}

/// A kiosk's access token, as its credential was exchanged for.
pub struct KioskToken {
    pub token: String,
    pub expires_at: DateTime<Utc>,
    pub cabinet_id: i32,
}

/// Exchanges a live credential of an active or maintained cabinet for an access token.
///
/// # Errors
/// `UNAUTHENTICATED` when the secret matches no live credential or its cabinet
/// is out of service; the answer does not say which.
pub async fn sign_in(
    db: &impl ConnectionTrait,
    keys: &TokenKeys,
    secret: &str,
    ttl: chrono::TimeDelta,
    now: DateTime<Utc>,
) -> AppResult<KioskToken> {
    let secret = secret.trim();
    if !secret.starts_with(PREFIX) || secret.len() > 128 {
        return Err(AppError::Unauthenticated);
    }
    let found = kiosk_credential::Entity::find()
        .filter(kiosk_credential::Column::SecretHash.eq(sha256_hex(secret)))
        .filter(kiosk_credential::Column::RevokedAt.is_null())
        .find_also_related(cabinet::Entity)
        .one(db)
        .await?;
    let Some((credential, Some(cabinet))) = found else {
        return Err(AppError::Unauthenticated);
    };
    if cabinet.status == CabinetStatus::Inactive {
        return Err(AppError::Unauthenticated);
    }
    kiosk_credential::Entity::update_many()
        .col_expr(kiosk_credential::Column::LastUsedAt, Expr::value(now))
        .filter(kiosk_credential::Column::Id.eq(credential.id))
        .exec(db)
        .await?;
    let (token, expires_at) = keys.issue_credential(
        Credential::Kiosk {
            cabinet: cabinet.id,
            credential: Some(credential.id),
        },
        ttl,
        now,
    )?;
    Ok(KioskToken {
        token,
        expires_at,
        cabinet_id: cabinet.id,
    })
}
