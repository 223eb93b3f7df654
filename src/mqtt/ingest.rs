//! The MQTT client that ingests device messages.
//!
//! Replicas join the shared subscription `$share/voltgate/<root>/#`, so the broker
//! hands each message to one of them. The client keeps a persistent session under
//! a stable client id and acknowledges a QoS 1 message only after it has been
//! applied, so a crash mid-way means a redelivery, never a loss. Messages are
//! spread over workers by bay, which keeps one bay's messages in order within a
//! replica while different bays are applied in parallel. Acknowledgements still
//! leave in the order the messages arrived, as MQTT requires (brokers such as
//! rumqttd drop a client that acknowledges out of order): an acker task holds
//! each finished message until all earlier ones are finished too.

use std::collections::{BTreeMap, HashMap, HashSet};

use std::collections::hash_map::DefaultHasher;
use std::hash::{Hash, Hasher};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::Duration;

use anyhow::Context as _;
use chrono::{DateTime, Utc};
use rumqttc::v5::mqttbytes::QoS;
use rumqttc::v5::mqttbytes::v5::{Packet, Publish};
use rumqttc::v5::{AsyncClient, Event, EventLoop, MqttOptions as ClientOptions};
use sea_orm::{DatabaseConnection, DatabaseTransaction};
use tokio::sync::mpsc;
use tokio::task::JoinHandle;

use super::DropReason;
use super::command_auth::{self, CommandKey};
use super::payload::{self, CommandAction};
use super::takeover::{self, Takeovers};
use super::topic::{self, Channel};
use crate::bus::{DomainEvent, SharedBus};
use crate::devices::commands::BayAddress;
use crate::devices::commands_log::{self, AckOutcome};
use crate::devices::credentials::{self, CommandSecret};
use crate::devices::reports::{self, ClockSkew, ReportError, StateOutcome};
use crate::devices::state_batch::{self, StateInput};
use crate::entities::{DeviceStatus, LockState, bay};
use crate::realtime::batcher::{self, BatchLimits};
use crate::supervision::alerts;
use crate::supervision::rules::Thresholds;
use crate::supervision::telemetry_cache::{self, TelemetryCache};
use crate::supervision::{self, incidents, sensors, telemetry};
use crate::telemetry::names;

/// How long a device may act on a command after it was sent; devices refuse it later.
pub const COMMAND_TTL: chrono::TimeDelta = chrono::TimeDelta::seconds(60);

/// Where and how to connect.
#[derive(Debug, Clone)]
pub struct MqttOptions {
    pub host: String,
    pub port: u16,
    pub client_id: String,
    pub session_expiry_secs: u32,
    pub topic_root: String,
    pub workers: usize,
    /// Join the replicas' shared subscription with a persistent session. Off for the
    /// embedded broker: it serves one process, keeps no sessions across restarts,
    /// and rumqttd 0.20 panics when a persistent client with a shared subscription
    /// disconnects while messages are in flight.
    pub shared: bool,
    /// Whether the other replicas take over this replica's session when it
    /// dies ([`takeover`]), and after how many seconds the broker announces it
    /// gone (MQTT 5 Will Delay Interval; a replica back sooner is not taken over).
    pub takeover_delay_secs: Option<u32>,
    /// User name and password from `MQTT_URL`, if it carries them.
    pub credentials: Option<Credentials>,
    /// Largest MQTT packet the client accepts; advertised to the broker in
    /// CONNECT (MQTT 5 Maximum Packet Size), so the broker never sends a larger
    /// one, which would otherwise cost the connection. Keep it at least the
    /// broker's own limit.
    pub max_packet_bytes: u32,
    /// Most unacknowledged QoS 1 messages the broker may send (MQTT 5 Receive
    /// Maximum): the ingestion's window, and so the largest its batches can grow.
    pub receive_maximum: u16,
    /// Largest payload ingested; a larger one is acknowledged, counted as
    /// `payload_too_large` and dropped.
    pub max_payload_bytes: usize,
    /// How far ahead of this server a device's clock may be.
    pub clock_skew: ClockSkew,
    /// How many reports a worker applies per transaction.
    pub batch_limits: BatchLimits,
    /// When readings raise alerts.
    pub alert_thresholds: Thresholds,
    /// How long ingestion remembers bays, sessions and open alerts
    /// ([`TelemetryCache`]); zero reads them for every batch.
    pub cache_ttl: Duration,
}

/// Broker credentials; `Debug` hides the password.
#[derive(Clone)]
pub struct Credentials {
    pub username: String,
    pub password: String,
}

impl std::fmt::Debug for Credentials {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Credentials")
            .field("username", &self.username)
            .field("password", &"***")
            .finish()
    }
}

/// The running client: publishes commands and reports connectivity.
pub struct MqttHandle {
    client: AsyncClient,
    db: DatabaseConnection,
    command_secret: CommandSecret,
    connected: Arc<Connected>,
    tasks: std::sync::Mutex<Vec<JoinHandle<()>>>,
    takeovers: Option<Arc<Takeovers>>,
}

impl MqttHandle {
    /// Whether the client holds a connection to the broker right now.
    pub fn is_connected(&self) -> bool {
        self.connected.get()
    }

