//! The supervision benchmark's parts: a fleet of devices sending telemetry,
//! the charging sessions their samples are stored against, a raw MQTT reader
//! of every sample, and a technician following `alertChanged`.

use std::collections::{HashMap, VecDeque};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use anyhow::Context as _;
use chrono::{DateTime, TimeDelta, Utc};
use futures_util::{SinkExt as _, StreamExt as _};
use rumqttc::{AsyncClient, Event, Packet, QoS};
use sea_orm::{ColumnTrait as _, Database, DatabaseConnection, EntityTrait as _, QueryFilter, Set};
use tokio::sync::Notify;
use tokio::task::JoinHandle;
use tokio_tungstenite::tungstenite::Message;
use voltgate::devices::credentials::username_for_mac;
use voltgate::entities::{
    RoleName, charging_session, reservation, sensor_reading, session_telemetry, station_assignment,
    user,
};
use voltgate::mqtt::payload::{PROTOCOL_VERSION, SensorReading, Telemetry};
use voltgate::mqtt::topic::default_prefix;
use voltgate::seed::{CredentialsFile, demo_mac};

use crate::listeners::{
    Incoming, Socket, Trouble, open_subscription_as, raw_subscriber, read_frame,
};
use crate::publisher::connect_device;
use crate::server::Layout;

/// A current well within the limits (A), and one over the default
/// `VOLTGATE_ALERT_MAX_CURRENT_A` of 40 A.
pub const NORMAL_A: f64 = 16.0;
pub const OVER_A: f64 = 63.0;

fn to_i32(n: u32) -> i32 {
    i32::try_from(n).expect("bay numbers fit in i32")
}

/// One bay's device.
struct FleetDevice {
    client: AsyncClient,
    /// `<prefix>/bays/<n>`.
    bay_topic: String,
    station: u32,
}

/// What an ingestion burst sends.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Burst {
    /// Telemetry samples of the bays' charging sessions.
    Telemetry,
    /// Temperature readings (`sensors/temperature`), within the limits.
    Readings,
}

impl Burst {
    /// A device's topic for this burst under its bay's.
    fn topic(self, bay_topic: &str) -> String {
        match self {
            Self::Telemetry => format!("{bay_topic}/telemetry"),
            Self::Readings => format!("{bay_topic}/sensors/temperature"),
        }
    }

    /// The `n`th message of a device's burst, at `ts`.
    fn payload(self, ts: DateTime<Utc>, n: u32) -> Vec<u8> {
        match self {
            Self::Telemetry => payload(ts, NORMAL_A, f64::from(n) / 1000.0),
            Self::Readings => serde_json::to_vec(&SensorReading {
                v: PROTOCOL_VERSION,
                ts,
                value: 20.0 + f64::from(n % 10) / 10.0,
                unit: "C".to_owned(),
            })
            .expect("a reading serializes"),
        }
    }

    /// The raw reader's topic filter for every device's messages of this burst.
    fn filter(self, topic_root: &str) -> String {
        match self {
            Self::Telemetry => format!("{topic_root}/+/+/bays/+/telemetry"),
            Self::Readings => format!("{topic_root}/+/+/bays/+/sensors/+"),
        }
    }
}

/// Every seeded bay's device on its own MQTT connection, sending telemetry.
pub struct Fleet {
    devices: Vec<FleetDevice>,
    eventloops: Vec<JoinHandle<()>>,
    trouble: Arc<Trouble>,
}

/// What a burst of samples did.
#[derive(Debug, Clone, Copy)]
pub struct Blasted {
    pub sent: u64,
    pub started: Instant,
    /// Until the last sample was handed to its client.
    pub handed_over: Duration,
}

/// A telemetry sample's payload.
fn payload(ts: DateTime<Utc>, current_a: f64, energy_kwh: f64) -> Vec<u8> {
    serde_json::to_vec(&Telemetry {
        v: PROTOCOL_VERSION,
        ts,
        session: None,
        current_a,
        voltage_v: 230.0,
        energy_kwh,
    })
    .expect("a sample serializes")
}

