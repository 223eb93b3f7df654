//! The device side: every bay's device on its own MQTT 3.1.1 connection, logged
//! in with the credentials `voltgate seed --demo` wrote, as real devices are (the
//! embedded broker lets a device publish only on its own bay's topics). One
//! pacer hands the reports to the connections, so the pacing stays precise.

use std::sync::Arc;
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
    locked: bool,
}

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
    devices: Vec<Device>,
    next: usize,
    /// `ts` of the last report sent, in µs.
    last_ts_us: i64,
    trouble: Arc<Trouble>,
    eventloops: Vec<JoinHandle<()>>,
}

/// Connects one device with its login; returns its client and event loop task.
async fn connect_device(
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
    /// Connects and prepares one device per seeded bay.
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
                    // Seeded bays start locked, so the first report (unlocked) is a change.
                    locked: true,
                };
                devices.push((station, number, device));
            }
        }
        if order == Order::Interleaved {
            devices.sort_by_key(|&(station, number, _)| (number, station));
        }
        let devices = devices.into_iter().map(|(_, _, device)| device).collect();
        Ok(Self {
            devices,
            next: 0,
            last_ts_us: 0,
            trouble,
            eventloops,
        })
    }

    /// Leaves the broker cleanly and stops the event loop (before the server goes away).
    pub async fn close(self) {
        let leaving = self.devices.iter().map(|device| device.client.disconnect());
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
    /// When the MQTT client's request queue is closed.
    pub async fn run(&mut self, rate: f64, duration: Duration) -> anyhow::Result<Burst> {
        // Rates and durations are small positive numbers (checked by the CLI), so the cast is exact enough.
        let count = (rate * duration.as_secs_f64()).round() as u64;
        let interval = Duration::from_secs_f64(1.0 / rate);
        let started = Instant::now();
        let (mut first_ts_us, mut last_ts_us) = (i64::MAX, i64::MIN);
        for k in 0..count {
            tokio::time::sleep_until((started + interval.mul_f64(k as f64)).into()).await;
            let index = self.next;
            self.next = (index + 1) % self.devices.len();
            let device = &mut self.devices[index];
            // Microseconds, as real devices send, bumped when the clock has not moved:
            // strictly increasing over all reports, so each bay's next report is newer
            // (the server ignores older ones) and a `ts` identifies one message.
            let ts_us = chrono::Utc::now()
                .timestamp_micros()
                .max(self.last_ts_us + 1);
            self.last_ts_us = ts_us;
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
        }
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

/// Bay, station and bay-number values stay far below `i32::MAX` (they come from a few thousand seeded rows).
fn to_i32(value: u32) -> i32 {
    i32::try_from(value).unwrap_or(i32::MAX)
}