    /// Sends a signed command to a bay's device (QoS 1); it expires after [`COMMAND_TTL`].
    ///
    /// # Errors
    /// When the bay's device has no live credentials (so no key to sign with),
    /// the database fails, or the client is shutting down.
    pub async fn send_command(
        &self,
        prefix: &str,
        bay: i32,
        action: CommandAction,
        params: serde_json::Map<String, serde_json::Value>,
    ) -> anyhow::Result<uuid::Uuid> {
        let command_id = uuid::Uuid::new_v4();
        let address = BayAddress {
            prefix: prefix.to_owned(),
            number: bay,
            login: credentials::login_for_bay(&self.db, prefix, bay).await?,
        };
        self.send_command_as(&address, command_id, action, params)
            .await?;
        Ok(command_id)
    }

    /// Sends a signed command under an id the caller chose (and logged first),
    /// to the device whose login `address` carries.
    ///
    /// # Errors
    /// As [`Self::send_command`].
    pub async fn send_command_as(
        &self,
        address: &BayAddress,
        command_id: uuid::Uuid,
        action: CommandAction,
        params: serde_json::Map<String, serde_json::Value>,
    ) -> anyhow::Result<()> {
        let (prefix, bay) = (&address.prefix, address.number);
        let login = address.login.as_ref().ok_or_else(|| {
            anyhow::anyhow!("the device of bay {bay} under {prefix} has no credentials")
        })?;
        let key = CommandKey(self.command_secret.key_for(&self.db, login).await?);
        let now = Utc::now();
        let mut command = payload::Command {
            v: payload::PROTOCOL_VERSION,
            ts: now,
            command_id,
            action,
            params,
            expires_at: (now + COMMAND_TTL).timestamp(),
            mac: String::new(),
        };
        command_auth::sign(&key, &mut command);
        let bytes = serde_json::to_vec(&command)?;
        self.client
            .publish(
                topic::command_topic(prefix, bay),
                QoS::AtLeastOnce,
                false,
                bytes,
            )
            .await?;
        metrics::counter!(names::MQTT_OUT, "channel" => "cmd").increment(1);
        Ok(())
    }

    /// Leaves the broker cleanly (the persistent session stays for the next start).
    pub async fn shutdown(&self) {
        let _ = tokio::time::timeout(Duration::from_secs(2), self.client.disconnect()).await;
        // Let the event loop flush the DISCONNECT before its task goes.
        tokio::time::sleep(Duration::from_millis(100)).await;
        let tasks = std::mem::take(
            &mut *self
                .tasks
                .lock()
                .unwrap_or_else(std::sync::PoisonError::into_inner),
        );
        for task in tasks {
            task.abort();
        }
        if let Some(takeovers) = &self.takeovers {
            takeovers.abort_all();
        }
    }
}

/// A message waiting for its worker; `seq` is its arrival order on this connection.
pub(super) struct Incoming {
    seq: u64,
    publish: Publish,
    topic: String,
    received_at: DateTime<Utc>,
}

/// What the workers share.
pub(super) struct Ingest {
    db: DatabaseConnection,
    bus: SharedBus,
    max_payload_bytes: usize,
    clock_skew: ClockSkew,
    batch_limits: BatchLimits,
    thresholds: Thresholds,
    cache: Arc<TelemetryCache>,
}

/// The connection flag `/readyz` reads, kept equal to the connected gauge.
struct Connected(AtomicBool);

impl Connected {
    fn get(&self) -> bool {
        self.0.load(Ordering::Relaxed)
    }

    /// Records the state; returns whether it changed.
    fn set(&self, connected: bool) -> bool {
        metrics::gauge!(names::MQTT_CONNECTED).set(if connected { 1.0 } else { 0.0 });
        self.0.swap(connected, Ordering::Relaxed) != connected
    }
}

/// Messages to the acker.
pub(super) enum AckEvent {
    /// The message with this arrival number has been handled.
    Done(u64, Box<Publish>),
    /// A new connection starts numbering at this value; older messages are not acknowledged.
    Reset(u64),
}

/// Connects, subscribes and starts ingesting.
///
/// # Errors
/// When the broker cannot be reached or refuses the connection within a few seconds.
pub async fn start(
    options: MqttOptions,
    db: DatabaseConnection,
    bus: SharedBus,
) -> anyhow::Result<MqttHandle> {
    let broker = format!("mqtt://{}:{}", options.host, options.port);
    let (client, mut eventloop) = AsyncClient::new(client_options(&options), 1024);

    wait_for_connack(&mut eventloop)
        .await
        .with_context(|| format!("cannot connect to the MQTT broker at {broker}"))?;
    let filters = subscriptions(&options);
    for filter in &filters {
        client.subscribe(filter.clone(), QoS::AtLeastOnce).await?;
    }
    let connected = Arc::new(Connected(AtomicBool::new(false)));
    connected.set(true);
    tracing::info!(%broker, client_id = %options.client_id, ?filters, "MQTT ingestion started");

    let (acks, ack_queue) = mpsc::unbounded_channel();
    let cache = Arc::new(TelemetryCache::new(options.cache_ttl));
    let listener = tokio::spawn(telemetry_cache::listen(&bus, Arc::clone(&cache)));
    let ingest = Arc::new(Ingest {
        db: db.clone(),
        bus,
        max_payload_bytes: options.max_payload_bytes,
        clock_skew: options.clock_skew,
        batch_limits: options.batch_limits,
        thresholds: options.alert_thresholds,
        cache,
    });
    let takeovers = takeover::enabled(&options)
        .then(|| Arc::new(Takeovers::new(options.clone(), Arc::clone(&ingest))));
    let mut tasks = vec![
        listener,
        tokio::spawn(acknowledge_in_order(
            ack_queue,
            client.clone(),
            Arc::new(AtomicU64::new(0)),
        )),
    ];
    let queues = start_workers(options.workers, &ingest, &acks, &mut tasks);
    tasks.push(tokio::spawn(poll(
        eventloop,
        client.clone(),
        filters,
        Arc::clone(&connected),
        queues,
        acks,
        takeovers.clone(),
    )));
    Ok(MqttHandle {
        client,
        db,
        command_secret: CommandSecret::default(),
        connected,
        tasks: std::sync::Mutex::new(tasks),
        takeovers,
    })
}

