//! The embedded MQTT broker (rumqttd), for running voltgate with nothing installed.
//!
//! rumqttd serves one protocol version per listener, so it gets two: MQTT 3.1.1 on
//! the configured address, for devices (most ESP32 firmware speaks 3.1.1), and
//! MQTT 5 on a private loopback port, for the server's own client, which needs v5
//! shared subscriptions like every replica does against Mosquitto. Production
//! deployments use an external broker (`MQTT_URL`): rumqttd keeps nothing on disk
//! and cannot be stopped before the process exits.

use std::collections::HashMap;
use std::io::ErrorKind;
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::time::{Duration, Instant};

use rumqttd::{Broker, Config, ConnectionSettings, RouterConfig, ServerSettings};

/// Addresses of a running embedded broker.
#[derive(Debug, Clone, Copy)]
pub struct EmbeddedBroker {
    /// MQTT 3.1.1 listener for devices.
    pub device_addr: SocketAddr,
    /// MQTT 5 listener for the server's own client.
    pub server_addr: SocketAddr,
}

/// Starts the broker on `device_addr` (port 0 picks a free port).
///
/// # Errors
/// When the address is taken (the message names the ways out) or the broker does
/// not come up.
pub fn start(device_addr: SocketAddr) -> anyhow::Result<EmbeddedBroker> {
    let device_addr = reserve(device_addr)?;
    let server_addr = reserve(SocketAddr::from(([127, 0, 0, 1], 0)))?;

    let connections = ConnectionSettings {
        connection_timeout_ms: 60_000,
        max_payload_size: 64 * 1024,
        max_inflight_count: 500,
        auth: None,
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
        v4: listener("devices-v4", device_addr),
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
    wait_until_listening(device_addr)?;
    wait_until_listening(server_addr)?;
    tracing::info!(%device_addr, "embedded MQTT broker listening (MQTT 3.1.1)");
    Ok(EmbeddedBroker {
        device_addr,
        server_addr,
    })
}

/// Checks that `addr` is free (resolving port 0 to a free port) and returns it.
fn reserve(addr: SocketAddr) -> anyhow::Result<SocketAddr> {
    match TcpListener::bind(addr) {
        // Released at once: rumqttd binds it again on its own thread.
        Ok(listener) => Ok(listener.local_addr()?),
        Err(err) if err.kind() == ErrorKind::AddrInUse => anyhow::bail!(
            "the embedded MQTT broker cannot listen on {addr}: the address is already in use \
             (often by a Mosquitto already running). Either use that broker with \
             MQTT_URL=mqtt://{addr}, or move the embedded broker with \
             VOLTGATE_EMBEDDED_MQTT_ADDR=127.0.0.1:<free port>"
        ),
        Err(err) => Err(anyhow::anyhow!(
            "the embedded MQTT broker cannot listen on {addr}: {err}"
        )),
    }
}

fn wait_until_listening(addr: SocketAddr) -> anyhow::Result<()> {
    let deadline = Instant::now() + Duration::from_secs(5);
    while Instant::now() < deadline {
        if TcpStream::connect_timeout(&addr, Duration::from_millis(200)).is_ok() {
            return Ok(());
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    anyhow::bail!("the embedded MQTT broker did not start listening on {addr}")
}
