//! Access tokens (short-lived JWTs) and refresh tokens (random, stored hashed).
//!
//! Access tokens are HS256 JWTs carrying the user id and the user's
//! `token_version`, signed with the current key and a `kid` naming it. Rotating
//! the key: set the new secret as `VOLTGATE_JWT_SECRET` and the old one in
//! `VOLTGATE_JWT_PREVIOUS_SECRETS`; tokens signed with the old key stay valid
//! until they expire (minutes), then the old secret can be dropped.

use chrono::{DateTime, TimeDelta, Utc};
use jsonwebtoken::{Algorithm, DecodingKey, EncodingKey, Header, Validation};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use super::principal::TeamPermission;
use crate::error::AppError;

/// Claims of an access token.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct AccessClaims {
    /// The user id.
    pub sub: String,
    /// The user's `token_version` when the token was issued.
    pub ver: i32,
    pub iat: i64,
    pub exp: i64,
    /// What a token that does not stand for a person stands for.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cred: Option<Credential>,
}

/// The credential of a caller that is not a person. Their domains will keep
/// revocable credentials of their own (kiosk pairings, team API tokens); until
/// then such tokens are short-lived, minted with the signing key
/// ([`TokenKeys::issue_credential`]), and a kiosk's cabinet is checked on every
/// request.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum Credential {
    /// A cabinet's kiosk; `credential` is the kiosk credential it signed in
    /// with (checked on every request, so revoking it stops the token at once).
    Kiosk {
        cabinet: i32,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        credential: Option<i32>,
    },
    /// A door scanner of an event, at a gate; `device` is the stored scanner
    /// device it was exchanged for (checked on every scan, so revoking it
    /// stops it at once).
    Scanner {
        event: i32,
        gate: String,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        device: Option<i32>,
    },
    /// An organizer team's API token; `events: None` means all the team's events.
    Team {
        team: i32,
        organizer: i32,
        events: Option<Vec<i32>>,
        permissions: Vec<TeamPermission>,
    },
}

impl Credential {
    /// The token's `sub`: never a bare number, so it cannot pass for a user id.
    fn subject(&self) -> String {
        match self {
            Self::Kiosk { cabinet, .. } => format!("kiosk:{cabinet}"),
            Self::Scanner { event, gate, .. } => format!("scanner:{event}:{gate}"),
            Self::Team { team, .. } => format!("team:{team}"),
        }
    }
}

struct Key {
    kid: String,
    decoding: DecodingKey,
}

/// The signing key and the keys still accepted for verification.
pub struct TokenKeys {
    kid: String,
    encoding: EncodingKey,
    verifying: Vec<Key>,
    pub access_ttl: TimeDelta,
    pub refresh_ttl: TimeDelta,
}

/// The key id of a secret: the start of its SHA-256, so logs can name keys without revealing them.
fn key_id(secret: &[u8]) -> String {
    hex(&Sha256::digest(secret))[..12].to_owned()
}

impl TokenKeys {
    /// # Errors
    /// When the current secret is shorter than 32 bytes.
    pub fn new(
        secret: &[u8],
        previous: &[Vec<u8>],
        access_ttl: TimeDelta,
        refresh_ttl: TimeDelta,
    ) -> anyhow::Result<Self> {
        anyhow::ensure!(
            secret.len() >= 32,
            "VOLTGATE_JWT_SECRET must be at least 32 bytes long"
        );
        let verifying = std::iter::once(secret)
            .chain(previous.iter().map(Vec::as_slice))
            .map(|s| Key {
                kid: key_id(s),
                decoding: DecodingKey::from_secret(s),
            })
            .collect();
        Ok(Self {
            kid: key_id(secret),
            encoding: EncodingKey::from_secret(secret),
            verifying,
            access_ttl,
            refresh_ttl,
        })
    }

    /// Keys from a random secret, for a single process without configuration.
    pub fn ephemeral(access_ttl: TimeDelta, refresh_ttl: TimeDelta) -> anyhow::Result<Self> {
        Self::new(random_secret()?.as_bytes(), &[], access_ttl, refresh_ttl)
    }

    /// Signs an access token for `user_id`; returns it with its expiry.
    ///
    /// # Errors
    /// `INTERNAL` if signing fails.
    pub fn issue_access(
        &self,
        user_id: i32,
        version: i32,
        now: DateTime<Utc>,
    ) -> Result<(String, DateTime<Utc>), AppError> {
        let expires = now + self.access_ttl;
        let claims = AccessClaims {
            sub: user_id.to_string(),
            ver: version,
            iat: now.timestamp(),
            exp: expires.timestamp(),
            cred: None,
        };
        self.sign(&claims).map(|token| (token, expires))
    }

