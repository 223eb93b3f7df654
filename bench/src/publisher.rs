//! The device side: every bay's device on its own MQTT 3.1.1 connection, logged
//! in with the credentials `voltgate seed --demo` wrote, as real devices are (the
//! embedded broker lets a device publish only on its own bay's topics).
//!
//! A few pacer tasks share the devices (each device belongs to one of them, so
//! one bay's reports stay in order) and hand the reports to the connections on a
//! common schedule computed from one start instant: the pacing stays precise,
//! and serializing 20,000 reports a second is spread over the cores.

use std::sync::Arc;
use std::sync::atomic::{AtomicI64, Ordering};
use std::time::{Duration, Instant};

use chrono::DateTime;
use rumqttc::{AsyncClient, Event, MqttOptions, Packet, QoS};
use tokio::task::JoinHandle;
use voltgate::devices::credentials::username_for_mac;
use voltgate::entities::{DeviceStatus, LockState};
use voltgate::mqtt::payload::{PROTOCOL_VERSION, StateReport};
use voltgate::mqtt::topic::{default_prefix, state_topic};
use voltgate::seed::{CredentialsFile, demo_mac};

use crate::listeners::Trouble;
use crate::server::Layout;

/// One bay's device as the publisher plays it.
struct Device {
    client: AsyncClient,
    topic: String,
    mac: String,
    station: u32,
    locked: bool,
}

/// One message sent: its `ts` (µs, unique per run) and its bay's station.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Sent {
    pub ts_us: i64,
    pub station: u32,
}

/// Pacer tasks the devices are shared among, unless told otherwise.
pub const DEFAULT_PACERS: usize = 4;

/// The order in which the round-robin visits the bays.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Order {
    /// Bay 1 of every station, then bay 2 of every station, …: each station's
    /// events are evenly spaced (every `stations` messages).
    Interleaved,
    /// Bay-id order: a station's bays one after the other, so its subscribers get
    /// a burst of events a few ms apart, then nothing for a whole round.
    Sequential,
}

/// What one phase of publishing did.
#[derive(Debug, Clone, Copy)]
pub struct Burst {
    pub sent: u64,
    /// Smallest and largest `ts` sent, in µs: they tell this phase's deliveries apart.
    pub first_ts_us: i64,
    pub last_ts_us: i64,
    pub started: Instant,
    pub elapsed: Duration,
    /// Wall clock when the last message was handed to the client, in µs.
    pub ended_us: i64,
}

pub struct Publisher {
    /// Each pacer's devices, in the order it visits them.
    pacers: Vec<Vec<Device>>,
    /// How many messages have been sent: where the round-robin stands.
    next: u64,
    /// `ts` of the last report sent, in µs, over all pacers.
    last_ts_us: Arc<AtomicI64>,
    /// Every message sent since the last [`Publisher::take_log`].
    log: Vec<Sent>,
    trouble: Arc<Trouble>,
    eventloops: Vec<JoinHandle<()>>,
}

/// Connects one device with its login; returns its client and event loop task.
///
/// # Errors
/// When the broker does not accept it within 5 s.
pub async fn connect_device(
    broker: std::net::SocketAddr,
    username: &str,
    password: &str,
    trouble: &Arc<Trouble>,
) -> anyhow::Result<(AsyncClient, JoinHandle<()>)> {
    let mut options = MqttOptions::new(username, broker.ip().to_string(), broker.port());
    options
        .set_keep_alive(Duration::from_secs(30))
        .set_credentials(username, password)
        // Enough unacknowledged QoS 1 messages that PUBACK round trips never throttle the pacer.
        .set_inflight(500);
    let (client, mut eventloop) = AsyncClient::new(options, 1_000);
    // Nagle's algorithm would hold small packets back for up to a delayed-ACK
    // period: the harness must not add latency of its own to what it measures.
    let mut network = eventloop.network_options();
    network.set_tcp_nodelay(true);
    eventloop.set_network_options(network);
    let connected = async {
        loop {
            if let Event::Incoming(Packet::ConnAck(_)) = eventloop.poll().await? {
                return anyhow::Ok(());
            }
        }
    };
    tokio::time::timeout(Duration::from_secs(5), connected)
        .await
        .map_err(|_| anyhow::anyhow!("the broker did not accept device {username} within 5 s"))??;
    let errors = Arc::clone(trouble);
    let eventloop = tokio::spawn(async move {
        loop {
            if let Err(err) = eventloop.poll().await {
                errors.record(&err);
                tokio::time::sleep(Duration::from_millis(200)).await;
            }
        }
    });
    Ok((client, eventloop))
}

