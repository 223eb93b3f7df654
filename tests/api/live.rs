//! The live slice end to end: a device publishes over MQTT, the server stores the
//! state and a GraphQL subscriber sees it.

use std::time::Duration;

use chrono::{TimeDelta, Utc};
use serde_json::json;

use crate::helpers::{PATIENCE, global_id, report_until_seen, spawn_app};

const BAY_STATUS: &str = "subscription Live($station: ID, $bay: ID) {
  bayStatusChanged(stationId: $station, bayId: $bay) { bay { id number } status lockState deviceStatus changedAt }
}";

const BAY_STATE: &str = "query Bay($id: ID!) { station(id: $id) { bays { id lockState device { status firmwareVersion lastSeen plugged } } } }";

#[tokio::test]
async fn a_device_state_message_reaches_the_station_subscriber_and_is_stored() {
    let app = spawn_app().await;
    let bays = app.seed(2, 1, 2).await;
    let bay = &bays[1];
    let station = global_id("Station", bay.station_id);
    let mut subscription = app
        .subscribe(
            "graphql-transport-ws",
            BAY_STATUS,
            json!({ "station": station }),
        )
        .await;
    let device = app.device(bay).await;

    let event = report_until_seen(&device, &mut subscription, "charging", "unlocked").await;
    let change = &event["payload"]["data"]["bayStatusChanged"];
    assert_eq!(change["bay"]["id"], global_id("Bay", bay.bay_id), "{event}");
    assert_eq!(change["bay"]["number"], 2);
    assert_eq!(change["lockState"], "UNLOCKED");
    assert_eq!(change["deviceStatus"], "CHARGING");
    assert_eq!(change["status"], "AVAILABLE");
    assert!(
        change["changedAt"]
            .as_str()
            .is_some_and(|t| t.ends_with('Z')),
        "{change}"
    );

    let stored = app.graphql(BAY_STATE, json!({ "id": station })).await;
    let stored_bay = &stored["data"]["station"]["bays"][1];
    assert_eq!(stored_bay["lockState"], "UNLOCKED", "{stored}");
    assert_eq!(stored_bay["device"]["status"], "CHARGING");
    assert_eq!(stored_bay["device"]["firmwareVersion"], "1.4.2");
    assert_eq!(stored_bay["device"]["plugged"], true);
    assert!(stored_bay["device"]["lastSeen"].is_string());
}

#[tokio::test]
async fn a_subscribe_message_longer_than_the_read_buffer_arrives_whole() {
    let app = spawn_app().await;
    let bays = app.seed(1, 1, 1).await;
    let bay = &bays[0];
    let station = global_id("Station", bay.station_id);
    // A comment makes the document a few times the connection's read buffer.
    let padded = format!("# {}\n{BAY_STATUS}", "x".repeat(3000));
    let mut subscription = app
        .subscribe(
            "graphql-transport-ws",
            &padded,
            json!({ "station": station }),
        )
        .await;
    let device = app.device(bay).await;
    let event = report_until_seen(&device, &mut subscription, "charging", "unlocked").await;
    assert_eq!(
        event["payload"]["data"]["bayStatusChanged"]["lockState"], "UNLOCKED",
        "{event}"
    );
}

#[tokio::test]
async fn subscribers_only_receive_their_station_or_bay() {
    let app = spawn_app().await;
    let bays = app.seed(2, 1, 2).await;
    let (first, other_station_bay) = (&bays[0], &bays[2]);
    let mut other_station = app
        .subscribe(
            "graphql-transport-ws",
            BAY_STATUS,
            json!({ "station": global_id("Station", 2) }),
        )
        .await;
    let mut other_bay = app
        .subscribe(
            "graphql-transport-ws",
            BAY_STATUS,
            json!({ "bay": global_id("Bay", bays[1].bay_id) }),
        )
        .await;
    let mut everything = app
        .subscribe("graphql-transport-ws", BAY_STATUS, json!({}))
        .await;

    let device = app.device(first).await;
    report_until_seen(&device, &mut everything, "idle", "locked").await;
    assert!(
        other_station
            .try_next(Duration::from_millis(300))
            .await
            .is_none(),
        "station 2 saw station 1's bay"
    );
    assert!(
        other_bay
            .try_next(Duration::from_millis(100))
            .await
            .is_none(),
        "bay 2 saw bay 1"
    );

    let device = app.device(other_station_bay).await;
    let event = report_until_seen(&device, &mut other_station, "idle", "blocked").await;
    assert_eq!(
        event["payload"]["data"]["bayStatusChanged"]["lockState"], "BLOCKED",
        "{event}"
    );
}

