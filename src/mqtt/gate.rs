//! The device gate: the embedded broker's public face, where device credentials
//! and topic rights are enforced.
//!
//! rumqttd checks a login but has no topic ACLs, so devices never reach it
//! directly. The gate accepts MQTT 3.1.1 connections on the configured device
//! address and, for each one:
//!
//! 1. reads the CONNECT and checks the device's username and password against
//!    its stored credentials (`devices::credentials`); anonymous or wrong logins
//!    get CONNACK "not authorized" / "bad user name or password";
//! 2. accepts a Last Will only on the device's own `state` topic;
//! 3. forwards the CONNECT to rumqttd's private listener under the internal
//!    login, with the client id replaced by the device's username, so one device
//!    cannot take over another's session;
//! 4. relays packets: broker → device bytes as they are, device → broker the
//!    whole packets of each read in one write, checking every PUBLISH topic
//!    (only its own bay's device topics, never `cmd`) and every SUBSCRIBE
//!    filter (only its own `cmd`). A violation ends the connection, and so
//!    does a rotation or revocation of the device's credentials.
//!
//! Every refusal is counted in `voltgate_mqtt_gate_refused_total{reason}` and
//! logged as a security event.

use std::net::SocketAddr;
use std::time::Duration;

use bytes::BytesMut;
use rumqttc::mqttbytes::v4::{ConnAck, ConnectReturnCode, Login, Packet};
use rumqttc::mqttbytes::{Error as FrameError, Protocol};
use sea_orm::DatabaseConnection;
use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
use tokio::net::{TcpListener, TcpStream};

use super::ingest::Credentials;
use super::topic;
use crate::devices::credentials::{self, DeviceAccess};
use crate::telemetry::names;

/// How long a new connection has to send its CONNECT.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(10);

/// Where the gate relays to, and its limits.
#[derive(Debug, Clone)]
pub struct GateConfig {
    /// rumqttd's private MQTT 3.1.1 listener.
    pub upstream: SocketAddr,
    /// The login rumqttd accepts.
    pub internal: Credentials,
    /// Largest packet a device may send.
    pub max_packet_bytes: usize,
}

/// Binds the device address; the error for a taken address names the ways out.
///
/// # Errors
/// When the address is taken or cannot be bound.
pub async fn bind(addr: SocketAddr) -> anyhow::Result<TcpListener> {
    TcpListener::bind(addr).await.map_err(|err| {
        if super::broker::is_in_use(&err) {
            super::broker::address_in_use(addr)
        } else {
            anyhow::anyhow!("the embedded MQTT broker cannot listen on {addr}: {err}")
        }
    })
}

/// Accepts device connections until the task is dropped.
pub async fn serve(listener: TcpListener, config: GateConfig, db: DatabaseConnection) {
    loop {
        let (stream, peer) = match listener.accept().await {
            Ok(accepted) => accepted,
            Err(err) => {
                tracing::warn!(error = %err, "device gate cannot accept a connection");
                tokio::time::sleep(Duration::from_millis(100)).await;
                continue;
            }
        };
        let (config, db) = (config.clone(), db.clone());
        tokio::spawn(async move {
            match serve_device(stream, &config, &db).await {
                Ok(()) => {}
                // A dropped connection is not a refusal.
                Err(refusal @ (Refusal::Io(_) | Refusal::Upstream(_))) => {
                    tracing::debug!(%peer, reason = refusal.reason(), detail = %refusal.detail(), "device connection ended");
                }
                Err(refusal) => {
                    metrics::counter!(names::MQTT_GATE_REFUSED, "reason" => refusal.reason())
                        .increment(1);
                    tracing::warn!(%peer, reason = refusal.reason(), detail = %refusal.detail(), security = true, "device connection refused");
                }
            }
        });
    }
}

/// Why the gate refused or ended a device connection.
#[derive(Debug)]
enum Refusal {
    Protocol(String),
    Anonymous,
    BadCredentials(String),
    WillTopic(String),
    PublishTopic(String),
    SubscribeFilter(String),
    PacketTooLarge(usize),
    /// The device's credentials were rotated or revoked while it was connected.
    Revoked(String),
    Unavailable,
    Upstream(String),
    Io(std::io::Error),
}

