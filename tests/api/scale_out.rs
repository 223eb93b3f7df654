//! Scale-out: two server processes share PostgreSQL, Redis and the MQTT broker.
//! One MQTT message is ingested by exactly one of them, and its event reaches the
//! subscribers of both. Runs only when all three services are configured.

use std::time::Duration;

use serde_json::json;
use uuid::Uuid;

use crate::helpers::{
    PATIENCE, ServerProcess, Services, Subscription, TestDevice, fresh_database_url, global_id,
    report_until_seen, seed_database,
};

/// What replicas share: a fresh PostgreSQL database seeded with one station,
/// Redis, the MQTT broker, a topic root and a bus channel of their own.
struct Cluster {
    database_url: String,
    redis_url: String,
    mqtt_url: String,
    topic_root: String,
    channel: String,
    bays: Vec<crate::helpers::SeededBay>,
}

impl Cluster {
    /// Seeds `bays` bays in one cabinet; `None` (and a note) unless PostgreSQL,
    /// Redis and MQTT are all configured.
    async fn start(test: &str, bays: u32) -> Option<Self> {
        let services = Services::from_env();
        let (Some(_), Some(redis_url), Some(mqtt_url)) =
            (services.postgres, services.redis, services.mqtt)
        else {
            eprintln!("{test} needs DATABASE_URL (PostgreSQL), REDIS_URL and MQTT_URL; not run");
            return None;
        };
        let database_url = fresh_database_url().await;
        let topic_root = crate::helpers::topic_root();
        let db = sea_orm::Database::connect(&database_url)
            .await
            .expect("test database");
        voltgate::db::migrate(&db).await.expect("migrations");
        let bays = seed_database(&db, &topic_root, 1, 1, bays).await;
        Some(Self {
            database_url,
            redis_url,
            mqtt_url,
            topic_root,
            channel: format!("voltgate.test.{}", Uuid::new_v4().simple()),
            bays,
        })
    }

    /// A replica with a client id of its own, named after `name`.
    fn replica(&self, name: &str) -> ServerProcess {
        self.replica_as(&format!("voltgate-{name}-{}", Uuid::new_v4().simple()), 0)
    }

    /// A replica with the MQTT client id `client_id`, announced gone
    /// `takeover_delay_secs` after its connection drops.
    fn replica_as(&self, client_id: &str, takeover_delay_secs: u32) -> ServerProcess {
        ServerProcess::start(&[
            ("DATABASE_URL", self.database_url.clone()),
            ("REDIS_URL", self.redis_url.clone()),
            ("MQTT_URL", self.mqtt_url.clone()),
            ("VOLTGATE_MQTT_TOPIC_ROOT", self.topic_root.clone()),
            ("VOLTGATE_MQTT_CLIENT_ID", client_id.to_owned()),
            ("VOLTGATE_MQTT_SESSION_EXPIRY", "30".to_owned()),
            (
                "VOLTGATE_MQTT_TAKEOVER_DELAY",
                takeover_delay_secs.to_string(),
            ),
            ("VOLTGATE_BUS_CHANNEL", self.channel.clone()),
        ])
    }

    fn broker(&self) -> (String, u16) {
        broker_of(&self.mqtt_url)
    }
}

/// The broker of `MQTT_URL` as host and port.
fn broker_of(mqtt_url: &str) -> (String, u16) {
    let url = url::Url::parse(mqtt_url).expect("MQTT_URL");
    (
        url.host_str().unwrap_or("127.0.0.1").to_owned(),
        url.port().unwrap_or(1883),
    )
}