impl Fleet {
    /// Connects one device per bay of `layout` with the seeded credentials.
    ///
    /// # Errors
    /// When a device is not accepted within 5 s.
    pub async fn connect(
        broker: std::net::SocketAddr,
        credentials: &std::path::Path,
        topic_root: &str,
        layout: Layout,
    ) -> anyhow::Result<Self> {
        let credentials = CredentialsFile::read(credentials)?;
        let trouble = Arc::new(Trouble::default());
        let total = layout.stations * layout.bays_per_station;
        let mut devices = Vec::new();
        let mut eventloops = Vec::new();
        let bay_ids: Vec<u32> = (1..=total).collect();
        for chunk in bay_ids.chunks(32) {
            let connecting = chunk.iter().map(|&bay_id| {
                let username = username_for_mac(&demo_mac(to_i32(bay_id)));
                let secrets = credentials.devices.get(&username).cloned();
                let trouble = Arc::clone(&trouble);
                async move {
                    let secrets =
                        secrets.with_context(|| format!("no credentials for {username}"))?;
                    let connected =
                        connect_device(broker, &secrets.username, &secrets.password, &trouble)
                            .await?;
                    anyhow::Ok((bay_id, connected))
                }
            });
            for connected in futures_util::future::join_all(connecting).await {
                let (bay_id, (client, eventloop)) = connected?;
                eventloops.push(eventloop);
                let station = (bay_id - 1) / layout.bays_per_station + 1;
                let number = (bay_id - 1) % layout.bays_per_station + 1;
                let prefix = default_prefix(topic_root, to_i32(station), 1);
                devices.push(FleetDevice {
                    client,
                    bay_topic: format!("{prefix}/bays/{number}"),
                    station,
                });
            }
        }
        Ok(Self {
            devices,
            eventloops,
            trouble,
        })
    }

    pub fn len(&self) -> usize {
        self.devices.len()
    }

    pub fn is_empty(&self) -> bool {
        self.devices.is_empty()
    }

    /// The station of device `index` (bay id − 1).
    pub fn station_of(&self, index: usize) -> u32 {
        self.devices[index].station
    }

    /// Every device of `devices` sends `per_device` messages of `burst` as
    /// fast as its client takes them (QoS 1, up to 500 unacknowledged), `ts`
    /// 1 ms apart from `first_ts` (and a sample's energy growing): all are
    /// new to store.
    ///
    /// # Errors
    /// When a client's queue is closed.
    pub async fn blast(
        &self,
        burst: Burst,
        devices: std::ops::Range<usize>,
        per_device: u32,
        first_ts: DateTime<Utc>,
    ) -> anyhow::Result<Blasted> {
        let started = Instant::now();
        let sending = self.devices[devices].iter().map(|device| async move {
            let topic = burst.topic(&device.bay_topic);
            for n in 0..per_device {
                let ts = first_ts + TimeDelta::milliseconds(i64::from(n));
                device
                    .client
                    .publish(&topic, QoS::AtLeastOnce, false, burst.payload(ts, n))
                    .await?;
            }
            anyhow::Ok(u64::from(per_device))
        });
        let mut sent = 0;
        for done in futures_util::future::join_all(sending).await {
            sent += done?;
        }
        Ok(Blasted {
            sent,
            started,
            handed_over: started.elapsed(),
        })
    }

    /// Device `index` sends one sample at `ts` with `current_a`.
    ///
    /// # Errors
    /// When its client's queue is closed.
    pub async fn send(
        &self,
        index: usize,
        ts: DateTime<Utc>,
        current_a: f64,
    ) -> anyhow::Result<()> {
        let device = &self.devices[index];
        device
            .client
            .publish(
                Burst::Telemetry.topic(&device.bay_topic),
                QoS::AtLeastOnce,
                false,
                payload(ts, current_a, 0.0),
            )
            .await?;
        Ok(())
    }

    /// Connection errors so far.
    pub fn trouble(&self) -> Option<String> {
        self.trouble.summary()
    }

