//! Hostile devices and strangers on MQTT: credentials, topic rights, oversize
//! payloads and clocks from the future. Each test replays an attack.

use std::net::TcpListener;
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use rumqttc::{Packet, QoS, SubscribeReasonCode};
use serde_json::json;

use crate::helpers::{
    PATIENCE, SeededBay, Services, TestApp, TestDevice, fresh_database_url, global_id,
    report_until_seen, seed_database, spawn_app, topic_root,
};

const DROPPED: &str = "voltgate_mqtt_messages_dropped_total";
const REFUSED: &str = "voltgate_mqtt_gate_refused_total";
const BAY_STATE: &str =
    "query($id: ID!) { station(id: $id) { bays { lockState device { status } } } }";

/// The embedded broker's gate is what these tests attack; Mosquitto's own
/// enforcement is tested with generated files below.
fn embedded_only(test: &str) -> bool {
    if Services::from_env().mqtt.is_some() {
        eprintln!("{test}: tests the embedded broker's gate; MQTT_URL is set, not run");
        return false;
    }
    true
}

fn login(bay: &SeededBay) -> Option<(String, String)> {
    bay.secrets
        .as_ref()
        .map(|s| (s.username.clone(), s.password.clone()))
}

#[tokio::test]
async fn anonymous_and_wrong_logins_are_refused_by_the_embedded_broker() {
    if !embedded_only("anonymous_and_wrong_logins_are_refused") {
        return;
    }
    let app = spawn_app().await;
    let bays = app.seed(1, 1, 1).await;
    let before = app
        .metric(&format!("{REFUSED}{{reason=\"anonymous\"}}"))
        .await;

    // The attack: an anonymous client subscribing to `#` to read every retained state.
    let anonymous = TestDevice::connect_as(&app.broker, &bays[0], None).await;
    let error = anonymous.err().expect("an anonymous client is refused");
    assert!(error.contains("NotAuthorized"), "{error}");

    let (username, _) = login(&bays[0]).expect("seeded with credentials");
    let wrong =
        TestDevice::connect_as(&app.broker, &bays[0], Some((username, "guess".into()))).await;
    let error = wrong.err().expect("a wrong password is refused");
    assert!(error.contains("BadUserNamePassword"), "{error}");

    let after = app
        .metric(&format!("{REFUSED}{{reason=\"anonymous\"}}"))
        .await;
    assert!(after >= before + 1.0, "anonymous: {before} -> {after}");
}

#[tokio::test]
async fn a_device_cannot_subscribe_beyond_its_own_commands() {
    if !embedded_only("a_device_cannot_subscribe_beyond_its_own_commands") {
        return;
    }
    let app = spawn_app().await;
    let bays = app.seed(1, 1, 1).await;
    let device = app.device(&bays[0]).await;

    // Its own command topic is fine.
    let own = format!("{}/bays/{}/cmd", bays[0].prefix, bays[0].number);
    device
        .client
        .subscribe(own, QoS::AtLeastOnce)
        .await
        .expect("queued");
    let ack = device.next_incoming(PATIENCE).await;
    assert!(
        matches!(&ack, Some(Ok(Packet::SubAck(ack))) if ack.return_codes.iter().all(|c| matches!(c, SubscribeReasonCode::Success(_)))),
        "{ack:?}"
    );

    // The attack: reading every device's traffic.
    device
        .client
        .subscribe("#", QoS::AtLeastOnce)
        .await
        .expect("queued");
    let error = device.wait_disconnected().await;
    assert!(!error.is_empty());
    assert!(
        app.metric(&format!("{REFUSED}{{reason=\"subscribe_filter\"}}"))
            .await
            >= 1.0,
        "the refusal is counted"
    );
}

