//! Device protocol v1 payloads: JSON objects with `"v": 1` and an RFC 3339 `ts`.
//!
//! Decoding is strict about what the server relies on (version, timestamp, known
//! enum values, sane sizes) and lenient about the rest: unknown fields are ignored
//! so devices can add fields without breaking older servers.

use std::net::IpAddr;

use chrono::{DateTime, Utc};
use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};
use uuid::Uuid;

use super::DropReason;
pub use crate::devices::commands::{AckStatus, CommandAction};
use crate::devices::reports;
use crate::entities::{DeviceStatus, LockState};

pub const PROTOCOL_VERSION: u8 = 1;

/// Default largest payload read (`VOLTGATE_MQTT_MAX_PAYLOAD_BYTES`); devices send a few hundred bytes.
pub const DEFAULT_MAX_PAYLOAD_BYTES: usize = 4096;

/// `<prefix>/bays/<n>/state`: retained, and the device's Last Will with `"status":"offline"`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct StateReport {
    pub v: u8,
    pub ts: DateTime<Utc>,
    pub mac: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub fw: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ip: Option<IpAddr>,
    pub status: DeviceStatus,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub lock: Option<LockState>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub plugged: Option<bool>,
    /// Optional per-device counter that orders reports sharing one `ts`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub seq: Option<i64>,
}

/// `<prefix>/bays/<n>/telemetry`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Telemetry {
    pub v: u8,
    pub ts: DateTime<Utc>,
    pub session: Option<serde_json::Value>,
    pub current_a: f64,
    pub voltage_v: f64,
    pub energy_kwh: f64,
}

/// `<prefix>/bays/<n>/sensors/<kind>`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SensorReading {
    pub v: u8,
    pub ts: DateTime<Utc>,
    pub value: f64,
    pub unit: String,
}

/// `<prefix>/bays/<n>/ack`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct CommandAck {
    pub v: u8,
    pub ts: DateTime<Utc>,
    pub command_id: Uuid,
    pub action: CommandAction,
    pub status: AckStatus,
    #[serde(default)]
    pub message: Option<String>,
}

/// `<prefix>/bays/<n>/cmd`, server → device.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Command {
    pub v: u8,
    pub ts: DateTime<Utc>,
    pub command_id: Uuid,
    pub action: CommandAction,
    #[serde(default)]
    pub params: serde_json::Map<String, serde_json::Value>,
    /// Unix seconds after which the device must refuse the command.
    pub expires_at: i64,
    /// HMAC-SHA256 of the command with the device's key (`command_auth`), lowercase hex.
    #[serde(default)]
    pub mac: String,
}

impl From<StateReport> for reports::StateReport {
    fn from(wire: StateReport) -> Self {
        Self {
            ts: wire.ts,
            mac: wire.mac,
            fw: wire.fw,
            ip: wire.ip,
            status: wire.status,
            lock: wire.lock,
            plugged: wire.plugged,
            seq: wire.seq,
        }
    }
}

impl From<CommandAck> for reports::CommandAck {
    fn from(wire: CommandAck) -> Self {
        Self {
            ts: wire.ts,
            command_id: wire.command_id,
            action: wire.action,
            status: wire.status,
            message: wire.message,
        }
    }
}

fn decode<T: DeserializeOwned>(bytes: &[u8], max_bytes: usize) -> Result<T, DropReason> {
    if bytes.len() > max_bytes {
        return Err(DropReason::PayloadTooLarge);
    }
    // Read the version first so a future protocol is reported as such, not as garbage.
    let value: serde_json::Value =
        serde_json::from_slice(bytes).map_err(|_| DropReason::MalformedJson)?;
    match value.get("v").and_then(serde_json::Value::as_u64) {
        Some(v) if v == u64::from(PROTOCOL_VERSION) => {}
        Some(_) => return Err(DropReason::UnsupportedVersion),
        None => return Err(DropReason::InvalidPayload),
    }
    serde_json::from_value(value).map_err(|_| DropReason::InvalidPayload)
}

/// Decodes and validates a state report; the MAC comes back normalized (`AA:BB:…`).
///
/// # Errors
/// The [`DropReason`] to count when the payload is unusable (`payload_too_large`
/// above `max_bytes`).
pub fn decode_state(bytes: &[u8], max_bytes: usize) -> Result<StateReport, DropReason> {
    let mut report: StateReport = decode(bytes, max_bytes)?;
    report.mac = normalize_mac(&report.mac).ok_or(DropReason::InvalidPayload)?;
    let fw_ok = report
        .fw
        .as_deref()
        .is_none_or(|fw| !fw.is_empty() && fw.len() <= 64);
    // `provisioned` is the server's word for a device that has never spoken.
    if !fw_ok || report.status == DeviceStatus::Provisioned {
        return Err(DropReason::InvalidPayload);
    }
    Ok(report)
}

