//! Supervision: sensor readings raise alerts, a repeated condition updates the
//! open alert, technicians see and act on their stations' alerts only, live
//! and over HTTP.

use std::time::Duration;

use chrono::{SubsecRound as _, TimeDelta, Utc};
use serde_json::{Value, json};

use crate::client::TestUser;
use crate::helpers::{SeededBay, Subscription, TestApp, TestDevice, global_id, spawn_app};

const ALERTS: &str = "subscription($s: [ID!], $min: AlertSeverity) {
    alertChanged(stationIds: $s, minSeverity: $min) {
        cursor change alert { id kind severity status notificationCount stationId }
    }
}";

const LIST: &str = "query($s: ID) {
    alerts(stationId: $s) { totalCount edges { node { id kind status notificationCount resolutionNote } } }
}";

async fn alert_stream(app: &TestApp, user: &TestUser, variables: Value) -> Subscription {
    Subscription::start_with(
        app.addr,
        "graphql-transport-ws",
        json!({ "authorization": format!("Bearer {}", user.token) }),
        ALERTS,
        variables,
    )
    .await
}

/// Publishes a sensor reading of `kind` from `bay`'s device.
async fn read(
    device: &TestDevice,
    bay: &SeededBay,
    kind: &str,
    value: f64,
    at: chrono::DateTime<Utc>,
) {
    let payload = json!({
        "v": 1,
        "ts": at.to_rfc3339_opts(chrono::SecondsFormat::Micros, true),
        "value": value,
        "unit": if kind == "temperature" { "C" } else { "" },
    });
    device
        .publish(
            &format!("{}/bays/{}/sensors/{kind}", bay.prefix, bay.number),
            payload.to_string().into_bytes(),
        )
        .await;
}

/// The next alert change on `stream`.
async fn next_change(stream: &mut Subscription) -> Value {
    stream.next_event().await["data"]["alertChanged"].clone()
}