#[tokio::test]
async fn two_replicas_ingest_each_message_once_and_both_stream_it() {
    let Some(cluster) = Cluster::start("scale-out test", 1).await else {
        return;
    };
    let bay = &cluster.bays[0];
    let replicas = [cluster.replica("a"), cluster.replica("b")];
    let http = reqwest::Client::new();
    for replica in &replicas {
        replica.wait_ready(&http, true).await;
    }

    let query = "subscription($s: ID) { bayStatusChanged(stationId: $s) { lockState changedAt } }";
    let station = json!({ "s": global_id("Station", bay.station_id) });
    let mut subscriptions = Vec::new();
    for replica in &replicas {
        subscriptions.push(
            Subscription::start(replica.addr, "graphql-transport-ws", query, station.clone()).await,
        );
    }
    // Subscriptions have no ready signal: give both replicas a moment to register them.
    tokio::time::sleep(Duration::from_millis(500)).await;

    let device = TestDevice::connect(&cluster.broker(), bay).await;
    let messages = 10;
    // Reports carry microseconds; compare at that precision.
    let start = chrono::SubsecRound::trunc_subsecs(chrono::Utc::now(), 6);
    for i in 0..messages {
        let lock = if i % 2 == 0 { "unlocked" } else { "locked" };
        device
            .report(start + chrono::TimeDelta::milliseconds(i), "idle", lock)
            .await;
    }

    // Replicas may apply the messages in a different order than sent; a message
    // older than the stored state is dropped as stale, so fewer than `messages`
    // events may be emitted, but both replicas' subscribers see the same ones, once.
    let mut seen = Vec::new();
    for subscription in &mut subscriptions {
        let mut stamps =
            vec![subscription.next_event().await["data"]["bayStatusChanged"]["changedAt"].clone()];
        while let Some(message) = subscription.try_next(Duration::from_secs(1)).await {
            stamps.push(message["payload"]["data"]["bayStatusChanged"]["changedAt"].clone());
        }
        let unique: std::collections::HashSet<String> =
            stamps.iter().map(ToString::to_string).collect();
        assert_eq!(
            unique.len(),
            stamps.len(),
            "no event is delivered twice: {stamps:?}"
        );
        seen.push(stamps);
    }
    assert_eq!(seen[0], seen[1], "both replicas stream the same events");
    let last = chrono::DateTime::parse_from_rfc3339(
        seen[0].last().and_then(|v| v.as_str()).unwrap_or_default(),
    )
    .expect("an RFC 3339 changedAt");
    assert_eq!(
        last,
        start + chrono::TimeDelta::milliseconds(messages - 1),
        "the newest report wins"
    );

    let mut per_replica = Vec::new();
    for replica in &replicas {
        per_replica.push(
            replica
                .metric(
                    &http,
                    "voltgate_mqtt_messages_received_total{channel=\"state\"}",
                )
                .await,
        );
    }
    assert_eq!(
        per_replica.iter().sum::<f64>(),
        messages as f64,
        "each message is ingested exactly once: {per_replica:?}"
    );
    assert!(
        per_replica.iter().all(|n| *n > 0.0),
        "the broker shares the messages between replicas: {per_replica:?}"
    );
}