impl Publisher {
    /// Connects and prepares one device per seeded bay, shared among `pacers`
    /// tasks (at least one).
    ///
    /// Bay ids follow creation order (`voltgate seed`: station by station, one
    /// cabinet each), which gives each bay's station, number and demo MAC.
    ///
    /// # Errors
    /// When the broker does not accept the connection within 5 s.
    pub async fn connect(
        broker: std::net::SocketAddr,
        credentials: &std::path::Path,
        topic_root: &str,
        layout: Layout,
        order: Order,
        pacers: usize,
    ) -> anyhow::Result<Self> {
        let credentials = CredentialsFile::read(credentials)?;
        let trouble = Arc::new(Trouble::default());
        let total = layout
            .stations
            .checked_mul(layout.bays_per_station)
            .filter(|&total| i32::try_from(total).is_ok())
            .ok_or_else(|| anyhow::anyhow!("too many bays: --stations × --bays-per-station"))?;
        let mut devices: Vec<(u32, u32, Device)> = Vec::new();
        let mut eventloops = Vec::new();
        // A few dozen handshakes at a time: fast, without a connection storm on 2 cores.
        let bay_ids: Vec<u32> = (1..=total).collect();
        for chunk in bay_ids.chunks(32) {
            let connecting = chunk.iter().map(|&bay_id| {
                let mac = demo_mac(to_i32(bay_id));
                let username = username_for_mac(&mac);
                let secrets = credentials.devices.get(&username).cloned();
                let trouble = Arc::clone(&trouble);
                async move {
                    let secrets = secrets.ok_or_else(|| {
                        anyhow::anyhow!(
                            "no credentials for {username} in the seeded credentials file"
                        )
                    })?;
                    let (client, eventloop) =
                        connect_device(broker, &secrets.username, &secrets.password, &trouble)
                            .await?;
                    anyhow::Ok((bay_id, mac, client, eventloop))
                }
            });
            for connected in futures_util::future::join_all(connecting).await {
                let (bay_id, mac, client, eventloop) = connected?;
                eventloops.push(eventloop);
                let station = (bay_id - 1) / layout.bays_per_station + 1;
                let number = (bay_id - 1) % layout.bays_per_station + 1;
                let prefix = default_prefix(topic_root, to_i32(station), 1);
                let device = Device {
                    client,
                    topic: state_topic(&prefix, to_i32(number)),
                    mac,
                    station,
                    // Seeded bays start locked, so the first report (unlocked) is a change.
                    locked: true,
                };
                devices.push((station, number, device));
            }
        }
        if order == Order::Interleaved {
            devices.sort_by_key(|&(station, number, _)| (number, station));
        }
        // Device i goes to pacer i mod n: the pacers together keep the global
        // round-robin order, each on every n-th slot of the schedule.
        let count = pacers.clamp(1, devices.len().max(1));
        let mut shared: Vec<Vec<Device>> = (0..count).map(|_| Vec::new()).collect();
        for (i, (_, _, device)) in devices.into_iter().enumerate() {
            shared[i % count].push(device);
        }
        Ok(Self {
            pacers: shared,
            next: 0,
            last_ts_us: Arc::new(AtomicI64::new(0)),
            log: Vec::new(),
            trouble,
            eventloops,
        })
    }

    /// Every message sent since the previous call, in no particular order.
    pub fn take_log(&mut self) -> Vec<Sent> {
        std::mem::take(&mut self.log)
    }

    /// Leaves the broker cleanly and stops the event loop (before the server goes away).
    pub async fn close(self) {
        let leaving = self
            .pacers
            .iter()
            .flatten()
            .map(|device| device.client.disconnect());
        let _ = tokio::time::timeout(
            Duration::from_secs(1),
            futures_util::future::join_all(leaving),
        )
        .await;
        // Let the event loops send the DISCONNECTs before they are stopped.
        tokio::time::sleep(Duration::from_millis(50)).await;
        for eventloop in self.eventloops {
            eventloop.abort();
        }
    }

    /// Connection errors so far, with the first one; `None` when there were none.
    pub fn trouble(&self) -> Option<String> {
        self.trouble.summary()
    }