/// What the replica subscribes to: the device topics (shared between replicas
/// when there are several) and, when sessions are taken over, the notices of
/// replicas gone.
pub(super) fn subscriptions(options: &MqttOptions) -> Vec<String> {
    if !options.shared {
        return vec![topic::root_subscription(&options.topic_root)];
    }
    let mut filters = vec![topic::shared_subscription(&options.topic_root)];
    if takeover::enabled(options) {
        filters.push(topic::replica_gone_topic(&options.topic_root));
    }
    filters
}

/// Starts `count` workers handing their finished messages to `acks`; returns their queues.
pub(super) fn start_workers(
    count: usize,
    ingest: &Arc<Ingest>,
    acks: &mpsc::UnboundedSender<AckEvent>,
    tasks: &mut Vec<JoinHandle<()>>,
) -> Vec<mpsc::Sender<Incoming>> {
    (0..count.max(1))
        .map(|_| {
            let (tx, rx) = mpsc::channel(1024);
            tasks.push(tokio::spawn(work(rx, Arc::clone(ingest), acks.clone())));
            tx
        })
        .collect()
}

/// Hands a message to its bay's worker; `false` once the workers are gone.
pub(super) async fn route(queues: &[mpsc::Sender<Incoming>], seq: u64, publish: Publish) -> bool {
    let received_at = Utc::now();
    let topic = String::from_utf8_lossy(&publish.topic).into_owned();
    let queue = &queues[worker_for(&topic, queues.len())];
    queue
        .send(Incoming {
            seq,
            publish,
            topic,
            received_at,
        })
        .await
        .is_ok()
}

/// How the replica's client connects: messages are acknowledged by hand, after
/// their batch commits, so the window it announces bounds what it holds unstored.
fn client_options(options: &MqttOptions) -> ClientOptions {
    let mut client_options = client_options_as(options, &options.client_id);
    if options.shared {
        client_options
            .set_clean_start(false)
            .set_session_expiry_interval(Some(options.session_expiry_secs));
        if takeover::enabled(options) {
            client_options.set_last_will(takeover::will(options));
        }
    }
    client_options
}

/// What every ingesting connection has, under `client_id`: this replica's, or
/// the dead one's a takeover resumes.
pub(super) fn client_options_as(options: &MqttOptions, client_id: &str) -> ClientOptions {
    let mut client_options = ClientOptions::new(client_id, &options.host, options.port);
    client_options
        .set_keep_alive(Duration::from_secs(15))
        .set_manual_acks(true)
        .set_max_packet_size(Some(options.max_packet_bytes))
        .set_receive_maximum(Some(options.receive_maximum));
    if let Some(credentials) = &options.credentials {
        client_options.set_credentials(&credentials.username, &credentials.password);
    }
    // Nagle's algorithm off (rumqttc leaves it on): an acknowledgement written
    // right after another would wait for the broker's delayed ACK (up to
    // 40 ms), and the broker's next deliveries with it once its window of
    // unacknowledged messages is full.
    let mut network = client_options.network_options();
    network.set_tcp_nodelay(true);
    client_options.set_network_options(network);
    client_options
}

/// Waits for the broker to accept the connection, retrying refused TCP
/// connections: a broker starting alongside (the embedded one) may not listen yet.
async fn wait_for_connack(eventloop: &mut EventLoop) -> anyhow::Result<()> {
    let mut last_error = None;
    let wait = async {
        loop {
            match eventloop.poll().await {
                Ok(Event::Incoming(Packet::ConnAck(_))) => return,
                Ok(_) => {}
                Err(err) => {
                    last_error = Some(err.to_string());
                    tokio::time::sleep(Duration::from_millis(50)).await;
                }
            }
        }
    };
    tokio::time::timeout(Duration::from_secs(5), wait)
        .await
        .map_err(|_| match last_error.take() {
            Some(err) => anyhow::anyhow!("no connection within 5 s: {err}"),
            None => anyhow::anyhow!("no answer within 5 s"),
        })
}

