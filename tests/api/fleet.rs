//! Fleet supervision: the device inventory (staff manage it, technicians read
//! their stations' devices), the MAC check on device messages, and devices
//! going offline when their heartbeat stops.

use std::sync::Arc;
use std::time::Duration;

use chrono::{SubsecRound as _, TimeDelta, Utc};
use sea_orm::EntityTrait as _;
use serde_json::{Value, json};
use voltgate::auth::rate_limit::RateLimiter;
use voltgate::bus::memory::MemoryBus;
use voltgate::jobs::Job as _;
use voltgate::services::ServiceContext;

use crate::client::{TestUser, keys};
use crate::helpers::{PATIENCE, Subscription, TestApp, global_id, spawn_app, spawn_app_with};

const DEVICES: &str = "query($filter: DeviceFilterInput) {
    devices(filter: $filter) { totalCount edges { node {
        id status macAddress hardwareMac slotId stationName cabinetNumber bayNumber retiredAt
    } } }
}";

const DEVICE: &str = "query($id: ID!) {
    device(id: $id) { id status macAddress hardwareMac ipAddress firmwareVersion
        expectedFirmwareVersion lastSeen lastHeardAt stationId stationName cabinetName
        cabinetNumber bayId bayNumber slotId hasCredentials retiredAt }
}";

const REGISTER: &str = "mutation($input: RegisterDeviceInput!) {
    registerDevice(input: $input) { device { id macAddress slotId status bayNumber expectedFirmwareVersion } }
}";

const UPDATE: &str = "mutation($input: UpdateDeviceInput!) {
    updateDevice(input: $input) { device { id macAddress expectedFirmwareVersion } }
}";

const RETIRE: &str = "mutation($id: ID!) {
    retireDevice(input: { deviceId: $id }) { device { id retiredAt hasCredentials status } }
}";

fn error(body: &Value) -> (&str, &str, &str) {
    let ext = &body["errors"][0]["extensions"];
    (
        ext["code"].as_str().unwrap_or("none"),
        ext["reason"].as_str().unwrap_or("none"),
        ext["field"].as_str().unwrap_or("none"),
    )
}

fn device_id(app_bay: &crate::helpers::SeededBay, devices: &Value) -> Value {
    devices["data"]["devices"]["edges"]
        .as_array()
        .into_iter()
        .flatten()
        .map(|edge| &edge["node"])
        .find(|node| node["macAddress"] == app_bay.mac)
        .map(|node| node["id"].clone())
        .unwrap_or(Value::Null)
}

/// A new bay without a device in the cabinet of `bay`.
async fn empty_bay(
    app: &TestApp,
    staff: &TestUser,
    of: &crate::helpers::SeededBay,
    number: i32,
) -> Value {
    let cabinet = voltgate::entities::bay::Entity::find_by_id(of.bay_id)
        .one(&app.db)
        .await
        .expect("query")
        .expect("the bay")
        .cabinet_id;
    let created = staff
        .gql(
            "mutation($input: CreateBayInput!) { createBay(input: $input) { bay { id } } }",
            json!({ "input": { "cabinetId": global_id("Cabinet", cabinet), "number": number } }),
        )
        .await;
    let id = created["data"]["createBay"]["bay"]["id"].clone();
    assert!(id.is_string(), "{created}");
    id
}