impl Refusal {
    const fn reason(&self) -> &'static str {
        match self {
            Self::Protocol(_) => "protocol",
            Self::Anonymous => "anonymous",
            Self::BadCredentials(_) => "bad_credentials",
            Self::WillTopic(_) => "will_topic",
            Self::PublishTopic(_) => "publish_topic",
            Self::SubscribeFilter(_) => "subscribe_filter",
            Self::PacketTooLarge(_) => "packet_too_large",
            Self::Revoked(_) => "revoked",
            Self::Unavailable => "unavailable",
            Self::Upstream(_) => "upstream",
            Self::Io(_) => "closed",
        }
    }

    fn detail(&self) -> String {
        match self {
            Self::Protocol(s)
            | Self::BadCredentials(s)
            | Self::WillTopic(s)
            | Self::PublishTopic(s)
            | Self::SubscribeFilter(s)
            | Self::Revoked(s)
            | Self::Upstream(s) => s.clone(),
            Self::PacketTooLarge(size) => format!("{size} bytes"),
            Self::Anonymous | Self::Unavailable => String::new(),
            Self::Io(err) => err.to_string(),
        }
    }
}

/// A connection's bytes, read into whole packets.
struct Framed {
    stream: tokio::net::tcp::OwnedReadHalf,
    buffer: BytesMut,
    max_packet_bytes: usize,
}

/// Room made for each read: a burst of small publishes arrives in one read.
const READ_CHUNK: usize = 4 * 1024;
/// Most bytes of device packets relayed in one write to the broker.
const MAX_WRITE: usize = 64 * 1024;

impl Framed {
    /// The next whole packet; `Ok(None)` at a clean end of stream.
    async fn next(&mut self) -> Result<Option<Packet>, Refusal> {
        loop {
            if let Some(packet) = self.buffered()? {
                return Ok(Some(packet));
            }
            if self.buffer.capacity() - self.buffer.len() < READ_CHUNK / 4 {
                self.buffer.reserve(READ_CHUNK);
            }
            if self
                .stream
                .read_buf(&mut self.buffer)
                .await
                .map_err(Refusal::Io)?
                == 0
            {
                return Ok(None);
            }
        }
    }

    /// The next whole packet among the bytes already read, without waiting.
    fn buffered(&mut self) -> Result<Option<Packet>, Refusal> {
        match Packet::read(&mut self.buffer, self.max_packet_bytes) {
            Ok(packet) => Ok(Some(packet)),
            Err(FrameError::InsufficientBytes(_)) => Ok(None),
            Err(FrameError::PayloadSizeLimitExceeded(size)) => Err(Refusal::PacketTooLarge(size)),
            Err(err) => Err(Refusal::Protocol(err.to_string())),
        }
    }
}

/// Appends `packet`'s bytes to `out`.
fn encode(packet: &Packet, out: &mut BytesMut) -> Result<(), Refusal> {
    packet
        .write(out, usize::MAX)
        .map(|_| ())
        .map_err(|e| Refusal::Protocol(e.to_string()))
}

async fn write_packet(
    stream: &mut tokio::net::tcp::OwnedWriteHalf,
    packet: &Packet,
) -> Result<(), Refusal> {
    let mut bytes = BytesMut::with_capacity(packet.size() + 5);
    encode(packet, &mut bytes)?;
    stream.write_all(&bytes).await.map_err(Refusal::Io)
}

async fn refuse(
    stream: &mut tokio::net::tcp::OwnedWriteHalf,
    code: ConnectReturnCode,
    refusal: Refusal,
) -> Refusal {
    let _ = write_packet(stream, &Packet::ConnAck(ConnAck::new(code, false))).await;
    let _ = stream.shutdown().await;
    refusal
}

