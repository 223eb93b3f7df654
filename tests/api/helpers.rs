//! The test harness: `spawn_app()`, a GraphQL client, a subscription client and a device.

#![allow(dead_code)]

use std::net::SocketAddr;
use std::time::Duration;

use futures_util::{SinkExt, StreamExt};
use rumqttc::{AsyncClient, Event, MqttOptions, Packet, QoS};
use sea_orm::{ConnectionTrait, Database, DatabaseConnection};
use serde_json::{Value, json};
use tokio::net::TcpStream;
use tokio::sync::oneshot;
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::tungstenite::client::IntoClientRequest;
use tokio_tungstenite::{MaybeTlsStream, WebSocketStream};
use uuid::Uuid;
use voltgate::seed::{self, DemoSize};
use voltgate::{App, ServeSettings};

/// How long a test waits for something that should happen.
pub const PATIENCE: Duration = Duration::from_secs(10);

/// Which external services the environment points at.
pub struct Services {
    pub postgres: Option<String>,
    pub redis: Option<String>,
    pub mqtt: Option<String>,
}

impl Services {
    pub fn from_env() -> Self {
        let var = |name: &str| std::env::var(name).ok().filter(|v| !v.trim().is_empty());
        Self {
            postgres: var("DATABASE_URL").filter(|url| url.starts_with("postgres")),
            redis: var("REDIS_URL"),
            mqtt: var("MQTT_URL").filter(|url| !url.eq_ignore_ascii_case("none")),
        }
    }
}

/// Creates a database for one test: a new PostgreSQL database, or a new SQLite file.
pub async fn fresh_database_url() -> String {
    let id = Uuid::new_v4().simple().to_string();
    match Services::from_env().postgres {
        Some(admin_url) => {
            let name = format!("vg_test_{id}");
            let admin = Database::connect(&admin_url)
                .await
                .expect("PostgreSQL from DATABASE_URL is reachable");
            admin
                .execute_unprepared(&format!("CREATE DATABASE {name}"))
                .await
                .expect("can create a test database");
            admin.close().await.ok();
            let mut url = url::Url::parse(&admin_url).expect("DATABASE_URL is a URL");
            url.set_path(&name);
            url.to_string()
        }
        None => {
            let dir = std::env::temp_dir().join("voltgate-tests");
            std::fs::create_dir_all(&dir).expect("can create the test directory");
            format!(
                "sqlite://{}?mode=rwc",
                dir.join(format!("{id}.db")).display()
            )
        }
    }
}

pub struct TestApp {
    pub addr: SocketAddr,
    pub http: reqwest::Client,
    pub db: DatabaseConnection,
    /// Broker address devices connect to (MQTT 3.1.1).
    pub broker: (String, u16),
    pub topic_root: String,
    /// The server's MQTT client (sends commands), when MQTT is on.
    pub mqtt: Option<std::sync::Arc<voltgate::mqtt::MqttHandle>>,
    /// The server's subscription groups, to see how executions are shared.
    pub subscription_groups: std::sync::Arc<voltgate::realtime::groups::Groups>,
    pub database_url: String,
    pub bus_channel: String,
    /// The server's event bus, for tests that need events without devices.
    pub bus: voltgate::bus::SharedBus,
    shutdown: Option<oneshot::Sender<()>>,
}

impl Drop for TestApp {
    fn drop(&mut self) {
        if let Some(shutdown) = self.shutdown.take() {
            let _ = shutdown.send(());
        }
    }
}

/// Arguments of `voltgate serve` for a test: its own database, bus channel and topic root.
pub fn serve_args(database_url: &str, topic_root: &str, extra: &[&str]) -> Vec<String> {
    let id = Uuid::new_v4().simple().to_string();
    let mut args: Vec<String> = vec![
        "--database-url".into(),
        database_url.into(),
        "--http-addr".into(),
        "127.0.0.1:0".into(),
        "--embedded-mqtt-addr".into(),
        "127.0.0.1:0".into(),
        "--mqtt-topic-root".into(),
        topic_root.into(),
        "--mqtt-client-id".into(),
        format!("voltgate-test-{id}"),
        "--mqtt-session-expiry-secs".into(),
        "5".into(),
        "--bus-channel".into(),
        format!("voltgate.test.{id}"),
        "--jwt-secret".into(),
        crate::client::TEST_JWT_SECRET.into(),
    ];
    args.extend(extra.iter().map(|s| (*s).to_owned()));
    args
}

