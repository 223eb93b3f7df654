//! The alert rules of what devices and sessions do: a failed or timed-out
//! command (`COMMAND_FAILED`), a lock reported blocked (`LOCK_BLOCKED`), a
//! charging session ending in error (`SESSION_ERROR`); each repeat updates the
//! open alert, and each recovery resolves it.

use chrono::{SubsecRound as _, TimeDelta, Utc};
use serde_json::{Value, json};

use crate::charging_sessions::{AUTHENTICATE, answer, kiosk_for, reserve, wait_state};
use crate::client::TestUser;
use crate::helpers::{PATIENCE, SeededBay, TestDevice, global_id, spawn_app, spawn_app_with};

const ALERTS: &str = "query($kind: [AlertStatus!]) {
    alerts(statuses: $kind, first: 50) { edges { node {
        id kind severity status message notificationCount bayId deviceId sessionId resolutionNote
    } } }
}";
const SEND: &str = "mutation($bay: ID!, $action: ManualDeviceAction!) { sendDeviceCommand(input: { bayId: $bay, action: $action }) { command { commandId } } }";

/// Waits until an alert of `kind` satisfies `done`; returns it.
pub(crate) async fn wait_alert(
    staff: &TestUser,
    kind: &str,
    done: impl Fn(&Value) -> bool,
) -> Value {
    let deadline = tokio::time::Instant::now() + PATIENCE;
    loop {
        let body = staff.gql(ALERTS, json!({})).await;
        let found = body["data"]["alerts"]["edges"]
            .as_array()
            .into_iter()
            .flatten()
            .map(|edge| edge["node"].clone())
            .find(|node| node["kind"] == kind && done(node));
        if let Some(found) = found {
            return found;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "no {kind} alert as expected: {body}"
        );
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
}

async fn alerts_of(staff: &TestUser, kind: &str) -> Vec<Value> {
    let body = staff.gql(ALERTS, json!({})).await;
    body["data"]["alerts"]["edges"]
        .as_array()
        .into_iter()
        .flatten()
        .map(|edge| edge["node"].clone())
        .filter(|node| node["kind"] == kind)
        .collect()
}

/// Staff send `action` to the bay's device, which answers `status`.
async fn command(
    staff: &TestUser,
    device: &TestDevice,
    bay: &SeededBay,
    action: &str,
    status: &str,
) {
    let sent = staff
        .gql(
            SEND,
            json!({ "bay": global_id("Bay", bay.bay_id), "action": action.to_uppercase() }),
        )
        .await;
    assert!(
        sent["data"]["sendDeviceCommand"]["command"]["commandId"].is_string(),
        "{sent}"
    );
    answer(device, action, status).await;
}

#[tokio::test]
async fn failed_commands_raise_one_alert_that_a_finished_command_resolves() {
    let app = spawn_app().await;
    let bays = app.seed(1, 1, 1).await;
    let bay = &bays[0];
    let staff = TestUser::staff(&app, "warden").await;
    let device = app.listening_device(bay).await;

    command(&staff, &device, bay, "lock", "failed").await;
    let raised = wait_alert(&staff, "COMMAND_FAILED", |_| true).await;
    assert_eq!(raised["severity"], "MEDIUM", "{raised}");
    assert_eq!(raised["status"], "NEW");
    assert_eq!(
        raised["deviceId"],
        global_id(
            "Device",
            crate::device_commands::stored_device(&app, bay).await.id
        )
    );
    assert!(
        raised["message"]
            .as_str()
            .is_some_and(|m| m.contains("lock")),
        "{raised}"
    );

    command(&staff, &device, bay, "unlock", "rejected").await;
    let again = wait_alert(&staff, "COMMAND_FAILED", |a| a["notificationCount"] == 2).await;
    assert_eq!(
        again["id"], raised["id"],
        "the open alert is updated, not repeated"
    );
    assert_eq!(again["status"], "ACTIVE");

    command(&staff, &device, bay, "lock", "done").await;
    let resolved = wait_alert(&staff, "COMMAND_FAILED", |a| a["status"] == "RESOLVED").await;
    assert_eq!(resolved["id"], raised["id"]);
    assert_eq!(alerts_of(&staff, "COMMAND_FAILED").await.len(), 1);
}

#[tokio::test]
async fn a_command_nobody_answers_raises_a_high_alert_when_it_times_out() {
    let app = spawn_app_with(&["--device-command-timeout-secs", "1"]).await;
    let bays = app.seed(1, 1, 1).await;
    let staff = TestUser::staff(&app, "warden").await;
    let device = app.listening_device(&bays[0]).await;
    staff
        .gql(
            SEND,
            json!({ "bay": global_id("Bay", bays[0].bay_id), "action": "REBOOT" }),
        )
        .await;
    device.next_command().await;
    let raised = wait_alert(&staff, "COMMAND_FAILED", |_| true).await;
    assert_eq!(raised["severity"], "HIGH", "{raised}");
    assert!(
        raised["message"]
            .as_str()
            .is_some_and(|m| m.contains("reboot") && m.contains("timed out")),
        "{raised}"
    );
}

#[tokio::test]
async fn a_blocked_lock_raises_an_alert_repeats_update_it_and_a_working_lock_resolves_it() {
    let app = spawn_app().await;
    let bays = app.seed(1, 1, 2).await;
    let staff = TestUser::staff(&app, "warden").await;
    let device = app.device(&bays[0]).await;
    let neighbour = app.device(&bays[1]).await;
    let start = Utc::now().trunc_subsecs(6) - TimeDelta::seconds(10);

    device.report(start, "online", "blocked").await;
    let raised = wait_alert(&staff, "LOCK_BLOCKED", |_| true).await;
    assert_eq!(raised["severity"], "HIGH", "{raised}");
    assert_eq!(raised["bayId"], global_id("Bay", bays[0].bay_id));

    device
        .report(start + TimeDelta::seconds(1), "online", "blocked")
        .await;
    let again = wait_alert(&staff, "LOCK_BLOCKED", |a| a["notificationCount"] == 2).await;
    assert_eq!(again["id"], raised["id"]);

    // A working lock elsewhere ends nothing; this bay's does.
    neighbour
        .report(start + TimeDelta::seconds(2), "online", "locked")
        .await;
    device
        .report(start + TimeDelta::seconds(3), "online", "locked")
        .await;
    let resolved = wait_alert(&staff, "LOCK_BLOCKED", |a| a["status"] == "RESOLVED").await;
    assert_eq!(resolved["id"], raised["id"]);
    assert_eq!(resolved["resolutionNote"], "the condition ended by itself");

    // Blocked again: a new alert, the resolved one stays as it was.
    device
        .report(start + TimeDelta::seconds(4), "online", "blocked")
        .await;
    let reopened = wait_alert(&staff, "LOCK_BLOCKED", |a| a["status"] == "NEW").await;
    assert_ne!(reopened["id"], raised["id"]);
    assert_eq!(alerts_of(&staff, "LOCK_BLOCKED").await.len(), 2);
}

#[tokio::test]
async fn a_session_the_device_fails_raises_a_session_error_and_a_charging_session_resolves_it() {
    let app = spawn_app().await;
    let bays = app.seed(1, 1, 1).await;
    let bay = &bays[0];
    let customer = TestUser::customer(&app, "cleo").await;
    let staff = TestUser::staff(&app, "warden").await;
    let device = app.listening_device(bay).await;
    let kiosk = kiosk_for(&app, bay).await;
    let (_, code) = reserve(&customer, bay, "CODE").await;
    let authenticate = || {
        kiosk.gql(
            AUTHENTICATE,
            json!({ "bay": global_id("Bay", bay.bay_id), "method": "CODE", "credential": code }),
        )
    };

    let opened = authenticate().await;
    let session = opened["data"]["terminalAuthenticate"]["session"]["id"].clone();
    assert!(session.is_string(), "{opened}");
    answer(&device, "unlock", "failed").await;
    wait_state(&customer, &session, "ERROR").await;
    let raised = wait_alert(&staff, "SESSION_ERROR", |_| true).await;
    assert_eq!(raised["severity"], "HIGH", "{raised}");
    assert_eq!(raised["sessionId"], session, "{raised}");
    assert_eq!(raised["bayId"], global_id("Bay", bay.bay_id));
    // The command's own failure is its own alert.
    wait_alert(&staff, "COMMAND_FAILED", |_| true).await;

    // The customer tries again; the bay works and the session charges.
    let retried = authenticate().await;
    let second = retried["data"]["terminalAuthenticate"]["session"]["id"].clone();
    assert!(second.is_string(), "{retried}");
    answer(&device, "unlock", "done").await;
    wait_state(&customer, &second, "WAITING_PLUG").await;
    let plugged = json!({ "v": 1, "ts": Utc::now().to_rfc3339(), "mac": bay.mac,
        "fw": "1.4.2", "ip": "10.1.2.3", "status": "online", "lock": "unlocked", "plugged": true });
    device
        .publish(&device.state_topic(), plugged.to_string().into_bytes())
        .await;
    answer(&device, "start_charge", "done").await;
    wait_state(&customer, &second, "CHARGING").await;
    let resolved = wait_alert(&staff, "SESSION_ERROR", |a| a["status"] == "RESOLVED").await;
    assert_eq!(resolved["id"], raised["id"]);
}