    /// Signs a token for a caller that is not a person, valid for `ttl`.
    ///
    /// # Errors
    /// `INTERNAL` if signing fails.
    pub fn issue_credential(
        &self,
        credential: Credential,
        ttl: TimeDelta,
        now: DateTime<Utc>,
    ) -> Result<(String, DateTime<Utc>), AppError> {
        let expires = now + ttl;
        let claims = AccessClaims {
            sub: credential.subject(),
            ver: 0,
            iat: now.timestamp(),
            exp: expires.timestamp(),
            cred: Some(credential),
        };
        self.sign(&claims).map(|token| (token, expires))
    }

    fn sign(&self, claims: &AccessClaims) -> Result<String, AppError> {
        let mut header = Header::new(Algorithm::HS256);
        header.kid = Some(self.kid.clone());
        jsonwebtoken::encode(&header, claims, &self.encoding).map_err(AppError::internal)
    }

    /// Verifies an access token's signature and expiry.
    ///
    /// # Errors
    /// `UNAUTHENTICATED` for any invalid, expired or unknown-key token.
    pub fn verify_access(&self, token: &str) -> Result<AccessClaims, AppError> {
        let header = jsonwebtoken::decode_header(token).map_err(|_| AppError::Unauthenticated)?;
        let key = self
            .verifying
            .iter()
            .find(|k| header.kid.as_deref() == Some(k.kid.as_str()))
            .ok_or(AppError::Unauthenticated)?;
        let mut validation = Validation::new(Algorithm::HS256);
        validation.leeway = 5;
        validation.set_required_spec_claims(&["exp", "sub"]);
        jsonwebtoken::decode::<AccessClaims>(token, &key.decoding, &validation)
            .map(|data| data.claims)
            .map_err(|_| AppError::Unauthenticated)
    }
}

/// 256 random bits, base64url: refresh tokens, temporary passwords, secrets.
///
/// # Errors
/// `INTERNAL` when the system random source fails: a predictable token is never
/// handed out instead.
pub fn random_token() -> Result<String, AppError> {
    random_secret().map_err(AppError::internal)
}

fn random_secret() -> anyhow::Result<String> {
    use base64::Engine as _;
    let mut bytes = [0_u8; 32];
    getrandom::fill(&mut bytes)
        .map_err(|e| anyhow::anyhow!("the system random source failed: {e}"))?;
    Ok(base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(bytes))
}

/// SHA-256 of a secret, hex-encoded: how refresh tokens, badge UIDs and codes are stored.
pub fn sha256_hex(secret: &str) -> String {
    hex(&Sha256::digest(secret.as_bytes()))
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn keys(secret: &str) -> TokenKeys {
        TokenKeys::new(
            secret.as_bytes(),
            &[],
            TimeDelta::minutes(15),
            TimeDelta::days(30),
        )
        .expect("valid keys")
    }

    #[test]
    fn access_tokens_round_trip() {
        let keys = keys("an-access-token-secret-of-32-bytes!!");
        let (token, expires) = keys.issue_access(7, 3, Utc::now()).expect("signed");
        let claims = keys.verify_access(&token).expect("valid");
        assert_eq!(
            (claims.sub.as_str(), claims.ver, claims.exp),
            ("7", 3, expires.timestamp())
        );
    }

    #[test]
    fn expired_foreign_and_garbage_tokens_are_refused() {
        let keys = keys("an-access-token-secret-of-32-bytes!!");
        let (old, _) = keys
            .issue_access(7, 0, Utc::now() - TimeDelta::hours(1))
            .expect("signed");
        assert!(keys.verify_access(&old).is_err());
        let other = super::tests::keys("another-secret-that-is-32-bytes-long");
        let (foreign, _) = other.issue_access(7, 0, Utc::now()).expect("signed");
        assert!(keys.verify_access(&foreign).is_err());
        assert!(keys.verify_access("not.a.jwt").is_err());
    }

    #[test]
    fn previous_keys_still_verify_during_rotation() {
        let old = keys("the-old-secret-that-is-32-bytes-long");
        let (token, _) = old.issue_access(1, 0, Utc::now()).expect("signed");
        let rotated = TokenKeys::new(
            b"the-new-secret-that-is-32-bytes-long",
            &[b"the-old-secret-that-is-32-bytes-long".to_vec()],
            TimeDelta::minutes(15),
            TimeDelta::days(30),
        )
        .expect("keys");
        assert!(rotated.verify_access(&token).is_ok());
    }

    #[test]
    fn short_secrets_are_refused_and_tokens_are_random() {
        assert!(TokenKeys::new(b"short", &[], TimeDelta::minutes(1), TimeDelta::days(1)).is_err());
        assert_ne!(random_token().ok(), random_token().ok());
        assert!(random_token().is_ok_and(|t| t.len() == 43));
        assert_eq!(sha256_hex("abc").len(), 64);
    }
}