/// Drives the connection: reconnects after errors, re-subscribes, and routes messages to workers.
async fn poll(
    mut eventloop: EventLoop,
    client: AsyncClient,
    filters: Vec<String>,
    connected: Arc<Connected>,
    queues: Vec<mpsc::Sender<Incoming>>,
    acks: mpsc::UnboundedSender<AckEvent>,
    takeovers: Option<Arc<Takeovers>>,
) {
    let mut backoff = Duration::from_millis(200);
    let mut seq = 0_u64;
    loop {
        match eventloop.poll().await {
            Ok(Event::Incoming(Packet::Publish(publish))) => {
                if let Some(takeovers) = takeovers.as_ref().filter(|t| t.is_notice(&publish)) {
                    takeovers.notice(&publish.payload);
                    let _ = acks.send(AckEvent::Done(seq, Box::new(publish)));
                } else if !route(&queues, seq, publish).await {
                    return;
                }
                seq += 1;
            }
            Ok(Event::Incoming(Packet::ConnAck(ack))) => {
                // Acknowledgements of the previous connection's messages would be
                // unsolicited on this one; the broker redelivers what was not acknowledged.
                let _ = acks.send(AckEvent::Reset(seq));
                connected.set(true);
                backoff = Duration::from_millis(200);
                tracing::info!(session_present = ack.session_present, "MQTT reconnected");
                // Even a session that is still there may have lost its
                // subscriptions: another replica that took it over while this
                // one was away unsubscribed it. Subscribing again is harmless.
                for filter in &filters {
                    if client
                        .try_subscribe(filter.clone(), QoS::AtLeastOnce)
                        .is_err()
                    {
                        tracing::error!(%filter, "cannot queue the MQTT re-subscription");
                    }
                }
            }
            Ok(Event::Incoming(Packet::Disconnect(disconnect))) => {
                connected.set(false);
                tracing::warn!(reason = ?disconnect.reason_code, "MQTT broker disconnected us");
            }
            Ok(_) => {}
            Err(err) => {
                if connected.set(false) {
                    tracing::warn!(error = %err, "MQTT connection lost; reconnecting");
                }
                tokio::time::sleep(backoff).await;
                backoff = (backoff * 2).min(Duration::from_secs(10));
            }
        }
    }
}

/// Picks the worker of a message: all channels of one bay go to the same worker.
fn worker_for(topic: &str, workers: usize) -> usize {
    let bay_key = topic.rsplit_once("/bays/").map_or(topic, |(prefix, rest)| {
        let number_len = rest.find('/').unwrap_or(rest.len());
        &topic[..prefix.len() + "/bays/".len() + number_len]
    });
    let mut hasher = DefaultHasher::new();
    bay_key.hash(&mut hasher);
    (hasher.finish() % workers as u64) as usize
}

async fn work(
    mut queue: mpsc::Receiver<Incoming>,
    ingest: Arc<Ingest>,
    acks: mpsc::UnboundedSender<AckEvent>,
) {
    while let Some(batch) = batcher::gather(&mut queue, ingest.batch_limits).await {
        let handled = handle_batch(&ingest, &batch).await;
        for (incoming, handled) in batch.into_iter().zip(handled) {
            let channel = match handled {
                Ok(channel) => channel,
                Err((channel, reason)) => {
                    metrics::counter!(names::MQTT_DROPPED, "reason" => reason.as_str())
                        .increment(1);
                    channel
                }
            };
            metrics::counter!(names::MQTT_IN, "channel" => channel).increment(1);
            if acks
                .send(AckEvent::Done(incoming.seq, Box::new(incoming.publish)))
                .is_err()
            {
                return;
            }
        }
    }
}

/// Acknowledges handled messages in arrival order; `acknowledged` follows how
/// many of the connection's messages have been.
pub(super) async fn acknowledge_in_order(
    mut events: mpsc::UnboundedReceiver<AckEvent>,
    client: AsyncClient,
    acknowledged: Arc<AtomicU64>,
) {
    let mut next = 0_u64;
    let mut finished: BTreeMap<u64, Box<Publish>> = BTreeMap::new();
    while let Some(event) = events.recv().await {
        match event {
            AckEvent::Reset(start) => {
                finished.clear();
                next = start;
                acknowledged.store(next, Ordering::Release);
            }
            AckEvent::Done(seq, publish) if seq >= next => {
                finished.insert(seq, publish);
                while let Some(publish) = finished.remove(&next) {
                    next += 1;
                    if publish.qos != QoS::AtMostOnce
                        && let Err(err) = client.ack(&publish).await
                    {
                        tracing::warn!(error = %err, "cannot acknowledge an MQTT message");
                    }
                    acknowledged.store(next, Ordering::Release);
                }
            }
            AckEvent::Done(..) => {}
        }
    }
}

type Handled = Result<&'static str, (&'static str, DropReason)>;

/// A message that writes to the database, decoded.
struct Write {
    /// Its place in the batch.
    index: usize,
    prefix: String,
    bay: i32,
    topic: String,
    received_at: DateTime<Utc>,
    report: Report,
}

enum Report {
    State(reports::StateReport),
    Ack(reports::CommandAck),
    Sensor(sensors::Reading),
    Telemetry(telemetry::Sample),
}

impl Report {
    fn label(&self) -> &'static str {
        match self {
            Self::State(_) => "state",
            Self::Ack(_) => "ack",
            Self::Sensor(_) => "sensor",
            Self::Telemetry(_) => "telemetry",
        }
    }
}

/// Applies decoded reports within a batch's transaction.
struct Writer {
    skew: ClockSkew,
    thresholds: Thresholds,
    cache: Arc<TelemetryCache>,
}

impl batcher::Apply for Writer {
    type Item = Write;
    /// The events to publish once the batch is committed.
    type Outcome = Result<Vec<DomainEvent>, ReportError>;

