//! The device command path: commands logged and sent over MQTT (QoS 1),
//! acknowledgements matched by `command_id` (duplicates and late ones
//! harmless), timeouts failing a command visibly, the device's
//! `last_command_*` kept current.

use sea_orm::EntityTrait as _;
use serde_json::{Value, json};

use crate::client::TestUser;
use crate::helpers::{
    PATIENCE, SeededBay, TestApp, TestDevice, global_id, spawn_app, spawn_app_with,
};

const COMMANDS: &str = "query($bay: ID!) { deviceCommands(bayId: $bay) { commandId action status error ignoredAcks owner acknowledged: ackedAt } }";
const SEND: &str = "mutation($bay: ID!, $action: ManualDeviceAction!) { sendDeviceCommand(input: { bayId: $bay, action: $action }) { command { commandId action status deadline } } }";

async fn ack(device: &TestDevice, command_id: &str, action: &str, status: &str) {
    let topic = format!("{}/bays/{}/ack", device.bay.prefix, device.bay.number);
    let payload = json!({ "v": 1, "ts": chrono::Utc::now().to_rfc3339(), "command_id": command_id,
        "action": action, "status": status, "message": if status == "failed" { json!("jammed") } else { Value::Null } });
    device
        .publish(&topic, payload.to_string().into_bytes())
        .await;
}

