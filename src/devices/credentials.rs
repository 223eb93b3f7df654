//! Device credentials: each device's MQTT login and command-signing key.
//!
//! Staff issue credentials for a device (again to rotate them) and revoke them.
//! The password is random (192 bits) and shown once; only its salted SHA-512 is
//! stored, in Mosquitto's `$6$<salt>$<hash>` password-file format, so the same
//! value serves the embedded broker's check and the password file generated for
//! Mosquitto. A slow hash (argon2) would add nothing for a random secret of that
//! size and would cost every device connection.
//!
//! The command key must be computable by the server, so it is derived rather
//! than stored: HMAC-SHA256 of a server secret (generated once, kept in
//! `server_secrets`) over the device's username and credential generation. Every
//! issue and every revocation bumps the generation, so a rotated or revoked
//! device's old key signs nothing the server sends any more.

use std::sync::OnceLock;

use base64::Engine as _;
use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD};
use chrono::Utc;
use hmac::{Hmac, Mac as _};
use sea_orm::{
    ActiveModelTrait, ColumnTrait, ConnectionTrait, DbErr, EntityTrait, IntoActiveModel,
    QueryFilter, Set,
};
use sha2::{Digest as _, Sha256, Sha512};

use super::commands::DeviceLogin;
use crate::entities::{bay, cabinet, device, server_secret};
use crate::error::AppError;

/// Name of the `server_secrets` row that command keys derive from.
const COMMAND_SECRET: &str = "device_command_keys";

/// Freshly issued credentials: the only time the password and key exist in clear.
pub struct IssuedCredentials {
    pub device: device::Model,
    pub username: String,
    pub password: String,
    /// The device's command-signing key (32 bytes).
    pub command_key: [u8; 32],
}

impl std::fmt::Debug for IssuedCredentials {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("IssuedCredentials")
            .field("username", &self.username)
            .finish_non_exhaustive()
    }
}

/// What an authenticated device may touch: its own bay's topics.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DeviceAccess {
    pub device_id: i32,
    pub username: String,
    /// The credential generation it logged in with: any later issue or revocation ends it.
    pub generation: i32,
    /// Its cabinet's MQTT prefix.
    pub prefix: String,
    /// Its bay's number in that cabinet.
    pub bay: i32,
}

/// A device login for an external broker's password and ACL files.
#[derive(Debug, Clone)]
pub struct BrokerAccount {
    pub access: DeviceAccess,
    pub password_hash: String,
}

/// The MQTT username of a device: derived from its registered MAC, which is unique.
pub fn username_for(device: &device::Model) -> String {
    username_for_mac(&device.mac_address)
}

/// The MQTT username of the device registered with `mac`: `dev-` and its 12 hex digits.
pub fn username_for_mac(mac: &str) -> String {
    let hex: String = mac.chars().filter(char::is_ascii_hexdigit).collect();
    format!("dev-{}", hex.to_ascii_lowercase())
}

/// Issues new credentials for a device, replacing (rotating) any it had.
///
/// # Errors
/// `NOT_FOUND` when the device does not exist.
pub async fn issue(
    db: &impl ConnectionTrait,
    device_id: i32,
) -> Result<IssuedCredentials, AppError> {
    let found = device::Entity::find_by_id(device_id).one(db).await?;
    let found = found.ok_or(AppError::not_found("device"))?;
    let username = username_for(&found);
    let password = random_password()?;
    let salt = random_bytes::<12>()?;
    let generation = found.mqtt_key_generation.saturating_add(1);
    let mut active = found.into_active_model();
    active.mqtt_username = Set(Some(username.clone()));
    active.mqtt_password_hash = Set(Some(hash_password(&password, &salt)));
    active.mqtt_key_generation = Set(generation);
    active.mqtt_credentials_issued_at = Set(Some(Utc::now()));
    let device = active.update(db).await?;
    announce(&username);
    let secret = command_secret(db).await?;
    Ok(IssuedCredentials {
        command_key: derive_command_key(&secret, &username, generation),
        device,
        username,
        password,
    })
}

/// Revokes a device's credentials: its login stops working and its command key
/// signs nothing any more. Issuing again gives it new ones.
///
/// # Errors
/// `NOT_FOUND` when the device does not exist.
pub async fn revoke(db: &impl ConnectionTrait, device_id: i32) -> Result<device::Model, AppError> {
    let found = device::Entity::find_by_id(device_id).one(db).await?;
    let found = found.ok_or(AppError::not_found("device"))?;
    let generation = found.mqtt_key_generation.saturating_add(1);
    let username = found.mqtt_username.clone();
    let mut active = found.into_active_model();
    active.mqtt_password_hash = Set(None);
    active.mqtt_key_generation = Set(generation);
    let device = active.update(db).await?;
    if let Some(username) = username {
        announce(&username);
    }
    Ok(device)
}

/// Usernames whose credentials this process changed, for connections to re-check.
fn changes() -> &'static tokio::sync::broadcast::Sender<String> {
    static CHANGES: OnceLock<tokio::sync::broadcast::Sender<String>> = OnceLock::new();
    CHANGES.get_or_init(|| tokio::sync::broadcast::channel(256).0)
}