    /// Sends `rate` state reports per second for `duration`, round-robin over the bays.
    ///
    /// Send times are computed from the start instant rather than slept one by one,
    /// so timer jitter never accumulates: a late message is followed by on-time ones.
    ///
    /// # Errors
    /// When an MQTT client's request queue is closed.
    pub async fn run(&mut self, rate: f64, duration: Duration) -> anyhow::Result<Burst> {
        // Rates and durations are small positive numbers (checked by the CLI), so the cast is exact enough.
        let count = (rate * duration.as_secs_f64()).round() as u64;
        let interval = Duration::from_secs_f64(1.0 / rate);
        let started = Instant::now();
        let slots = self.pacers.len() as u64;
        let tasks: Vec<JoinHandle<anyhow::Result<Paced>>> = std::mem::take(&mut self.pacers)
            .into_iter()
            .enumerate()
            .map(|(index, devices)| {
                let pacer = Pacer {
                    devices,
                    // The first global slot from here on that is this pacer's.
                    first: self.next + (index as u64 + slots - self.next % slots) % slots,
                    start_slot: self.next,
                    stride: slots,
                    end: self.next + count,
                    started,
                    interval,
                    last_ts_us: Arc::clone(&self.last_ts_us),
                };
                tokio::spawn(pacer.run())
            })
            .collect();
        let mut outcome = Ok(());
        let (mut first_ts_us, mut last_ts_us) = (i64::MAX, i64::MIN);
        for task in tasks {
            match task.await {
                Ok(Ok(paced)) => {
                    first_ts_us = first_ts_us.min(paced.first_ts_us);
                    last_ts_us = last_ts_us.max(paced.last_ts_us);
                    self.log.extend(paced.log);
                    self.pacers.push(paced.devices);
                }
                Ok(Err(err)) => outcome = Err(err),
                Err(err) => outcome = Err(anyhow::anyhow!("a pacer task failed: {err}")),
            }
        }
        outcome?;
        self.next += count;
        let ended_us = chrono::Utc::now().timestamp_micros();
        Ok(Burst {
            sent: count,
            first_ts_us,
            last_ts_us,
            started,
            elapsed: started.elapsed(),
            ended_us,
        })
    }
}

/// One pacer's share of a phase: global slots `first`, `first + stride`, … below `end`.
struct Pacer {
    devices: Vec<Device>,
    first: u64,
    /// The phase's first global slot, sent at `started`.
    start_slot: u64,
    stride: u64,
    end: u64,
    started: Instant,
    interval: Duration,
    last_ts_us: Arc<AtomicI64>,
}

/// What a pacer did, and its devices back.
struct Paced {
    devices: Vec<Device>,
    first_ts_us: i64,
    last_ts_us: i64,
    log: Vec<Sent>,
}

impl Pacer {
    async fn run(mut self) -> anyhow::Result<Paced> {
        let (mut first_ts_us, mut last_ts_us) = (i64::MAX, i64::MIN);
        let mut log = Vec::new();
        let mut slot = self.first;
        while slot < self.end {
            let due = self.started + self.interval.mul_f64((slot - self.start_slot) as f64);
            tokio::time::sleep_until(due.into()).await;
            // The pacer's own devices in turn: global slot s is device s / stride of this pacer.
            let index = ((slot / self.stride) % self.devices.len() as u64) as usize;
            let device = &mut self.devices[index];
            // Microseconds, as real devices send, bumped when the clock has not moved:
            // strictly increasing over all reports of all pacers, so each bay's next
            // report is newer (the server ignores older ones) and a `ts` identifies
            // one message.
            let now_us = chrono::Utc::now().timestamp_micros();
            let bumped = |last: i64| now_us.max(last + 1);
            let previous = self
                .last_ts_us
                .fetch_update(Ordering::Relaxed, Ordering::Relaxed, |last| {
                    Some(bumped(last))
                })
                .unwrap_or_else(|last| last);
            let ts_us = bumped(previous);
            device.locked = !device.locked;
            let report = StateReport {
                v: PROTOCOL_VERSION,
                ts: DateTime::from_timestamp_micros(ts_us).unwrap_or_default(),
                mac: device.mac.clone(),
                fw: None,
                ip: None,
                status: if device.locked {
                    DeviceStatus::Charging
                } else {
                    DeviceStatus::Idle
                },
                lock: Some(if device.locked {
                    LockState::Locked
                } else {
                    LockState::Unlocked
                }),
                plugged: Some(device.locked),
                seq: None,
            };
            let payload = serde_json::to_vec(&report)?;
            // Not retained: the benchmark measures live delivery only.
            device
                .client
                .publish(device.topic.clone(), QoS::AtLeastOnce, false, payload)
                .await?;
            first_ts_us = first_ts_us.min(ts_us);
            last_ts_us = last_ts_us.max(ts_us);
            log.push(Sent {
                ts_us,
                station: device.station,
            });
            slot += self.stride;
        }
        Ok(Paced {
            devices: self.devices,
            first_ts_us,
            last_ts_us,
            log,
        })
    }
}

/// Bay, station and bay-number values stay far below `i32::MAX` (they come from a few thousand seeded rows).
fn to_i32(value: u32) -> i32 {
    i32::try_from(value).unwrap_or(i32::MAX)
}