/// A replica killed outright leaves messages the broker had routed to its
/// session, received or not yet sent; the survivor takes the session over
/// once the dead replica's Will is published, ingests them, and ends it.
#[tokio::test]
async fn the_survivor_ingests_what_the_broker_kept_for_a_killed_replica() {
    let Some(cluster) = Cluster::start("takeover test", 16).await else {
        return;
    };
    let bays = &cluster.bays;
    let killed_id = format!("voltgate-killed-{}", Uuid::new_v4().simple());
    // Announced 2 s after its death, so the broker keeps the reports sent
    // meanwhile in its session: an immediate takeover could end the session
    // before any of them reached it, and prove nothing.
    let killed = cluster.replica_as(&killed_id, 2);
    let survivor = cluster.replica("survivor");
    let http = reqwest::Client::new();
    killed.wait_ready(&http, true).await;
    survivor.wait_ready(&http, true).await;

    let mut subscription = Subscription::start(
        survivor.addr,
        "graphql-transport-ws",
        "subscription($s: ID) { bayStatusChanged(stationId: $s) { bay { id } } }",
        json!({ "s": global_id("Station", bays[0].station_id) }),
    )
    .await;
    // Subscriptions have no ready signal: give the survivor a moment to register it.
    tokio::time::sleep(Duration::from_millis(500)).await;

    drop(killed); // SIGKILL: no DISCONNECT, the session stays with the broker.
    let broker = cluster.broker();
    let mut devices = Vec::new();
    for bay in bays {
        devices.push(TestDevice::connect(&broker, bay).await);
    }
    let now = chrono::SubsecRound::trunc_subsecs(chrono::Utc::now(), 6);
    for device in &devices {
        // Every applied state report is an event.
        device.report(now, "idle", "unlocked").await;
    }

    let mut changed = std::collections::HashSet::new();
    let deadline = tokio::time::Instant::now() + PATIENCE;
    while changed.len() < bays.len() && tokio::time::Instant::now() < deadline {
        if let Some(message) = subscription.try_next(Duration::from_millis(200)).await {
            changed.insert(message["payload"]["data"]["bayStatusChanged"]["bay"]["id"].to_string());
        }
    }
    assert_eq!(
        changed.len(),
        bays.len(),
        "every bay's report reaches the survivor's subscriber, the killed replica's share included"
    );
    let taken_over = survivor
        .metric(&http, "voltgate_mqtt_taken_over_messages_total")
        .await;
    assert!(
        taken_over >= 1.0,
        "the broker routed part of the reports to the killed replica's session: {taken_over}"
    );

    let deadline = tokio::time::Instant::now() + PATIENCE;
    while survivor
        .metric(
            &http,
            "voltgate_mqtt_session_takeovers_total{outcome=\"drained\"}",
        )
        .await
        < 1.0
    {
        assert!(
            tokio::time::Instant::now() < deadline,
            "the takeover drains the session and ends it"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    // The takeover ended the session: its client id now starts afresh.
    assert!(
        !session_present(&broker, &killed_id).await,
        "the killed replica's session was ended by the takeover"
    );
}

/// A replica stopped the way an orchestrator stops it says goodbye: its Will is
/// not published, nobody takes its session over, and the session waits for it.
#[tokio::test]
async fn a_replica_stopped_cleanly_keeps_its_session() {
    let Some(cluster) = Cluster::start("takeover test", 1).await else {
        return;
    };
    let stopped_id = format!("voltgate-stopped-{}", Uuid::new_v4().simple());
    let stopped = cluster.replica_as(&stopped_id, 0);
    let survivor = cluster.replica("survivor");
    let http = reqwest::Client::new();
    stopped.wait_ready(&http, true).await;
    survivor.wait_ready(&http, true).await;

    stopped.terminate();
    // A Will is published at once (no delay is set): a second is plenty.
    tokio::time::sleep(Duration::from_secs(1)).await;
    let takeovers = survivor
        .metric(&http, "voltgate_mqtt_session_takeovers_total")
        .await;
    assert_eq!(takeovers, 0.0, "a clean stop is not a death");
    assert!(
        session_present(&cluster.broker(), &stopped_id).await,
        "the stopped replica's session waits for its return"
    );
}

/// Whether the broker holds a session for `client_id`; the check itself ends it.
async fn session_present(broker: &(String, u16), client_id: &str) -> bool {
    resume_session(broker, client_id, 0).await.2
}

/// Connects as `client_id`, resuming its session if the broker holds one (the
/// session then expires `expiry_secs` after this connection ends); returns
/// the connection and whether a session was resumed.
async fn resume_session(
    broker: &(String, u16),
    client_id: &str,
    expiry_secs: u32,
) -> (rumqttc::v5::AsyncClient, rumqttc::v5::EventLoop, bool) {
    use rumqttc::v5::mqttbytes::v5::Packet;
    let mut options = rumqttc::v5::MqttOptions::new(client_id, broker.0.as_str(), broker.1);
    options
        .set_clean_start(false)
        .set_session_expiry_interval(Some(expiry_secs));
    let (client, mut eventloop) = rumqttc::v5::AsyncClient::new(options, 8);
    let present = tokio::time::timeout(PATIENCE, async {
        loop {
            if let rumqttc::v5::Event::Incoming(Packet::ConnAck(ack)) = eventloop
                .poll()
                .await
                .expect("the broker accepts the connection")
            {
                return ack.session_present;
            }
        }
    })
    .await
    .expect("a CONNACK");
    (client, eventloop, present)
}

/// A replica whose session another connection took over and unsubscribed (a
/// takeover that ran while the replica was away) subscribes again when it
/// reconnects, though the broker says its session is still there.
#[tokio::test]
async fn a_replica_back_from_a_takeover_subscribes_again() {
    let Some(cluster) = Cluster::start("takeover test", 1).await else {
        return;
    };
    let client_id = format!("voltgate-returning-{}", Uuid::new_v4().simple());
    let replica = cluster.replica_as(&client_id, 0);
    let http = reqwest::Client::new();
    replica.wait_ready(&http, true).await;
    let bay = &cluster.bays[0];
    let mut subscription = Subscription::start(
        replica.addr,
        "graphql-transport-ws",
        "subscription($s: ID) { bayStatusChanged(stationId: $s) { changedAt } }",
        json!({ "s": global_id("Station", bay.station_id) }),
    )
    .await;
    let device = TestDevice::connect(&cluster.broker(), bay).await;
    report_until_seen(&device, &mut subscription, "idle", "locked").await;

    // Take the session as a takeover does, but keep it for the replica's return.
    let (client, mut eventloop, _) = resume_session(&cluster.broker(), &client_id, 30).await;
    let filters = [
        format!("$share/voltgate/{}/#", cluster.topic_root),
        format!("{}/_replicas/gone", cluster.topic_root),
    ];
    for filter in &filters {
        client.try_unsubscribe(filter.clone()).expect("queued");
    }
    let mut unsubscribed = 0;
    tokio::time::timeout(PATIENCE, async {
        while unsubscribed < filters.len() {
            if let rumqttc::v5::Event::Incoming(rumqttc::v5::mqttbytes::v5::Packet::UnsubAck(_)) =
                eventloop.poll().await.expect("the connection holds")
            {
                unsubscribed += 1;
            }
        }
        client.try_disconnect().expect("queued");
        while !matches!(
            eventloop.poll().await,
            Ok(rumqttc::v5::Event::Outgoing(rumqttc::Outgoing::Disconnect)) | Err(_)
        ) {}
    })
    .await
    .expect("the session is taken and unsubscribed");

    // The replica reconnects to a session without subscriptions and must
    // subscribe again to hear its device.
    report_until_seen(&device, &mut subscription, "idle", "unlocked").await;
}
