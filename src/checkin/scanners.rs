//! Scanner devices: issued by a team member with the check-in permission,
//! bound to an event and a gate. The credential is shown once and stored as
//! SHA-256 (it is 256 random bits, so a slow hash adds nothing); the device
//! exchanges it for a short-lived scanner access token. Revoking a device
//! refuses its next exchange and its next scan.

use chrono::{DateTime, Utc};
use sea_orm::{
    ActiveModelTrait, ColumnTrait, ConnectionTrait, EntityTrait, QueryFilter, QueryOrder, Set,
    TransactionTrait,
};
use serde_json::json;

use super::access;
use super::settings::CheckinSettings;
use crate::auth::Principal;
use crate::auth::tokens::{Credential, TokenKeys, random_token, sha256_hex};
use crate::entities::{event, scanner_device};
use crate::error::AppError;
use crate::ticketing::audit::{self, Change};
use crate::ticketing::organizers::parse_name;

/// Credentials start with this, so a leaked one is recognizable in logs and scanners.
const PREFIX: &str = "vgs_";

/// A gate name: 1 to 100 characters.
///
/// # Errors
/// `BAD_USER_INPUT` on `gate` otherwise.
pub fn parse_gate(gate: &str) -> Result<String, AppError> {
    let gate = gate.trim();
    if gate.is_empty() || gate.chars().count() > 100 {
        return Err(AppError::bad_input("gate", "use 1 to 100 characters"));
    }
    Ok(gate.to_owned())
}

/// Issues a scanner device of `event_id` at `gate`; returns it with its
/// credential, which is not stored and cannot be shown again.
///
/// # Errors
/// `BAD_USER_INPUT` on a bad name or gate; as [`access::manage`].
pub async fn issue(
    db: &sea_orm::DatabaseConnection,
    principal: &Principal,
    now: DateTime<Utc>,
    event_id: i32,
    name: &str,
    gate: &str,
) -> Result<(scanner_device::Model, String), AppError> {
    let txn = db.begin().await?;
    let (event, actor) = access::manage(&txn, principal, event_id).await?;
    let name = parse_name(name)?;
    let gate = parse_gate(gate)?;
    let credential = format!("{PREFIX}{}", random_token()?);
    let device = scanner_device::ActiveModel {
        event_id: Set(event.id),
        name: Set(name),
        gate: Set(gate),
        secret_hash: Set(sha256_hex(&credential)),
        active: Set(true),
        created_at: Set(now),
        revoked_at: Set(None),
        ..Default::default()
    }
    .insert(&txn)
    .await?;
    log(&txn, &event, actor, now, &device, "voltgate.scanner.issued").await?;
    txn.commit().await?;
    Ok((device, credential))
}

/// Revokes a scanner device: it can neither exchange its credential nor scan.
///
/// # Errors
/// `NOT_FOUND` for staff when it does not exist; as [`access::manage`].
pub async fn revoke(
    db: &sea_orm::DatabaseConnection,
    principal: &Principal,
    now: DateTime<Utc>,
    device_id: i32,
) -> Result<scanner_device::Model, AppError> {
    let txn = db.begin().await?;
    let device = scanner_device::Entity::find_by_id(device_id)
        .one(&txn)
        .await?;
    let (event, actor) =
        access::manage(&txn, principal, device.as_ref().map_or(0, |d| d.event_id)).await?;
    let device = device.ok_or(AppError::not_found("scanner"))?;
    let mut row: scanner_device::ActiveModel = device.into();
    row.active = Set(false);
    row.revoked_at = Set(Some(now));
    let device = row.update(&txn).await?;
    log(
        &txn,
        &event,
        actor,
        now,
        &device,
        "voltgate.scanner.revoked",
    )
    .await?;
    txn.commit().await?;
    Ok(device)
}

/// The scanner devices of `event_id`, oldest first.
///
/// # Errors
/// As [`access::manage`].
pub async fn of_event(
    db: &impl ConnectionTrait,
    principal: &Principal,
    event_id: i32,
) -> Result<Vec<scanner_device::Model>, AppError> {
    access::manage(db, principal, event_id).await?;
    Ok(scanner_device::Entity::find()
        .filter(scanner_device::Column::EventId.eq(event_id))
        .order_by_asc(scanner_device::Column::Id)
        .all(db)
        .await?)
}

/// Exchanges a device credential for a scanner access token valid for the
/// configured minutes; returns the device, the token and its expiry.
///
/// # Errors
/// `UNAUTHENTICATED` for an unknown or revoked credential (alike, so the
/// answer tells nothing more).
pub async fn exchange(
    db: &impl ConnectionTrait,
    keys: &TokenKeys,
    settings: &CheckinSettings,
    now: DateTime<Utc>,
    credential: &str,
) -> Result<(scanner_device::Model, String, DateTime<Utc>), AppError> {
    if !credential.starts_with(PREFIX) || credential.len() > 200 {
        return Err(AppError::Unauthenticated);
    }
    let device = scanner_device::Entity::find()
        .filter(scanner_device::Column::SecretHash.eq(sha256_hex(credential)))
        .filter(scanner_device::Column::Active.eq(true))
        .one(db)
        .await?
        .ok_or(AppError::Unauthenticated)?;
    let (token, expires) = keys.issue_credential(
        Credential::Scanner {
            event: device.event_id,
            gate: device.gate.clone(),
            device: Some(device.id),
        },
        settings.scanner_token_ttl(),
        now,
    )?;
    Ok((device, token, expires))
}

async fn log(
    db: &impl ConnectionTrait,
    event: &event::Model,
    actor: crate::ticketing::access::Actor,
    now: DateTime<Utc>,
    device: &scanner_device::Model,
    action: &str,
) -> Result<(), AppError> {
    audit::record(
        db,
        Some(actor),
        now,
        Change {
            organizer_id: event.organizer_id,
            event_id: Some(event.id),
            action,
            object_type: "scanner",
            object_id: device.id,
            data: json!({ "name": device.name, "gate": device.gate }),
        },
    )
    .await
}