/// # Errors
/// The [`DropReason`] to count when the payload is unusable.
pub fn decode_telemetry(bytes: &[u8], max_bytes: usize) -> Result<Telemetry, DropReason> {
    let telemetry: Telemetry = decode(bytes, max_bytes)?;
    let finite = [
        telemetry.current_a,
        telemetry.voltage_v,
        telemetry.energy_kwh,
    ]
    .iter()
    .all(|x| x.is_finite());
    if !finite || telemetry.energy_kwh < 0.0 {
        return Err(DropReason::InvalidPayload);
    }
    Ok(telemetry)
}

/// # Errors
/// The [`DropReason`] to count when the payload is unusable.
pub fn decode_sensor(bytes: &[u8], max_bytes: usize) -> Result<SensorReading, DropReason> {
    let reading: SensorReading = decode(bytes, max_bytes)?;
    if !reading.value.is_finite() || reading.unit.len() > 16 {
        return Err(DropReason::InvalidPayload);
    }
    Ok(reading)
}

/// # Errors
/// The [`DropReason`] to count when the payload is unusable.
pub fn decode_ack(bytes: &[u8], max_bytes: usize) -> Result<CommandAck, DropReason> {
    let ack: CommandAck = decode(bytes, max_bytes)?;
    if ack.message.as_deref().is_some_and(|m| m.len() > 1024) {
        return Err(DropReason::InvalidPayload);
    }
    Ok(ack)
}

/// # Errors
/// The [`DropReason`] when a command cannot be understood (used by device simulators).
pub fn decode_command(bytes: &[u8], max_bytes: usize) -> Result<Command, DropReason> {
    decode(bytes, max_bytes)
}