/// Parses serve settings the way the binary does (flags over environment).
pub fn settings(args: &[String]) -> ServeSettings {
    #[derive(clap::Parser)]
    #[command(args_override_self = true)]
    struct Serve {
        #[command(flatten)]
        settings: ServeSettings,
    }
    let argv = std::iter::once("voltgate".to_owned()).chain(args.iter().cloned());
    <Serve as clap::Parser>::try_parse_from(argv)
        .expect("valid test settings")
        .settings
}

pub fn topic_root() -> String {
    format!("vgt{}", &Uuid::new_v4().simple().to_string()[..12])
}

/// Starts a server with an empty database.
pub async fn spawn_app() -> TestApp {
    spawn_app_with(&[]).await
}

pub async fn spawn_app_with(extra: &[&str]) -> TestApp {
    spawn(&fresh_database_url().await, extra).await
}

/// Starts a server on an existing database.
pub async fn spawn_app_on(database_url: &str) -> TestApp {
    spawn(database_url, &[]).await
}

/// Starts a server on an existing database, with extra flags (a replica
/// beside another: give both the same `--bus-channel`).
pub async fn spawn_app_on_with(database_url: &str, extra: &[&str]) -> TestApp {
    spawn(database_url, extra).await
}

async fn spawn(database_url: &str, extra: &[&str]) -> TestApp {
    let database_url = database_url.to_owned();
    let topic_root = topic_root();
    let settings = settings(&serve_args(&database_url, &topic_root, extra));
    let bus_channel = settings.bus_channel.clone();
    let app = App::build(settings).await.expect("the server starts");
    let addr = app.local_addr();
    let db = app.db().clone();
    let mqtt = app.mqtt();
    let subscription_groups = std::sync::Arc::clone(app.subscription_groups());
    let bus = std::sync::Arc::clone(app.bus());
    let broker = match Services::from_env().mqtt {
        Some(url) => {
            let url = url::Url::parse(&url).expect("MQTT_URL is a URL");
            (
                url.host_str().unwrap_or("127.0.0.1").to_owned(),
                url.port().unwrap_or(1883),
            )
        }
        None => {
            let addr = app
                .device_mqtt_addr()
                .unwrap_or_else(|| SocketAddr::from(([127, 0, 0, 1], 1)));
            (addr.ip().to_string(), addr.port())
        }
    };
    let (shutdown, stop) = oneshot::channel::<()>();
    tokio::spawn(app.run_until(async {
        let _ = stop.await;
    }));
    TestApp {
        addr,
        http: reqwest::Client::new(),
        db,
        broker,
        topic_root,
        mqtt,
        subscription_groups,
        database_url,
        bus_channel,
        bus,
        shutdown: Some(shutdown),
    }
}

/// Seeded topology: what tests address devices and subscriptions by.
#[derive(Debug, Clone)]
pub struct SeededBay {
    pub station_id: i32,
    pub bay_id: i32,
    pub prefix: String,
    pub number: i32,
    pub mac: String,
    /// The device's MQTT login and command key, when issued by the seeding helper.
    pub secrets: Option<voltgate::seed::DeviceSecrets>,
}

impl TestApp {
    pub fn url(&self, path: &str) -> String {
        format!("http://{}{path}", self.addr)
    }

    /// Seeds stations × cabinets × bays, with device credentials, and returns every bay in id order.
    pub async fn seed(&self, stations: u32, cabinets: u32, bays: u32) -> Vec<SeededBay> {
        seed_database(&self.db, &self.topic_root, stations, cabinets, bays).await
    }

    /// Posts a GraphQL operation and returns the whole response body.
    pub async fn graphql(&self, query: &str, variables: Value) -> Value {
        crate::client::post(&self.http, &self.url("/graphql"), None, query, variables).await
    }

