//! The server's MQTT connection against a Mosquitto of the test's own: a poison
//! message on a persistent session is acknowledged once and never redelivered,
//! and readiness follows the connection. The servers run as processes of their
//! own, so their metrics are theirs alone.

use std::time::Duration;

use serde_json::json;
use uuid::Uuid;

use crate::device_security::Mosquitto;
use crate::helpers::{
    PATIENCE, ServerProcess, TestDevice, fresh_database_url, seed_database, topic_root,
};

/// A server of this test on the Mosquitto at `mqtt_port`, with a persistent session.
fn start_server(database_url: &str, root: &str, client_id: &str, mqtt_port: u16) -> ServerProcess {
    ServerProcess::start(&[
        ("DATABASE_URL", database_url.to_owned()),
        ("MQTT_URL", format!("mqtt://127.0.0.1:{mqtt_port}")),
        ("VOLTGATE_MQTT_TOPIC_ROOT", root.to_owned()),
        ("VOLTGATE_MQTT_CLIENT_ID", client_id.to_owned()),
        ("VOLTGATE_MQTT_SESSION_EXPIRY", "120".to_owned()),
        (
            "VOLTGATE_BUS_CHANNEL",
            format!("voltgate.test.{}", Uuid::new_v4().simple()),
        ),
    ])
}

async fn device_status(db: &sea_orm::DatabaseConnection, bay_id: i32) -> String {
    use sea_orm::{ColumnTrait, EntityTrait, QueryFilter};
    use voltgate::entities::device;
    let found = device::Entity::find()
        .filter(device::Column::BayId.eq(bay_id))
        .one(db)
        .await
        .expect("query")
        .expect("device");
    format!("{:?}", found.status)
}

async fn wait_for_status(db: &sea_orm::DatabaseConnection, bay_id: i32, status: &str) {
    let deadline = tokio::time::Instant::now() + PATIENCE;
    while tokio::time::Instant::now() < deadline {
        if device_status(db, bay_id).await == status {
            return;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    panic!(
        "the device never reached {status}: {}",
        device_status(db, bay_id).await
    );
}

const TOO_LARGE: &str = "voltgate_mqtt_messages_dropped_total{reason=\"payload_too_large\"}";

#[tokio::test]
async fn a_poison_message_on_a_persistent_session_is_dropped_once_not_redelivered() {
    if !Mosquitto::available("a_poison_message_on_a_persistent_session_is_dropped_once") {
        return;
    }
    let dir = std::env::temp_dir().join(format!("voltgate-poison-{}", Uuid::new_v4().simple()));
    let mosquitto = Mosquitto::plain(&dir, Mosquitto::free_port()).await;
    let broker = ("127.0.0.1".to_owned(), mosquitto.port);
    let database_url = fresh_database_url().await;
    let db = sea_orm::Database::connect(&database_url)
        .await
        .expect("database");
    voltgate::db::migrate(&db).await.expect("migrations");
    let root = topic_root();
    let bay = seed_database(&db, &root, 1, 1, 1).await.remove(0);
    let client_id = format!("voltgate-poison-{}", Uuid::new_v4().simple());
    let http = reqwest::Client::new();

    // The server joins with its persistent session, then goes away.
    let server = start_server(&database_url, &root, &client_id, mosquitto.port);
    server.wait_ready(&http, true).await;
    server.terminate();

    // While it is away, the broker queues a poison message and a good report.
    let device = TestDevice::connect(&broker, &bay).await;
    let poison = json!({
        "v": 1, "ts": chrono::Utc::now().to_rfc3339(), "mac": bay.mac,
        "status": "error", "pad": "x".repeat(20 * 1024),
    });
    device
        .publish(&device.state_topic(), poison.to_string().into_bytes())
        .await;
    device
        .report(chrono::Utc::now(), "charging", "locked")
        .await;

    // Back with the same session: both are delivered; the poison is counted and
    // acknowledged, the report after it applied.
    let server = start_server(&database_url, &root, &client_id, mosquitto.port);
    server.wait_ready(&http, true).await;
    wait_for_status(&db, bay.bay_id, "Charging").await;
    assert_eq!(server.metric(&http, TOO_LARGE).await, 1.0);
    server.terminate();

    // Once more: nothing is redelivered. A fresh report, delivered after anything
    // queued before it, marks the point by which a redelivery would have come.
    let server = start_server(&database_url, &root, &client_id, mosquitto.port);
    server.wait_ready(&http, true).await;
    device.report(chrono::Utc::now(), "idle", "locked").await;
    wait_for_status(&db, bay.bay_id, "Idle").await;
    assert_eq!(
        server.metric(&http, TOO_LARGE).await,
        0.0,
        "the poison message came back"
    );
    let _ = std::fs::remove_dir_all(&dir);
}

#[tokio::test]
async fn readiness_and_the_connected_gauge_follow_the_broker_connection() {
    if !Mosquitto::available("readiness_and_the_connected_gauge_follow_the_broker_connection") {
        return;
    }
    let dir = std::env::temp_dir().join(format!("voltgate-ready-{}", Uuid::new_v4().simple()));
    let port = Mosquitto::free_port();
    let mosquitto = Mosquitto::plain(&dir, port).await;
    let database_url = fresh_database_url().await;
    let root = topic_root();
    let http = reqwest::Client::new();
    let server = start_server(
        &database_url,
        &root,
        &format!("voltgate-ready-{}", Uuid::new_v4().simple()),
        port,
    );
    server.wait_ready(&http, true).await;
    assert_eq!(server.metric(&http, "voltgate_mqtt_connected").await, 1.0);

    drop(mosquitto);
    server.wait_ready(&http, false).await;
    assert_eq!(server.metric(&http, "voltgate_mqtt_connected").await, 0.0);

    let _mosquitto = Mosquitto::plain(&dir, port).await;
    server.wait_ready(&http, true).await;
    assert_eq!(server.metric(&http, "voltgate_mqtt_connected").await, 1.0);
    let _ = std::fs::remove_dir_all(&dir);
}
