//! Bad device input: counted by reason, dropped, and ingestion carries on.

use serde_json::json;

use crate::helpers::{Services, global_id, report_until_seen, spawn_app};

const DROPPED: &str = "voltgate_mqtt_messages_dropped_total";

#[tokio::test]
async fn malformed_and_foreign_messages_are_counted_dropped_and_ingestion_goes_on() {
    let app = spawn_app().await;
    let bays = app.seed(1, 1, 2).await;
    let device = app.device(&bays[0]).await;
    let topic = device.state_topic();
    // Behind the embedded broker's gate a device cannot publish outside its own
    // bay's topics at all (`device_security.rs`), so unknown bays and topics reach
    // the server only through a broker that lets them through.
    let foreign_topics_reach_us = Services::from_env().mqtt.is_some();
    let mut reasons = vec![
        "malformed_json",
        "unsupported_version",
        "invalid_payload",
        "mac_mismatch",
    ];
    if foreign_topics_reach_us {
        reasons.extend(["unknown_bay", "unknown_topic"]);
    }
    let mut before = Vec::new();
    for reason in &reasons {
        before.push(
            app.metric(&format!("{DROPPED}{{reason=\"{reason}\"}}"))
                .await,
        );
    }

    let now = chrono::Utc::now().to_rfc3339();
    device.publish(&topic, b"{not json".to_vec()).await;
    device
        .publish(
            &topic,
            json!({ "v": 9, "ts": now, "mac": bays[0].mac, "status": "idle" })
                .to_string()
                .into_bytes(),
        )
        .await;
    device
        .publish(
            &topic,
            json!({ "v": 1, "ts": now, "mac": bays[0].mac, "status": "sleeping" })
                .to_string()
                .into_bytes(),
        )
        .await;
    // The MAC of bay 2's device, on bay 1's topic.
    device
        .publish(
            &topic,
            json!({ "v": 1, "ts": now, "mac": bays[1].mac, "status": "idle", "lock": "unlocked" })
                .to_string()
                .into_bytes(),
        )
        .await;
    if foreign_topics_reach_us {
        let unknown_bay = format!("{}/bays/99/state", bays[0].prefix);
        device
            .publish(
                &unknown_bay,
                json!({ "v": 1, "ts": now, "mac": bays[0].mac, "status": "idle" })
                    .to_string()
                    .into_bytes(),
            )
            .await;
        device
            .publish(
                &format!("{}/bays/1/firmware", bays[0].prefix),
                b"{}".to_vec(),
            )
            .await;
    }

    // A good message after the bad ones is still applied and streamed.
    let mut subscription = app.watch_bay(&bays[0]).await;
    let event = report_until_seen(&device, &mut subscription, "idle", "locked").await;
    assert_eq!(
        event["payload"]["data"]["bayStatusChanged"]["deviceStatus"], "IDLE",
        "{event}"
    );

    for (reason, before) in reasons.iter().zip(before) {
        let after = app
            .metric(&format!("{DROPPED}{{reason=\"{reason}\"}}"))
            .await;
        assert!(after >= before + 1.0, "{reason}: {before} -> {after}");
    }
    // The foreign device did not change bay 1: its lock is still the one reported by its own device.
    let body = app
        .graphql(
            "query($id: ID!) { station(id: $id) { bays { lockState } } }",
            json!({ "id": global_id("Station", 1) }),
        )
        .await;
    assert_eq!(
        body["data"]["station"]["bays"][0]["lockState"], "LOCKED",
        "{body}"
    );
    let health = app
        .http
        .get(app.url("/healthz"))
        .send()
        .await
        .expect("alive");
    assert!(health.status().is_success());
}

