//! Firmware policy and over-the-air updates: compliance read from the
//! versions against the global and per-device policy, `scheduleOta` sending
//! `ota_update`, the status following the device's acknowledgements and the
//! version it reports, failures kept with why, and what staff may set by hand.

use serde_json::{Value, json};

use crate::client::TestUser;
use crate::device_commands::stored_device;
use crate::helpers::{PATIENCE, SeededBay, TestApp, TestDevice, global_id, spawn_app_with};

const DEVICE: &str = "query($id: ID!) { device(id: $id) { firmwareVersion expectedFirmwareVersion effectiveExpectedFirmwareVersion firmwareUpdateRequired firmwareUpdateStatus otaTargetVersion otaUpdateUrl otaRequestedAt otaCompletedAt otaLastError } }";
const SCHEDULE: &str = "mutation($input: ScheduleOtaInput!) { scheduleOta(input: $input) { device { firmwareUpdateStatus otaTargetVersion otaUpdateUrl otaRequestedAt } command { commandId action status owner } } }";
const SET_STATUS: &str = "mutation($input: SetFirmwareUpdateStatusInput!) { setFirmwareUpdateStatus(input: $input) { device { firmwareUpdateStatus otaLastError } } }";
const URL: &str = "https://fw.example.com/esp32/2.0.0.bin";

/// A served app whose fleet is expected to run 2.0.0, one bay whose device
/// follows that policy (the seed pins its own version: cleared), its staff.
async fn fleet() -> (TestApp, SeededBay, TestUser, String) {
    let app = spawn_app_with(&["--firmware-expected-version", "2.0.0"]).await;
    let bays = app.seed(1, 1, 1).await;
    let staff = TestUser::staff(&app, "fleet").await;
    let device = global_id("Device", stored_device(&app, &bays[0]).await.id);
    let cleared = staff
        .gql(
            "mutation($id: ID!) { updateDevice(input: { deviceId: $id, expectedFirmwareVersion: \"\" }) { device { expectedFirmwareVersion effectiveExpectedFirmwareVersion } } }",
            json!({ "id": device }),
        )
        .await;
    assert_eq!(
        cleared["data"]["updateDevice"]["device"],
        json!({ "expectedFirmwareVersion": null, "effectiveExpectedFirmwareVersion": "2.0.0" }),
        "{cleared}"
    );
    let bay = bays.into_iter().next().expect("a bay");
    (app, bay, staff, device)
}

/// Publishes the device's state with firmware `fw`.
async fn report_version(device: &TestDevice, fw: &str) {
    let payload = json!({
        "v": 1, "ts": chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Micros, true),
        "mac": device.bay.mac, "fw": fw, "ip": "10.1.2.3",
        "status": "idle", "lock": "locked", "plugged": false,
    });
    device
        .publish(&device.state_topic(), payload.to_string().into_bytes())
        .await;
}

async fn ack(device: &TestDevice, command_id: &str, status: &str, message: Value) {
    let topic = format!("{}/bays/{}/ack", device.bay.prefix, device.bay.number);
    let payload = json!({ "v": 1, "ts": chrono::Utc::now().to_rfc3339(), "command_id": command_id,
        "action": "ota_update", "status": status, "message": message });
    device
        .publish(&topic, payload.to_string().into_bytes())
        .await;
}