    fn apply<'a>(
        &'a self,
        txn: &'a DatabaseTransaction,
        write: &'a Write,
    ) -> batcher::Applying<'a, Self::Outcome> {
        Box::pin(async move {
            let (prefix, bay, at) = (write.prefix.as_str(), write.bay, write.received_at);
            let outcome = match &write.report {
                // One code path for state reports: the batch's, with one report.
                Report::State(_) => {
                    let mut outcomes = self.apply_all(txn, std::slice::from_ref(write)).await?;
                    return Ok(outcomes.pop().expect("one outcome per report"));
                }
                Report::Ack(ack) => {
                    match reports::apply_command_ack(txn, prefix, bay, ack, at, self.skew).await {
                        // The step that sent it learns the outcome in this transaction.
                        Ok(AckOutcome::Settled(command)) => {
                            Ok(commands_log::dispatch(txn, &command).await?)
                        }
                        Ok(AckOutcome::Accepted) => {
                            Ok(commands_log::dispatch_accepted(txn, ack.command_id).await?)
                        }
                        Ok(_) => Ok(Vec::new()),
                        Err(err) => Err(err),
                    }
                }
                // Readings too: the batch's path, with one reading.
                Report::Sensor(_) => {
                    let mut outcomes = self.apply_all(txn, std::slice::from_ref(write)).await?;
                    return Ok(outcomes.pop().expect("one outcome per report"));
                }
                // One code path for samples too: the batch's, with one sample.
                Report::Telemetry(_) => {
                    let mut outcomes = self.apply_all(txn, std::slice::from_ref(write)).await?;
                    return Ok(outcomes.pop().expect("one outcome per report"));
                }
            };
            // A database error fails the batch; the domain's refusals are outcomes.
            match outcome {
                Err(ReportError::Database(err)) => Err(err),
                outcome => Ok(outcome),
            }
        })
    }

    /// State reports, telemetry samples and sensor readings, nearly all of a
    /// batch, are applied together in a few statements ([`state_batch`],
    /// [`telemetry::record_all`], [`sensors::record_all`]); acknowledgements
    /// one by one. Samples come last, so they see the sessions as the batch's
    /// acknowledgements left them. The outcomes keep the batch's order.
    fn apply_all<'a>(
        &'a self,
        txn: &'a DatabaseTransaction,
        writes: &'a [Write],
    ) -> batcher::Applying<'a, Vec<Self::Outcome>> {
        Box::pin(async move {
            let inputs: Vec<StateInput<'_>> = writes
                .iter()
                .filter_map(|write| match &write.report {
                    Report::State(report) => Some(StateInput {
                        prefix: &write.prefix,
                        number: write.bay,
                        report,
                        received_at: write.received_at,
                    }),
                    _ => None,
                })
                .collect();
            let batch = state_batch::apply_state_reports_in(txn, &inputs, self.skew).await?;
            // A report other than `offline` from a device stored as offline may
            // end its offline alert: those ask together whether there is one
            // (an alert is raised only with the device stored as offline).
            let reporting: Vec<(&bay::Model, i32)> = batch
                .results
                .iter()
                .zip(&inputs)
                .filter_map(|(result, input)| match result {
                    Ok(StateOutcome::Applied(change, device_id))
                        if input.report.status != DeviceStatus::Offline
                            && batch.offline_before.contains(device_id) =>
                    {
                        Some((&change.bay, *device_id))
                    }
                    _ => None,
                })
                .collect();
            let mut offline_alerted = sensors::offline_alerted(txn, &reporting).await?;
            // A blocked lock's alert is raised with the lock stored as blocked,
            // so only those bays' reports may end one.
            let mut lock_blocked = batch.blocked_before;
            let mut states = batch.results.into_iter();
            let mut outcomes = Vec::with_capacity(writes.len());
            for write in writes {
                outcomes.push(match &write.report {
                    Report::State(report) => {
                        let result = states.next().expect("one result per state report");
                        let at = write.received_at;
                        let alerted = Alerted {
                            offline: &mut offline_alerted,
                            lock_blocked: &mut lock_blocked,
                        };
                        state_events(txn, report, result, at, alerted).await?
                    }
                    Report::Ack(_) => self.apply(txn, write).await?,
                    // Recorded below, all together.
                    Report::Sensor(_) | Report::Telemetry(_) => Ok(Vec::new()),
                });
            }
            for (index, outcome) in self.record_readings(txn, writes).await? {
                outcomes[index] = outcome;
            }
            for (index, outcome) in self.record_samples(txn, writes).await? {
                outcomes[index] = outcome;
            }
            Ok(outcomes)
        })
    }
}

