//! Ed25519 signatures over documents that devices verify offline, with only
//! the public key (check-in downloads for door scanners, kiosks' offline caches).
//!
//! The key is `VOLTGATE_SIGNING_KEY` (32 bytes, base64url, the same on every
//! replica) or, unset, generated once and stored in `server_secrets`, where
//! every replica finds it. A signature is base64url (no padding) over the
//! exact bytes of the document; the public key is 32 bytes, base64url, and
//! its id the first 12 hex digits of its SHA-256.

use std::sync::Arc;

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use chrono::Utc;
use ed25519_dalek::{Signature, Signer as _, SigningKey, Verifier as _, VerifyingKey};
use sea_orm::{ConnectionTrait, EntityTrait, Set};
use sha2::{Digest, Sha256};

use crate::entities::server_secret;
use crate::error::AppError;

/// The `server_secrets` row of a generated key.
const SECRET_NAME: &str = "signing_ed25519";

/// A signing key.
pub struct Signer {
    key: SigningKey,
}

impl std::fmt::Debug for Signer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Signer")
            .field("key_id", &self.key_id())
            .finish_non_exhaustive()
    }
}

impl Signer {
    pub fn from_seed(seed: [u8; 32]) -> Self {
        Self {
            key: SigningKey::from_bytes(&seed),
        }
    }

    /// A key from its 32-byte seed in base64url.
    ///
    /// # Errors
    /// When `text` is not 32 bytes of base64url.
    pub fn parse(text: &str) -> anyhow::Result<Self> {
        let bytes = URL_SAFE_NO_PAD
            .decode(text.trim().trim_end_matches('='))
            .map_err(|_| anyhow::anyhow!("VOLTGATE_SIGNING_KEY is not base64url"))?;
        let seed: [u8; 32] = bytes
            .try_into()
            .map_err(|_| anyhow::anyhow!("VOLTGATE_SIGNING_KEY must be 32 bytes"))?;
        Ok(Self::from_seed(seed))
    }

    /// The public key, base64url.
    pub fn public_key(&self) -> String {
        URL_SAFE_NO_PAD.encode(self.key.verifying_key().as_bytes())
    }

    /// Names the key without revealing anything: devices see when it changes.
    pub fn key_id(&self) -> String {
        Sha256::digest(self.key.verifying_key().as_bytes())
            .iter()
            .take(6)
            .map(|b| format!("{b:02x}"))
            .collect()
    }

    /// The signature of `message`, base64url.
    pub fn sign(&self, message: &[u8]) -> String {
        URL_SAFE_NO_PAD.encode(self.key.sign(message).to_bytes())
    }
}

/// A signed JSON document, as devices download it.
#[derive(Debug, Clone)]
pub struct SignedDocument {
    /// The JSON document, exactly as signed.
    pub document: String,
    /// Ed25519 over the document's bytes, base64url.
    pub signature: String,
    pub public_key: String,
    pub key_id: String,
}

impl Signer {
    /// `document` as JSON, signed over its exact bytes.
    ///
    /// # Errors
    /// `INTERNAL` when it cannot be serialized.
    pub fn sign_json(&self, document: &impl serde::Serialize) -> Result<SignedDocument, AppError> {
        let document = serde_json::to_string(document).map_err(AppError::internal)?;
        Ok(SignedDocument {
            signature: self.sign(document.as_bytes()),
            public_key: self.public_key(),
            key_id: self.key_id(),
            document,
        })
    }
}

/// Whether `signature` (base64url) is `public_key`'s (base64url) over `message`.
pub fn verify(public_key: &str, message: &[u8], signature: &str) -> bool {
    let key = URL_SAFE_NO_PAD
        .decode(public_key)
        .ok()
        .and_then(|b| <[u8; 32]>::try_from(b).ok())
        .and_then(|b| VerifyingKey::from_bytes(&b).ok());
    let signature = URL_SAFE_NO_PAD
        .decode(signature)
        .ok()
        .and_then(|b| <[u8; 64]>::try_from(b).ok())
        .map(|b| Signature::from_bytes(&b));
    match (key, signature) {
        (Some(key), Some(signature)) => key.verify(message, &signature).is_ok(),
        _ => false,
    }
}

/// The server's signer: the configured key, or the stored one read on first use.
#[derive(Debug, Default)]
pub struct SignerCell {
    configured: Option<Arc<Signer>>,
    loaded: tokio::sync::OnceCell<Arc<Signer>>,
}

impl SignerCell {
    /// # Errors
    /// When a configured key is not 32 bytes of base64url.
    pub fn new(configured: Option<&str>) -> anyhow::Result<Self> {
        Ok(Self {
            configured: configured.map(Signer::parse).transpose()?.map(Arc::new),
            loaded: tokio::sync::OnceCell::new(),
        })
    }

    /// The signer.
    ///
    /// # Errors
    /// On database errors, or a stored key that is not a key.
    pub async fn get(&self, db: &impl ConnectionTrait) -> Result<Arc<Signer>, AppError> {
        if let Some(signer) = &self.configured {
            return Ok(Arc::clone(signer));
        }
        self.loaded
            .get_or_try_init(|| async { stored_key(db).await.map(Arc::new) })
            .await
            .cloned()
    }
}

/// The stored key, created on first use; concurrent first uses (replicas
/// starting together) insert at most one, and the loser reads the winner's.
async fn stored_key(db: &impl ConnectionTrait) -> Result<Signer, AppError> {
    if let Some(row) = server_secret::Entity::find_by_id(SECRET_NAME)
        .one(db)
        .await?
    {
        return Signer::parse(&row.value).map_err(AppError::internal);
    }
    let mut seed = [0_u8; 32];
    getrandom::fill(&mut seed)
        .map_err(|e| AppError::internal(anyhow::anyhow!("the system random source failed: {e}")))?;
    server_secret::Entity::insert(server_secret::ActiveModel {
        name: Set(SECRET_NAME.to_owned()),
        value: Set(URL_SAFE_NO_PAD.encode(seed)),
        created_at: Set(Utc::now()),
    })
    .on_conflict_do_nothing_on([server_secret::Column::Name])
    .exec(db)
    .await?;
    let row = server_secret::Entity::find_by_id(SECRET_NAME)
        .one(db)
        .await?
        .ok_or_else(|| AppError::internal(anyhow::anyhow!("the signing key was not stored")))?;
    Signer::parse(&row.value).map_err(AppError::internal)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn signatures_verify_with_the_public_key_only() {
        let signer = Signer::from_seed([7; 32]);
        let signature = signer.sign(b"document");
        assert!(verify(&signer.public_key(), b"document", &signature));
        assert!(!verify(&signer.public_key(), b"documenT", &signature));
        let other = Signer::from_seed([8; 32]);
        assert!(!verify(&other.public_key(), b"document", &signature));
        assert!(!verify("not a key", b"document", &signature));
        assert_eq!(signer.key_id().len(), 12);
    }

    #[test]
    fn configured_keys_are_32_bytes_of_base64url() {
        let seed = URL_SAFE_NO_PAD.encode([1_u8; 32]);
        assert!(Signer::parse(&seed).is_ok());
        assert!(Signer::parse("short").is_err());
        assert!(Signer::parse("!!!").is_err());
    }
}