fn announce(username: &str) {
    // No listener (no embedded broker) is fine: nobody holds a connection to end.
    let _ = changes().send(username.to_owned());
}

/// Resolves once `access` no longer holds: its device's credentials were rotated
/// or revoked (by this process; the embedded broker serves only this process).
/// Announcements name a username only, so each is checked against the database.
///
/// # Errors
/// When the database fails during a check.
pub async fn until_revoked(db: &impl ConnectionTrait, access: &DeviceAccess) -> Result<(), DbErr> {
    let mut changed = changes().subscribe();
    loop {
        let recheck = match changed.recv().await {
            Ok(username) => username == access.username,
            Err(tokio::sync::broadcast::error::RecvError::Lagged(_)) => true,
            Err(tokio::sync::broadcast::error::RecvError::Closed) => {
                return std::future::pending().await;
            }
        };
        if recheck && !still_valid(db, access).await? {
            return Ok(());
        }
    }
}

async fn still_valid(db: &impl ConnectionTrait, access: &DeviceAccess) -> Result<bool, DbErr> {
    let found = device::Entity::find_by_id(access.device_id).one(db).await?;
    Ok(found.is_some_and(|d| {
        d.mqtt_password_hash.is_some()
            && d.mqtt_key_generation == access.generation
            && d.mqtt_username.as_deref() == Some(access.username.as_str())
    }))
}

/// Checks a device login; `None` for an unknown user, a wrong password or revoked credentials.
///
/// # Errors
/// When the database fails.
pub async fn authenticate(
    db: &impl ConnectionTrait,
    username: &str,
    password: &str,
) -> Result<Option<DeviceAccess>, DbErr> {
    let found = device::Entity::find()
        .filter(device::Column::MqttUsername.eq(username))
        .one(db)
        .await?;
    let Some(found) = found else {
        return Ok(None);
    };
    let verified = found
        .mqtt_password_hash
        .as_deref()
        .is_some_and(|hash| verify_password(hash, password));
    if !verified {
        return Ok(None);
    }
    access_of(db, &found).await
}

async fn access_of(
    db: &impl ConnectionTrait,
    found: &device::Model,
) -> Result<Option<DeviceAccess>, DbErr> {
    let Some(username) = found.mqtt_username.clone() else {
        return Ok(None);
    };
    let bay = bay::Entity::find_by_id(found.bay_id)
        .find_also_related(cabinet::Entity)
        .one(db)
        .await?;
    Ok(match bay {
        Some((bay, Some(cabinet))) => Some(DeviceAccess {
            device_id: found.id,
            username,
            generation: found.mqtt_key_generation,
            prefix: cabinet.mqtt_prefix,
            bay: bay.number,
        }),
        _ => None,
    })
}

/// Every device with live credentials, for an external broker's password and ACL files.
///
/// # Errors
/// When the database fails.
pub async fn broker_accounts(db: &impl ConnectionTrait) -> Result<Vec<BrokerAccount>, DbErr> {
    let devices = device::Entity::find()
        .filter(device::Column::MqttPasswordHash.is_not_null())
        .all(db)
        .await?;
    let mut accounts = Vec::with_capacity(devices.len());
    for found in devices {
        if let (Some(access), Some(password_hash)) =
            (access_of(db, &found).await?, found.mqtt_password_hash)
        {
            accounts.push(BrokerAccount {
                access,
                password_hash,
            });
        }
    }
    accounts.sort_by(|a, b| a.access.username.cmp(&b.access.username));
    Ok(accounts)
}

/// The login of the device on bay `number` under `prefix`; `None` when the
/// bay has no device or the device has no live credentials (nothing to sign for).
///
/// # Errors
/// When the database fails.
pub async fn login_for_bay(
    db: &impl ConnectionTrait,
    prefix: &str,
    number: i32,
) -> Result<Option<DeviceLogin>, DbErr> {
    use sea_orm::{JoinType, QuerySelect as _, RelationTrait as _};
    let found = device::Entity::find()
        .join(JoinType::InnerJoin, device::Relation::Bay.def())
        .join(JoinType::InnerJoin, bay::Relation::Cabinet.def())
        .filter(cabinet::Column::MqttPrefix.eq(prefix))
        .filter(bay::Column::Number.eq(number))
        .one(db)
        .await?;
    Ok(found.and_then(|device| {
        live_login(
            device.mqtt_username,
            device.mqtt_key_generation,
            device.mqtt_password_hash.is_some(),
        )
    }))
}

/// A device's login from its stored fields, when its credentials are live
/// (a password is stored: revoking clears it).
pub fn live_login(
    username: Option<String>,
    generation: i32,
    has_password: bool,
) -> Option<DeviceLogin> {
    Some(DeviceLogin {
        username: username.filter(|_| has_password)?,
        generation,
    })
}

/// The secret command keys derive from, read (or created) once per server:
/// it never changes once stored, and every command sent would read it.
#[derive(Debug, Default)]
pub struct CommandSecret(tokio::sync::OnceCell<[u8; 32]>);