#[tokio::test]
async fn a_hot_bay_raises_one_alert_its_technician_follows_and_resolves() {
    let app = spawn_app().await;
    let mut bays = app.seed(2, 1, 1).await;
    let (here, there) = (bays.remove(0), bays.remove(0));
    let tom = TestUser::technician(&app, "tom", &[here.station_id]).await;
    let staff = TestUser::staff(&app, "warden").await;
    let mut toms_alerts = alert_stream(&app, &tom, json!({})).await;
    let mut all_alerts = alert_stream(&app, &staff, json!({})).await;
    let device = app.device(&here).await;
    let other_device = app.device(&there).await;

    // Subscriptions have no ready signal: repeat the first reading until seen.
    let start = Utc::now().trunc_subsecs(6);
    let mut raised = None;
    for i in 0..25 {
        read(
            &device,
            &here,
            "temperature",
            71.0,
            start + TimeDelta::milliseconds(i),
        )
        .await;
        if let Some(message) = toms_alerts.try_next(Duration::from_millis(400)).await {
            raised = Some(message["payload"]["data"]["alertChanged"].clone());
            break;
        }
    }
    let raised = raised.expect("the technician sees the alert raised");
    assert_eq!(raised["change"], "RAISED", "{raised}");
    assert_eq!(raised["alert"]["kind"], "OVER_TEMPERATURE");
    assert_eq!(raised["alert"]["severity"], "HIGH");
    assert_eq!(
        raised["alert"]["stationId"],
        global_id("Station", here.station_id)
    );
    // Readings sent before the subscription was live updated it since.
    while toms_alerts
        .try_next(Duration::from_millis(300))
        .await
        .is_some()
    {}
    while all_alerts
        .try_next(Duration::from_millis(300))
        .await
        .is_some()
    {}

    // The condition again: the same alert, seen once more and now active.
    let later = Utc::now().trunc_subsecs(6) + TimeDelta::seconds(1);
    read(&device, &here, "temperature", 74.0, later).await;
    let updated = next_change(&mut toms_alerts).await;
    assert_eq!(updated["change"], "UPDATED");
    assert_eq!(
        updated["alert"]["id"], raised["alert"]["id"],
        "no second alert"
    );
    assert_eq!(updated["alert"]["status"], "ACTIVE");
    let seen = updated["alert"]["notificationCount"]
        .as_i64()
        .unwrap_or_default();
    assert!(seen >= 2, "{updated}");
    next_change(&mut all_alerts).await;

    // A redelivery of that reading (same device time) counts for nothing.
    read(&device, &here, "temperature", 74.0, later).await;

    // Another station's alert reaches staff, never Tom.
    read(&other_device, &there, "smoke", 1.0, later).await;
    let smoke = next_change(&mut all_alerts).await;
    assert_eq!(smoke["alert"]["kind"], "SMOKE");
    assert_eq!(smoke["alert"]["severity"], "CRITICAL");
    assert!(
        toms_alerts
            .try_next(Duration::from_millis(700))
            .await
            .is_none(),
        "a technician hears nothing of stations not theirs"
    );
    let toms_list = tom.gql(LIST, json!({})).await;
    assert_eq!(toms_list["data"]["alerts"]["totalCount"], 1, "{toms_list}");
    let node = &toms_list["data"]["alerts"]["edges"][0]["node"];
    assert_eq!(
        node["notificationCount"].as_i64(),
        Some(seen),
        "the redelivery was not counted"
    );
    let elsewhere = tom
        .gql(LIST, json!({ "s": global_id("Station", there.station_id) }))
        .await;
    assert_eq!(elsewhere["data"]["alerts"]["totalCount"], 0, "{elsewhere}");
    let everything = staff.gql(LIST, json!({})).await;
    assert_eq!(
        everything["data"]["alerts"]["totalCount"], 2,
        "{everything}"
    );

    // Tom takes it in charge, then resolves it.
    let id = raised["alert"]["id"].clone();
    let taken = tom
        .gql(
            "mutation($id: ID!) { acknowledgeAlert(id: $id) { status acknowledgedById assignedTechnicianId } }",
            json!({ "id": id }),
        )
        .await;
    assert_eq!(
        taken["data"]["acknowledgeAlert"]["status"], "IN_PROGRESS",
        "{taken}"
    );
    assert_eq!(
        taken["data"]["acknowledgeAlert"]["assignedTechnicianId"],
        taken["data"]["acknowledgeAlert"]["acknowledgedById"]
    );
    assert_eq!(
        next_change(&mut toms_alerts).await["change"],
        "ACKNOWLEDGED"
    );
    let resolve = "mutation($id: ID!) { resolveAlert(id: $id, note: \"fan replaced\") { status resolutionNote } }";
    let resolved = tom.gql(resolve, json!({ "id": id })).await;
    assert_eq!(
        resolved["data"]["resolveAlert"]["status"], "RESOLVED",
        "{resolved}"
    );
    assert_eq!(next_change(&mut toms_alerts).await["change"], "RESOLVED");
    let again = tom.gql(resolve, json!({ "id": id })).await;
    assert_eq!(
        again["errors"][0]["extensions"]["reason"], "INVALID_TRANSITION",
        "{again}"
    );

    // Tom cannot touch the other station's alert, nor close alerts.
    let smoke_id = smoke["alert"]["id"].clone();
    let not_his = tom
        .gql(
            "mutation($id: ID!) { acknowledgeAlert(id: $id) { status } }",
            json!({ "id": smoke_id }),
        )
        .await;
    assert_eq!(
        not_his["errors"][0]["extensions"]["code"], "NOT_FOUND",
        "{not_his}"
    );
    let close = "mutation($id: ID!) { closeAlert(id: $id) { status } }";
    let refused = tom.gql(close, json!({ "id": id })).await;
    assert_eq!(
        refused["errors"][0]["extensions"]["code"], "FORBIDDEN",
        "{refused}"
    );
    let closed = staff.gql(close, json!({ "id": id })).await;
    assert_eq!(closed["data"]["closeAlert"]["status"], "CLOSED", "{closed}");

    // The condition coming back opens a new alert.
    read(
        &device,
        &here,
        "temperature",
        90.0,
        later + TimeDelta::seconds(1),
    )
    .await;
    let reopened = next_change(&mut toms_alerts).await;
    // The close above was announced first.
    let reopened = if reopened["change"] == "CLOSED" {
        next_change(&mut toms_alerts).await
    } else {
        reopened
    };
    assert_eq!(reopened["change"], "RAISED", "{reopened}");
    assert_ne!(reopened["alert"]["id"], id);
    assert_eq!(reopened["alert"]["severity"], "CRITICAL");
}

#[tokio::test]
async fn a_temperature_back_to_normal_resolves_its_alert_by_itself() {
    let app = spawn_app().await;
    let bay = app.seed(1, 1, 1).await.remove(0);
    let staff = TestUser::staff(&app, "warden").await;
    let mut stream = alert_stream(&app, &staff, json!({ "min": "HIGH" })).await;
    let device = app.device(&bay).await;
    let start = Utc::now().trunc_subsecs(6);
    let mut first = None;
    for i in 0..25 {
        read(
            &device,
            &bay,
            "temperature",
            66.0,
            start + TimeDelta::milliseconds(i),
        )
        .await;
        if let Some(message) = stream.try_next(Duration::from_millis(400)).await {
            first = Some(message);
            break;
        }
    }
    assert!(first.is_some(), "the alert was raised");
    while stream.try_next(Duration::from_millis(300)).await.is_some() {}

    // Within the hysteresis band: nothing; below it: resolved.
    let later = start + TimeDelta::seconds(1);
    read(&device, &bay, "temperature", 58.0, later).await;
    read(
        &device,
        &bay,
        "temperature",
        40.0,
        later + TimeDelta::milliseconds(1),
    )
    .await;
    let ended = next_change(&mut stream).await;
    assert_eq!(ended["change"], "RESOLVED", "{ended}");
    assert_eq!(ended["alert"]["status"], "RESOLVED");
}

