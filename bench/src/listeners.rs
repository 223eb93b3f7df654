//! The receiving side: GraphQL WebSocket subscribers and one raw MQTT subscriber.
//!
//! Every delivery is stamped with the wall clock the moment its frame is read,
//! before any parsing, and stored with the message's own `ts` (the publisher's
//! wall clock at send time). Publisher, server and listeners share one machine
//! and so one clock, which makes `received − ts` a true end-to-end latency.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use anyhow::Context as _;
use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use chrono::{DateTime, Utc};
use futures_util::{SinkExt as _, StreamExt as _};
use rumqttc::{AsyncClient, Event, MqttOptions, Packet, QoS};
use serde::Deserialize;
use tokio::sync::watch;
use tokio::task::JoinHandle;
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::tungstenite::client::IntoClientRequest as _;

/// One delivery: the message's `ts` and when it arrived, both in µs since the epoch.
#[derive(Debug, Clone, Copy)]
pub struct Sample {
    pub sent_us: i64,
    pub received_us: i64,
}

/// Deliveries recorded by one listener, taken in batches by the collector.
///
/// One buffer per listener keeps the lock uncontended: only its own task pushes.
#[derive(Clone, Default)]
pub struct Samples(Arc<Mutex<Vec<Sample>>>);

impl Samples {
    pub fn push(&self, sample: Sample) {
        self.0
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .push(sample);
    }

    /// Takes everything recorded so far.
    pub fn take(&self) -> Vec<Sample> {
        std::mem::take(&mut *self.0.lock().unwrap_or_else(PoisonError::into_inner))
    }
}

/// Connection errors of one MQTT client: how many, and the first one (the cause;
/// later ones are usually failed reconnections).
#[derive(Default)]
pub struct Trouble {
    count: AtomicU64,
    first: Mutex<Option<String>>,
}

impl Trouble {
    pub fn record(&self, error: &dyn std::fmt::Display) {
        if self.count.fetch_add(1, Ordering::Relaxed) == 0 {
            *self.first.lock().unwrap_or_else(PoisonError::into_inner) = Some(error.to_string());
        }
    }

    pub fn summary(&self) -> Option<String> {
        let count = self.count.load(Ordering::Relaxed);
        let first = self.first.lock().unwrap_or_else(PoisonError::into_inner);
        (count > 0).then(|| format!("{count} (first: {})", first.as_deref().unwrap_or("?")))
    }
}

/// Problems seen by the listeners; non-zero values are printed with the results.
#[derive(Default)]
pub struct Health {
    /// GraphQL `error` frames, or `next` frames carrying errors.
    pub graphql_errors: AtomicU64,
    /// Subscriptions the server completed or connections that closed mid-run.
    pub closed: AtomicU64,
    /// Frames that could not be understood.
    pub unreadable: AtomicU64,
    /// Connection errors of the raw MQTT subscriber.
    pub raw_mqtt: Trouble,
}

impl Health {
    pub fn summary(&self) -> Option<String> {
        let (errors, closed, unreadable) = (
            self.graphql_errors.load(Ordering::Relaxed),
            self.closed.load(Ordering::Relaxed),
            self.unreadable.load(Ordering::Relaxed),
        );
        let mut problems = Vec::new();
        if errors + closed + unreadable > 0 {
            problems.push(format!(
                "WebSocket: {errors} GraphQL errors, {closed} subscriptions closed early, {unreadable} unreadable frames"
            ));
        }
        if let Some(trouble) = self.raw_mqtt.summary() {
            problems.push(format!("raw MQTT subscriber: connection errors {trouble}"));
        }
        (!problems.is_empty()).then(|| problems.join("; "))
    }
}

const SUBSCRIPTION: &str = "subscription($s: ID){ bayStatusChanged(stationId: $s){ bay { id number } status lockState deviceStatus changedAt } }";

/// The global id of a station: `base64url("Station:<id>")`, as the API encodes it.
pub fn station_global_id(station_id: u32) -> String {
    URL_SAFE_NO_PAD.encode(format!("Station:{station_id}"))
}

/// A client's WebSocket.
pub type Socket =
    tokio_tungstenite::WebSocketStream<tokio_tungstenite::MaybeTlsStream<tokio::net::TcpStream>>;