#[tokio::test]
async fn the_legacy_graphql_ws_protocol_streams_too() {
    let app = spawn_app().await;
    let bays = app.seed(1, 1, 1).await;
    let mut subscription = app
        .subscribe(
            "graphql-ws",
            BAY_STATUS,
            json!({ "bay": global_id("Bay", bays[0].bay_id) }),
        )
        .await;
    let device = app.device(&bays[0]).await;
    let event = report_until_seen(&device, &mut subscription, "error", "blocked").await;
    assert_eq!(event["type"], "data", "{event}");
    assert_eq!(
        event["payload"]["data"]["bayStatusChanged"]["deviceStatus"],
        "ERROR"
    );
}

#[tokio::test]
async fn a_late_state_message_never_overwrites_a_newer_one() {
    let app = spawn_app().await;
    let bays = app.seed(1, 1, 1).await;
    let station = global_id("Station", bays[0].station_id);
    let mut subscription = app
        .subscribe(
            "graphql-transport-ws",
            BAY_STATUS,
            json!({ "station": station }),
        )
        .await;
    let device = app.device(&bays[0]).await;
    report_until_seen(&device, &mut subscription, "idle", "locked").await;

    // A newer report, then one stamped earlier (as if delivered late by another replica).
    let now = Utc::now() + TimeDelta::seconds(5);
    device.report(now, "charging", "unlocked").await;
    device
        .report(now - TimeDelta::seconds(2), "idle", "blocked")
        .await;
    // And a QoS 1 redelivery of the newer one.
    device.report(now, "charging", "unlocked").await;

    let event = subscription.next_event().await;
    assert_eq!(
        event["data"]["bayStatusChanged"]["lockState"], "UNLOCKED",
        "{event}"
    );
    assert!(
        subscription
            .try_next(Duration::from_millis(500))
            .await
            .is_none(),
        "stale reports must not emit events"
    );
    let stored = app.graphql(BAY_STATE, json!({ "id": station })).await;
    assert_eq!(
        stored["data"]["station"]["bays"][0]["lockState"], "UNLOCKED",
        "{stored}"
    );
    assert_eq!(
        stored["data"]["station"]["bays"][0]["device"]["status"],
        "CHARGING"
    );
}

#[tokio::test]
async fn a_last_will_marks_the_device_offline_despite_its_old_timestamp() {
    let app = spawn_app().await;
    let bays = app.seed(1, 1, 1).await;
    let station = global_id("Station", bays[0].station_id);
    let mut subscription = app
        .subscribe(
            "graphql-transport-ws",
            BAY_STATUS,
            json!({ "station": station }),
        )
        .await;
    let device = app.device(&bays[0]).await;
    let connected_at = Utc::now() - TimeDelta::seconds(60);
    report_until_seen(&device, &mut subscription, "charging", "locked").await;

    // The will was composed when the device connected, so its ts is older than its last state.
    let will =
        json!({ "v": 1, "ts": connected_at.to_rfc3339(), "mac": bays[0].mac, "status": "offline" });
    device
        .publish(&device.state_topic(), will.to_string().into_bytes())
        .await;
    let event = tokio::time::timeout(PATIENCE, subscription.next_event())
        .await
        .expect("offline event");
    assert_eq!(
        event["data"]["bayStatusChanged"]["deviceStatus"], "OFFLINE",
        "{event}"
    );
}