impl Writer {
    /// The bay and device of each of `items` (an index in the batch, its
    /// write, its report): from memory, those not remembered in one query.
    /// An item whose bay is unknown gets its outcome instead.
    async fn locate<'w, T>(
        &self,
        txn: &DatabaseTransaction,
        items: &[(usize, &'w Write, &'w T)],
    ) -> Result<
        (
            Vec<Located<'w, T>>,
            Vec<(usize, <Self as batcher::Apply>::Outcome)>,
        ),
        sea_orm::DbErr,
    > {
        let mut found: HashMap<(&str, i32), Arc<telemetry_cache::Place>> = HashMap::new();
        let mut missing = HashSet::new();
        for (_, write, _) in items {
            let place = (write.prefix.as_str(), write.bay);
            if found.contains_key(&place) || missing.contains(&place) {
                continue;
            }
            match self.cache.place(place.0, place.1) {
                Some(known) => {
                    found.insert(place, known);
                }
                None => {
                    missing.insert(place);
                }
            }
        }
        let missing = missing.into_iter().collect();
        for (place, (bay, device)) in state_batch::find_bays(txn, missing).await? {
            let read = Arc::new((bay, device));
            self.cache.keep_place(place.0, place.1, Arc::clone(&read));
            found.insert(place, read);
        }
        let mut located = Vec::with_capacity(items.len());
        let mut unknown = Vec::new();
        for &(index, write, report) in items {
            match found.get(&(write.prefix.as_str(), write.bay)) {
                Some(place) => located.push(Located {
                    index,
                    place: Arc::clone(place),
                    report,
                    received_at: write.received_at,
                }),
                None => unknown.push((
                    index,
                    Err(ReportError::UnknownBay {
                        prefix: write.prefix.clone(),
                        number: write.bay,
                    }),
                )),
            }
        }
        Ok((located, unknown))
    }

    /// Stores the batch's sensor readings together; the outcome of each by
    /// its index in `writes`.
    async fn record_readings(
        &self,
        txn: &DatabaseTransaction,
        writes: &[Write],
    ) -> Result<Vec<(usize, <Self as batcher::Apply>::Outcome)>, sea_orm::DbErr> {
        let readings = of_kind(writes, |report| match report {
            Report::Sensor(reading) => Some(reading),
            _ => None,
        });
        if readings.is_empty() {
            return Ok(Vec::new());
        }
        let (located, mut outcomes) = self.locate(txn, &readings).await?;
        let measured = measured(&located);
        let recorded = sensors::record_all(txn, &measured, &self.thresholds).await?;
        for (located, recorded) in located.iter().zip(recorded) {
            outcomes.push((
                located.index,
                Ok(recorded.alerts.into_iter().map(alerts::event).collect()),
            ));
        }
        Ok(outcomes)
    }

    /// Records the batch's telemetry samples together; the outcome of each,
    /// by its place in `writes`.
    async fn record_samples(
        &self,
        txn: &DatabaseTransaction,
        writes: &[Write],
    ) -> Result<Vec<(usize, <Self as batcher::Apply>::Outcome)>, sea_orm::DbErr> {
        let samples = of_kind(writes, |report| match report {
            Report::Telemetry(sample) => Some(sample),
            _ => None,
        });
        if samples.is_empty() {
            return Ok(Vec::new());
        }
        let (located, mut outcomes) = self.locate(txn, &samples).await?;
        let measured = measured(&located);
        let recorded = telemetry::record_all(txn, &measured, &self.thresholds, &self.cache).await?;
        for ((located, recorded), m) in located.iter().zip(recorded).zip(&measured) {
            outcomes.push((
                located.index,
                match recorded {
                    telemetry::Recorded::Stored { event, alerts } => {
                        // The alerts first: a technician waits for them.
                        let mut events: Vec<DomainEvent> =
                            alerts.into_iter().map(alerts::event).collect();
                        events.extend(event.map(|e| DomainEvent::ChargeStateChanged(*e)));
                        Ok(events)
                    }
                    telemetry::Recorded::Redelivered => Ok(Vec::new()),
                    telemetry::Recorded::NoSession => {
                        Err(ReportError::NoSession { ts: m.report.ts })
                    }
                },
            ));
        }
        Ok(outcomes)
    }
}

/// The reports of a batch that `kind` picks, with their places in it.
fn of_kind<'w, T>(
    writes: &'w [Write],
    kind: impl Fn(&'w Report) -> Option<&'w T>,
) -> Vec<(usize, &'w Write, &'w T)> {
    writes
        .iter()
        .enumerate()
        .filter_map(|(index, write)| kind(&write.report).map(|report| (index, write, report)))
        .collect()
}

/// A report of a batch at its bay and device.
struct Located<'w, T> {
    /// Its place in the batch.
    index: usize,
    place: Arc<telemetry_cache::Place>,
    report: &'w T,
    received_at: DateTime<Utc>,
}

/// What the supervision's batch functions take of located reports.
fn measured<'a, T>(located: &'a [Located<'_, T>]) -> Vec<supervision::Measured<'a, T>> {
    located
        .iter()
        .map(|l| supervision::Measured {
            bay: &l.place.0,
            device: &l.place.1,
            report: l.report,
            received_at: l.received_at,
        })
        .collect()
}

/// The devices of a batch that may have an open alert a report can end,
/// kept current as the batch goes on.
struct Alerted<'a> {
    /// Devices with an open offline alert.
    offline: &'a mut HashSet<i32>,
    /// Devices whose bay's lock is stored as blocked.
    lock_blocked: &'a mut HashSet<i32>,
}

/// The events of an applied state report: its bay's change, and the raising
/// or end of its device's offline and blocked-lock alerts.
async fn state_events(
    txn: &DatabaseTransaction,
    report: &reports::StateReport,
    result: Result<StateOutcome, ReportError>,
    at: DateTime<Utc>,
    alerted: Alerted<'_>,
) -> Result<Result<Vec<DomainEvent>, ReportError>, sea_orm::DbErr> {
    match result {
        Ok(StateOutcome::Applied(change, device_id)) => {
            let offline = report.status == DeviceStatus::Offline;
            let offline_alert = if offline || alerted.offline.remove(&device_id) {
                if offline {
                    alerted.offline.insert(device_id);
                }
                sensors::device_state(txn, &change.bay, device_id, offline, at).await?
            } else {
                None
            };
            // A report without a lock state says nothing of the lock.
            let lock_alert = match report.lock {
                Some(lock) => {
                    let blocked = lock == LockState::Blocked;
                    if blocked || alerted.lock_blocked.remove(&device_id) {
                        if blocked {
                            alerted.lock_blocked.insert(device_id);
                        }
                        incidents::lock_state(txn, &change.bay, device_id, blocked, at).await?
                    } else {
                        None
                    }
                }
                None => None,
            };
            let mut events = vec![DomainEvent::BayStatusChanged(change)];
            events.extend(
                offline_alert
                    .into_iter()
                    .chain(lock_alert)
                    .map(alerts::event),
            );
            Ok(Ok(events))
        }
        Ok(StateOutcome::Repeated(again)) => {
            metrics::counter!(names::MQTT_STALE).increment(1);
            Ok(Ok(vec![DomainEvent::BayStatusChanged(again)]))
        }
        Ok(StateOutcome::Stale) => {
            metrics::counter!(names::MQTT_STALE).increment(1);
            Ok(Ok(Vec::new()))
        }
        Err(ReportError::Database(err)) => Err(err),
        Err(refused) => Ok(Err(refused)),
    }
}