    /// Reads one sample of a Prometheus metric (0 when absent).
    pub async fn metric(&self, name_and_labels: &str) -> f64 {
        let text = self
            .http
            .get(self.url("/metrics"))
            .send()
            .await
            .expect("metrics")
            .text()
            .await
            .expect("text");
        metric_value(&text, name_and_labels)
    }

    /// A second replica sharing this one's database and event bus, when the bus
    /// is Redis (an in-process bus cannot be shared). Its MQTT topic root is
    /// its own: devices of this replica's topics are ingested here only.
    pub async fn replica(&self) -> Option<TestApp> {
        Services::from_env().redis.as_ref()?;
        Some(spawn(&self.database_url, &["--bus-channel", &self.bus_channel]).await)
    }

    pub async fn device(&self, bay: &SeededBay) -> TestDevice {
        TestDevice::connect(&self.broker, bay).await
    }

    /// The bay's device, subscribed to its own command topic.
    pub async fn listening_device(&self, bay: &SeededBay) -> TestDevice {
        let device = self.device(bay).await;
        device
            .client
            .subscribe(
                format!("{}/bays/{}/cmd", bay.prefix, bay.number),
                QoS::AtLeastOnce,
            )
            .await
            .expect("queued");
        loop {
            match device.next_incoming(PATIENCE).await {
                Some(Ok(Packet::SubAck(_))) => return device,
                Some(Ok(_)) => {}
                other => panic!("no SUBACK: {other:?}"),
            }
        }
    }

    pub async fn subscribe(&self, protocol: &str, query: &str, variables: Value) -> Subscription {
        Subscription::start(self.addr, protocol, query, variables).await
    }

    /// Follows one bay's status and lock, as a dashboard does.
    pub async fn watch_bay(&self, bay: &SeededBay) -> Subscription {
        self.subscribe(
            "graphql-transport-ws",
            "subscription($bay: ID) { bayStatusChanged(bayId: $bay) { deviceStatus lockState } }",
            json!({ "bay": global_id("Bay", bay.bay_id) }),
        )
        .await
    }
}

/// Seeds a database with stations × cabinets × bays and issues every device its credentials.
pub async fn seed_database(
    db: &DatabaseConnection,
    topic_root: &str,
    stations: u32,
    cabinets: u32,
    bays: u32,
) -> Vec<SeededBay> {
    let size = DemoSize {
        stations,
        cabinets_per_station: cabinets,
        bays_per_cabinet: bays,
    };
    seed::demo(db, &size, topic_root)
        .await
        .expect("seeding works");
    let issued = seed::issue_missing_credentials(db)
        .await
        .expect("credentials are issued");
    let mut bays = seeded_bays(db).await;
    for bay in &mut bays {
        let username = voltgate::devices::credentials::username_for_mac(&bay.mac);
        bay.secrets = issued.iter().find(|s| s.username == username).cloned();
    }
    bays
}

/// The seeded bays, without credentials (they are shown only when issued).
pub async fn seeded_bays(db: &DatabaseConnection) -> Vec<SeededBay> {
    use sea_orm::{EntityTrait, QueryOrder};
    use voltgate::entities::{bay, cabinet, device};
    let cabinets = cabinet::Entity::find().all(db).await.expect("cabinets");
    bay::Entity::find()
        .find_also_related(device::Entity)
        .order_by_asc(bay::Column::Id)
        .all(db)
        .await
        .expect("bays")
        .into_iter()
        .filter_map(|(bay, device)| {
            let cabinet = cabinets.iter().find(|c| c.id == bay.cabinet_id)?;
            Some(SeededBay {
                station_id: bay.station_id,
                bay_id: bay.id,
                prefix: cabinet.mqtt_prefix.clone(),
                number: bay.number,
                mac: device?.mac_address,
                secrets: None,
            })
        })
        .collect()
}