    /// Leaves the broker and stops the event loops.
    pub async fn close(self) {
        let leaving = self.devices.iter().map(|d| d.client.disconnect());
        let _ = tokio::time::timeout(
            Duration::from_secs(1),
            futures_util::future::join_all(leaving),
        )
        .await;
        tokio::time::sleep(Duration::from_millis(50)).await;
        for eventloop in self.eventloops {
            eventloop.abort();
        }
    }
}

/// Opens a charging session on every bay of the database, for a customer
/// registered as `customer`, so every sample has a session to be stored
/// against.
///
/// # Errors
/// Database failures, or no such customer.
pub async fn open_sessions(db: &DatabaseConnection, customer: &str) -> anyhow::Result<()> {
    let user_id = user_id(db, customer).await?;
    let now = Utc::now();
    let bays = voltgate::entities::bay::Entity::find().all(db).await?;
    // The demo data has a session in progress, opened just now: it ends
    // (as of when it opened) and its bay gets one of ours like the others.
    for session in charging_session::Entity::find()
        .filter(charging_session::Column::EndedAt.is_null())
        .all(db)
        .await?
    {
        charging_session::Entity::update(charging_session::ActiveModel {
            id: Set(session.id),
            state: Set(charging_session::SessionState::Stopped),
            ended_at: Set(Some(session.opened_at)),
            ..Default::default()
        })
        .exec(db)
        .await?;
    }
    for bay in &bays {
        let booked = reservation::ActiveModel {
            reference_code: Set(format!("BENCH{}", bay.id)),
            user_id: Set(user_id),
            bay_id: Set(bay.id),
            auth_method_id: Set(None),
            auth_choice: Set(reservation::AccessMode::Code),
            starts_at_us: Set((now - TimeDelta::hours(1)).timestamp_micros()),
            ends_at_us: Set((now + TimeDelta::hours(3)).timestamp_micros()),
            status: Set(reservation::ReservationStatus::Active),
            cancelled_at_us: Set(None),
            created_at: Set(now),
            ..Default::default()
        };
        let booked = reservation::Entity::insert(booked).exec(db).await?;
        let opened = now - TimeDelta::hours(1);
        charging_session::Entity::insert(charging_session::ActiveModel {
            reservation_id: Set(booked.last_insert_id),
            user_id: Set(user_id),
            bay_id: Set(bay.id),
            cabinet_id: Set(bay.cabinet_id),
            state: Set(charging_session::SessionState::Charging),
            method: Set(reservation::AccessMode::Code),
            opened_at: Set(opened),
            state_changed_at: Set(opened),
            plug_timeout_secs: Set(60),
            plug_deadline_us: Set(None),
            start_command_id: Set(None),
            charging_since: Set(Some(opened)),
            ended_at: Set(None),
            energy_kwh: Set(None),
            error: Set(None),
            ..Default::default()
        })
        .exec(db)
        .await?;
    }
    Ok(())
}

async fn user_id(db: &DatabaseConnection, username: &str) -> anyhow::Result<i32> {
    Ok(user::Entity::find()
        .filter(user::Column::Username.eq(username))
        .one(db)
        .await?
        .with_context(|| format!("no account {username}"))?
        .id)
}

/// Makes `username` a technician assigned to `stations` (database ids).
///
/// # Errors
/// Database failures, or no such account.
pub async fn make_technician(
    db: &DatabaseConnection,
    username: &str,
    stations: &[i32],
) -> anyhow::Result<()> {
    let id = user_id(db, username).await?;
    voltgate::accounts::roles::assign(db, id, RoleName::Technician)
        .await
        .map_err(|err| anyhow::anyhow!("cannot grant the technician role: {err:?}"))?;
    for station in stations {
        station_assignment::Entity::insert(station_assignment::ActiveModel {
            user_id: Set(id),
            station_id: Set(*station),
            assigned_at: Set(Utc::now()),
            ..Default::default()
        })
        .exec(db)
        .await?;
    }
    Ok(())
}