/// Waits until the bay's latest command satisfies `done`; returns it.
async fn wait_for_command(
    staff: &TestUser,
    bay: &SeededBay,
    done: impl Fn(&Value) -> bool,
) -> Value {
    let deadline = tokio::time::Instant::now() + PATIENCE;
    loop {
        let body = staff
            .gql(COMMANDS, json!({ "bay": global_id("Bay", bay.bay_id) }))
            .await;
        let latest = body["data"]["deviceCommands"][0].clone();
        if done(&latest) {
            return latest;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "the command never got there: {body}"
        );
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
}

pub(crate) async fn stored_device(
    app: &TestApp,
    bay: &SeededBay,
) -> voltgate::entities::device::Model {
    use sea_orm::{ColumnTrait, QueryFilter};
    voltgate::entities::device::Entity::find()
        .filter(voltgate::entities::device::Column::BayId.eq(bay.bay_id))
        .one(&app.db)
        .await
        .expect("query")
        .expect("a device")
}

#[tokio::test]
async fn a_command_is_logged_sent_acknowledged_and_later_acks_change_nothing() {
    let app = spawn_app().await;
    let bays = app.seed(1, 1, 1).await;
    let staff = TestUser::staff(&app, "warden").await;
    let device = app.listening_device(&bays[0]).await;

    let sent = staff
        .gql(
            SEND,
            json!({ "bay": global_id("Bay", bays[0].bay_id), "action": "UNLOCK" }),
        )
        .await;
    let command = &sent["data"]["sendDeviceCommand"]["command"];
    assert_eq!(command["status"], "PENDING", "{sent}");
    assert_eq!(command["action"], "unlock");
    assert!(command["deadline"].is_string());
    let command_id = command["commandId"].as_str().expect("an id").to_owned();
    assert!(uuid::Uuid::parse_str(&command_id).is_ok());

    let received = device.next_command().await;
    assert_eq!(received["command_id"], command_id.as_str());
    assert_eq!(received["action"], "unlock");
    let stored = stored_device(&app, &bays[0]).await;
    assert_eq!(stored.last_command_id.as_deref(), Some(command_id.as_str()));
    assert_eq!(stored.last_command_status.as_deref(), Some("pending"));

    ack(&device, &command_id, "unlock", "accepted").await;
    wait_for_command(&staff, &bays[0], |c| c["status"] == "ACCEPTED").await;
    ack(&device, &command_id, "unlock", "done").await;
    let done = wait_for_command(&staff, &bays[0], |c| c["status"] == "DONE").await;
    assert!(done["acknowledged"].is_string());

    // A redelivered "done" and a late "accepted" are counted, never applied.
    ack(&device, &command_id, "unlock", "done").await;
    ack(&device, &command_id, "unlock", "accepted").await;
    let after = wait_for_command(&staff, &bays[0], |c| c["ignoredAcks"] == 2).await;
    assert_eq!(after["status"], "DONE");
    let stored = stored_device(&app, &bays[0]).await;
    assert_eq!(stored.last_command_status.as_deref(), Some("done"));
    assert_eq!(stored.last_command_action.as_deref(), Some("unlock"));
}

#[tokio::test]
async fn a_failure_is_recorded_with_the_device_message() {
    let app = spawn_app().await;
    let bays = app.seed(1, 1, 1).await;
    let staff = TestUser::staff(&app, "warden").await;
    let device = app.listening_device(&bays[0]).await;
    staff
        .gql(
            SEND,
            json!({ "bay": global_id("Bay", bays[0].bay_id), "action": "LOCK" }),
        )
        .await;
    let received = device.next_command().await;
    let id = received["command_id"].as_str().expect("an id");
    ack(&device, id, "lock", "failed").await;
    let failed = wait_for_command(&staff, &bays[0], |c| c["status"] == "FAILED").await;
    assert_eq!(failed["error"], "jammed");
}

#[tokio::test]
async fn a_command_nobody_answers_times_out_visibly_and_a_late_answer_is_ignored() {
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
    let received = device.next_command().await;
    let id = received["command_id"].as_str().expect("an id").to_owned();

    let timed_out = wait_for_command(&staff, &bays[0], |c| c["status"] == "TIMED_OUT").await;
    assert!(
        timed_out["error"]
            .as_str()
            .is_some_and(|e| e.contains("in time"))
    );
    let stored = stored_device(&app, &bays[0]).await;
    assert_eq!(stored.last_command_status.as_deref(), Some("timed_out"));

    ack(&device, &id, "reboot", "done").await;
    let after = wait_for_command(&staff, &bays[0], |c| c["ignoredAcks"] == 1).await;
    assert_eq!(
        after["status"], "TIMED_OUT",
        "a late answer does not revive it"
    );
}

#[tokio::test]
async fn another_device_cannot_acknowledge_a_command() {
    let app = spawn_app().await;
    let bays = app.seed(1, 1, 2).await;
    let staff = TestUser::staff(&app, "warden").await;
    let device = app.listening_device(&bays[0]).await;
    let other = app.device(&bays[1]).await;
    staff
        .gql(
            SEND,
            json!({ "bay": global_id("Bay", bays[0].bay_id), "action": "UNLOCK" }),
        )
        .await;
    let id = device.next_command().await["command_id"]
        .as_str()
        .expect("an id")
        .to_owned();
    ack(&other, &id, "unlock", "done").await;
    // The other bay's state report, published after its ack, shows it was handled.
    other.report(chrono::Utc::now(), "idle", "locked").await;
    let deadline = tokio::time::Instant::now() + PATIENCE;
    while stored_device(&app, &bays[1]).await.status != voltgate::entities::DeviceStatus::Idle {
        assert!(
            tokio::time::Instant::now() < deadline,
            "the report never came"
        );
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
    let body = staff
        .gql(COMMANDS, json!({ "bay": global_id("Bay", bays[0].bay_id) }))
        .await;
    assert_eq!(
        body["data"]["deviceCommands"][0]["status"], "PENDING",
        "{body}"
    );
}

#[tokio::test]
async fn a_device_without_credentials_is_unreachable_and_the_attempt_is_logged() {
    let app = spawn_app().await;
    let bays = app.seed(1, 1, 1).await;
    let staff = TestUser::staff(&app, "warden").await;
    let device_id = stored_device(&app, &bays[0]).await.id;
    voltgate::devices::credentials::revoke(&app.db, device_id)
        .await
        .map_err(|e| e.message())
        .expect("revoked");
    let refused = staff
        .gql(
            SEND,
            json!({ "bay": global_id("Bay", bays[0].bay_id), "action": "UNLOCK" }),
        )
        .await;
    assert_eq!(
        refused["errors"][0]["extensions"]["code"], "CONFLICT",
        "{refused}"
    );
    assert_eq!(
        refused["errors"][0]["extensions"]["reason"],
        "DEVICE_UNREACHABLE"
    );
    let body = staff
        .gql(COMMANDS, json!({ "bay": global_id("Bay", bays[0].bay_id) }))
        .await;
    assert_eq!(
        body["data"]["deviceCommands"][0]["status"], "UNSENT",
        "{body}"
    );
    assert!(
        body["data"]["deviceCommands"][0]["error"]
            .as_str()
            .is_some_and(|e| e.starts_with("not sent"))
    );
}

#[tokio::test]
async fn bad_input_is_refused_with_its_field() {
    let app = spawn_app().await;
    let bays = app.seed(1, 1, 1).await;
    let staff = TestUser::staff(&app, "warden").await;
    let wrong_kind = staff
        .gql(
            SEND,
            json!({ "bay": global_id("Station", bays[0].station_id), "action": "UNLOCK" }),
        )
        .await;
    assert_eq!(
        wrong_kind["errors"][0]["extensions"]["code"],
        "BAD_USER_INPUT"
    );
    assert_eq!(wrong_kind["errors"][0]["extensions"]["field"], "bayId");
    let missing = staff
        .gql(
            SEND,
            json!({ "bay": global_id("Bay", 999_999), "action": "UNLOCK" }),
        )
        .await;
    assert_eq!(missing["errors"][0]["extensions"]["code"], "NOT_FOUND");
    let too_many = staff
        .gql(
            "query($bay: ID!) { deviceCommands(bayId: $bay, last: 1000) { commandId } }",
            json!({ "bay": global_id("Bay", bays[0].bay_id) }),
        )
        .await;
    assert_eq!(too_many["errors"][0]["extensions"]["field"], "last");
    // Charging and firmware commands are not for people to send.
    let start = staff
        .gql(
            SEND,
            json!({ "bay": global_id("Bay", bays[0].bay_id), "action": "START_CHARGE" }),
        )
        .await;
    assert_eq!(
        start["errors"][0]["extensions"]["code"], "BAD_USER_INPUT",
        "{start}"
    );
}

/// Runs `voltgate simulate` for the seeded bay in this process, injecting
/// `fault` every 100 ms, until the returned sender is dropped.
fn simulate(
    app: &TestApp,
    bay: &SeededBay,
    fault: voltgate::simulate::Fault,
) -> tokio::sync::oneshot::Sender<()> {
    let secrets = bay
        .secrets
        .clone()
        .expect("the seeded device has credentials");
    let mut credentials = voltgate::seed::CredentialsFile::default();
    credentials
        .devices
        .insert(secrets.username.clone(), secrets);
    let options = voltgate::simulate::SimulateOptions {
        bays: 1,
        rate: 2.0,
        duration: None,
        host: app.broker.0.clone(),
        port: app.broker.1,
        credentials,
        faults: vec![fault],
        fault_every: std::time::Duration::from_millis(100),
    };
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let db = app.db.clone();
    tokio::spawn(async move {
        voltgate::simulate::run(&db, options, async {
            let _ = stopped.await;
        })
        .await
    });
    stop
}

/// Sends `action` until the simulated device's answer satisfies `done`
/// (the device may not listen yet when the first ones leave).
async fn until_answered(staff: &TestUser, bay: &SeededBay, done: impl Fn(&Value) -> bool) -> Value {
    let deadline = tokio::time::Instant::now() + PATIENCE;
    loop {
        staff
            .gql(
                SEND,
                json!({ "bay": global_id("Bay", bay.bay_id), "action": "LOCK" }),
            )
            .await;
        let settled = wait_for_command(staff, bay, |c| {
            c["status"] != "PENDING" && c["status"] != "ACCEPTED"
        })
        .await;
        if done(&settled) {
            return settled;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "the simulated device never answered so: {settled}"
        );
    }
}

#[tokio::test]
async fn the_simulator_fails_or_ignores_commands_on_request_and_the_alert_follows() {
    let app = spawn_app_with(&["--device-command-timeout-secs", "1"]).await;
    let bays = app.seed(1, 1, 1).await;
    let staff = TestUser::staff(&app, "warden").await;

    let stop = simulate(&app, &bays[0], voltgate::simulate::Fault::FailedCommand);
    let failed = until_answered(&staff, &bays[0], |c| c["status"] == "FAILED").await;
    assert_eq!(failed["error"], "injected failure", "{failed}");
    drop(stop);

    // Once the device reports in again it hears every command: a command
    // timed out after that was ignored by it.
    let restarted = chrono::Utc::now();
    let stop = simulate(&app, &bays[0], voltgate::simulate::Fault::IgnoredCommand);
    let deadline = tokio::time::Instant::now() + PATIENCE;
    while stored_device(&app, &bays[0])
        .await
        .last_heard_at
        .is_none_or(|at| at < restarted)
    {
        assert!(
            tokio::time::Instant::now() < deadline,
            "the device never came back"
        );
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
    let ignored = until_answered(&staff, &bays[0], |c| c["status"] == "TIMED_OUT").await;
    assert_eq!(ignored["ignoredAcks"], 0, "nobody answered: {ignored}");
    drop(stop);

    let alerts = staff
        .gql(
            "{ alerts(first: 10) { nodes { kind severity status } } }",
            json!({}),
        )
        .await;
    let kinds: Vec<&Value> = alerts["data"]["alerts"]["nodes"]
        .as_array()
        .map(|a| a.iter().map(|n| &n["kind"]).collect())
        .unwrap_or_default();
    assert!(
        kinds.iter().any(|k| **k == "COMMAND_FAILED"),
        "a failed command raises its alert: {alerts}"
    );
}