async fn serve_device(
    stream: TcpStream,
    config: &GateConfig,
    db: &DatabaseConnection,
) -> Result<(), Refusal> {
    let _ = stream.set_nodelay(true);
    let (read, mut write) = stream.into_split();
    let mut device = Framed {
        stream: read,
        buffer: BytesMut::with_capacity(1024),
        max_packet_bytes: config.max_packet_bytes,
    };
    let first = tokio::time::timeout(CONNECT_TIMEOUT, device.next())
        .await
        .map_err(|_| Refusal::Protocol("no CONNECT in time".to_owned()))??;
    let Some(Packet::Connect(mut connect)) = first else {
        return Err(Refusal::Protocol(
            "the first packet is not CONNECT".to_owned(),
        ));
    };
    if connect.protocol != Protocol::V4 {
        return Err(refuse(
            &mut write,
            ConnectReturnCode::RefusedProtocolVersion,
            Refusal::Protocol("only MQTT 3.1.1 is served here".to_owned()),
        )
        .await);
    }
    let Some(login) = connect.login.take() else {
        return Err(refuse(
            &mut write,
            ConnectReturnCode::NotAuthorized,
            Refusal::Anonymous,
        )
        .await);
    };
    let access = match credentials::authenticate(db, &login.username, &login.password).await {
        Ok(Some(access)) => access,
        Ok(None) => {
            return Err(refuse(
                &mut write,
                ConnectReturnCode::BadUserNamePassword,
                Refusal::BadCredentials(login.username),
            )
            .await);
        }
        Err(err) => {
            tracing::error!(error = %err, "device gate cannot check credentials");
            return Err(refuse(
                &mut write,
                ConnectReturnCode::ServiceUnavailable,
                Refusal::Unavailable,
            )
            .await);
        }
    };
    if let Some(will) = &connect.last_will
        && will.topic != topic::state_topic(&access.prefix, access.bay)
    {
        return Err(refuse(
            &mut write,
            ConnectReturnCode::NotAuthorized,
            Refusal::WillTopic(format!("{} → {}", access.username, will.topic)),
        )
        .await);
    }
    connect.client_id.clone_from(&access.username);
    connect.login = Some(Login::new(
        config.internal.username.clone(),
        config.internal.password.clone(),
    ));

    let upstream = TcpStream::connect(config.upstream)
        .await
        .map_err(|e| Refusal::Upstream(e.to_string()))?;
    let _ = upstream.set_nodelay(true);
    let (mut from_broker, mut to_broker) = upstream.into_split();
    write_packet(&mut to_broker, &Packet::Connect(connect)).await?;

    // Broker → device needs no inspection: it carries only what the device may read.
    let downstream = async move {
        let _ = tokio::io::copy(&mut from_broker, &mut write).await;
        let _ = write.shutdown().await;
    };
    let upstream = relay_checked(&mut device, &mut to_broker, &access);
    tokio::select! {
        () = downstream => Ok(()),
        checked = upstream => {
            let _ = to_broker.shutdown().await;
            checked
        }
        revoked = credentials::until_revoked(db, &access) => {
            let _ = to_broker.shutdown().await;
            match revoked {
                Ok(()) => Err(Refusal::Revoked(access.username.clone())),
                Err(err) => {
                    tracing::error!(error = %err, "device gate cannot re-check credentials");
                    Err(Refusal::Unavailable)
                }
            }
        }
    }
}

/// Relays device packets to the broker, refusing anything outside the device's topics.
/// The whole packets of one read go to the broker in one write.
async fn relay_checked(
    device: &mut Framed,
    broker: &mut tokio::net::tcp::OwnedWriteHalf,
    access: &DeviceAccess,
) -> Result<(), Refusal> {
    let mut out = BytesMut::with_capacity(READ_CHUNK);
    while let Some(first) = device.next().await? {
        let mut next = Some(first);
        while let Some(packet) = next {
            check(&packet, access)?;
            encode(&packet, &mut out)?;
            next = if out.len() < MAX_WRITE {
                device.buffered()?
            } else {
                None
            };
        }
        broker.write_all(&out).await.map_err(Refusal::Io)?;
        out.clear();
    }
    Ok(())
}

/// Whether a device may send `packet`: only its own bay's device topics,
/// never `cmd`; subscriptions to its own `cmd` only; one CONNECT.
fn check(packet: &Packet, access: &DeviceAccess) -> Result<(), Refusal> {
    match packet {
        Packet::Publish(publish)
            if !topic::device_may_publish(&access.prefix, access.bay, &publish.topic) =>
        {
            Err(Refusal::PublishTopic(format!(
                "{} → {}",
                access.username, publish.topic
            )))
        }
        Packet::Subscribe(subscribe) => match subscribe
            .filters
            .iter()
            .find(|f| !topic::device_may_subscribe(&access.prefix, access.bay, &f.path))
        {
            Some(filter) => Err(Refusal::SubscribeFilter(format!(
                "{} → {}",
                access.username, filter.path
            ))),
            None => Ok(()),
        },
        Packet::Connect(_) => Err(Refusal::Protocol("a second CONNECT".to_owned())),
        _ => Ok(()),
    }
}