/// Normalizes a MAC address to upper-case, colon-separated form, or `None` if it is not one.
pub fn normalize_mac(mac: &str) -> Option<String> {
    let hex: String = mac
        .chars()
        .filter(|c| !matches!(c, ':' | '-' | '.'))
        .collect();
    if hex.len() != 12 || !hex.chars().all(|c| c.is_ascii_hexdigit()) {
        return None;
    }
    let upper = hex.to_ascii_uppercase();
    let pairs: Vec<&str> = (0..6).map(|i| &upper[i * 2..i * 2 + 2]).collect();
    Some(pairs.join(":"))
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    const LIMIT: usize = DEFAULT_MAX_PAYLOAD_BYTES;

    const STATE: &str = r#"{"v":1,"ts":"2026-11-22T10:00:00.250Z","mac":"aa-bb-cc-dd-ee-01","fw":"1.4.2",
        "ip":"10.0.0.7","status":"charging","lock":"locked","plugged":true,"extra":"ignored"}"#;

    #[test]
    fn state_reports_decode_and_normalize_the_mac() {
        let report = decode_state(STATE.as_bytes(), LIMIT);
        let report = report
            .as_ref()
            .map(|r| (r.mac.as_str(), r.status, r.lock, r.plugged, r.fw.as_deref()));
        assert_eq!(
            report,
            Ok((
                "AA:BB:CC:DD:EE:01",
                DeviceStatus::Charging,
                Some(LockState::Locked),
                Some(true),
                Some("1.4.2")
            ))
        );
    }

    #[test]
    fn a_last_will_needs_only_status_mac_and_ts() {
        let will =
            br#"{"v":1,"ts":"2026-11-22T10:00:00Z","mac":"AA:BB:CC:DD:EE:01","status":"offline"}"#;
        assert_eq!(
            decode_state(will, LIMIT).map(|r| r.status),
            Ok(DeviceStatus::Offline)
        );
    }

    #[test]
    fn bad_state_payloads_are_classified() {
        let cases: [(&[u8], DropReason); 9] = [
            (b"not json", DropReason::MalformedJson),
            (b"", DropReason::MalformedJson),
            (br#"[1,2]"#, DropReason::InvalidPayload),
            (br#"{"ts":"2026-11-22T10:00:00Z","mac":"AA:BB:CC:DD:EE:01","status":"idle"}"#, DropReason::InvalidPayload),
            (br#"{"v":2,"ts":"2026-11-22T10:00:00Z","mac":"AA:BB:CC:DD:EE:01","status":"idle"}"#, DropReason::UnsupportedVersion),
            (br#"{"v":1,"ts":"yesterday","mac":"AA:BB:CC:DD:EE:01","status":"idle"}"#, DropReason::InvalidPayload),
            (br#"{"v":1,"ts":"2026-11-22T10:00:00Z","mac":"nope","status":"idle"}"#, DropReason::InvalidPayload),
            (br#"{"v":1,"ts":"2026-11-22T10:00:00Z","mac":"AA:BB:CC:DD:EE:01","status":"dancing"}"#, DropReason::InvalidPayload),
            (br#"{"v":1,"ts":"2026-11-22T10:00:00Z","mac":"AA:BB:CC:DD:EE:01","status":"provisioned"}"#, DropReason::InvalidPayload),
        ];
        for (bytes, reason) in cases {
            assert_eq!(
                decode_state(bytes, LIMIT).err(),
                Some(reason),
                "{}",
                String::from_utf8_lossy(bytes)
            );
        }
        let huge = format!(r#"{{"v":1,"pad":"{}"}}"#, "x".repeat(LIMIT));
        assert_eq!(
            decode_state(huge.as_bytes(), LIMIT).err(),
            Some(DropReason::PayloadTooLarge)
        );
    }

    #[test]
    fn telemetry_sensors_and_acks_decode() {
        let t = br#"{"v":1,"ts":"2026-11-22T10:00:00Z","session":null,"current_a":16.0,"voltage_v":230.5,"energy_kwh":1.25}"#;
        assert_eq!(decode_telemetry(t, LIMIT).map(|t| t.energy_kwh), Ok(1.25));
        let negative = br#"{"v":1,"ts":"2026-11-22T10:00:00Z","session":null,"current_a":1,"voltage_v":1,"energy_kwh":-1}"#;
        assert_eq!(
            decode_telemetry(negative, LIMIT).err(),
            Some(DropReason::InvalidPayload)
        );
        let s = br#"{"v":1,"ts":"2026-11-22T10:00:00Z","value":41.5,"unit":"C"}"#;
        assert_eq!(decode_sensor(s, LIMIT).map(|s| s.value), Ok(41.5));
        let a = br#"{"v":1,"ts":"2026-11-22T10:00:00Z","command_id":"0b5a8e1c-3a55-4d8e-9d55-6f8c44a0c001","action":"unlock","status":"done","message":null}"#;
        assert_eq!(
            decode_ack(a, LIMIT).map(|a| (a.action, a.status)),
            Ok((CommandAction::Unlock, AckStatus::Done))
        );
    }

    #[test]
    fn commands_round_trip() {
        let command = Command {
            v: PROTOCOL_VERSION,
            ts: Utc::now(),
            command_id: Uuid::new_v4(),
            action: CommandAction::OtaUpdate,
            expires_at: 1_900_000_000,
            mac: "00".repeat(32),
            params: serde_json::json!({"url": "https://fw.example/1.5.0.bin", "version": "1.5.0"})
                .as_object()
                .cloned()
                .unwrap_or_default(),
        };
        let bytes = serde_json::to_vec(&command).unwrap_or_default();
        assert_eq!(decode_command(&bytes, LIMIT), Ok(command));
    }

    #[test]
    fn macs_normalize() {
        assert_eq!(
            normalize_mac("a0b1c2d3e4f5").as_deref(),
            Some("A0:B1:C2:D3:E4:F5")
        );
        assert_eq!(normalize_mac("A0:B1:C2:D3:E4"), None);
        assert_eq!(normalize_mac("G0:B1:C2:D3:E4:F5"), None);
    }

    /// The reasons a decoder may give: anything else (or a panic) is a bug.
    fn is_counted(reason: DropReason) -> bool {
        matches!(
            reason,
            DropReason::MalformedJson
                | DropReason::InvalidPayload
                | DropReason::UnsupportedVersion
                | DropReason::PayloadTooLarge
        )
    }

    proptest! {
        #[test]
        fn arbitrary_bytes_decode_or_give_a_counted_reason(bytes in proptest::collection::vec(any::<u8>(), 0..600)) {
            for result in [
                decode_state(&bytes, 512).err(),
                decode_telemetry(&bytes, 512).err(),
                decode_sensor(&bytes, 512).err(),
                decode_ack(&bytes, 512).err(),
                decode_command(&bytes, 512).err(),
            ] {
                prop_assert!(result.is_none_or(is_counted), "{result:?}");
            }
        }

        #[test]
        fn json_shaped_noise_decodes_or_gives_a_counted_reason(
            v in any::<i64>(),
            ts in ".{0,40}",
            mac in ".{0,24}",
            status in "[a-z]{0,12}",
            seq in any::<i64>(),
            fw in ".{0,80}",
        ) {
            let bytes = serde_json::json!({
                "v": v, "ts": ts, "mac": mac, "status": status, "seq": seq, "fw": fw,
            }).to_string().into_bytes();
            let result = decode_state(&bytes, LIMIT);
            prop_assert!(result.as_ref().err().is_none_or(|r| is_counted(*r)), "{result:?}");
        }

        #[test]
        fn valid_reports_survive_any_mac_spelling(mac in "[0-9a-fA-F]{2}([:.-]?[0-9a-fA-F]{2}){5}") {
            let bytes = serde_json::json!({
                "v": 1, "ts": "2026-11-22T10:00:00Z", "mac": mac, "status": "idle",
            }).to_string().into_bytes();
            let report = decode_state(&bytes, LIMIT);
            prop_assert!(report.is_ok(), "{report:?}");
        }
    }
}