/// Handles a batch of messages: decodes them, applies those that write in one
/// transaction, then publishes the resulting events (after the commit).
/// Returns what became of each message, in order.
async fn handle_batch(ingest: &Ingest, batch: &[Incoming]) -> Vec<Handled> {
    if let Some(oldest) = batch.iter().map(|incoming| incoming.received_at).min() {
        let queued = (Utc::now() - oldest).to_std().unwrap_or_default();
        metrics::histogram!(names::INGEST_QUEUED).record(queued.as_secs_f64());
    }
    let mut handled: Vec<Handled> = Vec::with_capacity(batch.len());
    let mut writes = Vec::new();
    for (index, incoming) in batch.iter().enumerate() {
        match decode(ingest, index, incoming) {
            Ok(Decoded::Write(write)) => {
                handled.push(Ok(write.report.label()));
                writes.push(write);
            }
            Ok(Decoded::Done(label)) => handled.push(Ok(label)),
            Err(dropped) => handled.push(Err(dropped)),
        }
    }
    if writes.is_empty() {
        return handled;
    }
    // Every batch takes its rows' locks in one order (by bay, stable so that a
    // bay's reports keep their arrival order): concurrent batches on PostgreSQL
    // wait for each other instead of deadlocking.
    writes.sort_by(|a, b| (&a.prefix, a.bay).cmp(&(&b.prefix, b.bay)));
    let writer = Writer {
        skew: ingest.clock_skew,
        thresholds: ingest.thresholds,
        cache: Arc::clone(&ingest.cache),
    };
    let outcomes = batcher::apply(&ingest.db, &writer, &writes).await;
    let mut events = Vec::new();
    let mut impostors = Vec::new();
    for (write, outcome) in writes.iter().zip(outcomes) {
        let label = write.report.label();
        match outcome {
            Ok(Ok(produced)) => events.extend(produced),
            Ok(Err(refused)) => {
                if let ReportError::MacMismatch { reported, .. } = &refused {
                    impostors.push((write, reported.clone()));
                }
                handled[write.index] = Err((label, report_error(&write.topic, refused)))
            }
            Err(err) => {
                tracing::error!(topic = %write.topic, error = %err, "cannot apply a device report");
                handled[write.index] = Err((label, DropReason::Internal));
            }
        }
    }
    // Rejected messages store nothing; their security alert is one statement
    // of its own, outside the batch.
    for (write, reported) in impostors {
        match sensors::mac_mismatch(
            &ingest.db,
            &write.prefix,
            write.bay,
            &reported,
            write.received_at,
        )
        .await
        {
            Ok(raised) => events.extend(raised.map(alerts::event)),
            Err(err) => {
                tracing::error!(topic = %write.topic, error = %err, "cannot raise a MAC mismatch alert");
            }
        }
    }
    // Committed: this worker's next batch knows which alerts are open.
    for event in &events {
        if let DomainEvent::AlertChanged(change) = event {
            ingest.cache.alert_changed(&change.alert);
        }
    }
    // Alerts leave first, ahead of the batch's other events: a technician
    // waits for them. Each topic's events keep their order.
    let (mut events, others): (Vec<_>, Vec<_>) = events
        .into_iter()
        .partition(|event| matches!(event, DomainEvent::AlertChanged(_)));
    events.extend(others);
    let publishing = std::time::Instant::now();
    let published = ingest.bus.publish_all(events).await;
    metrics::histogram!(names::BUS_PUBLISH_DURATION).record(publishing.elapsed().as_secs_f64());
    if let Err(err) = published {
        tracing::error!(
            error = format!("{err:#}"),
            "device reports stored but their events were not published"
        );
    }
    handled
}