/// Finds `name{labels}` (labels in any order given as written by the exporter) in Prometheus text.
pub fn metric_value(text: &str, name_and_labels: &str) -> f64 {
    text.lines()
        .filter(|line| !line.starts_with('#'))
        .filter_map(|line| line.rsplit_once(' '))
        .find(|(series, _)| *series == name_and_labels)
        .and_then(|(_, value)| value.parse().ok())
        .unwrap_or(0.0)
}

pub fn global_id(kind: &str, id: i32) -> String {
    use base64::Engine as _;
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(format!("{kind}:{id}"))
}

/// A simulated bay device speaking MQTT 3.1.1.
pub struct TestDevice {
    pub client: AsyncClient,
    pub bay: SeededBay,
    incoming: tokio::sync::Mutex<tokio::sync::mpsc::UnboundedReceiver<Result<Packet, String>>>,
}

impl TestDevice {
    /// The next command the device receives (sent with QoS 1), decoded.
    pub async fn next_command(&self) -> Value {
        loop {
            match self.next_incoming(PATIENCE).await {
                Some(Ok(Packet::Publish(publish))) => {
                    assert_eq!(
                        publish.qos,
                        QoS::AtLeastOnce,
                        "commands are sent with QoS 1"
                    );
                    return serde_json::from_slice(&publish.payload).expect("a JSON command");
                }
                Some(Ok(_)) => {}
                other => panic!("no command came: {other:?}"),
            }
        }
    }

    /// Connects as the bay's device, with its credentials when it has some.
    pub async fn connect(broker: &(String, u16), bay: &SeededBay) -> Self {
        let login = bay
            .secrets
            .as_ref()
            .map(|s| (s.username.clone(), s.password.clone()));
        Self::connect_as(broker, bay, login)
            .await
            .expect("device connects")
    }

    /// Connects with the given login (or none); the broker's refusal comes back as the error.
    pub async fn connect_as(
        broker: &(String, u16),
        bay: &SeededBay,
        login: Option<(String, String)>,
    ) -> Result<Self, String> {
        let mut options = MqttOptions::new(
            format!("dev-{}", Uuid::new_v4().simple()),
            broker.0.clone(),
            broker.1,
        );
        // Room for oversize attacks: rumqttc's own default (10 KiB) would stop them here.
        options
            .set_keep_alive(Duration::from_secs(10))
            .set_max_packet_size(1 << 20, 1 << 20);
        if let Some((username, password)) = login {
            options.set_credentials(username, password);
        }
        let (client, mut eventloop) = AsyncClient::new(options, 64);
        let (ready_tx, ready_rx) = oneshot::channel::<Result<(), String>>();
        let (incoming_tx, incoming) = tokio::sync::mpsc::unbounded_channel();
        tokio::spawn(async move {
            let mut ready = Some(ready_tx);
            loop {
                match eventloop.poll().await {
                    Ok(Event::Incoming(Packet::ConnAck(_))) => {
                        if let Some(ready) = ready.take() {
                            let _ = ready.send(Ok(()));
                        }
                    }
                    Ok(Event::Incoming(packet)) => {
                        if incoming_tx.send(Ok(packet)).is_err() {
                            return;
                        }
                    }
                    Ok(_) => {}
                    Err(err) => {
                        if let Some(ready) = ready.take() {
                            let _ = ready.send(Err(err.to_string()));
                            return;
                        }
                        if incoming_tx.send(Err(err.to_string())).is_err() {
                            return;
                        }
                        tokio::time::sleep(Duration::from_millis(100)).await;
                    }
                }
            }
        });
        tokio::time::timeout(PATIENCE, ready_rx)
            .await
            .map_err(|_| "no CONNACK in time".to_owned())?
            .map_err(|_| "the event loop ended".to_owned())??;
        Ok(Self {
            client,
            bay: bay.clone(),
            incoming: tokio::sync::Mutex::new(incoming),
        })
    }

    /// The next packet the broker sends this device, or the connection error; `None` if nothing comes in `wait`.
    pub async fn next_incoming(&self, wait: Duration) -> Option<Result<Packet, String>> {
        let mut incoming = self.incoming.lock().await;
        tokio::time::timeout(wait, incoming.recv())
            .await
            .ok()
            .flatten()
    }