#[tokio::test]
async fn staff_register_edit_and_retire_devices_that_technicians_only_read() {
    let app = spawn_app().await;
    let bays = app.seed(2, 1, 1).await;
    let (here, there) = (&bays[0], &bays[1]);
    let staff = TestUser::staff(&app, "warden").await;
    let tom = TestUser::technician(&app, "tom", &[here.station_id]).await;

    let all = staff.gql(DEVICES, json!({})).await;
    assert_eq!(all["data"]["devices"]["totalCount"], 2, "{all}");
    let theirs = device_id(there, &all);
    let mine = device_id(here, &all);
    let narrowed = staff
        .gql(
            DEVICES,
            json!({ "filter": { "stationId": global_id("Station", here.station_id) } }),
        )
        .await;
    assert_eq!(narrowed["data"]["devices"]["totalCount"], 1, "{narrowed}");
    let by_mac = staff
        .gql(
            DEVICES,
            json!({ "filter": { "macContains": here.mac[9..].to_lowercase() } }),
        )
        .await;
    assert_eq!(device_id(here, &by_mac), mine, "{by_mac}");

    // The detail says where the device is installed.
    let detail = staff.gql(DEVICE, json!({ "id": mine })).await;
    let node = &detail["data"]["device"];
    assert_eq!(node["macAddress"], here.mac, "{detail}");
    assert_eq!(node["stationId"], global_id("Station", here.station_id));
    assert_eq!(node["bayId"], global_id("Bay", here.bay_id));
    assert_eq!(node["bayNumber"], here.number);
    assert_eq!(node["slotId"], here.number);
    assert_eq!(node["status"], "PROVISIONED");
    assert_eq!(node["hasCredentials"], true);
    assert!(node["stationName"].is_string() && node["cabinetName"].is_string());

    // A technician reads the devices of their stations only, and changes nothing.
    let toms = tom.gql(DEVICES, json!({})).await;
    assert_eq!(toms["data"]["devices"]["totalCount"], 1, "{toms}");
    assert_eq!(device_id(here, &toms), mine);
    let hidden = tom.gql(DEVICE, json!({ "id": theirs })).await;
    assert_eq!(hidden["data"]["device"], Value::Null, "{hidden}");
    let bay = empty_bay(&app, &staff, here, 7).await;
    let input = json!({ "input": { "bayId": bay, "macAddress": "aa-bb-cc-00-00-99", "expectedFirmwareVersion": "1.5.0" } });
    let refused = tom.gql(REGISTER, input.clone()).await;
    assert_eq!(error(&refused).0, "FORBIDDEN", "{refused}");
    let customer = TestUser::customer(&app, "carol").await;
    assert_eq!(
        error(&customer.gql(DEVICES, json!({})).await).0,
        "FORBIDDEN"
    );

    // Staff register a device on the new bay; its MAC is stored in one form.
    let registered = staff.gql(REGISTER, input.clone()).await;
    let new = &registered["data"]["registerDevice"]["device"];
    assert_eq!(new["macAddress"], "AA:BB:CC:00:00:99", "{registered}");
    assert_eq!(new["slotId"], 7);
    assert_eq!(new["bayNumber"], 7);
    assert_eq!(new["status"], "PROVISIONED");
    assert_eq!(new["expectedFirmwareVersion"], "1.5.0");
    let new_id = new["id"].clone();

    // One device per bay, one bay per MAC, and a MAC must be one.
    let again = staff.gql(REGISTER, input).await;
    assert_eq!(
        error(&again),
        ("CONFLICT", "BAY_HAS_DEVICE", "none"),
        "{again}"
    );
    let other_bay = empty_bay(&app, &staff, here, 8).await;
    let same_mac = staff
        .gql(
            REGISTER,
            json!({ "input": { "bayId": other_bay, "macAddress": "AA:BB:CC:00:00:99" } }),
        )
        .await;
    assert_eq!(
        error(&same_mac),
        ("CONFLICT", "MAC_TAKEN", "none"),
        "{same_mac}"
    );
    let taken_by_edit = staff
        .gql(
            UPDATE,
            json!({ "input": { "deviceId": mine, "macAddress": "aa:bb:cc:00:00:99" } }),
        )
        .await;
    assert_eq!(error(&taken_by_edit).1, "MAC_TAKEN", "{taken_by_edit}");
    let not_a_mac = staff
        .gql(
            REGISTER,
            json!({ "input": { "bayId": other_bay, "macAddress": "not-a-mac" } }),
        )
        .await;
    assert_eq!(
        error(&not_a_mac),
        ("BAD_USER_INPUT", "none", "macAddress"),
        "{not_a_mac}"
    );
    let still = staff.gql(DEVICES, json!({})).await;
    assert_eq!(
        still["data"]["devices"]["totalCount"], 3,
        "refusals changed nothing: {still}"
    );

    // Edits: a replacement controller's MAC, the expected firmware.
    let edited = staff
        .gql(UPDATE, json!({ "input": { "deviceId": new_id, "macAddress": "AA:BB:CC:00:01:00", "expectedFirmwareVersion": "" } }))
        .await;
    let node = &edited["data"]["updateDevice"]["device"];
    assert_eq!(node["macAddress"], "AA:BB:CC:00:01:00", "{edited}");
    assert_eq!(node["expectedFirmwareVersion"], Value::Null);

    // Retiring takes it out of service, once; its record stays.
    let retired = staff.gql(RETIRE, json!({ "id": mine })).await;
    let node = &retired["data"]["retireDevice"]["device"];
    assert!(node["retiredAt"].is_string(), "{retired}");
    assert_eq!(node["hasCredentials"], false);
    assert_eq!(node["status"], "OFFLINE");
    let twice = staff.gql(RETIRE, json!({ "id": mine })).await;
    assert_eq!(error(&twice).1, "INVALID_TRANSITION", "{twice}");
    let frozen = staff
        .gql(
            UPDATE,
            json!({ "input": { "deviceId": mine, "expectedFirmwareVersion": "2.0" } }),
        )
        .await;
    assert_eq!(error(&frozen).1, "INVALID_TRANSITION", "{frozen}");
    let in_service = staff.gql(DEVICES, json!({})).await;
    assert_eq!(
        in_service["data"]["devices"]["totalCount"], 2,
        "{in_service}"
    );
    let retired_list = staff
        .gql(DEVICES, json!({ "filter": { "retired": true } }))
        .await;
    assert_eq!(device_id(here, &retired_list), mine, "{retired_list}");
    let refused = tom.gql(RETIRE, json!({ "id": theirs })).await;
    assert_eq!(error(&refused).0, "FORBIDDEN", "{refused}");
}