enum Decoded {
    /// To apply in the batch's transaction.
    Write(Write),
    /// Nothing to store.
    Done(&'static str),
}

/// Decodes one message; returns what to write, or the label and why it was dropped.
fn decode(
    ingest: &Ingest,
    index: usize,
    incoming: &Incoming,
) -> Result<Decoded, (&'static str, DropReason)> {
    let parsed = topic::parse(&incoming.topic).map_err(|reason| ("unknown", reason))?;
    let bytes = &incoming.publish.payload[..];
    let limit = ingest.max_payload_bytes;
    let skew = ingest.clock_skew;
    let write = |report| {
        Decoded::Write(Write {
            index,
            prefix: parsed.prefix.to_owned(),
            bay: parsed.bay,
            topic: incoming.topic.clone(),
            received_at: incoming.received_at,
            report,
        })
    };
    match parsed.channel {
        Channel::State => {
            let report = payload::decode_state(bytes, limit).map_err(|reason| ("state", reason))?;
            Ok(write(Report::State(report.into())))
        }
        Channel::Ack => {
            let ack = payload::decode_ack(bytes, limit).map_err(|reason| ("ack", reason))?;
            Ok(write(Report::Ack(ack.into())))
        }
        Channel::Telemetry => {
            let sample =
                payload::decode_telemetry(bytes, limit).map_err(|reason| ("telemetry", reason))?;
            if sample.ts > skew.latest_accepted(incoming.received_at) {
                return Err(("telemetry", DropReason::ClockSkew));
            }
            Ok(write(Report::Telemetry(telemetry::Sample {
                current_a: sample.current_a,
                voltage_v: sample.voltage_v,
                energy_kwh: sample.energy_kwh,
                ts: sample.ts,
            })))
        }
        Channel::Sensor(kind) => {
            let reading =
                payload::decode_sensor(bytes, limit).map_err(|reason| ("sensor", reason))?;
            if reading.ts > skew.latest_accepted(incoming.received_at) {
                return Err(("sensor", DropReason::ClockSkew));
            }
            Ok(write(Report::Sensor(sensors::Reading {
                kind,
                value: reading.value,
                unit: reading.unit,
                ts: reading.ts,
            })))
        }
        // Our own commands come back through the root subscription.
        Channel::Command => Ok(Decoded::Done("cmd")),
    }
}

fn report_error(topic: &str, err: ReportError) -> DropReason {
    match err {
        ReportError::UnknownBay { .. } => DropReason::UnknownBay,
        ReportError::MacMismatch {
            registered,
            reported,
        } => {
            tracing::warn!(%topic, %registered, %reported, security = true, "state report from an unregistered device rejected");
            DropReason::MacMismatch
        }
        ReportError::FromTheFuture { ts } => {
            tracing::warn!(%topic, %ts, "device report from the future refused; is the device's clock set?");
            DropReason::ClockSkew
        }
        // Telemetry belongs to a session: outside one there is nothing to store it against.
        ReportError::NoSession { .. } => DropReason::NotIngested,
        ReportError::Database(err) => {
            tracing::error!(%topic, error = %err, "cannot apply a device report");
            DropReason::Internal
        }
    }
}

#[cfg(test)]
pub(super) mod tests {
    use super::*;

    /// Options of a replica; `shared` among several, taken over after `takeover_delay_secs`.
    pub(in crate::mqtt) fn options(shared: bool, takeover_delay_secs: Option<u32>) -> MqttOptions {
        MqttOptions {
            host: "broker".to_owned(),
            port: 1883,
            client_id: "voltgate-a".to_owned(),
            session_expiry_secs: 300,
            topic_root: "voltgate".to_owned(),
            workers: 4,
            shared,
            takeover_delay_secs,
            credentials: None,
            max_packet_bytes: 4096,
            receive_maximum: 2000,
            max_payload_bytes: 1024,
            clock_skew: ClockSkew(chrono::TimeDelta::seconds(300)),
            batch_limits: BatchLimits::default(),
            alert_thresholds: Thresholds::default(),
            cache_ttl: Duration::from_secs(1),
        }
    }

    #[test]
    fn the_client_announces_its_window_and_packet_limit_and_acknowledges_by_hand() {
        let client = client_options(&options(true, Some(0)));
        // Without Receive Maximum, Mosquitto lets 20 messages at a time through.
        assert_eq!(client.receive_maximum(), Some(2000));
        assert_eq!(client.max_packet_size(), Some(4096));
        assert!(client.manual_acks());
        assert!(!client.clean_start());
    }

    #[test]
    fn a_replica_among_several_leaves_a_will_naming_itself() {
        let will = client_options(&options(true, Some(0)))
            .last_will()
            .expect("a Will");
        assert_eq!(&will.topic[..], b"voltgate/_replicas/gone");
        assert_eq!(&will.message[..], b"voltgate-a");
        assert_eq!(
            will.properties.and_then(|p| p.delay_interval),
            None,
            "announced at once"
        );
        let delayed = client_options(&options(true, Some(3)))
            .last_will()
            .and_then(|will| will.properties)
            .and_then(|p| p.delay_interval);
        assert_eq!(
            delayed,
            Some(3),
            "a replica back within 3 s is not taken over"
        );
        assert_eq!(
            subscriptions(&options(true, Some(0))),
            ["$share/voltgate/voltgate/#", "voltgate/_replicas/gone"]
        );

        for (shared, takeover) in [(true, None), (false, Some(0))] {
            assert!(
                client_options(&options(shared, takeover))
                    .last_will()
                    .is_none()
            );
            assert_eq!(subscriptions(&options(shared, takeover)).len(), 1);
        }
    }

    #[test]
    fn all_channels_of_a_bay_share_a_worker() {
        let state = worker_for("voltgate/1/2/bays/3/state", 8);
        for topic in [
            "voltgate/1/2/bays/3/ack",
            "voltgate/1/2/bays/3/sensors/smoke",
            "voltgate/1/2/bays/3/telemetry",
        ] {
            assert_eq!(worker_for(topic, 8), state, "{topic}");
        }
        let spread: std::collections::HashSet<_> = (1..=64)
            .map(|n| worker_for(&format!("voltgate/1/2/bays/{n}/state"), 8))
            .collect();
        assert!(
            spread.len() > 4,
            "bays should spread over workers: {spread:?}"
        );
    }
}