#[tokio::test]
async fn command_acknowledgements_are_recorded_idempotently() {
    use sea_orm::EntityTrait;
    use voltgate::entities::device;

    let app = spawn_app().await;
    let bays = app.seed(1, 1, 1).await;
    let device_client = app.device(&bays[0]).await;
    let ack_topic = format!("{}/bays/{}/ack", bays[0].prefix, bays[0].number);
    let command_id = uuid::Uuid::new_v4();
    let ack = |status: &str| {
        json!({ "v": 1, "ts": chrono::Utc::now().to_rfc3339(), "command_id": command_id, "action": "unlock", "status": status, "message": null })
            .to_string()
            .into_bytes()
    };
    device_client.publish(&ack_topic, ack("done")).await;
    // A late "accepted" for the same command must not undo "done".
    device_client.publish(&ack_topic, ack("accepted")).await;

    let deadline = tokio::time::Instant::now() + crate::helpers::PATIENCE;
    loop {
        let stored = device::Entity::find()
            .one(&app.db)
            .await
            .expect("query")
            .expect("a device");
        if stored.last_command_id.as_deref() == Some(command_id.to_string().as_str()) {
            // Give the late ack time to be (not) applied.
            tokio::time::sleep(std::time::Duration::from_millis(300)).await;
            let stored = device::Entity::find()
                .one(&app.db)
                .await
                .expect("query")
                .expect("a device");
            assert_eq!(stored.last_command_status.as_deref(), Some("done"));
            assert_eq!(stored.last_command_action.as_deref(), Some("unlock"));
            break;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "the ack was never recorded"
        );
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }

    // A late acknowledgement of an older command never replaces a newer one's.
    // One bay's messages are applied in order: once the state report published
    // after it is stored, the late acknowledgement has been handled.
    let older = json!({ "v": 1, "ts": (chrono::Utc::now() - chrono::TimeDelta::minutes(5)).to_rfc3339(),
        "command_id": uuid::Uuid::new_v4(), "action": "lock", "status": "done", "message": null });
    device_client
        .publish(&ack_topic, older.to_string().into_bytes())
        .await;
    device_client
        .report(chrono::Utc::now(), "idle", "locked")
        .await;
    let deadline = tokio::time::Instant::now() + crate::helpers::PATIENCE;
    let stored = loop {
        let stored = device::Entity::find()
            .one(&app.db)
            .await
            .expect("query")
            .expect("a device");
        if stored.status == voltgate::entities::DeviceStatus::Idle {
            break stored;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "the state report was never applied"
        );
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    };
    assert_eq!(
        stored.last_command_id.as_deref(),
        Some(command_id.to_string().as_str()),
        "an older command's late ack replaced the newer one"
    );
    assert_eq!(stored.last_command_status.as_deref(), Some("done"));
}

#[tokio::test]
async fn a_burst_across_many_bays_is_ingested_in_full() {
    let app = spawn_app().await;
    let bays = app.seed(1, 2, 8).await;
    let mut subscription = app
        .subscribe(
            "graphql-transport-ws",
            "subscription { bayStatusChanged { bay { id } lockState } }",
            json!({}),
        )
        .await;
    // Each bay's device on its own connection: a device may only speak for its bay.
    let mut devices = Vec::new();
    for bay in &bays {
        devices.push(app.device(bay).await);
    }
    // Wait until the subscription is live before the burst.
    crate::helpers::report_until_seen(&devices[0], &mut subscription, "idle", "locked").await;

    // Messages are applied in parallel by several workers but must be acknowledged
    // in arrival order; a broker that sees out-of-order acknowledgements drops the
    // connection and the burst would be cut short.
    let start = chrono::Utc::now() + chrono::TimeDelta::seconds(1);
    let rounds = 10;
    for round in 0..rounds {
        for (bay, device) in bays.iter().zip(&devices) {
            let payload = json!({
                "v": 1,
                "ts": (start + chrono::TimeDelta::milliseconds(round)).to_rfc3339_opts(chrono::SecondsFormat::Micros, true),
                "mac": bay.mac, "status": "idle", "lock": if round % 2 == 0 { "unlocked" } else { "locked" },
            });
            device
                .publish(
                    &format!("{}/bays/{}/state", bay.prefix, bay.number),
                    payload.to_string().into_bytes(),
                )
                .await;
        }
    }
    let expected = bays.len() * rounds as usize;
    for received in 0..expected {
        assert!(
            subscription
                .try_next(std::time::Duration::from_secs(10))
                .await
                .is_some(),
            "only {received} of {expected} state changes arrived"
        );
    }
    let ready = app
        .http
        .get(app.url("/readyz"))
        .send()
        .await
        .expect("answers");
    assert_eq!(ready.status(), 200);
}