/// Publishes state reports from `mac` on `bay`'s state topic until `stream`
/// delivers something; returns it.
async fn report_as_until_seen(
    device: &crate::helpers::TestDevice,
    mac: &str,
    stream: &mut Subscription,
) -> Value {
    let start = Utc::now().trunc_subsecs(6);
    for i in 0..25 {
        let payload = json!({
            "v": 1,
            "ts": (start + TimeDelta::milliseconds(i)).to_rfc3339_opts(chrono::SecondsFormat::Micros, true),
            "mac": mac, "status": "idle", "lock": "locked",
        });
        device
            .publish(&device.state_topic(), payload.to_string().into_bytes())
            .await;
        if let Some(message) = stream.try_next(Duration::from_millis(400)).await {
            return message["payload"]["data"]["alertChanged"].clone();
        }
    }
    panic!("nothing came");
}

#[tokio::test]
async fn a_message_from_another_mac_is_rejected_counted_and_raises_one_security_alert() {
    let app = spawn_app().await;
    let bay = app.seed(1, 1, 1).await.remove(0);
    let staff = TestUser::staff(&app, "warden").await;
    let mut stream = Subscription::start_with(
        app.addr,
        "graphql-transport-ws",
        json!({ "authorization": format!("Bearer {}", staff.token) }),
        "subscription { alertChanged { change alert { id kind severity status notificationCount bayId } } }",
        json!({}),
    )
    .await;
    let dropped_before = app
        .metric("voltgate_mqtt_messages_dropped_total{reason=\"mac_mismatch\"}")
        .await;
    let device = app.device(&bay).await;

    let raised = report_as_until_seen(&device, "02:00:00:00:BA:D0", &mut stream).await;
    assert_eq!(raised["change"], "RAISED", "{raised}");
    assert_eq!(raised["alert"]["kind"], "MAC_MISMATCH");
    assert_eq!(raised["alert"]["severity"], "CRITICAL");
    assert_eq!(raised["alert"]["bayId"], global_id("Bay", bay.bay_id));
    while stream.try_next(Duration::from_millis(300)).await.is_some() {}

    // Again: the open alert is refreshed, never a second one.
    let payload = json!({
        "v": 1, "ts": (Utc::now() + TimeDelta::seconds(1)).to_rfc3339(),
        "mac": "02:00:00:00:BA:D1", "status": "charging", "lock": "unlocked",
    });
    device
        .publish(&device.state_topic(), payload.to_string().into_bytes())
        .await;
    let updated = stream.next_event().await["data"]["alertChanged"].clone();
    assert_eq!(updated["change"], "UPDATED", "{updated}");
    assert_eq!(updated["alert"]["id"], raised["alert"]["id"]);
    assert!(updated["alert"]["notificationCount"].as_i64().unwrap_or(0) >= 2);

    // Nothing the impostor said was applied, and each rejection was counted.
    let all = staff.gql(DEVICES, json!({})).await;
    let node = &all["data"]["devices"]["edges"][0]["node"];
    assert_eq!(node["status"], "PROVISIONED", "{all}");
    assert_eq!(node["hardwareMac"], Value::Null);
    let open = staff
        .gql(
            "{ alerts(statuses: [NEW, ACTIVE]) { totalCount } }",
            json!({}),
        )
        .await;
    assert_eq!(open["data"]["alerts"]["totalCount"], 1, "{open}");
    let dropped = app
        .metric("voltgate_mqtt_messages_dropped_total{reason=\"mac_mismatch\"}")
        .await;
    assert!(
        dropped >= dropped_before + 2.0,
        "{dropped_before} -> {dropped}"
    );
}

