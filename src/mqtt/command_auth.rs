//! Signed commands: what lets a device refuse a forged, expired or replayed command
//! even when the broker in front of it is misconfigured.
//!
//! Every command carries `expires_at` (Unix seconds) and `mac`, the lowercase hex
//! HMAC-SHA256, keyed with the device's command key, of
//!
//! ```text
//! voltgate-cmd-v1\n<command_id>\n<action>\n<expires_at>\n<params>
//! ```
//!
//! where `<params>` is the command's `params` object as compact JSON with keys in
//! byte order (exactly how the server writes it into the message). A device
//! verifies the MAC, refuses a command whose `expires_at` has passed, and
//! remembers the ids it has accepted until they expire, so a replay is refused.
//! [`CommandVerifier`] is that device side; the simulator runs it.

use std::collections::HashMap;

use chrono::{DateTime, Utc};
use hmac::{Hmac, Mac as _};
use sha2::Sha256;
use uuid::Uuid;

use super::payload::Command;

type HmacSha256 = Hmac<Sha256>;

/// Domain separation: a MAC over anything else never verifies as a command.
const CONTEXT: &str = "voltgate-cmd-v1";

/// A device's 32-byte command key; `Debug` hides it.
#[derive(Clone, PartialEq, Eq)]
pub struct CommandKey(pub [u8; 32]);

impl std::fmt::Debug for CommandKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("CommandKey(***)")
    }
}

impl CommandKey {
    /// The key as devices are given it: 64 lowercase hex digits.
    pub fn to_hex(&self) -> String {
        hex(&self.0)
    }

    /// Reads the hex form back; `None` unless it is exactly 32 bytes of hex.
    pub fn from_hex(text: &str) -> Option<Self> {
        let bytes = unhex(text.trim())?;
        Some(Self(bytes.try_into().ok()?))
    }
}

/// The bytes the MAC covers.
fn signed_bytes(command: &Command) -> Vec<u8> {
    // `serde_json::Map` is ordered by key (no `preserve_order`), so this is canonical.
    let params = serde_json::to_string(&command.params).unwrap_or_else(|_| "{}".to_owned());
    format!(
        "{CONTEXT}\n{}\n{}\n{}\n{params}",
        command.command_id,
        command.action.as_str(),
        command.expires_at
    )
    .into_bytes()
}

fn mac_for(key: &CommandKey) -> HmacSha256 {
    // HMAC takes keys of any length, so this cannot fail for 32 bytes.
    <HmacSha256 as hmac::KeyInit>::new_from_slice(&key.0)
        .unwrap_or_else(|_| unreachable!("HMAC accepts any key length"))
}

/// Computes the command's `mac` (over every other field) and stores it.
pub fn sign(key: &CommandKey, command: &mut Command) {
    let mut mac = mac_for(key);
    mac.update(&signed_bytes(command));
    command.mac = hex(&mac.finalize().into_bytes());
}

/// Why a device refuses a command.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Refusal {
    /// The MAC is missing, malformed or wrong: not from the server, or altered.
    BadSignature,
    /// `expires_at` has passed.
    Expired,
    /// A command with this id was already accepted.
    Replayed,
}

impl Refusal {
    pub const fn as_str(self) -> &'static str {
        match self {
            Self::BadSignature => "bad_signature",
            Self::Expired => "expired",
            Self::Replayed => "replayed",
        }
    }
}

/// Checks a command's MAC alone, in constant time.
pub fn verify_signature(key: &CommandKey, command: &Command) -> bool {
    let Some(expected) = unhex(&command.mac) else {
        return false;
    };
    let mut mac = mac_for(key);
    mac.update(&signed_bytes(command));
    mac.verify_slice(&expected).is_ok()
}

/// The device side: signature, expiry and replay checks, with the accepted ids it remembers.
#[derive(Debug)]
pub struct CommandVerifier {
    key: CommandKey,
    /// Accepted command ids and their expiry; forgotten once expired, as a replay
    /// of an expired command is refused for its expiry anyway.
    seen: HashMap<Uuid, i64>,
}

impl CommandVerifier {
    pub fn new(key: CommandKey) -> Self {
        Self {
            key,
            seen: HashMap::new(),
        }
    }