#[tokio::test]
async fn a_device_cannot_speak_for_another_bay_or_send_commands() {
    if !embedded_only("a_device_cannot_speak_for_another_bay_or_send_commands") {
        return;
    }
    let app = spawn_app().await;
    let bays = app.seed(1, 1, 2).await;
    let now = chrono::Utc::now().to_rfc3339();

    // The attack: bay 1's device reports for bay 2 (with bay 2's MAC, which passes
    // the MAC check), and then tries to unlock bay 2.
    let intruder = app.device(&bays[0]).await;
    let other_state = format!("{}/bays/{}/state", bays[1].prefix, bays[1].number);
    intruder
        .publish(
            &other_state,
            json!({ "v": 1, "ts": now, "mac": bays[1].mac, "status": "error", "lock": "unlocked" })
                .to_string()
                .into_bytes(),
        )
        .await;
    intruder.wait_disconnected().await;

    let intruder = app.device(&bays[0]).await;
    let other_cmd = format!("{}/bays/{}/cmd", bays[1].prefix, bays[1].number);
    intruder
        .publish(
            &other_cmd,
            json!({ "v": 1, "ts": now, "command_id": uuid::Uuid::new_v4(), "action": "unlock", "params": {} })
                .to_string()
                .into_bytes(),
        )
        .await;
    intruder.wait_disconnected().await;

    let intruder = app.device(&bays[0]).await;
    let own_cmd = format!("{}/bays/{}/cmd", bays[0].prefix, bays[0].number);
    intruder.publish(&own_cmd, b"{}".to_vec()).await;
    intruder.wait_disconnected().await;

    assert!(
        app.metric(&format!("{REFUSED}{{reason=\"publish_topic\"}}"))
            .await
            >= 3.0,
        "each refusal is counted"
    );
    // Bay 2 is untouched: its device never spoke.
    let body = app
        .graphql(
            BAY_STATE,
            json!({ "id": global_id("Station", bays[1].station_id) }),
        )
        .await;
    assert_eq!(
        body["data"]["station"]["bays"][1]["device"]["status"], "PROVISIONED",
        "{body}"
    );
    assert_eq!(
        body["data"]["station"]["bays"][1]["lockState"], "LOCKED",
        "{body}"
    );
}

#[tokio::test]
async fn a_last_will_on_another_bay_is_refused() {
    if !embedded_only("a_last_will_on_another_bay_is_refused") {
        return;
    }
    let app = spawn_app().await;
    let bays = app.seed(1, 1, 2).await;
    let (username, password) = login(&bays[0]).expect("credentials");
    let mut options = rumqttc::MqttOptions::new("will", app.broker.0.clone(), app.broker.1);
    options
        .set_credentials(username, password)
        .set_last_will(rumqttc::LastWill::new(
            format!("{}/bays/{}/state", bays[1].prefix, bays[1].number),
            b"{}".to_vec(),
            QoS::AtLeastOnce,
            true,
        ));
    let (_client, mut eventloop) = rumqttc::AsyncClient::new(options, 8);
    let answer = tokio::time::timeout(PATIENCE, eventloop.poll())
        .await
        .expect("an answer in time");
    let error = answer.err().map(|e| e.to_string()).unwrap_or_default();
    assert!(error.contains("NotAuthorized"), "{error}");
}

#[tokio::test]
async fn rotated_and_revoked_credentials_stop_working() {
    if !embedded_only("rotated_and_revoked_credentials_stop_working") {
        return;
    }
    let app = spawn_app().await;
    let bays = app.seed(1, 1, 1).await;
    let staff = app.staff("keeper").await;
    let old = login(&bays[0]).expect("credentials");
    let device_id = device_of(&app.db, &bays[0]).await;

    let connected = app.device(&bays[0]).await;
    let rotated = rotate(&app, &staff, device_id).await;
    let payload = &rotated["data"]["issueDeviceCredentials"];
    assert_eq!(payload["username"], old.0.as_str(), "{rotated}");
    let new_password = payload["password"].as_str().expect("a password").to_owned();
    let command_key = payload["commandKey"].as_str().expect("a key");
    assert_eq!(command_key.len(), 64, "{rotated}");
    assert_ne!(
        Some(command_key),
        bays[0].secrets.as_ref().map(|s| s.command_key.as_str()),
        "rotation changes the command key"
    );

    // A device connected with the old credentials is cut off by the rotation.
    connected.wait_disconnected().await;
    let error = TestDevice::connect_as(&app.broker, &bays[0], Some(old.clone()))
        .await
        .err()
        .expect("the old password no longer works");
    assert!(error.contains("BadUserNamePassword"), "{error}");
    let fresh = Some((old.0.clone(), new_password.clone()));
    assert!(
        TestDevice::connect_as(&app.broker, &bays[0], fresh.clone())
            .await
            .is_ok()
    );

    let revoked = app
        .graphql_as(
            &staff,
            "mutation($id: ID!) { revokeDeviceCredentials(input: { deviceId: $id }) { device { id } } }",
            json!({ "id": global_id("Device", device_id) }),
        )
        .await;
    assert!(revoked["errors"].is_null(), "{revoked}");
    connected.wait_disconnected().await;
    let error = TestDevice::connect_as(&app.broker, &bays[0], fresh)
        .await
        .err()
        .expect("revoked credentials no longer work");
    assert!(error.contains("BadUserNamePassword"), "{error}");

    let missing = app
        .graphql_as(
            &staff,
            "mutation($id: ID!) { revokeDeviceCredentials(input: { deviceId: $id }) { device { id } } }",
            json!({ "id": global_id("Device", 9999) }),
        )
        .await;
    assert_eq!(
        missing["errors"][0]["extensions"]["code"], "NOT_FOUND",
        "{missing}"
    );
}