/// Opens one `graphql-transport-ws` connection to `http`'s `/graphql`, waits
/// for `connection_ack`, then sends one `subscribe` (id `1`). Returns the socket
/// and the wall clock (µs) just before the subscribe was sent.
///
/// # Errors
/// When the connection or the handshake fails or takes more than 10 s.
pub async fn open_subscription(
    http: std::net::SocketAddr,
    query: &str,
    variables: serde_json::Value,
) -> anyhow::Result<(Socket, i64)> {
    open_subscription_as(http, serde_json::json!({}), query, variables).await
}

/// As [`open_subscription`], with `init` as the `connection_init` payload
/// (e.g. `{"authorization": "Bearer …"}`).
///
/// # Errors
/// As [`open_subscription`].
pub async fn open_subscription_as(
    http: std::net::SocketAddr,
    init: serde_json::Value,
    query: &str,
    variables: serde_json::Value,
) -> anyhow::Result<(Socket, i64)> {
    let handshake = async {
        let mut request = format!("ws://{http}/graphql").into_client_request()?;
        request
            .headers_mut()
            .insert("Sec-WebSocket-Protocol", "graphql-transport-ws".parse()?);
        let (mut ws, _) = tokio_tungstenite::connect_async(request).await?;
        let init = serde_json::json!({ "type": "connection_init", "payload": init });
        ws.send(Message::text(init.to_string())).await?;
        loop {
            match ws.next().await {
                Some(Ok(Message::Text(text))) => match read_frame(&text) {
                    Incoming::Other("connection_ack") => break,
                    Incoming::Ping => ws.send(Message::text(r#"{"type":"pong"}"#)).await?,
                    _ => anyhow::bail!("expected connection_ack, got {text}"),
                },
                Some(Ok(_)) => {}
                Some(Err(err)) => return Err(err.into()),
                None => anyhow::bail!("the server closed the connection during the handshake"),
            }
        }
        let subscribe = serde_json::json!({
            "id": "1",
            "type": "subscribe",
            "payload": { "query": query, "variables": variables },
        });
        let subscribed_us = Utc::now().timestamp_micros();
        ws.send(Message::text(subscribe.to_string())).await?;
        anyhow::Ok((ws, subscribed_us))
    };
    tokio::time::timeout(Duration::from_secs(10), handshake)
        .await
        .map_err(|_| anyhow::anyhow!("no connection_ack within 10 s"))?
}

/// Opens one `graphql-transport-ws` connection subscribed to a station's bay changes.
///
/// Returns once the server has acknowledged the connection and the subscribe
/// message is sent; the task then records every event until `stop` flips.
///
/// # Errors
/// When the connection or the handshake fails or takes more than 10 s.
pub async fn subscribe_station(
    http: std::net::SocketAddr,
    station_id: u32,
    samples: Samples,
    health: Arc<Health>,
    stop: watch::Receiver<bool>,
) -> anyhow::Result<JoinHandle<()>> {
    let variables = serde_json::json!({ "s": station_global_id(station_id) });
    let (ws, _) = open_subscription(http, SUBSCRIPTION, variables)
        .await
        .with_context(|| format!("subscribing to station {station_id}"))?;
    Ok(tokio::spawn(record_events(ws, samples, health, stop)))
}

async fn record_events(
    mut ws: Socket,
    samples: Samples,
    health: Arc<Health>,
    mut stop: watch::Receiver<bool>,
) {
    loop {
        let message = tokio::select! {
            _ = stop.changed() => break,
            message = ws.next() => message,
        };
        let text = match message {
            Some(Ok(Message::Text(text))) => text,
            Some(Ok(Message::Close(_)) | Err(_)) | None => {
                health.closed.fetch_add(1, Ordering::Relaxed);
                return;
            }
            Some(Ok(_)) => continue,
        };
        // Stamped before parsing so the parse cost is not counted as server latency.
        let received_us = Utc::now().timestamp_micros();
        match read_frame(&text) {
            Incoming::Next { changed_at_us, .. } => samples.push(Sample {
                sent_us: changed_at_us,
                received_us,
            }),
            Incoming::Errors { .. } => {
                health.graphql_errors.fetch_add(1, Ordering::Relaxed);
            }
            Incoming::Ping => {
                if ws.send(Message::text(r#"{"type":"pong"}"#)).await.is_err() {
                    health.closed.fetch_add(1, Ordering::Relaxed);
                    return;
                }
            }
            Incoming::Complete => {
                health.closed.fetch_add(1, Ordering::Relaxed);
                return;
            }
            Incoming::Other(_) => {}
            Incoming::Unreadable => {
                health.unreadable.fetch_add(1, Ordering::Relaxed);
            }
        }
    }
    // Orderly goodbye; the server may already be gone, which is fine.
    let _ = ws.close(None).await;
}

/// A `graphql-transport-ws` frame from the server, as the listeners need it.
#[derive(Debug, PartialEq, Eq)]
pub enum Incoming<'a> {
    /// A `bayStatusChanged` event: its `changedAt` (the device's `ts`) in µs,
    /// and its `cursor` when the query asked for it.
    Next {
        changed_at_us: i64,
        cursor: Option<String>,
    },
    /// An `error` frame, or a `next` frame carrying errors: the first error's
    /// message, and its `extensions.reason` and `extensions.cursor` when it has them.
    Errors {
        message: String,
        reason: Option<String>,
        cursor: Option<String>,
    },
    Ping,
    Complete,
    /// Any other type (e.g. `connection_ack`, `pong`).
    Other(&'a str),
    Unreadable,
}

/// Reads a frame; `next` frames, the common case, are parsed once.
pub fn read_frame(text: &str) -> Incoming<'_> {
    if let Ok(NextFrame {
        kind: "next",
        payload,
    }) = serde_json::from_str::<NextFrame>(text)
    {
        return match payload {
            NextPayload {
                data: Some(data),
                errors: None,
            } => Incoming::Next {
                changed_at_us: data.bay_status_changed.changed_at.timestamp_micros(),
                cursor: data.bay_status_changed.cursor,
            },
            NextPayload { errors, .. } => first_error(errors.unwrap_or_default()),
        };
    }
    match serde_json::from_str::<Frame<'_>>(text).map(|frame| frame.kind) {
        Ok("error") => match serde_json::from_str::<ErrorFrame>(text) {
            Ok(frame) => first_error(frame.payload),
            Err(_) => first_error(Vec::new()),
        },
        Ok("ping") => Incoming::Ping,
        Ok("complete") => Incoming::Complete,
        Ok(kind) => Incoming::Other(kind),
        Err(_) => Incoming::Unreadable,
    }
}

fn first_error(errors: Vec<GraphqlError>) -> Incoming<'static> {
    let (message, extensions) = errors
        .into_iter()
        .next()
        .map(|error| (error.message, error.extensions.unwrap_or_default()))
        .unwrap_or_default();
    Incoming::Errors {
        message,
        reason: extensions.reason,
        cursor: extensions.cursor,
    }
}