/// Polls `query` as `user` until `done` holds of the answer.
async fn wait_for(user: &TestUser, query: &str, done: impl Fn(&Value) -> bool) -> Value {
    let deadline = tokio::time::Instant::now() + PATIENCE;
    loop {
        let answer = user.gql(query, json!({})).await;
        if done(&answer) {
            return answer;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "never came: {answer}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

const OFFLINE_ALERTS: &str =
    "{ alerts(statuses: [NEW, ACTIVE, RESOLVED]) { edges { node { kind status } } } }";

fn offline_alert(answer: &Value) -> Option<String> {
    answer["data"]["alerts"]["edges"]
        .as_array()?
        .iter()
        .map(|edge| &edge["node"])
        .find(|node| node["kind"] == "DEVICE_OFFLINE")
        .and_then(|node| node["status"].as_str().map(str::to_owned))
}

#[tokio::test]
async fn a_silent_device_goes_offline_after_the_heartbeat_timeout_and_back_when_it_reports() {
    let app = spawn_app_with(&["--device-heartbeat-timeout-secs", "1"]).await;
    let bay = app.seed(1, 1, 1).await.remove(0);
    let staff = TestUser::staff(&app, "warden").await;
    let device = app.device(&bay).await;
    let status = "{ devices { edges { node { status lastHeardAt } } } }";
    let status_of = |answer: &Value| {
        answer["data"]["devices"]["edges"][0]["node"]["status"]
            .as_str()
            .unwrap_or_default()
            .to_owned()
    };

    device.report(Utc::now(), "idle", "locked").await;
    let heard = wait_for(&staff, status, |a| status_of(a) == "IDLE").await;
    assert!(heard["data"]["devices"]["edges"][0]["node"]["lastHeardAt"].is_string());

    // Silence: the job marks it offline and raises the alert, once.
    wait_for(&staff, status, |a| status_of(a) == "OFFLINE").await;
    let raised = wait_for(&staff, OFFLINE_ALERTS, |a| offline_alert(a).is_some()).await;
    assert_eq!(offline_alert(&raised).as_deref(), Some("NEW"), "{raised}");

    // It speaks again: online, and the alert resolves itself.
    device
        .report(Utc::now() + TimeDelta::milliseconds(200), "idle", "locked")
        .await;
    let back = wait_for(&staff, OFFLINE_ALERTS, |a| {
        offline_alert(a).as_deref() == Some("RESOLVED")
    })
    .await;
    assert_eq!(offline_alert(&back).as_deref(), Some("RESOLVED"));
}

#[tokio::test]
async fn replicas_running_the_heartbeat_check_at_once_mark_a_silent_device_once() {
    let app = spawn_app().await;
    let bay = app.seed(1, 1, 1).await.remove(0);
    // The device was heard a minute ago and not since.
    let heard = Utc::now() - TimeDelta::minutes(1);
    voltgate::entities::device::Entity::update_many()
        .col_expr(
            voltgate::entities::device::Column::Status,
            sea_orm::sea_query::Expr::value(voltgate::entities::DeviceStatus::Idle),
        )
        .col_expr(
            voltgate::entities::device::Column::LastHeardAt,
            sea_orm::sea_query::Expr::value(heard),
        )
        .exec(&app.db)
        .await
        .expect("set up");
    let mut services = ServiceContext::new(
        app.db.clone(),
        Arc::new(MemoryBus::default()),
        Arc::new(keys()),
        Arc::new(RateLimiter::disabled()),
    );
    services.supervision.heartbeat_timeout_secs = 30;
    let replicas = 8;
    let barrier = Arc::new(tokio::sync::Barrier::new(replicas));
    let runs = (0..replicas).map(|_| {
        let (services, barrier) = (services.clone(), barrier.clone());
        tokio::spawn(async move {
            barrier.wait().await;
            voltgate::supervision::heartbeat::DetectSilentDevices
                .run(&services)
                .await
        })
    });
    for run in futures_util::future::join_all(runs).await {
        run.expect("no panic").expect("the run succeeds");
    }
    let staff = TestUser::staff(&app, "warden").await;
    let alerts = staff
        .gql(
            "{ alerts { totalCount edges { node { kind notificationCount } } } }",
            json!({}),
        )
        .await;
    assert_eq!(alerts["data"]["alerts"]["totalCount"], 1, "{alerts}");
    let node = &alerts["data"]["alerts"]["edges"][0]["node"];
    assert_eq!(node["kind"], "DEVICE_OFFLINE");
    assert_eq!(node["notificationCount"], 1, "marked once: {alerts}");
    let _ = bay;
}