#[tokio::test]
async fn a_twenty_kilobyte_publish_is_counted_and_later_reports_still_arrive() {
    let app = spawn_app().await;
    let bays = app.seed(1, 1, 1).await;
    let device = app.device(&bays[0]).await;
    let label = format!("{DROPPED}{{reason=\"payload_too_large\"}}");
    let before = app.metric(&label).await;

    // The attack: one 20 KB publish on a bay topic.
    let poison = json!({
        "v": 1, "ts": chrono::Utc::now().to_rfc3339(), "mac": bays[0].mac,
        "status": "idle", "pad": "x".repeat(20 * 1024),
    });
    device
        .publish(&device.state_topic(), poison.to_string().into_bytes())
        .await;

    let mut subscription = app.watch_bay(&bays[0]).await;
    for status in ["charging", "idle", "error"] {
        let event = report_until_seen(&device, &mut subscription, status, "locked").await;
        assert_eq!(
            event["payload"]["data"]["bayStatusChanged"]["deviceStatus"],
            status.to_ascii_uppercase(),
            "{event}"
        );
    }
    let after = app.metric(&label).await;
    assert!(
        after >= before + 1.0,
        "payload_too_large: {before} -> {after}"
    );
    let ready = app
        .http
        .get(app.url("/readyz"))
        .send()
        .await
        .expect("answers");
    assert!(
        ready.status().is_success(),
        "the server's MQTT connection survived"
    );
}

#[tokio::test]
async fn a_report_from_the_future_is_refused_and_does_not_freeze_the_bay() {
    let app = spawn_app().await;
    let bays = app.seed(1, 1, 1).await;
    let device = app.device(&bays[0]).await;
    let label = format!("{DROPPED}{{reason=\"clock_skew\"}}");
    let before = app.metric(&label).await;

    // The attack: one report with the right MAC, stamped 2099.
    let future: chrono::DateTime<chrono::Utc> = "2099-01-01T00:00:00Z".parse().expect("a date");
    device.report(future, "charging", "unlocked").await;

    let mut subscription = app.watch_bay(&bays[0]).await;
    let event = report_until_seen(&device, &mut subscription, "idle", "locked").await;
    assert_eq!(
        event["payload"]["data"]["bayStatusChanged"]["deviceStatus"], "IDLE",
        "{event}"
    );
    let after = app.metric(&label).await;
    assert!(after >= before + 1.0, "clock_skew: {before} -> {after}");

    // A bay frozen before the bound existed (a 2099 order already stored) is
    // overtaken by the next valid report.
    {
        use sea_orm::{ColumnTrait, EntityTrait, QueryFilter, sea_query::Expr};
        use voltgate::entities::device;
        device::Entity::update_many()
            .col_expr(
                device::Column::StateOrderUs,
                Expr::value(future.timestamp_micros()),
            )
            .col_expr(device::Column::StateSeq, Expr::value(i64::MAX))
            .filter(device::Column::BayId.eq(bays[0].bay_id))
            .exec(&app.db)
            .await
            .expect("frozen");
    }
    let event = report_until_seen(&device, &mut subscription, "charging", "locked").await;
    assert_eq!(
        event["payload"]["data"]["bayStatusChanged"]["deviceStatus"], "CHARGING",
        "{event}"
    );
}