    /// Accepts the command (and remembers its id) or says why not.
    ///
    /// # Errors
    /// The [`Refusal`]; the signature is checked first, so nothing unsigned is remembered.
    pub fn accept(&mut self, command: &Command, now: DateTime<Utc>) -> Result<(), Refusal> {
        if !verify_signature(&self.key, command) {
            return Err(Refusal::BadSignature);
        }
        let now = now.timestamp();
        if command.expires_at < now {
            return Err(Refusal::Expired);
        }
        self.seen.retain(|_, expires_at| *expires_at >= now);
        if self.seen.contains_key(&command.command_id) {
            return Err(Refusal::Replayed);
        }
        self.seen.insert(command.command_id, command.expires_at);
        Ok(())
    }
}

fn hex(bytes: &[u8]) -> String {
    use std::fmt::Write as _;
    bytes.iter().fold(String::new(), |mut out, b| {
        let _ = write!(out, "{b:02x}");
        out
    })
}

fn unhex(text: &str) -> Option<Vec<u8>> {
    if !text.len().is_multiple_of(2) || !text.is_ascii() {
        return None;
    }
    (0..text.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(&text[i..i + 2], 16).ok())
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::mqtt::payload::{CommandAction, PROTOCOL_VERSION};
    use proptest::prelude::*;

    fn command(expires_at: i64) -> Command {
        let mut params = serde_json::Map::new();
        params.insert("version".into(), "1.5.0".into());
        params.insert("url".into(), "https://fw.example/1.5.0.bin".into());
        Command {
            v: PROTOCOL_VERSION,
            ts: Utc::now(),
            command_id: Uuid::new_v4(),
            action: CommandAction::OtaUpdate,
            params,
            expires_at,
            mac: String::new(),
        }
    }

    fn key(byte: u8) -> CommandKey {
        CommandKey([byte; 32])
    }

    #[test]
    fn a_signed_command_is_accepted_once() {
        let now = Utc::now();
        let mut signed = command(now.timestamp() + 60);
        sign(&key(7), &mut signed);
        let mut device = CommandVerifier::new(key(7));
        assert_eq!(device.accept(&signed, now), Ok(()));
        assert_eq!(device.accept(&signed, now), Err(Refusal::Replayed));
    }

    #[test]
    fn forged_altered_and_expired_commands_are_refused() {
        let now = Utc::now();
        let mut device = CommandVerifier::new(key(7));

        let mut forged = command(now.timestamp() + 60);
        sign(&key(8), &mut forged);
        assert_eq!(device.accept(&forged, now), Err(Refusal::BadSignature));

        let mut unsigned = command(now.timestamp() + 60);
        unsigned.mac = "not hex".into();
        assert_eq!(device.accept(&unsigned, now), Err(Refusal::BadSignature));

        let mut altered = command(now.timestamp() + 60);
        sign(&key(7), &mut altered);
        altered.action = CommandAction::Unlock;
        assert_eq!(device.accept(&altered, now), Err(Refusal::BadSignature));

        let mut extended = command(now.timestamp() + 60);
        sign(&key(7), &mut extended);
        extended.expires_at += 3600;
        assert_eq!(device.accept(&extended, now), Err(Refusal::BadSignature));

        let mut expired = command(now.timestamp() - 1);
        sign(&key(7), &mut expired);
        assert_eq!(device.accept(&expired, now), Err(Refusal::Expired));
    }

    #[test]
    fn signatures_survive_the_wire() {
        let now = Utc::now();
        let mut signed = command(now.timestamp() + 60);
        sign(&key(3), &mut signed);
        let bytes = serde_json::to_vec(&signed).unwrap_or_default();
        let received = crate::mqtt::payload::decode_command(&bytes, 4096);
        assert_eq!(
            received.map(|c| verify_signature(&key(3), &c)),
            Ok(true),
            "{}",
            String::from_utf8_lossy(&bytes)
        );
    }

    #[test]
    fn keys_round_trip_through_hex() {
        let key = CommandKey([0xab; 32]);
        assert_eq!(CommandKey::from_hex(&key.to_hex()), Some(key));
        assert_eq!(CommandKey::from_hex("abcd"), None);
        assert_eq!(CommandKey::from_hex(&"zz".repeat(32)), None);
    }

    proptest! {
        #[test]
        fn arbitrary_macs_never_verify_or_panic(mac in ".{0,80}", id in any::<u128>()) {
            let mut candidate = command(i64::MAX);
            candidate.command_id = Uuid::from_u128(id);
            candidate.mac = mac;
            let mut device = CommandVerifier::new(key(1));
            prop_assert_eq!(device.accept(&candidate, Utc::now()), Err(Refusal::BadSignature));
        }

        #[test]
        fn arbitrary_hex_keys_never_panic(text in ".{0,80}") {
            let _ = CommandKey::from_hex(&text);
        }
    }
}