impl CommandSecret {
    /// The command key of the device with `login`.
    ///
    /// # Errors
    /// When the secret cannot be read or created.
    pub async fn key_for(
        &self,
        db: &impl ConnectionTrait,
        login: &DeviceLogin,
    ) -> Result<[u8; 32], DbErr> {
        let secret = self.0.get_or_try_init(|| command_secret(db)).await?;
        Ok(derive_command_key(
            secret,
            &login.username,
            login.generation,
        ))
    }
}

/// The secret command keys derive from, created on first use. Concurrent first
/// uses (replicas starting together) insert at most one: the loser reads the winner's.
async fn command_secret(db: &impl ConnectionTrait) -> Result<[u8; 32], DbErr> {
    let stored = server_secret::Entity::find_by_id(COMMAND_SECRET)
        .one(db)
        .await?;
    let stored = match stored {
        Some(stored) => stored,
        None => {
            let fresh = random_bytes::<32>().map_err(|e| DbErr::Custom(format!("{e:?}")))?;
            let row = server_secret::ActiveModel {
                name: Set(COMMAND_SECRET.to_owned()),
                value: Set(URL_SAFE_NO_PAD.encode(fresh)),
                created_at: Set(Utc::now()),
            };
            server_secret::Entity::insert(row)
                .on_conflict_do_nothing_on([server_secret::Column::Name])
                .exec(db)
                .await?;
            server_secret::Entity::find_by_id(COMMAND_SECRET)
                .one(db)
                .await?
                .ok_or_else(|| DbErr::RecordNotFound(COMMAND_SECRET.to_owned()))?
        }
    };
    let bytes = URL_SAFE_NO_PAD
        .decode(stored.value.as_bytes())
        .map_err(|_| DbErr::Custom("the stored command secret is not base64".to_owned()))?;
    bytes
        .try_into()
        .map_err(|_| DbErr::Custom("the stored command secret is not 32 bytes".to_owned()))
}

fn derive_command_key(secret: &[u8; 32], username: &str, generation: i32) -> [u8; 32] {
    let mut mac = <Hmac<Sha256> as hmac::KeyInit>::new_from_slice(secret)
        .unwrap_or_else(|_| unreachable!("HMAC accepts any key length"));
    mac.update(format!("voltgate-device-command-key-v1\n{username}\n{generation}").as_bytes());
    mac.finalize().into_bytes().into()
}

/// Mosquitto's `$6$` password hash: base64 salt, base64 SHA-512 of password then salt.
pub fn hash_password(password: &str, salt: &[u8]) -> String {
    let digest = Sha512::new()
        .chain_update(password.as_bytes())
        .chain_update(salt)
        .finalize();
    format!("$6${}${}", STANDARD.encode(salt), STANDARD.encode(digest))
}

/// Checks a password against a `$6$` hash, comparing in constant time.
pub fn verify_password(stored: &str, password: &str) -> bool {
    let mut parts = stored.split('$');
    let (Some(""), Some("6"), Some(salt), Some(expected), None) = (
        parts.next(),
        parts.next(),
        parts.next(),
        parts.next(),
        parts.next(),
    ) else {
        return false;
    };
    let (Ok(salt), Ok(expected)) = (STANDARD.decode(salt), STANDARD.decode(expected)) else {
        return false;
    };
    let actual = Sha512::new()
        .chain_update(password.as_bytes())
        .chain_update(&salt)
        .finalize();
    actual.len() == expected.len()
        && actual
            .iter()
            .zip(&expected)
            .fold(0_u8, |diff, (a, b)| diff | (a ^ b))
            == 0
}

fn random_bytes<const N: usize>() -> Result<[u8; N], AppError> {
    let mut bytes = [0_u8; N];
    getrandom::fill(&mut bytes)
        .map_err(|e| AppError::internal(anyhow::anyhow!("no randomness: {e}")))?;
    Ok(bytes)
}

fn random_password() -> Result<String, AppError> {
    Ok(URL_SAFE_NO_PAD.encode(random_bytes::<24>()?))
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn passwords_verify_against_their_hash_only() {
        let hash = hash_password("s3cret-device", b"0123456789ab");
        assert!(hash.starts_with("$6$MDEyMzQ1Njc4OWFi$"), "{hash}");
        assert!(verify_password(&hash, "s3cret-device"));
        assert!(!verify_password(&hash, "s3cret-devicE"));
        assert!(!verify_password("$7$abc$def", "s3cret-device"));
        assert!(!verify_password("", ""));
    }

    #[test]
    fn command_keys_change_with_the_generation_and_the_user() {
        let secret = [9_u8; 32];
        let key = derive_command_key(&secret, "dev-a", 1);
        assert_eq!(key, derive_command_key(&secret, "dev-a", 1));
        assert_ne!(key, derive_command_key(&secret, "dev-a", 2));
        assert_ne!(key, derive_command_key(&secret, "dev-b", 1));
    }

    proptest! {
        #[test]
        fn arbitrary_stored_hashes_never_verify_by_accident(stored in ".{0,120}", password in ".{0,40}") {
            prop_assume!(!stored.starts_with("$6$"));
            prop_assert!(!verify_password(&stored, &password));
        }
    }
}
