//! The Redis bus: events travel through one pub/sub channel shared by all replicas.
//!
//! A replica does not deliver its own events directly; it publishes to Redis and
//! delivers what Redis hands back, so every replica sees every event in Redis's
//! order. The connection uses RESP3 push messages through a `ConnectionManager`,
//! which reconnects by itself and re-subscribes after a reconnect.
//!
//! Publishing is one Lua script, atomic in Redis: the event is appended to a
//! capped stream per topic (`XADD`, trimmed by count and age, expiring when
//! idle), then published on the channel with the stream ids it got. The ids
//! are the events' positions, the same on every replica; the streams are the
//! history subscribers resume from. The history's epoch is a key the first
//! publish creates, so a Redis that lost its data starts a new one.
//!
//! A publish retries while Redis is away; past its patience, its events and
//! every later one wait in the backlog (`super::backlog`), in order, and a
//! task publishes them as soon as Redis answers: an outage delays events,
//! it does not lose them.

use std::sync::Arc;
use std::time::Duration;

use anyhow::Context as _;
use async_trait::async_trait;
use redis::aio::{ConnectionManager, ConnectionManagerConfig};
use redis::{PushInfo, PushKind, Value};
use tokio::sync::mpsc;
use url::Url;

use super::backlog::{self, Backlog, Pending};
use super::history::{self, Facts, REPLAY_PAGE, Retention};
use super::{Cursor, DomainEvent, Envelope, EventBus, Fanout, FollowError, Position, Stamped};
use crate::config::redact;
use crate::telemetry::names;

/// Retries of a publish while Redis is away back off from 50 ms to 2 s.
const PUBLISH_FIRST_BACKOFF: Duration = Duration::from_millis(50);
const PUBLISH_MAX_BACKOFF: Duration = Duration::from_secs(2);

/// Events the backlog publishes per script call.
const BACKLOG_ROUND: usize = 256;

/// How a replica publishes through a Redis outage.
#[derive(Debug, Clone, Copy)]
pub struct Publishing {
    /// How long a publish retries before its events go to the backlog: the
    /// caller (ingestion, a request) waits that long, so a short outage slows
    /// it down instead of reordering anything.
    pub patience: Duration,
    /// Events the backlog keeps at most (see [`super::backlog`]).
    pub backlog_events: usize,
}

impl Default for Publishing {
    fn default() -> Self {
        Self {
            patience: Duration::from_secs(15),
            backlog_events: 100_000,
        }
    }
}

/// How often an idle replica checks its Redis connection. The manager reconnects by
/// itself when Redis closes the connection, but gives up after a few attempts and
/// then waits for the next command; without one, a replica that publishes nothing
/// would stay unsubscribed after a long outage.
const KEEP_ALIVE_INTERVAL: Duration = Duration::from_secs(2);

/// Appends each event to its topics' streams (trimmed by count and age,
/// expiring when idle), then publishes it with the stream ids it got; an
/// event carrying a row's revision older than the last published of that row
/// is dropped instead (see [`super::revisions`]; the last revision of a row
/// is a key of its own, kept for [`super::revisions::KEPT_FOR_MS`] after
/// its last event). KEYS: the epoch key, then per event its row's revision
/// key if it has one, then its topic streams. ARGV: channel, an epoch to use
/// if there is none yet, events kept per topic, ms kept, ms a revision is
/// kept, then per event its number of topics, its envelope, its revision
/// ('' for none) and '1' for a state announced again (dropped at the same
/// revision too). Returns how many events were published.
const PUBLISH_SCRIPT: &str = r"
local epoch = redis.call('GET', KEYS[1])
if not epoch then
  epoch = ARGV[2]
  redis.call('SET', KEYS[1], epoch)