#[tokio::test]
async fn a_sensor_reading_from_the_future_is_dropped_at_decoding_and_the_next_one_stored() {
    use sea_orm::{EntityTrait, PaginatorTrait};
    use voltgate::entities::sensor_reading;

    let app = spawn_app().await;
    let bays = app.seed(1, 1, 1).await;
    let device = app.device(&bays[0]).await;
    let label = format!("{DROPPED}{{reason=\"clock_skew\"}}");
    let before = app.metric(&label).await;
    let topic = format!(
        "{}/bays/{}/sensors/temperature",
        bays[0].prefix, bays[0].number
    );
    let reading = |ts: &str, value: f64| {
        json!({ "v": 1, "ts": ts, "value": value, "unit": "C" })
            .to_string()
            .into_bytes()
    };

    // Stamped 2099, then a valid reading on the same bay: the bay's messages
    // are handled in order, so once the second is stored the first was seen.
    device
        .publish(&topic, reading("2099-01-01T00:00:00Z", 90.0))
        .await;
    device
        .publish(&topic, reading(&chrono::Utc::now().to_rfc3339(), 21.5))
        .await;
    let deadline = tokio::time::Instant::now() + PATIENCE;
    loop {
        let stored = sensor_reading::Entity::find()
            .all(&app.db)
            .await
            .expect("readings");
        let dropped = app.metric(&label).await;
        if !stored.is_empty() && dropped >= before + 1.0 {
            assert_eq!(stored.len(), 1, "only the valid reading is stored");
            assert!((stored[0].value - 21.5).abs() < f64::EPSILON, "{stored:?}");
            break;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "stored {stored:?}, clock_skew {before} -> {dropped}"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert_eq!(
        sensor_reading::Entity::find()
            .count(&app.db)
            .await
            .expect("count"),
        1
    );
}

/// A Mosquitto process of the test's own, on a free port, killed when dropped.
pub struct Mosquitto {
    child: Child,
    pub port: u16,
}

impl Drop for Mosquitto {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Mosquitto {
    /// Asks Mosquitto to reload its configuration and files (SIGHUP).
    pub fn reload(&self) {
        let status = Command::new("kill")
            .args(["-HUP", &self.child.id().to_string()])
            .status()
            .expect("kill runs");
        assert!(status.success());
    }

    /// Whether the `mosquitto` binary is installed; says so when it is not.
    pub fn available(test: &str) -> bool {
        let found = Command::new("mosquitto")
            .arg("-h")
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status()
            .is_ok();
        if !found {
            eprintln!("{test}: the mosquitto binary is not installed; not run");
        }
        found
    }

    pub fn free_port() -> u16 {
        TcpListener::bind("127.0.0.1:0")
            .and_then(|l| l.local_addr())
            .expect("a free port")
            .port()
    }

    /// Starts `mosquitto -c conf` and waits until it accepts connections on `port`.
    pub async fn start(conf: &std::path::Path, port: u16) -> Self {
        let child = Command::new("mosquitto")
            .arg("-c")
            .arg(conf)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("mosquitto starts");
        // Owned at once, so it is killed and reaped on every path, panics included.
        let mosquitto = Self { child, port };
        let deadline = tokio::time::Instant::now() + PATIENCE;
        while tokio::time::Instant::now() < deadline {
            if tokio::net::TcpStream::connect(("127.0.0.1", port))
                .await
                .is_ok()
            {
                return mosquitto;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        panic!("mosquitto did not listen on {port}");
    }

    /// A plain Mosquitto (anonymous allowed) for tests about the server's client.
    pub async fn plain(dir: &std::path::Path, port: u16) -> Self {
        std::fs::create_dir_all(dir).expect("directory");
        let conf = dir.join("plain.conf");
        std::fs::write(
            &conf,
            format!(
                "listener {port} 127.0.0.1\nallow_anonymous true\npersistence false\nuser root\n"
            ),
        )
        .expect("config written");
        Self::start(&conf, port).await
    }
}

/// A server-side client: MQTT 5, the shared subscription, a message channel.
async fn server_client(
    port: u16,
    login: (&str, &str),
    filter: &str,
) -> (
    rumqttc::v5::AsyncClient,
    tokio::sync::mpsc::UnboundedReceiver<(String, Vec<u8>)>,
) {
    use rumqttc::v5::mqttbytes::v5::Packet as P5;
    use rumqttc::v5::{Event as E5, MqttOptions as O5};
    let mut options = O5::new(
        format!("srv-{}", uuid::Uuid::new_v4().simple()),
        "127.0.0.1",
        port,
    );
    options.set_credentials(login.0, login.1);
    let (client, mut eventloop) = rumqttc::v5::AsyncClient::new(options, 64);
    let (tx, rx) = tokio::sync::mpsc::unbounded_channel();
    let (subscribed_tx, subscribed) = tokio::sync::oneshot::channel();
    let subscriber = client.clone();
    let filter = filter.to_owned();
    tokio::spawn(async move {
        let mut subscribed_tx = Some(subscribed_tx);
        loop {
            match eventloop.poll().await {
                Ok(E5::Incoming(P5::ConnAck(_))) => {
                    let _ = subscriber
                        .subscribe(filter.clone(), rumqttc::v5::mqttbytes::QoS::AtLeastOnce)
                        .await;
                }
                Ok(E5::Incoming(P5::SubAck(_))) => {
                    if let Some(tx) = subscribed_tx.take() {
                        let _ = tx.send(());
                    }
                }
                Ok(E5::Incoming(P5::Publish(publish))) => {
                    let topic = String::from_utf8_lossy(&publish.topic).into_owned();
                    if tx.send((topic, publish.payload.to_vec())).is_err() {
                        return;
                    }
                }
                Ok(_) => {}
                Err(_) => tokio::time::sleep(Duration::from_millis(100)).await,
            }
        }
    });
    tokio::time::timeout(PATIENCE, subscribed)
        .await
        .expect("the server client subscribes")
        .expect("subscribed");
    (client, rx)
}

/// The next message the server client receives.
async fn next_message(
    rx: &mut tokio::sync::mpsc::UnboundedReceiver<(String, Vec<u8>)>,
) -> (String, Vec<u8>) {
    tokio::time::timeout(PATIENCE, rx.recv())
        .await
        .expect("a message in time")
        .expect("the client runs")
}

/// The id of the device installed on `bay`.
async fn device_of(db: &sea_orm::DatabaseConnection, bay: &SeededBay) -> i32 {
    use sea_orm::{ColumnTrait, EntityTrait, QueryFilter};
    voltgate::entities::device::Entity::find()
        .filter(voltgate::entities::device::Column::BayId.eq(bay.bay_id))
        .one(db)
        .await
        .expect("query")
        .expect("device")
        .id
}

/// Issues `device_id` new credentials as `staff`; the mutation's answer.
async fn rotate(app: &TestApp, staff: &str, device_id: i32) -> serde_json::Value {
    app.graphql_as(
        staff,
        "mutation($id: ID!) { issueDeviceCredentials(input: { deviceId: $id }) { username password commandKey device { id } } }",
        json!({ "id": global_id("Device", device_id) }),
    )
    .await
}

/// Subscribes `device` to its own command topic, once acknowledged; the topic.
async fn subscribe_to_commands(device: &TestDevice, bay: &SeededBay) -> String {
    let own_cmd = format!("{}/bays/{}/cmd", bay.prefix, bay.number);
    device
        .client
        .subscribe(own_cmd.clone(), QoS::AtLeastOnce)
        .await
        .expect("queued");
    next_packet(device, |p| matches!(p, Packet::SubAck(_))).await;
    own_cmd
}

/// The next packet from the broker that `wanted` accepts.
async fn next_packet(device: &TestDevice, wanted: impl Fn(&Packet) -> bool) -> Packet {
    loop {
        match device.next_incoming(PATIENCE).await {
            Some(Ok(packet)) if wanted(&packet) => return packet,
            Some(Ok(_)) => {}
            other => panic!("not the expected packet: {other:?}"),
        }
    }
}

/// Runs `voltgate mqtt mosquitto-auth`: Mosquitto's files for the database's
/// devices, with `voltgate` / `server-s3cret` as the server's login.
fn write_mosquitto_auth(dir: &std::path::Path, port: u16, root: &str, database_url: &str) {
    let output = Command::new(env!("CARGO_BIN_EXE_voltgate"))
        .args(["mqtt", "mosquitto-auth", "--dir"])
        .arg(dir)
        .args([
            "--listen",
            &format!("127.0.0.1:{port}"),
            "--mqtt-topic-root",
            root,
        ])
        .env("DATABASE_URL", database_url)
        .env("MQTT_URL", "mqtt://voltgate:server-s3cret@127.0.0.1:1883")
        .env("RUST_LOG", "warn")
        .output()
        .expect("the command runs");
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
}

#[tokio::test]
async fn mosquitto_enforces_the_generated_password_and_acl_files() {
    if !Mosquitto::available("mosquitto_enforces_the_generated_password_and_acl_files") {
        return;
    }
    let database_url = fresh_database_url().await;
    let db = sea_orm::Database::connect(&database_url)
        .await
        .expect("database");
    voltgate::db::migrate(&db).await.expect("migrations");
    let root = topic_root();
    let bays = seed_database(&db, &root, 1, 1, 2).await;

    let port = Mosquitto::free_port();
    let dir = std::env::temp_dir().join(format!(
        "voltgate-mosquitto-{}",
        uuid::Uuid::new_v4().simple()
    ));
    write_mosquitto_auth(&dir, port, &root, &database_url);
    let passwd = std::fs::read_to_string(dir.join("passwd")).expect("password file");
    assert!(!passwd.contains("server-s3cret"), "only hashes are written");
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt as _;
        let mode = std::fs::metadata(dir.join("passwd"))
            .expect("file")
            .permissions()
            .mode();
        assert_eq!(mode & 0o077, 0, "the password file is private");
    }
    // Run as root, Mosquitto drops to the `mosquitto` user, which cannot read the
    // private files of the test's user; `user root` keeps it as it is (and is
    // ignored when not root). Deployments make the files the broker user's own.
    let conf = dir.join("mosquitto.conf");
    let mut text = std::fs::read_to_string(&conf).expect("configuration");
    text.push_str("user root\n");
    std::fs::write(&conf, text).expect("configuration");
    let mosquitto = Mosquitto::start(&conf, port).await;
    let broker = ("127.0.0.1".to_owned(), mosquitto.port);

    // Strangers: anonymous and wrong passwords are refused by Mosquitto itself.
    let error = TestDevice::connect_as(&broker, &bays[0], None)
        .await
        .err()
        .expect("anonymous refused");
    assert!(
        error.contains("NotAuthorized") || error.contains("BadUserNamePassword"),
        "{error}"
    );
    let (username, _) = login(&bays[0]).expect("credentials");
    let error = TestDevice::connect_as(&broker, &bays[0], Some((username, "guess".into())))
        .await
        .err()
        .expect("a wrong password is refused");
    assert!(
        error.contains("NotAuthorized") || error.contains("BadUserNamePassword"),
        "{error}"
    );

    // The server reads everything through its shared subscription.
    let (server, mut received) = server_client(
        mosquitto.port,
        ("voltgate", "server-s3cret"),
        &format!("$share/voltgate/{root}/#"),
    )
    .await;

    // Device 1 speaks for device 2, sends a command, then its own report: only
    // its own report reaches the server (in order, so the others were dropped).
    let device = TestDevice::connect(&broker, &bays[0]).await;
    let now = chrono::Utc::now();
    device
        .publish(
            &format!("{}/bays/{}/state", bays[1].prefix, bays[1].number),
            b"{\"forged\":1}".to_vec(),
        )
        .await;
    device
        .publish(
            &format!("{}/bays/{}/cmd", bays[1].prefix, bays[1].number),
            b"{\"forged\":2}".to_vec(),
        )
        .await;
    device.report(now, "idle", "locked").await;
    let (topic, payload) = next_message(&mut received).await;
    assert_eq!(
        topic,
        device.state_topic(),
        "{}",
        String::from_utf8_lossy(&payload)
    );

    // A device reads its own commands only. Mosquitto grants a subscription to
    // `#` but delivers through it only what the ACL lets the device read: device 1
    // never sees device 2's command, sent before its own.
    device
        .client
        .subscribe("#", QoS::AtLeastOnce)
        .await
        .expect("queued");
    let other = TestDevice::connect(&broker, &bays[1]).await;
    for (subscriber, bay) in [(&device, &bays[0]), (&other, &bays[1])] {
        subscriber
            .client
            .subscribe(
                format!("{}/bays/{}/cmd", bay.prefix, bay.number),
                QoS::AtLeastOnce,
            )
            .await
            .expect("queued");
        let ack = next_packet(subscriber, |p| matches!(p, Packet::SubAck(_))).await;
        assert!(
            matches!(&ack, Packet::SubAck(ack) if matches!(ack.return_codes[..], [SubscribeReasonCode::Success(_)])),
            "{ack:?}"
        );
    }
    for bay in [&bays[1], &bays[0]] {
        server
            .publish(
                format!("{}/bays/{}/cmd", bay.prefix, bay.number),
                rumqttc::v5::mqttbytes::QoS::AtLeastOnce,
                false,
                format!("{{\"for\":{}}}", bay.number).into_bytes(),
            )
            .await
            .expect("queued");
    }
    for (subscriber, bay) in [(&device, &bays[0]), (&other, &bays[1])] {
        let delivered = next_packet(subscriber, |p| matches!(p, Packet::Publish(_))).await;
        let Packet::Publish(delivered) = delivered else {
            unreachable!()
        };
        assert_eq!(
            delivered.topic,
            format!("{}/bays/{}/cmd", bay.prefix, bay.number),
            "{}",
            String::from_utf8_lossy(&delivered.payload)
        );
    }

    // Revoking device 2, regenerating the files and reloading Mosquitto cuts it
    // off, while device 1 stays.
    let device_id = device_of(&db, &bays[1]).await;
    voltgate::devices::credentials::revoke(&db, device_id)
        .await
        .map_err(|e| e.message())
        .expect("revoked");
    write_mosquitto_auth(&dir, port, &root, &database_url);
    mosquitto.reload();
    other.wait_disconnected().await;
    let error = TestDevice::connect_as(&broker, &bays[1], login(&bays[1]))
        .await
        .err()
        .expect("revoked credentials are refused");
    assert!(
        error.contains("NotAuthorized") || error.contains("BadUserNamePassword"),
        "{error}"
    );
    device
        .report(chrono::Utc::now(), "charging", "locked")
        .await;
    // The server also reads back the commands it sent above; the report follows them.
    loop {
        let (topic, _) = next_message(&mut received).await;
        if topic == device.state_topic() {
            break;
        }
        assert!(topic.ends_with("/cmd"), "unexpected {topic}");
    }
    let _ = std::fs::remove_dir_all(&dir);
}

#[tokio::test]
async fn commands_reach_their_device_signed_and_forgeries_are_refused() {
    use voltgate::mqtt::command_auth::{CommandKey, CommandVerifier, Refusal};
    use voltgate::mqtt::payload::{self, CommandAction};

    let app = spawn_app().await;
    let bays = app.seed(1, 1, 2).await;
    let device = app.device(&bays[0]).await;
    let own_cmd = subscribe_to_commands(&device, &bays[0]).await;

    let mqtt = app.mqtt.as_ref().expect("MQTT is on");
    let sent = mqtt
        .send_command(
            &bays[0].prefix,
            bays[0].number,
            CommandAction::Unlock,
            serde_json::Map::new(),
        )
        .await
        .expect("a device with credentials gets commands");
    let Packet::Publish(publish) = next_packet(&device, |p| matches!(p, Packet::Publish(_))).await
    else {
        unreachable!()
    };
    assert_eq!(publish.topic, own_cmd);
    let command = payload::decode_command(&publish.payload, payload::DEFAULT_MAX_PAYLOAD_BYTES)
        .expect("a valid command");
    assert_eq!(command.command_id, sent);

    // The device's side, as the simulator runs it.
    let key = bays[0]
        .secrets
        .as_ref()
        .map(|s| s.command_key.as_str())
        .and_then(CommandKey::from_hex);
    let mut verifier = CommandVerifier::new(key.expect("a command key"));
    let now = chrono::Utc::now();
    assert_eq!(verifier.accept(&command, now), Ok(()));
    assert_eq!(verifier.accept(&command, now), Err(Refusal::Replayed));
    let mut forged = command.clone();
    forged.command_id = uuid::Uuid::new_v4();
    forged.action = CommandAction::StartCharge;
    assert_eq!(verifier.accept(&forged, now), Err(Refusal::BadSignature));
    let later = now + chrono::TimeDelta::seconds(120);
    let mut fresh = CommandVerifier::new(
        CommandKey::from_hex(&bays[0].secrets.as_ref().expect("secrets").command_key).expect("key"),
    );
    assert_eq!(fresh.accept(&command, later), Err(Refusal::Expired));

    // Another device's key does not verify it.
    let other = bays[1]
        .secrets
        .as_ref()
        .map(|s| s.command_key.as_str())
        .and_then(CommandKey::from_hex);
    let mut stranger = CommandVerifier::new(other.expect("a command key"));
    assert_eq!(stranger.accept(&command, now), Err(Refusal::BadSignature));
}

#[tokio::test]
async fn a_command_after_a_rotation_is_signed_with_the_new_key_only() {
    use voltgate::mqtt::command_auth::{CommandKey, CommandVerifier, Refusal};
    use voltgate::mqtt::payload;

    if !embedded_only("a_command_after_a_rotation_is_signed_with_the_new_key_only") {
        return;
    }
    let app = spawn_app().await;
    let bays = app.seed(1, 1, 1).await;
    let staff = app.staff("keeper").await;
    let old_key = bays[0]
        .secrets
        .as_ref()
        .and_then(|s| CommandKey::from_hex(&s.command_key))
        .expect("a command key");
    // A first command, so the server has its command secret in hand before the rotation.
    let send = |action: &'static str| {
        app.graphql_as(
            &staff,
            "mutation($bay: ID!, $action: ManualDeviceAction!) { sendDeviceCommand(input: { bayId: $bay, action: $action }) { command { commandId } } }",
            json!({ "bay": global_id("Bay", bays[0].bay_id), "action": action }),
        )
    };
    let first = send("LOCK").await;
    assert!(first["errors"].is_null(), "{first}");

    let device_id = device_of(&app.db, &bays[0]).await;
    let rotated = rotate(&app, &staff, device_id).await;
    let payload = &rotated["data"]["issueDeviceCredentials"];
    let login = (
        payload["username"].as_str().expect("a username").to_owned(),
        payload["password"].as_str().expect("a password").to_owned(),
    );
    let new_key = payload["commandKey"]
        .as_str()
        .and_then(CommandKey::from_hex)
        .expect("a new command key");

    let device = TestDevice::connect_as(&app.broker, &bays[0], Some(login))
        .await
        .expect("the new credentials work");
    let own_cmd = subscribe_to_commands(&device, &bays[0]).await;

    let sent = send("UNLOCK").await;
    let sent_id = sent["data"]["sendDeviceCommand"]["command"]["commandId"]
        .as_str()
        .unwrap_or_else(|| panic!("a command id: {sent}"))
        .to_owned();
    let command = loop {
        let Packet::Publish(publish) =
            next_packet(&device, |p| matches!(p, Packet::Publish(_))).await
        else {
            unreachable!()
        };
        assert_eq!(publish.topic, own_cmd);
        let command = payload::decode_command(&publish.payload, payload::DEFAULT_MAX_PAYLOAD_BYTES)
            .expect("a valid command");
        // The first command may still be redelivered to the device's new session.
        if command.command_id.to_string() == sent_id {
            break command;
        }
    };
    let now = chrono::Utc::now();
    assert_eq!(
        CommandVerifier::new(new_key).accept(&command, now),
        Ok(()),
        "signed with the rotated key"
    );
    assert_eq!(
        CommandVerifier::new(old_key).accept(&command, now),
        Err(Refusal::BadSignature),
        "the key before the rotation signs nothing any more"
    );
}