/// Connects to the run's database.
///
/// # Errors
/// When it cannot be reached.
pub async fn connect(database_url: &str) -> anyhow::Result<DatabaseConnection> {
    Database::connect(database_url)
        .await
        .with_context(|| format!("cannot open {database_url}"))
}

/// How many messages of `burst`'s kind (samples or readings) are stored.
///
/// # Errors
/// Database failures.
pub async fn stored(db: &DatabaseConnection, burst: Burst) -> anyhow::Result<u64> {
    use sea_orm::PaginatorTrait as _;
    Ok(match burst {
        Burst::Telemetry => session_telemetry::Entity::find().count(db).await?,
        Burst::Readings => sensor_reading::Entity::find().count(db).await?,
    })
}

/// Polls the database until `expected` messages of `burst`'s kind are
/// stored or `patience` runs out; returns how many were, and when the count
/// was first reached.
///
/// # Errors
/// Database failures.
pub async fn wait_stored(
    db: &DatabaseConnection,
    burst: Burst,
    expected: u64,
    patience: Duration,
) -> anyhow::Result<(u64, Instant)> {
    let deadline = Instant::now() + patience;
    loop {
        let count = stored(db, burst).await?;
        if count >= expected || Instant::now() >= deadline {
            return Ok((count, Instant::now()));
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// A plain MQTT client reading every device's topic of a burst, counting
/// what arrives.
pub struct RawReader {
    received: Arc<AtomicU64>,
    reached: Arc<Notify>,
    target: Arc<AtomicU64>,
    task: JoinHandle<()>,
}

impl RawReader {
    /// Subscribes to every device's topic of `burst` under `topic_root` as
    /// `login`.
    ///
    /// # Errors
    /// When the broker does not acknowledge within 5 s.
    pub async fn subscribe(
        broker: std::net::SocketAddr,
        login: &(String, String),
        topic_root: &str,
        burst: Burst,
    ) -> anyhow::Result<Self> {
        let (client, mut eventloop) = raw_subscriber(
            broker,
            &format!("supervision-raw-{}", std::process::id()),
            Some(login),
            &burst.filter(topic_root),
        )
        .await?;
        let received = Arc::new(AtomicU64::new(0));
        let reached = Arc::new(Notify::new());
        let target = Arc::new(AtomicU64::new(u64::MAX));
        let task = {
            let (received, reached, target) = (
                Arc::clone(&received),
                Arc::clone(&reached),
                Arc::clone(&target),
            );
            tokio::spawn(async move {
                let _client = client;
                loop {
                    match eventloop.poll().await {
                        Ok(Event::Incoming(Packet::Publish(_))) => {
                            let count = received.fetch_add(1, Ordering::Relaxed) + 1;
                            if count == target.load(Ordering::Relaxed) {
                                reached.notify_one();
                            }
                        }
                        Ok(_) => {}
                        Err(_) => tokio::time::sleep(Duration::from_millis(200)).await,
                    }
                }
            })
        };
        Ok(Self {
            received,
            reached,
            target,
            task,
        })
    }

    /// Starts counting afresh towards `target` messages.
    pub fn expect(&self, target: u64) {
        self.received.store(0, Ordering::Relaxed);
        self.target.store(target, Ordering::Relaxed);
    }

    /// Waits until the target is reached or `patience` runs out; returns the
    /// count and the instant.
    pub async fn wait(&self, patience: Duration) -> (u64, Instant) {
        let _ = tokio::time::timeout(patience, self.reached.notified()).await;
        (self.received.load(Ordering::Relaxed), Instant::now())
    }

    pub fn stop(self) {
        self.task.abort();
    }
}

const ALERTS: &str = "subscription($s: [ID!]) { alertChanged(stationIds: $s) { change alert { stationId bayId kind } } }";

/// What the technician's subscription saw.
#[derive(Debug, Default)]
pub struct Followed {
    /// Latency of each matched event, µs.
    pub latencies_us: Vec<i64>,
    /// Events about a station outside the technician's assignments (must be 0).
    pub foreign: u64,
    /// Events with no trigger waiting for them.
    pub unmatched: u64,
    pub errors: Vec<String>,
}

/// A technician's `alertChanged` subscription, matching each event with the
/// trigger sent for its bay.
pub struct AlertFollower {
    pending: Arc<Mutex<HashMap<String, VecDeque<Instant>>>>,
    followed: Arc<Mutex<Followed>>,
    task: JoinHandle<()>,
}

impl AlertFollower {
    /// Subscribes with `token` to the alerts of `stations` (global ids);
    /// `own` are the global ids the technician may see.
    ///
    /// # Errors
    /// When the subscription cannot be opened.
    pub async fn subscribe(
        http: std::net::SocketAddr,
        token: &str,
        stations: Vec<String>,
    ) -> anyhow::Result<Self> {
        let init = serde_json::json!({ "authorization": format!("Bearer {token}") });
        let variables = serde_json::json!({ "s": stations.clone() });
        let (ws, _) = open_subscription_as(http, init, ALERTS, variables).await?;
        let pending: Arc<Mutex<HashMap<String, VecDeque<Instant>>>> = Arc::default();
        let followed: Arc<Mutex<Followed>> = Arc::default();
        let task = tokio::spawn(follow(
            ws,
            stations,
            Arc::clone(&pending),
            Arc::clone(&followed),
        ));
        Ok(Self {
            pending,
            followed,
            task,
        })
    }

    /// Notes that a trigger for `bay` (global id) is being sent now.
    pub fn triggered(&self, bay: String) {
        self.pending
            .lock()
            .expect("pending lock")
            .entry(bay)
            .or_default()
            .push_back(Instant::now());
    }

    /// Triggers still without their event.
    pub fn missing(&self) -> usize {
        self.pending
            .lock()
            .expect("pending lock")
            .values()
            .map(VecDeque::len)
            .sum()
    }

    pub fn finish(self) -> Followed {
        self.task.abort();
        std::mem::take(&mut *self.followed.lock().expect("followed lock"))
    }
}

#[derive(serde::Deserialize)]
struct AlertFrame {
    payload: AlertPayload,
}

#[derive(serde::Deserialize)]
struct AlertPayload {
    data: Option<AlertData>,
}

#[derive(serde::Deserialize)]
#[serde(rename_all = "camelCase")]
struct AlertData {
    alert_changed: AlertChanged,
}

#[derive(serde::Deserialize)]
struct AlertChanged {
    alert: AlertRef,
}

#[derive(serde::Deserialize)]
#[serde(rename_all = "camelCase")]
struct AlertRef {
    station_id: String,
    bay_id: Option<String>,
}

async fn follow(
    mut ws: Socket,
    own: Vec<String>,
    pending: Arc<Mutex<HashMap<String, VecDeque<Instant>>>>,
    followed: Arc<Mutex<Followed>>,
) {
    while let Some(message) = ws.next().await {
        let text = match message {
            Ok(Message::Text(text)) => text,
            Ok(Message::Close(_)) | Err(_) => break,
            Ok(_) => continue,
        };
        let received = Instant::now();
        match read_frame(&text) {
            Incoming::Ping => {
                let _ = ws.send(Message::text(r#"{"type":"pong"}"#)).await;
                continue;
            }
            Incoming::Errors { message, .. } => {
                followed.lock().expect("followed lock").errors.push(message);
                continue;
            }
            _ => {}
        }
        let Ok(frame) = serde_json::from_str::<AlertFrame>(&text) else {
            continue;
        };
        let Some(data) = frame.payload.data else {
            continue;
        };
        let alert = data.alert_changed.alert;
        let mut followed = followed.lock().expect("followed lock");
        if !own.contains(&alert.station_id) {
            followed.foreign += 1;
            continue;
        }
        let sent = alert.bay_id.and_then(|bay| {
            pending
                .lock()
                .expect("pending lock")
                .get_mut(&bay)
                .and_then(VecDeque::pop_front)
        });
        match sent {
            Some(sent) => followed
                .latencies_us
                .push(i64::try_from(received.duration_since(sent).as_micros()).unwrap_or(i64::MAX)),
            None => followed.unmatched += 1,
        }
    }
}