#[tokio::test]
async fn one_condition_seen_at_once_by_many_writers_leaves_one_open_alert() {
    use voltgate::entities::{AlertKind, AlertSeverity};
    use voltgate::supervision::alerts::{Condition, raise};

    let app = spawn_app().await;
    let bay = app.seed(1, 1, 1).await.remove(0);
    let condition = Condition {
        kind: AlertKind::DeviceOffline,
        severity: AlertSeverity::High,
        message: "offline".into(),
        station_id: bay.station_id,
        bay_id: Some(bay.bay_id),
        device_id: None,
        reading_id: None,
        session_id: None,
    };
    // As many writers as replicas and workers could be: each on its own
    // connection where the database has several (PostgreSQL).
    let writers = 24;
    let barrier = std::sync::Arc::new(tokio::sync::Barrier::new(writers));
    let mut tasks = Vec::new();
    for _ in 0..writers {
        let (db, condition, barrier) = (app.db.clone(), condition.clone(), barrier.clone());
        tasks.push(tokio::spawn(async move {
            barrier.wait().await;
            raise(&db, &condition, Utc::now())
                .await
                .map(|(alert, _)| alert.id)
        }));
    }
    let mut ids = std::collections::HashSet::new();
    for task in tasks {
        ids.insert(task.await.expect("no panic").expect("raised"));
    }
    assert_eq!(ids.len(), 1, "one alert for one condition: {ids:?}");
    let staff = TestUser::staff(&app, "warden").await;
    let list = staff.gql(LIST, json!({})).await;
    assert_eq!(list["data"]["alerts"]["totalCount"], 1, "{list}");
    assert_eq!(
        list["data"]["alerts"]["edges"][0]["node"]["notificationCount"].as_i64(),
        Some(writers as i64),
        "every sighting counted"
    );
}

#[tokio::test]
async fn a_device_going_offline_raises_an_alert_that_its_return_resolves() {
    let app = spawn_app().await;
    let bay = app.seed(1, 1, 1).await.remove(0);
    let staff = TestUser::staff(&app, "warden").await;
    let mut stream = alert_stream(&app, &staff, json!({})).await;
    let device = app.device(&bay).await;
    let start = Utc::now().trunc_subsecs(6);
    let mut offline = None;
    for i in 0..25 {
        device
            .report(start + TimeDelta::milliseconds(i), "offline", "locked")
            .await;
        if let Some(message) = stream.try_next(Duration::from_millis(400)).await {
            offline = Some(message["payload"]["data"]["alertChanged"].clone());
            break;
        }
    }
    let offline = offline.expect("an offline alert");
    assert_eq!(offline["alert"]["kind"], "DEVICE_OFFLINE", "{offline}");
    while stream.try_next(Duration::from_millis(300)).await.is_some() {}

    device
        .report(Utc::now() + TimeDelta::seconds(2), "idle", "locked")
        .await;
    let back = next_change(&mut stream).await;
    assert_eq!(back["change"], "RESOLVED", "{back}");
    assert_eq!(back["alert"]["kind"], "DEVICE_OFFLINE");
}

#[tokio::test]
async fn alerts_are_for_staff_and_technicians_only() {
    let app = spawn_app().await;
    let customer = TestUser::customer(&app, "carol").await;
    let anonymous = app.graphql(LIST, json!({})).await;
    assert_eq!(
        anonymous["errors"][0]["extensions"]["code"], "UNAUTHENTICATED",
        "{anonymous}"
    );
    let refused = customer.gql(LIST, json!({})).await;
    assert_eq!(
        refused["errors"][0]["extensions"]["code"], "FORBIDDEN",
        "{refused}"
    );
    let mut stream = Subscription::start_with(
        app.addr,
        "graphql-transport-ws",
        json!({ "authorization": format!("Bearer {}", customer.token) }),
        ALERTS,
        json!({}),
    )
    .await;
    let answer = stream.next_event().await;
    assert_eq!(
        answer["errors"][0]["extensions"]["code"], "FORBIDDEN",
        "{answer}"
    );
}