/// Waits until the device as staff read it satisfies `done`; returns it.
async fn wait_for(staff: &TestUser, device: &str, done: impl Fn(&Value) -> bool) -> Value {
    let deadline = tokio::time::Instant::now() + PATIENCE;
    loop {
        let body = staff.gql(DEVICE, json!({ "id": device })).await;
        let found = body["data"]["device"].clone();
        if done(&found) {
            return found;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "the device never got there: {body}"
        );
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
}

async fn schedule(staff: &TestUser, device: &str, version: &str, url: &str) -> Value {
    staff
        .gql(
            SCHEDULE,
            json!({ "input": { "deviceId": device, "targetVersion": version, "url": url } }),
        )
        .await
}

#[tokio::test]
async fn a_device_follows_its_own_expected_version_else_the_fleet_policy() {
    let app = spawn_app_with(&["--firmware-expected-version", "2.0.0"]).await;
    let bays = app.seed(1, 1, 1).await;
    let staff = TestUser::staff(&app, "fleet").await;
    let device_id = global_id("Device", stored_device(&app, &bays[0]).await.id);
    let device = app.listening_device(&bays[0]).await;
    report_version(&device, "1.4.2").await;
    // The seed pins the device to the version it runs.
    let pinned = wait_for(&staff, &device_id, |d| d["firmwareVersion"] == "1.4.2").await;
    assert_eq!(pinned["expectedFirmwareVersion"], "1.4.2");
    assert_eq!(pinned["effectiveExpectedFirmwareVersion"], "1.4.2");
    assert_eq!(pinned["firmwareUpdateStatus"], "UP_TO_DATE");
    assert_eq!(pinned["firmwareUpdateRequired"], false);
    let policy = staff
        .gql(
            "{ firmwarePolicy { expectedVersion otaTimeoutMinutes } }",
            json!({}),
        )
        .await;
    assert_eq!(
        policy["data"]["firmwarePolicy"],
        json!({ "expectedVersion": "2.0.0", "otaTimeoutMinutes": 15 })
    );
}

#[tokio::test]
async fn an_update_is_scheduled_sent_followed_and_completed_by_the_reported_version() {
    let (app, bay, staff, device_id) = fleet().await;
    let device = app.listening_device(&bay).await;
    report_version(&device, "1.4.2").await;
    let old = wait_for(&staff, &device_id, |d| d["firmwareVersion"] == "1.4.2").await;
    assert_eq!(old["effectiveExpectedFirmwareVersion"], "2.0.0");
    assert_eq!(old["firmwareUpdateRequired"], true);
    assert_eq!(old["firmwareUpdateStatus"], "UPDATE_REQUIRED");

    let scheduled = schedule(&staff, &device_id, "2.0.0", URL).await;
    let payload = &scheduled["data"]["scheduleOta"];
    assert_eq!(
        payload["device"]["firmwareUpdateStatus"], "UPDATE_SCHEDULED",
        "{scheduled}"
    );
    assert_eq!(payload["device"]["otaTargetVersion"], "2.0.0");
    assert!(payload["device"]["otaRequestedAt"].is_string());
    assert_eq!(payload["command"]["action"], "ota_update");
    assert_eq!(payload["command"]["status"], "PENDING");
    let command_id = payload["command"]["commandId"]
        .as_str()
        .expect("an id")
        .to_owned();

    // One update at a time: a second one is refused while this one runs.
    let again = schedule(&staff, &device_id, "2.0.1", URL).await;
    assert_eq!(
        again["errors"][0]["extensions"]["reason"], "INVALID_TRANSITION",
        "{again}"
    );

    let sent = device.next_command().await;
    assert_eq!(sent["action"], "ota_update");
    assert_eq!(sent["command_id"], command_id.as_str());
    assert_eq!(sent["params"], json!({ "url": URL, "version": "2.0.0" }));

    ack(&device, &command_id, "accepted", Value::Null).await;
    wait_for(&staff, &device_id, |d| {
        d["firmwareUpdateStatus"] == "UPDATING"
    })
    .await;
    // Installed, but not up to date until the device runs it.
    ack(&device, &command_id, "done", Value::Null).await;
    let installed = wait_for(&staff, &device_id, |d| {
        d["firmwareUpdateStatus"] == "UPDATING" && d["otaCompletedAt"].is_null()
    })
    .await;
    assert_eq!(installed["firmwareVersion"], "1.4.2");
    report_version(&device, "2.0.0").await;
    let done = wait_for(&staff, &device_id, |d| {
        d["firmwareUpdateStatus"] == "UP_TO_DATE"
    })
    .await;
    assert!(done["otaCompletedAt"].is_string(), "{done}");
    assert_eq!(done["firmwareUpdateRequired"], false);
    assert!(done["otaLastError"].is_null());

    // A late, repeated acknowledgement changes nothing.
    ack(&device, &command_id, "failed", json!("late")).await;
    report_version(&device, "2.0.0").await;
    let after = wait_for(&staff, &device_id, |d| d["firmwareVersion"] == "2.0.0").await;
    assert_eq!(after["firmwareUpdateStatus"], "UP_TO_DATE");
}

#[tokio::test]
async fn a_failed_update_says_why_and_staff_may_only_give_up_or_reset() {
    let (app, bay, staff, device_id) = fleet().await;
    let device = app.listening_device(&bay).await;
    report_version(&device, "1.4.2").await;
    wait_for(&staff, &device_id, |d| d["firmwareVersion"] == "1.4.2").await;

    let scheduled = schedule(&staff, &device_id, "2.0.0", URL).await;
    let command_id = scheduled["data"]["scheduleOta"]["command"]["commandId"]
        .as_str()
        .unwrap_or_else(|| panic!("a command: {scheduled}"))
        .to_owned();
    device.next_command().await;
    ack(&device, &command_id, "failed", json!("checksum mismatch")).await;
    let failed = wait_for(&staff, &device_id, |d| {
        d["firmwareUpdateStatus"] == "FAILED"
    })
    .await;
    assert_eq!(failed["otaLastError"], "checksum mismatch");
    assert_eq!(failed["firmwareUpdateRequired"], true);

    // Only FAILED and UNKNOWN are set by hand.
    for status in ["UP_TO_DATE", "UPDATING", "UPDATE_SCHEDULED"] {
        let refused = staff
            .gql(
                SET_STATUS,
                json!({ "input": { "deviceId": device_id, "status": status } }),
            )
            .await;
        assert_eq!(
            refused["errors"][0]["extensions"]["code"], "BAD_USER_INPUT",
            "{refused}"
        );
        assert_eq!(refused["errors"][0]["extensions"]["field"], "status");
    }
    let reset = staff
        .gql(
            SET_STATUS,
            json!({ "input": { "deviceId": device_id, "status": "UNKNOWN" } }),
        )
        .await;
    assert_eq!(
        reset["data"]["setFirmwareUpdateStatus"]["device"]["firmwareUpdateStatus"],
        "UPDATE_REQUIRED",
        "back to compliance read from the versions: {reset}"
    );

    // A new update may start; given up by hand, it says so.
    let retried = schedule(&staff, &device_id, "2.0.0", URL).await;
    assert_eq!(
        retried["data"]["scheduleOta"]["device"]["firmwareUpdateStatus"], "UPDATE_SCHEDULED",
        "{retried}"
    );
    let given_up = staff
        .gql(
            SET_STATUS,
            json!({ "input": { "deviceId": device_id, "status": "FAILED" } }),
        )
        .await;
    assert_eq!(
        given_up["data"]["setFirmwareUpdateStatus"]["device"],
        json!({ "firmwareUpdateStatus": "FAILED", "otaLastError": "given up by staff" }),
        "{given_up}"
    );
}

#[tokio::test]
async fn only_staff_schedule_updates_of_https_addresses_and_unreachable_devices_fail_visibly() {
    let (app, bay, staff, device_id) = fleet().await;
    let technician = TestUser::technician(&app, "fixer", &[bay.station_id]).await;
    let forbidden = schedule(&technician, &device_id, "2.0.0", URL).await;
    assert_eq!(
        forbidden["errors"][0]["extensions"]["code"], "FORBIDDEN",
        "{forbidden}"
    );
    let seen = technician.gql(DEVICE, json!({ "id": device_id })).await;
    assert_eq!(
        seen["data"]["device"]["firmwareUpdateStatus"], "UNKNOWN",
        "{seen}"
    );

    for (version, url, field) in [
        ("2.0.0", "http://fw.example.com/a.bin", "url"),
        ("2.0.0", "https:///a.bin", "url"),
        ("", URL, "targetVersion"),
    ] {
        let refused = schedule(&staff, &device_id, version, url).await;
        assert_eq!(
            refused["errors"][0]["extensions"]["code"], "BAD_USER_INPUT",
            "{refused}"
        );
        assert_eq!(refused["errors"][0]["extensions"]["field"], field);
    }

    // Without credentials the device cannot be told: the update fails, with why.
    let id = stored_device(&app, &bay).await.id;
    voltgate::devices::credentials::revoke(&app.db, id)
        .await
        .map_err(|e| e.message())
        .expect("revoked");
    let unreachable = schedule(&staff, &device_id, "2.0.0", URL).await;
    assert_eq!(
        unreachable["errors"][0]["extensions"]["reason"], "DEVICE_UNREACHABLE",
        "{unreachable}"
    );
    let failed = wait_for(&staff, &device_id, |d| {
        d["firmwareUpdateStatus"] == "FAILED"
    })
    .await;
    assert!(
        failed["otaLastError"]
            .as_str()
            .is_some_and(|e| e.starts_with("not sent")),
        "{failed}"
    );
}