    /// Waits until the connection fails; returns the error.
    pub async fn wait_disconnected(&self) -> String {
        let deadline = tokio::time::Instant::now() + PATIENCE;
        while tokio::time::Instant::now() < deadline {
            if let Some(Err(err)) = self.next_incoming(Duration::from_millis(200)).await {
                return err;
            }
        }
        panic!("the device is still connected");
    }

    pub fn state_topic(&self) -> String {
        format!("{}/bays/{}/state", self.bay.prefix, self.bay.number)
    }

    /// Publishes a state report stamped `ts` from this device's registered MAC.
    pub async fn report(&self, ts: chrono::DateTime<chrono::Utc>, status: &str, lock: &str) {
        let payload = json!({
            "v": 1, "ts": ts.to_rfc3339_opts(chrono::SecondsFormat::Micros, true),
            "mac": self.bay.mac, "fw": "1.4.2", "ip": "10.1.2.3",
            "status": status, "lock": lock, "plugged": status == "charging",
        });
        self.publish(&self.state_topic(), payload.to_string().into_bytes())
            .await;
    }

    pub async fn publish(&self, topic: &str, payload: Vec<u8>) {
        self.client
            .publish(topic, QoS::AtLeastOnce, false, payload)
            .await
            .expect("publish queued");
    }
}

type Socket = WebSocketStream<MaybeTlsStream<TcpStream>>;

/// A GraphQL subscription over WebSocket (`graphql-transport-ws` or legacy `graphql-ws`).
pub struct Subscription {
    socket: Socket,
    legacy: bool,
}

impl Subscription {
    pub async fn start(addr: SocketAddr, protocol: &str, query: &str, variables: Value) -> Self {
        Self::start_with(addr, protocol, json!({}), query, variables).await
    }

    /// Starts a subscription whose `connection_init` carries `init` (e.g. an authorization).
    pub async fn start_with(
        addr: SocketAddr,
        protocol: &str,
        init: Value,
        query: &str,
        variables: Value,
    ) -> Self {
        let mut request = format!("ws://{addr}/graphql")
            .into_client_request()
            .expect("request");
        request
            .headers_mut()
            .insert("Sec-WebSocket-Protocol", protocol.parse().expect("header"));
        let (socket, _) = tokio_tungstenite::connect_async(request)
            .await
            .expect("WebSocket connects");
        let legacy = protocol == "graphql-ws";
        let mut subscription = Self { socket, legacy };
        subscription
            .send(json!({ "type": "connection_init", "payload": init }))
            .await;
        let ack = subscription.next_message().await;
        assert_eq!(ack["type"], "connection_ack", "{ack}");
        let start = if legacy { "start" } else { "subscribe" };
        subscription
            .send(json!({ "id": "1", "type": start, "payload": { "query": query, "variables": variables } }))
            .await;
        subscription
    }

    /// Starts another operation on the same connection, with its own `id`.
    pub async fn start_operation(&mut self, id: &str, query: &str) {
        let start = if self.legacy { "start" } else { "subscribe" };
        self.send(json!({ "id": id, "type": start, "payload": { "query": query } }))
            .await;
    }

    async fn send(&mut self, message: Value) {
        self.socket
            .send(Message::Text(message.to_string().into()))
            .await
            .expect("send");
    }

    /// The next protocol message, answering pings on the way.
    pub async fn next_message(&mut self) -> Value {
        loop {
            let frame = tokio::time::timeout(PATIENCE, self.socket.next())
                .await
                .expect("a WebSocket message in time")
                .expect("the socket is open")
                .expect("a valid frame");
            if let Message::Text(text) = frame {
                let message: Value = serde_json::from_str(&text).expect("JSON message");
                match message["type"].as_str() {
                    Some("ping") => self.send(json!({ "type": "pong" })).await,
                    Some("ka") => {}
                    _ => return message,
                }
            }
        }
    }

