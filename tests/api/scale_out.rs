//! Scale-out: two server processes share PostgreSQL, Redis and the MQTT broker.
//! One MQTT message is ingested by exactly one of them, and its event reaches the
//! subscribers of both. Runs only when all three services are configured.

use std::time::Duration;

use serde_json::json;
use uuid::Uuid;

use crate::helpers::{
    ServerProcess, Services, Subscription, TestDevice, fresh_database_url, global_id, seed_database,
};

/// A replica on the shared database, Redis and MQTT broker.
fn start_replica(
    services: (&str, &str, &str),
    topic_root: &str,
    channel: &str,
    name: &str,
) -> ServerProcess {
    let (database_url, redis_url, mqtt_url) = services;
    ServerProcess::start(&[
        ("DATABASE_URL", database_url.to_owned()),
        ("REDIS_URL", redis_url.to_owned()),
        ("MQTT_URL", mqtt_url.to_owned()),
        ("VOLTGATE_MQTT_TOPIC_ROOT", topic_root.to_owned()),
        (
            "VOLTGATE_MQTT_CLIENT_ID",
            format!("voltgate-{name}-{}", Uuid::new_v4().simple()),
        ),
        ("VOLTGATE_MQTT_SESSION_EXPIRY", "5".to_owned()),
        ("VOLTGATE_BUS_CHANNEL", channel.to_owned()),
    ])
}

#[tokio::test]
async fn two_replicas_ingest_each_message_once_and_both_stream_it() {
    let services = Services::from_env();
    let (Some(_), Some(redis_url), Some(mqtt_url)) =
        (&services.postgres, &services.redis, &services.mqtt)
    else {
        eprintln!(
            "scale-out test needs DATABASE_URL (PostgreSQL), REDIS_URL and MQTT_URL; not run"
        );
        return;
    };
    let database_url = fresh_database_url().await;
    let topic_root = crate::helpers::topic_root();
    let channel = format!("voltgate.test.{}", Uuid::new_v4().simple());

    let db = sea_orm::Database::connect(&database_url)
        .await
        .expect("test database");
    voltgate::db::migrate(&db).await.expect("migrations");
    let bay = seed_database(&db, &topic_root, 1, 1, 1).await.remove(0);

    let replicas = [
        start_replica(
            (&database_url, redis_url, mqtt_url),
            &topic_root,
            &channel,
            "a",
        ),
        start_replica(
            (&database_url, redis_url, mqtt_url),
            &topic_root,
            &channel,
            "b",
        ),
    ];
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

    let url = url::Url::parse(mqtt_url).expect("MQTT_URL");
    let broker = (
        url.host_str().unwrap_or("127.0.0.1").to_owned(),
        url.port().unwrap_or(1883),
    );
    let device = TestDevice::connect(&broker, &bay).await;
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