#[tokio::test]
async fn subscribing_to_an_unknown_station_is_not_found() {
    let app = spawn_app().await;
    let mut subscription = app
        .subscribe(
            "graphql-transport-ws",
            BAY_STATUS,
            json!({ "station": global_id("Station", 42) }),
        )
        .await;
    // Resolver errors arrive as a `next` carrying `errors`, then the stream completes.
    let message = subscription.next_message().await;
    assert_eq!(
        message["payload"]["errors"][0]["extensions"]["code"], "NOT_FOUND",
        "{message}"
    );
    assert_eq!(subscription.next_message().await["type"], "complete");
}

#[tokio::test]
async fn invalid_subscriptions_get_a_code_over_the_websocket_too() {
    let app = spawn_app().await;
    let mut subscription = app
        .subscribe(
            "graphql-transport-ws",
            "subscription { bayStatusChanged { noSuchField } }",
            json!({}),
        )
        .await;
    let message = subscription.next_message().await;
    assert_eq!(
        message["payload"]["errors"][0]["extensions"]["code"], "BAD_USER_INPUT",
        "{message}"
    );
}

/// Replicas racing on one bay (reports applied concurrently, in shuffled order):
/// whatever the interleaving, the device and the bay end with the newest report.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn concurrent_reports_for_one_bay_leave_the_newest_in_place() {
    use sea_orm::EntityTrait as _;
    use voltgate::devices::reports::{ClockSkew, StateOutcome, StateReport, apply_state_report};
    use voltgate::entities::{DeviceStatus, LockState, bay};

    let app = spawn_app().await;
    let seeded = app.seed(1, 1, 1).await.remove(0);
    // In the past: reports stamped ahead of the clock skew would be refused.
    let base = Utc::now() - TimeDelta::hours(1);
    for round in 0..10_i64 {
        let lock_of = |i: i64| {
            if (i + round) % 2 == 0 {
                LockState::Locked
            } else {
                LockState::Unlocked
            }
        };
        // A fixed, round-dependent shuffle of 0..60: 7 is coprime with 60.
        let order: Vec<i64> = (0..60).map(|k| (k * 7 + round * 5) % 60).collect();
        let newest = 59;
        let applied = futures_util::future::join_all(order.iter().map(|&i| {
            let (db, prefix, mac) = (app.db.clone(), seeded.prefix.clone(), seeded.mac.clone());
            let report = StateReport {
                ts: base + TimeDelta::seconds(round * 100) + TimeDelta::milliseconds(i),
                mac,
                fw: None,
                ip: None,
                status: if i == newest {
                    DeviceStatus::Charging
                } else {
                    DeviceStatus::Idle
                },
                lock: Some(lock_of(i)),
                plugged: None,
                seq: None,
            };
            let number = seeded.number;
            tokio::spawn(async move {
                apply_state_report(
                    &db,
                    &prefix,
                    number,
                    &report,
                    Utc::now(),
                    ClockSkew(TimeDelta::minutes(5)),
                )
                .await
                .expect("applied or stale, never an error")
            })
        }))
        .await
        .into_iter()
        .map(|joined| joined.expect("no panic"))
        .collect::<Vec<_>>();
        assert!(
            applied
                .iter()
                .any(|outcome| matches!(outcome, StateOutcome::Applied(..))),
            "round {round}: some report applies"
        );

        let stored_bay = bay::Entity::find_by_id(seeded.bay_id)
            .one(&app.db)
            .await
            .expect("bay query")
            .expect("bay exists");
        assert_eq!(stored_bay.lock_state, lock_of(newest), "round {round}");
        let stored = app
            .graphql(
                BAY_STATE,
                json!({ "id": global_id("Station", seeded.station_id) }),
            )
            .await;
        let device = &stored["data"]["station"]["bays"][0]["device"];
        assert_eq!(device["status"], "CHARGING", "round {round}: {stored}");
    }
}