/// Any `graphql-transport-ws` frame, read only for its type.
#[derive(Deserialize)]
struct Frame<'a> {
    #[serde(rename = "type")]
    kind: &'a str,
}

#[derive(Deserialize)]
struct NextFrame<'a> {
    #[serde(rename = "type")]
    kind: &'a str,
    payload: NextPayload,
}

#[derive(Deserialize)]
struct NextPayload {
    data: Option<NextData>,
    errors: Option<Vec<GraphqlError>>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct NextData {
    bay_status_changed: BayChange,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct BayChange {
    changed_at: DateTime<Utc>,
    cursor: Option<String>,
}

#[derive(Deserialize)]
struct ErrorFrame {
    payload: Vec<GraphqlError>,
}

#[derive(Deserialize)]
struct GraphqlError {
    #[serde(default)]
    message: String,
    extensions: Option<ErrorExtensions>,
}

#[derive(Default, Deserialize)]
struct ErrorExtensions {
    reason: Option<String>,
    cursor: Option<String>,
}

/// Only the field the raw subscriber needs from a state report.
#[derive(Deserialize)]
struct Stamped {
    ts: DateTime<Utc>,
}

/// A plain MQTT 3.1.1 client subscribed to `filter` (QoS 1), logged in as
/// `login` when the broker wants one; returns once the broker acknowledged.
///
/// # Errors
/// When the broker does not acknowledge the connection and subscription within 5 s.
pub async fn raw_subscriber(
    broker: std::net::SocketAddr,
    client_id: &str,
    login: Option<&(String, String)>,
    filter: &str,
) -> anyhow::Result<(AsyncClient, rumqttc::EventLoop)> {
    let mut options = MqttOptions::new(client_id, broker.ip().to_string(), broker.port());
    options.set_keep_alive(Duration::from_secs(30));
    if let Some((username, password)) = login {
        options.set_credentials(username, password);
    }
    let (client, mut eventloop) = AsyncClient::new(options, 64);
    // Nagle's algorithm would hold small packets back for up to a delayed-ACK
    // period: the harness must not add latency of its own to what it measures.
    let mut network = eventloop.network_options();
    network.set_tcp_nodelay(true);
    eventloop.set_network_options(network);
    client.subscribe(filter, QoS::AtLeastOnce).await?;
    let subscribed = async {
        loop {
            if let Event::Incoming(Packet::SubAck(_)) = eventloop.poll().await? {
                return anyhow::Ok(());
            }
        }
    };
    tokio::time::timeout(Duration::from_secs(5), subscribed)
        .await
        .map_err(|_| {
            anyhow::anyhow!("the broker did not acknowledge the subscription within 5 s")
        })??;
    Ok((client, eventloop))
}

/// Subscribes a plain MQTT 3.1.1 client to every bay state topic on the broker,
/// logged in as `login` when the broker wants one.
///
/// It sees exactly the messages the server ingests, through the same broker, so
/// its latency is the broker's share of the end-to-end figure.
///
/// # Errors
/// When the broker does not acknowledge the connection and subscription within 5 s.
pub async fn subscribe_raw(
    broker: std::net::SocketAddr,
    login: Option<&(String, String)>,
    topic_root: &str,
    samples: Samples,
    health: Arc<Health>,
) -> anyhow::Result<JoinHandle<()>> {
    let (client, mut eventloop) = raw_subscriber(
        broker,
        &format!("bay-latency-raw-{}-{}", std::process::id(), broker.port()),
        login,
        &format!("{topic_root}/+/+/bays/+/state"),
    )
    .await?;
    Ok(tokio::spawn(async move {
        // The client must live as long as its event loop, or the loop stops.
        let _client = client;
        loop {
            match eventloop.poll().await {
                Ok(Event::Incoming(Packet::Publish(publish))) => {
                    let received_us = Utc::now().timestamp_micros();
                    match serde_json::from_slice::<Stamped>(&publish.payload) {
                        Ok(stamped) => samples.push(Sample {
                            sent_us: stamped.ts.timestamp_micros(),
                            received_us,
                        }),
                        Err(_) => {
                            health.unreadable.fetch_add(1, Ordering::Relaxed);
                        }
                    }
                }
                Ok(_) => {}
                Err(err) => {
                    health.raw_mqtt.record(&err);
                    // rumqttc reconnects on the next poll; do not spin while it cannot.
                    tokio::time::sleep(Duration::from_millis(200)).await;
                }
            }
        }
    }))
}

#[cfg(test)]
mod tests {
    use super::{Incoming, read_frame};

    #[test]
    fn frames_read_as_the_listeners_need_them() {
        let next = r#"{"type":"next","id":"1","payload":{"data":{"bayStatusChanged":{"cursor":"c7","bay":{"id":"QmF5OjE"},"changedAt":"2026-12-02T07:00:00.000001Z"}}}}"#;
        assert_eq!(
            read_frame(next),
            Incoming::Next {
                changed_at_us: 1_796_194_800_000_001,
                cursor: Some("c7".to_owned())
            }
        );
        let lagging = r#"{"type":"error","id":"1","payload":[{"message":"too slow","extensions":{"reason":"SUBSCRIBER_LAGGING","cursor":"c9"}}]}"#;
        assert_eq!(
            read_frame(lagging),
            Incoming::Errors {
                message: "too slow".to_owned(),
                reason: Some("SUBSCRIBER_LAGGING".to_owned()),
                cursor: Some("c9".to_owned())
            }
        );
        let failed = r#"{"type":"next","id":"1","payload":{"data":null,"errors":[{"message":"expired","extensions":{"reason":"CURSOR_EXPIRED"}}]}}"#;
        assert!(matches!(
            read_frame(failed),
            Incoming::Errors { reason: Some(reason), .. } if reason == "CURSOR_EXPIRED"
        ));
        assert_eq!(
            read_frame(r#"{"type":"connection_ack","payload":{}}"#),
            Incoming::Other("connection_ack")
        );
        assert_eq!(read_frame(r#"{"type":"ping"}"#), Incoming::Ping);
        assert_eq!(
            read_frame(r#"{"id":"1","type":"complete"}"#),
            Incoming::Complete
        );
        assert_eq!(read_frame("not json"), Incoming::Unreadable);
    }
}