    /// The close frame the server ends the connection with (code and reason);
    /// `None` when the connection ends without one.
    pub async fn close_frame(&mut self) -> Option<(u16, String)> {
        loop {
            let frame = tokio::time::timeout(PATIENCE, self.socket.next())
                .await
                .expect("the connection ends in time");
            match frame {
                Some(Ok(Message::Close(frame))) => {
                    return frame.map(|f| (u16::from(f.code), f.reason.to_string()));
                }
                Some(Ok(_)) => {}
                Some(Err(_)) | None => return None,
            }
        }
    }

    /// The next message within `wait`, if any.
    pub async fn try_next(&mut self, wait: Duration) -> Option<Value> {
        tokio::time::timeout(wait, self.next_message()).await.ok()
    }

    /// The payload of the next event (`next` / legacy `data`).
    pub async fn next_event(&mut self) -> Value {
        let message = self.next_message().await;
        let expected = if self.legacy { "data" } else { "next" };
        assert_eq!(message["type"], expected, "{message}");
        message["payload"].clone()
    }
}

/// Publishes newer and newer reports from `device` until `subscription` sees an event:
/// a subscription has no "ready" signal, so the first reports may precede it.
pub async fn report_until_seen(
    device: &TestDevice,
    subscription: &mut Subscription,
    status: &str,
    lock: &str,
) -> Value {
    let deadline = tokio::time::Instant::now() + PATIENCE;
    while tokio::time::Instant::now() < deadline {
        device.report(chrono::Utc::now(), status, lock).await;
        if let Some(message) = subscription.try_next(Duration::from_millis(400)).await {
            // Earlier reports may still be on their way; let them land so the
            // caller's next event is its own.
            while subscription
                .try_next(Duration::from_millis(300))
                .await
                .is_some()
            {}
            return message;
        }
    }
    panic!("no event reached the subscriber");
}

/// A `voltgate serve` child process (for tests that restart servers or run
/// replicas side by side); killed on drop.
pub struct ServerProcess {
    child: std::process::Child,
    pub addr: SocketAddr,
}

impl Drop for ServerProcess {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl ServerProcess {
    /// Starts `voltgate serve` on a free HTTP port with `env` added; MQTT, Redis
    /// and the rest come from `env` (the test's own environment is not inherited
    /// for `REDIS_URL` unless `env` sets it).
    pub fn start(env: &[(&str, String)]) -> Self {
        let addr = std::net::TcpListener::bind("127.0.0.1:0")
            .and_then(|l| l.local_addr())
            .expect("a free port");
        let mut command = std::process::Command::new(env!("CARGO_BIN_EXE_voltgate"));
        command
            .arg("serve")
            .env("VOLTGATE_HTTP_ADDR", addr.to_string())
            .env_remove("REDIS_URL")
            .env("RUST_LOG", "warn")
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::inherit());
        for (name, value) in env {
            command.env(name, value);
        }
        let child = command.spawn().expect("the voltgate binary starts");
        Self { child, addr }
    }

    /// Waits until `/readyz` says `ready` (or says otherwise, for `false`).
    pub async fn wait_ready(&self, http: &reqwest::Client, ready: bool) {
        let deadline = tokio::time::Instant::now() + PATIENCE * 3;
        while tokio::time::Instant::now() < deadline {
            let is_ready = http
                .get(format!("http://{}/readyz", self.addr))
                .send()
                .await
                .is_ok_and(|r| r.status().is_success());
            if is_ready == ready {
                return;
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        panic!("the server on {} never became ready={ready}", self.addr);
    }

    /// One sample of a metric of this process (0 when absent).
    pub async fn metric(&self, http: &reqwest::Client, series: &str) -> f64 {
        let text = http
            .get(format!("http://{}/metrics", self.addr))
            .send()
            .await
            .expect("metrics")
            .text()
            .await
            .expect("text");
        metric_value(&text, series)
    }

    /// Stops the server the way an orchestrator does (SIGTERM): it leaves MQTT cleanly.
    pub fn terminate(mut self) {
        let _ = std::process::Command::new("kill")
            .args(["-TERM", &self.child.id().to_string()])
            .status();
        let _ = self.child.wait();
    }
}