end
local now = redis.call('TIME')
local min_id = string.format('%d', tonumber(now[1]) * 1000 + math.floor(tonumber(now[2]) / 1000) - tonumber(ARGV[4]))
local ttl = math.floor(tonumber(ARGV[4]) / 1000) + 1
local key = 2
local published = 0
for arg = 6, #ARGV, 4 do
  local topics = tonumber(ARGV[arg])
  local envelope = ARGV[arg + 1]
  local news = true
  if ARGV[arg + 2] ~= '' then
    local revision = tonumber(ARGV[arg + 2])
    local last = redis.call('GET', KEYS[key])
    if last and (tonumber(last) > revision or (tonumber(last) == revision and ARGV[arg + 3] == '1')) then
      news = false
    else
      redis.call('SET', KEYS[key], ARGV[arg + 2], 'PX', ARGV[5])
    end
    key = key + 1
  end
  if news then
    local ids = {}
    for topic = 0, topics - 1 do
      local stream = KEYS[key + topic]
      ids[#ids + 1] = redis.call('XADD', stream, 'MAXLEN', '~', ARGV[3], '*', 'e', envelope)
      redis.call('XTRIM', stream, 'MINID', '~', min_id)
      redis.call('EXPIRE', stream, ttl)
    end
    redis.call('PUBLISH', ARGV[1], epoch .. '\n' .. table.concat(ids, ',') .. '\n' .. envelope)
    published = published + 1
  end
  key = key + topics
end
return published
";

/// What [`history::decide`] needs about a cursor, and the page after it, in one
/// atomic look. KEYS: the epoch key, the topic's stream. ARGV: the cursor's
/// stream id, the page size.
const REPLAY_SCRIPT: &str = r"
local epoch = redis.call('GET', KEYS[1]) or ''
local now = redis.call('TIME')
local held = #redis.call('XRANGE', KEYS[2], ARGV[1], ARGV[1])
local retained = redis.call('XLEN', KEYS[2])
local page = redis.call('XRANGE', KEYS[2], '(' .. ARGV[1], '+', 'COUNT', ARGV[2])
return {epoch, now[1], now[2], held, retained, page}
";

/// The replay script's answer: epoch, seconds, microseconds, whether the
/// cursor's entry is held, entries retained, the page (id, [field, value]).
type ReplayReply = (String, u64, u64, usize, usize, Vec<(String, Vec<Vec<u8>>)>);

pub struct RedisBus {
    fanout: Arc<Fanout>,
    keep_alive: tokio::task::JoinHandle<()>,
    /// Its connection, channel and retention serve replays too.
    publisher: Arc<Publisher>,
    drain: tokio::task::JoinHandle<()>,
    replay_script: redis::Script,
}

impl Drop for RedisBus {
    fn drop(&mut self) {
        self.keep_alive.abort();
        self.drain.abort();
    }
}

/// What publishing needs, shared with the task that drains the backlog.
struct Publisher {
    connection: ConnectionManager,
    channel: String,
    retention: Retention,
    patience: Duration,
    script: redis::Script,
    backlog: std::sync::Mutex<Backlog>,
    /// Rung when events join the backlog.
    queued: tokio::sync::Notify,
}

impl RedisBus {
    /// Connects, subscribes to `channel` and starts relaying its messages to local subscribers.
    ///
    /// # Errors
    /// When Redis cannot be reached at start; the message names the URL without its password.
    pub async fn connect(
        url: &Url,
        channel: &str,
        retention: Retention,
        publishing: Publishing,
    ) -> anyhow::Result<Self> {
        let mut url = url.clone();
        // Push messages (and automatic re-subscription) need RESP3.
        if !url.query_pairs().any(|(k, _)| k == "protocol") {
            url.query_pairs_mut().append_pair("protocol", "resp3");
        }
        let shown = redact(url.as_str());
        let info = redis::IntoConnectionInfo::into_connection_info(url.as_str())
            .with_context(|| format!("invalid REDIS_URL {shown}"))?;
        // Nagle's algorithm off (the driver leaves it on): a publish written
        // right after another would wait for Redis's delayed ACK.
        let tcp = info.tcp_settings().clone().set_nodelay(true);
        let client = redis::Client::open(info.set_tcp_settings(tcp))
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
        let publisher = Arc::new(Publisher {
            connection,
            channel: channel.to_owned(),
            retention,
            patience: publishing.patience,
            script: redis::Script::new(PUBLISH_SCRIPT),
            backlog: std::sync::Mutex::new(Backlog::new(publishing.backlog_events)),
            queued: tokio::sync::Notify::new(),
        });
        let drain = tokio::spawn(drain(Arc::clone(&publisher)));
        Ok(Self {
            fanout,
            keep_alive,
            publisher,
            drain,
            replay_script: redis::Script::new(REPLAY_SCRIPT),
        })
    }

    fn epoch_key(&self) -> String {
        epoch_key(&self.publisher.channel)
    }

    fn stream_key(&self, topic: super::Topic) -> String {
        stream_key(&self.publisher.channel, topic)
    }
}

fn epoch_key(channel: &str) -> String {
    format!("{channel}:epoch")
}

fn stream_key(channel: &str, topic: super::Topic) -> String {
    format!("{channel}:topic:{}", topic.key())
}

impl Publisher {
    fn backlog(&self) -> std::sync::MutexGuard<'_, Backlog> {
        self.backlog
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// Publishes `events`, retrying for the patience while Redis is away;
    /// then, or while earlier events are still waiting (they go first), they
    /// join the backlog.
    async fn publish(&self, events: Vec<DomainEvent>) -> anyhow::Result<()> {
        let since = tokio::time::Instant::now();
        let mut pending = events
            .into_iter()
            .map(|event| {
                let envelope = Envelope::new(event);
                let payload = serde_json::to_vec(&envelope)?;
                Ok(Pending {
                    event: envelope.event,
                    payload,
                    since,
                })
            })
            .collect::<anyhow::Result<Vec<_>>>()?;
        if !self.backlog().is_empty() {
            self.defer(std::mem::take(&mut pending));
            return Ok(());
        }
        let give_up = since + self.patience;
        let mut backoff = PUBLISH_FIRST_BACKOFF;
        loop {
            match self.publish_once(&pending).await {
                Ok(published) => {
                    count_published(&pending, published);
                    return Ok(());
                }
                Err(err) if tokio::time::Instant::now() + backoff > give_up => {
                    tracing::warn!(
                        error = %err,
                        events = pending.len(),
                        "Redis does not answer; events kept until it does"
                    );
                    self.defer(pending);
                    return Ok(());
                }
                Err(err) => {
                    tracing::debug!(error = %err, "Redis publish failed; retrying");
                    tokio::time::sleep(backoff).await;
                    backoff = Ord::min(backoff * 2, PUBLISH_MAX_BACKOFF);
                }
            }
        }
    }

    fn defer(&self, pending: Vec<Pending>) {
        metrics::counter!(names::BUS_DEFERRED).increment(pending.len() as u64);
        let mut backlog = self.backlog();
        let dropped: usize = pending.into_iter().map(|p| backlog.push(p)).sum();
        lost(dropped, "the backlog is full");
        metrics::gauge!(names::BUS_BACKLOG).set(backlog.len() as f64);
        drop(backlog);
        self.queued.notify_one();
    }

    /// Appends and publishes `events` in one atomic script (one round trip);
    /// how many were published (the others were superseded).
    async fn publish_once(&self, events: &[Pending]) -> redis::RedisResult<usize> {
        let mut invocation = self.script.prepare_invoke();
        invocation.key(epoch_key(&self.channel));
        let new_epoch = uuid::Uuid::new_v4().simple().to_string()[..12].to_owned();
        invocation
            .arg(&self.channel)
            .arg(new_epoch)
            .arg(self.retention.max_events)
            .arg(self.retention.max_age_ms())
            .arg(super::revisions::KEPT_FOR_MS);
        for Pending { event, payload, .. } in events {
            let topics = event.topics();
            invocation.arg(topics.len()).arg(payload);
            match event.revision() {
                Some((row, revision)) => {
                    invocation
                        .arg(revision)
                        .key(format!("{}:revision:{row}", self.channel));
                }
                None => {
                    invocation.arg("");
                }
            }
            invocation.arg(if event.is_repeat() { "1" } else { "" });
            for topic in topics {
                invocation.key(stream_key(&self.channel, topic));
            }
        }
        let mut connection = self.connection.clone();
        invocation.invoke_async::<usize>(&mut connection).await
    }
}

fn count_published(events: &[Pending], published: usize) {
    for pending in events {
        metrics::counter!(names::BUS_PUBLISHED, "type" => pending.event.name()).increment(1);
    }
    let superseded = events.len().saturating_sub(published);
    if superseded > 0 {
        metrics::counter!(names::BUS_SUPERSEDED).increment(superseded as u64);
    }
}

fn lost(events: usize, why: &str) {
    if events > 0 {
        metrics::counter!(names::BUS_LOST).increment(events as u64);
        tracing::error!(events, "events stored but never published: {why}");
    }
}

/// Publishes the backlog, oldest first, as soon as Redis answers; events
/// that waited [`backlog::MAX_AGE`] are dropped.
async fn drain(publisher: Arc<Publisher>) {
    let mut backoff = PUBLISH_FIRST_BACKOFF;
    loop {
        let (round, left) = {
            let mut backlog = publisher.backlog();
            // No cutoff on a clock younger than the age (a machine just booted).
            if let Some(cutoff) = tokio::time::Instant::now().checked_sub(backlog::MAX_AGE) {
                lost(backlog.expire(cutoff), "Redis did not answer in time");
            }
            (backlog.front(BACKLOG_ROUND), backlog.len())
        };
        metrics::gauge!(names::BUS_BACKLOG).set(left as f64);
        if round.is_empty() {
            publisher.queued.notified().await;
            continue;
        }
        let (places, pending): (Vec<u64>, Vec<Pending>) = round.into_iter().unzip();
        match publisher.publish_once(&pending).await {
            Ok(published) => {
                count_published(&pending, published);
                publisher.backlog().published(&places);
                backoff = PUBLISH_FIRST_BACKOFF;
                if left == pending.len() {
                    tracing::info!("Redis answers again; the events kept are published");
                }
            }
            Err(err) => {
                tracing::debug!(error = %err, "Redis publish of the backlog failed; retrying");
                tokio::time::sleep(backoff).await;
                backoff = Ord::min(backoff * 2, PUBLISH_MAX_BACKOFF);
            }
        }
    }
}

/// Reads a message of the channel: `epoch`, the stream ids (one per topic, in
/// the order of [`DomainEvent::topics`]) and the envelope, on three lines.
fn decode_message(message: &[u8]) -> anyhow::Result<Stamped> {
    let mut lines = message.splitn(3, |b| *b == b'\n');
    let (Some(epoch), Some(ids), Some(envelope)) = (lines.next(), lines.next(), lines.next())
    else {
        anyhow::bail!("not an event message");
    };
    let envelope = Envelope::decode(envelope)?;
    let ids = std::str::from_utf8(ids)?
        .split(',')
        .map(str::parse::<Position>)
        .collect::<Result<Vec<_>, ()>>()
        .map_err(|()| anyhow::anyhow!("malformed stream id"))?;
    let topics = envelope.event.topics();
    anyhow::ensure!(ids.len() == topics.len(), "one stream id per topic");
    Ok(Stamped {
        epoch: std::str::from_utf8(epoch)?.into(),
        positions: topics.into_iter().zip(ids).collect(),
        envelope,
    })
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
///
/// Messages published while the connection is down never reach this replica,
/// so a dropped connection interrupts the fan-out: every subscription ends
/// with the last cursor it was given and resumes from the streams, and caches
/// forget what they kept. The re-subscription interrupts it again, for the
/// subscriptions that started during the outage.
async fn relay(mut pushes: mpsc::UnboundedReceiver<PushInfo>, fanout: Arc<Fanout>) {
    let mut subscribed = false;
    while let Some(push) = pushes.recv().await {
        match push.kind {
            PushKind::Message => {
                let Some(Value::BulkString(payload)) = push.data.get(1) else {
                    continue;
                };
                match decode_message(payload) {
                    Ok(event) => fanout.deliver(&Arc::new(event)),
                    Err(err) => {
                        metrics::counter!(names::BUS_RECEIVED, "type" => "undecodable")
                            .increment(1);
                        tracing::warn!(error = %err, "dropping undecodable bus message");
                    }
                }
            }
            PushKind::Disconnection => {
                tracing::warn!("Redis bus connection lost; reconnecting");
                metrics::counter!(names::BUS_INTERRUPTIONS).increment(1);
                fanout.interrupt();
            }
            PushKind::Subscribe => {
                if subscribed {
                    tracing::info!("Redis bus subscribed again");
                    metrics::counter!(names::BUS_INTERRUPTIONS).increment(1);
                    fanout.interrupt();
                }
                subscribed = true;
            }
            _ => {}
        }
    }
}

#[async_trait]
impl EventBus for RedisBus {
    async fn publish(&self, event: DomainEvent) -> anyhow::Result<()> {
        self.publish_all(vec![event]).await
    }

    async fn publish_all(&self, events: Vec<DomainEvent>) -> anyhow::Result<()> {
        if events.is_empty() {
            return Ok(());
        }
        self.publisher.publish(events).await
    }

    async fn replay(&self, after: &Cursor) -> Result<Vec<Arc<Stamped>>, FollowError> {
        let mut connection = self.publisher.connection.clone();
        let (epoch, secs, micros, held, retained, page): ReplayReply = self
            .replay_script
            .key(self.epoch_key())
            .key(self.stream_key(after.topic))
            .arg(after.position.to_string())
            .arg(REPLAY_PAGE)
            .invoke_async(&mut connection)
            .await
            .map_err(|err| FollowError::Unavailable(err.into()))?;
        let facts = Facts {
            same_epoch: epoch == after.epoch,
            holds_cursor: held > 0,
            empty: retained == 0,
            now_ms: secs * 1000 + micros / 1000,
        };
        history::decide(after, facts, self.publisher.retention)?;
        let epoch: Arc<str> = epoch.into();
        page.into_iter()
            .map(|(id, fields)| {
                let position = id
                    .parse::<Position>()
                    .map_err(|()| anyhow::anyhow!("malformed stream id {id}"))?;
                let envelope = fields
                    .get(1)
                    .ok_or_else(|| anyhow::anyhow!("stream entry {id} has no event"))?;
                let envelope = Envelope::decode(envelope)?;
                Ok(Arc::new(Stamped {
                    envelope,
                    epoch: Arc::clone(&epoch),
                    positions: vec![(after.topic, position)],
                }))
            })
            .collect::<anyhow::Result<Vec<_>>>()
            .map_err(FollowError::Unavailable)
    }

    fn fanout(&self) -> &Fanout {
        &self.fanout
    }

    fn retention(&self) -> Retention {
        self.publisher.retention
    }

    async fn is_ready(&self) -> bool {
        let mut connection = self.publisher.connection.clone();
        redis::cmd("PING")
            .query_async::<String>(&mut connection)
            .await
            .is_ok()
    }

    fn kind(&self) -> &'static str {
        "redis"
    }
}
