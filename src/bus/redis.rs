//! The Redis bus: events travel through one pub/sub channel shared by all replicas.
//!
//! A replica does not deliver its own events directly; it publishes to Redis and
//! delivers what Redis hands back, so every replica sees every event in Redis's
//! order. The connection uses RESP3 push messages through a `ConnectionManager`,
//! which reconnects by itself and re-subscribes after a reconnect.

use std::sync::Arc;
use std::time::Duration;

use anyhow::Context as _;
use async_trait::async_trait;
use redis::aio::{ConnectionManager, ConnectionManagerConfig};
use redis::{PushInfo, PushKind, Value};
use tokio::sync::mpsc;
use url::Url;

use super::{DomainEvent, Envelope, EventBus, Fanout};
use crate::config::redact;
use crate::telemetry::names;

/// How long a publish keeps retrying while Redis is away: ingestion slows down
/// through a short outage instead of losing events. Retries back off from 50 ms
/// to 2 s.
const PUBLISH_PATIENCE: Duration = Duration::from_secs(15);
const PUBLISH_FIRST_BACKOFF: Duration = Duration::from_millis(50);
const PUBLISH_MAX_BACKOFF: Duration = Duration::from_secs(2);

/// How often an idle replica checks its Redis connection. The manager reconnects by
/// itself when Redis closes the connection, but gives up after a few attempts and
/// then waits for the next command; without one, a replica that publishes nothing
/// would stay unsubscribed after a long outage.
const KEEP_ALIVE_INTERVAL: Duration = Duration::from_secs(2);

pub struct RedisBus {
    connection: ConnectionManager,
    channel: String,
    fanout: Arc<Fanout>,
    keep_alive: tokio::task::JoinHandle<()>,
}

impl Drop for RedisBus {
    fn drop(&mut self) {
        self.keep_alive.abort();
    }
}

impl RedisBus {
    /// Connects, subscribes to `channel` and starts relaying its messages to local subscribers.
    ///
    /// # Errors
    /// When Redis cannot be reached at start; the message names the URL without its password.
    pub async fn connect(url: &Url, channel: &str) -> anyhow::Result<Self> {
        let mut url = url.clone();
        // Push messages (and automatic re-subscription) need RESP3.
        if !url.query_pairs().any(|(k, _)| k == "protocol") {
            url.query_pairs_mut().append_pair("protocol", "resp3");
        }
        let shown = redact(url.as_str());
        let client = redis::Client::open(url.as_str())
            .with_context(|| format!("invalid REDIS_URL {shown}"))?;
        let (push_tx, push_rx) = mpsc::unbounded_channel();
        let config = ConnectionManagerConfig::new()
            .set_connection_timeout(Some(Duration::from_secs(5)))
            .set_response_timeout(Some(Duration::from_secs(5)))
            .set_max_delay(Duration::from_secs(5))
            .set_push_sender(push_tx)
            .set_automatic_resubscription();
        let mut connection = client
            .get_connection_manager_with_config(config)
            .await
            .with_context(|| format!("cannot connect to Redis at {shown}"))?;
        connection
            .subscribe(channel)
            .await
            .with_context(|| format!("cannot subscribe to Redis channel {channel} at {shown}"))?;

        let fanout = Arc::new(Fanout::default());
        tokio::spawn(relay(push_rx, Arc::clone(&fanout)));
        let keep_alive = tokio::spawn(keep_alive(connection.clone()));
        Ok(Self {
            connection,
            channel: channel.to_owned(),
            fanout,
            keep_alive,
        })
    }
}

/// Pings Redis at [`KEEP_ALIVE_INTERVAL`]; a failed ping makes the manager reconnect
/// and, once connected, re-subscribe.
async fn keep_alive(mut connection: ConnectionManager) {
    let mut tick = tokio::time::interval(KEEP_ALIVE_INTERVAL);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let mut healthy = true;
    loop {
        tick.tick().await;
        let ok = redis::cmd("PING")
            .query_async::<String>(&mut connection)
            .await
            .is_ok();
        if ok && !healthy {
            tracing::info!("Redis bus connection restored");
        }
        healthy = ok;
    }
}

/// Hands every message of the channel to the local fan-out until the connection manager is dropped.
async fn relay(mut pushes: mpsc::UnboundedReceiver<PushInfo>, fanout: Arc<Fanout>) {
    while let Some(push) = pushes.recv().await {
        match push.kind {
            PushKind::Message => {
                let Some(Value::BulkString(payload)) = push.data.get(1) else {
                    continue;
                };
                match Envelope::decode(payload) {
                    Ok(envelope) => fanout.deliver(envelope),
                    Err(err) => {
                        metrics::counter!(names::BUS_RECEIVED, "type" => "undecodable")
                            .increment(1);
                        tracing::warn!(error = %err, "dropping undecodable bus message");
                    }
                }
            }
            PushKind::Disconnection => tracing::warn!("Redis bus connection lost; reconnecting"),
            _ => {}
        }
    }
}

#[async_trait]
impl EventBus for RedisBus {
    async fn publish(&self, event: DomainEvent) -> anyhow::Result<()> {
        let name = event.name();
        let payload = serde_json::to_vec(&Envelope::new(event))?;
        let give_up = tokio::time::Instant::now() + PUBLISH_PATIENCE;
        let mut backoff = PUBLISH_FIRST_BACKOFF;
        loop {
            let mut connection = self.connection.clone();
            match redis::cmd("PUBLISH")
                .arg(&self.channel)
                .arg(&payload)
                .query_async::<i64>(&mut connection)
                .await
            {
                Ok(_) => {
                    metrics::counter!(names::BUS_PUBLISHED, "type" => name).increment(1);
                    return Ok(());
                }
                Err(err) if tokio::time::Instant::now() + backoff > give_up => {
                    metrics::counter!(names::BUS_PUBLISH_FAILED, "type" => name).increment(1);
                    return Err(anyhow::Error::from(err)).context("publishing an event to Redis");
                }
                Err(err) => {
                    tracing::debug!(error = %err, "Redis publish failed; retrying");
                    tokio::time::sleep(backoff).await;
                    backoff = Ord::min(backoff * 2, PUBLISH_MAX_BACKOFF);
                }
            }
        }
    }

    fn fanout(&self) -> &Fanout {
        &self.fanout
    }

    async fn is_ready(&self) -> bool {
        let mut connection = self.connection.clone();
        redis::cmd("PING")
            .query_async::<String>(&mut connection)
            .await
            .is_ok()
    }

    fn kind(&self) -> &'static str {
        "redis"
    }
}
