//! The embedded MQTT broker (rumqttd), for running voltgate with nothing installed.
//!
//! rumqttd authenticates a CONNECT but has no topic ACLs, so it listens only on
//! private loopback ports, behind a login that exists only in this process (a
//! random password in its static `auth` map): MQTT 3.1.1 for the device gate
//! (`gate.rs`), which is what devices reach on the configured address and which
//! enforces their credentials and topics, and MQTT 5 for the server's own client,
//! which needs v5 shared subscriptions like every replica does against
//! Mosquitto. Production deployments use an external broker (`MQTT_URL`):
//! rumqttd keeps nothing on disk and cannot be stopped before the process exits.

use std::collections::HashMap;
use std::io::ErrorKind;
use std::net::{SocketAddr, TcpListener};

use base64::Engine as _;
use rumqttd::{Broker, Config, ConnectionSettings, RouterConfig, ServerSettings};

use super::ingest::Credentials;

/// Addresses and login of a running embedded broker.
#[derive(Debug, Clone)]
pub struct EmbeddedBroker {
    /// Private MQTT 3.1.1 listener the device gate relays to.
    pub device_upstream: SocketAddr,
    /// Private MQTT 5 listener for the server's own client.
    pub server_addr: SocketAddr,
    /// The only login the broker accepts; never leaves the process.
    pub internal: Credentials,
}

/// Starts the broker on private loopback ports; `max_packet_bytes` bounds every packet.
///
/// # Errors
/// When no loopback port is free, randomness is unavailable or the broker thread cannot start.
pub fn start(max_packet_bytes: u32) -> anyhow::Result<EmbeddedBroker> {
    let loopback = SocketAddr::from(([127, 0, 0, 1], 0));
    let device_upstream = reserve(loopback)?;
    let server_addr = reserve(loopback)?;
    let mut secret = [0_u8; 24];
    getrandom::fill(&mut secret).map_err(|e| anyhow::anyhow!("no randomness: {e}"))?;
    let internal = Credentials {
        username: "voltgate-internal".to_owned(),
        password: base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(secret),
    };

    let connections = ConnectionSettings {
        connection_timeout_ms: 60_000,
        max_payload_size: usize::try_from(max_packet_bytes).unwrap_or(usize::MAX),
        max_inflight_count: 500,
        auth: Some(HashMap::from([(
            internal.username.clone(),
            internal.password.clone(),
        )])),
        external_auth: None,
        dynamic_filters: true,
    };
    let listener = |name: &str, listen: SocketAddr| {
        let settings = ServerSettings {
            name: name.to_owned(),
            listen,
            tls: None,
            next_connection_delay_ms: 0,
            connections: connections.clone(),
        };
        Some(HashMap::from([(name.to_owned(), settings)]))
    };
    let config = Config {
        id: 0,
        router: RouterConfig {
            max_connections: 20_000,
            max_outgoing_packet_count: 1_000,
            max_segment_size: 64 * 1024 * 1024,
            max_segment_count: 10,
            ..RouterConfig::default()
        },
        v4: listener("devices-v4", device_upstream),
        v5: listener("server-v5", server_addr),
        ..Config::default()
    };
    let mut broker = Broker::new(config);
    std::thread::Builder::new()
        .name("mqtt-broker".into())
        .spawn(move || {
            if let Err(err) = broker.start() {
                tracing::error!(error = %err, "embedded MQTT broker stopped");
            }
        })?;
    // No readiness probe here: a bare TCP connection makes rumqttd log an error.
    // The server's client retries its first CONNECT until the broker listens.
    Ok(EmbeddedBroker {
        device_upstream,
        server_addr,
        internal,
    })
}

/// Where [`reserve`] draws ports: below Linux's default ephemeral range
/// (32768–60999), from which `bind` to port 0 and outgoing connections take
/// theirs.
const PRIVATE_PORTS: std::ops::Range<u16> = 20_000..32_768;

/// Ports this process has handed to a broker. rumqttd binds them on its own
/// thread some time after [`reserve`] checked them, so a second broker starting
/// in that window (servers in one test process do) could draw the same free
/// port; its client would then reach the other broker and be turned away.
/// rumqttd never releases a port before the process exits, so neither does this.
static HANDED_OUT: std::sync::Mutex<Vec<u16>> = std::sync::Mutex::new(Vec::new());

/// Picks a free loopback port for rumqttd, which binds it again on its own
/// thread. rumqttd takes an address, not a listener, so the port is free
/// again between this check and its bind: drawn at random outside the
/// ephemeral range, it is not the next port another listener of the process
/// gets from port 0 (which would take the broker's place and answer the
/// server's client with another protocol), and never one already handed out
/// by this process.
fn reserve(addr: SocketAddr) -> anyhow::Result<SocketAddr> {
    let mut handed_out = HANDED_OUT
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner);
    let span = PRIVATE_PORTS.end - PRIVATE_PORTS.start;
    for _ in 0..64 {
        let mut draw = [0_u8; 2];
        getrandom::fill(&mut draw).map_err(|e| anyhow::anyhow!("no randomness: {e}"))?;
        let port = PRIVATE_PORTS.start + u16::from_le_bytes(draw) % span;
        if handed_out.contains(&port) {
            continue;
        }
        if let Ok(listener) = TcpListener::bind(SocketAddr::new(addr.ip(), port)) {
            let reserved = listener.local_addr()?;
            handed_out.push(port);
            return Ok(reserved);
        }
    }
    let listener = TcpListener::bind(addr).map_err(|err| {
        anyhow::anyhow!("the embedded MQTT broker cannot listen on {addr}: {err}")
    })?;
    let reserved = listener.local_addr()?;
    handed_out.push(reserved.port());
    Ok(reserved)
}

/// The message for a device address already taken, naming the ways out.
pub fn address_in_use(addr: SocketAddr) -> anyhow::Error {
    anyhow::anyhow!(
        "the embedded MQTT broker cannot listen on {addr}: the address is already in use \
         (often by a Mosquitto already running). Either use that broker with \
         MQTT_URL=mqtt://{addr}, or move the embedded broker with \
         VOLTGATE_EMBEDDED_MQTT_ADDR=127.0.0.1:<free port>"
    )
}

/// Whether an error binding a listener means the address is taken.
pub fn is_in_use(err: &std::io::Error) -> bool {
    err.kind() == ErrorKind::AddrInUse
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reserved_ports_are_free_loopback_ports_outside_the_ephemeral_range() {
        let loopback = SocketAddr::from(([127, 0, 0, 1], 0));
        let first = reserve(loopback).expect("a port");
        let second = reserve(loopback).expect("a port");
        for addr in [first, second] {
            assert!(addr.ip().is_loopback(), "{addr}");
            assert!(PRIVATE_PORTS.contains(&addr.port()), "{addr}");
            TcpListener::bind(addr).expect("free to bind again");
        }
    }

    #[test]
    fn a_port_is_handed_out_once_even_while_still_free() {
        let loopback = SocketAddr::from(([127, 0, 0, 1], 0));
        // Nothing binds these, as if their brokers had not started yet.
        let ports: Vec<u16> = (0..200)
            .map(|_| reserve(loopback).expect("a port").port())
            .collect();
        let mut distinct = ports.clone();
        distinct.sort_unstable();
        distinct.dedup();
        assert_eq!(distinct.len(), ports.len(), "a port was handed out twice");
    }
}
