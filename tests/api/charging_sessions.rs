//! Charging sessions end to end: a kiosk authenticates a customer's
//! reservation, the bay's device (played here over MQTT) is unlocked, plugged
//! in, charges and stops; timeouts, wrong credentials and races.

use sea_orm::{ColumnTrait, EntityTrait as _, QueryFilter};
use serde_json::{Value, json};

use crate::client::TestUser;
use crate::helpers::{
    PATIENCE, SeededBay, TestApp, TestDevice, global_id, spawn_app, spawn_app_with,
};

const RESERVE: &str =
    "mutation($input: CreateReservationInput!) { createReservation(input: $input) {
  reservation { id referenceCode status } access { content } } }";
pub(crate) const AUTHENTICATE: &str =
    "mutation($bay: ID!, $method: AccessMode!, $credential: String!) {
  terminalAuthenticate(input: { bay: $bay, method: $method, credential: $credential }) {
    session { id state bayId reservationId method } } }";
const SESSION: &str = "query($id: ID!) { chargingSession(id: $id) { id state error plugDeadline chargingSince endedAt } }";

/// Receives the next command, checks its action, and acknowledges it with `status`.
pub(crate) async fn answer(device: &TestDevice, action: &str, status: &str) {
    let command = device.next_command().await;
    assert_eq!(command["action"], action, "{command}");
    let topic = format!("{}/bays/{}/ack", device.bay.prefix, device.bay.number);
    let ack = json!({ "v": 1, "ts": chrono::Utc::now().to_rfc3339(), "command_id": command["command_id"],
        "action": action, "status": status, "message": null });
    device.publish(&topic, ack.to_string().into_bytes()).await;
}

async fn plug_in(device: &TestDevice) {
    let state = json!({ "v": 1, "ts": chrono::Utc::now().to_rfc3339(), "mac": device.bay.mac,
        "fw": "1.4.2", "ip": "10.1.2.3", "status": "online", "lock": "unlocked", "plugged": true });
    device
        .publish(&device.state_topic(), state.to_string().into_bytes())
        .await;
}

pub(crate) async fn wait_state(user: &TestUser, session: &Value, state: &str) -> Value {
    let deadline = tokio::time::Instant::now() + PATIENCE;
    loop {
        let body = user.gql(SESSION, json!({ "id": session })).await;
        if body["data"]["chargingSession"]["state"] == state {
            return body["data"]["chargingSession"].clone();
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "never {state}: {body}"
        );
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
}

/// A reservation of `bay` starting in a minute, with `mode`; its id and access content.
pub(crate) async fn reserve(customer: &TestUser, bay: &SeededBay, mode: &str) -> (Value, String) {
    let starts = (chrono::Utc::now() + chrono::TimeDelta::minutes(1)).to_rfc3339();
    let body = customer
        .gql(
            RESERVE,
            json!({ "input": { "bayId": global_id("Bay", bay.bay_id), "startsAt": starts,
            "durationMinutes": 30, "accessMode": mode } }),
        )
        .await;
    let created = &body["data"]["createReservation"];
    (
        created["reservation"]["id"].clone(),
        created["access"]["content"]
            .as_str()
            .unwrap_or_else(|| panic!("{body}"))
            .to_owned(),
    )
}

pub(crate) async fn kiosk_for(app: &TestApp, bay: &SeededBay) -> TestUser {
    let bay_row = voltgate::entities::bay::Entity::find_by_id(bay.bay_id)
        .one(&app.db)
        .await
        .expect("query")
        .expect("the bay");
    TestUser::kiosk(app, bay_row.cabinet_id)
}

async fn reservation_status(app: &TestApp) -> voltgate::entities::reservation::ReservationStatus {
    voltgate::entities::reservation::Entity::find()
        .one(&app.db)
        .await
        .expect("query")
        .expect("a reservation")
        .status
}

async fn bay_status(app: &TestApp, bay: &SeededBay) -> voltgate::entities::BayStatus {
    voltgate::entities::bay::Entity::find_by_id(bay.bay_id)
        .one(&app.db)
        .await
        .expect("query")
        .expect("the bay")
        .status
}

pub(crate) fn error(body: &Value) -> (&str, &str) {
    let ext = &body["errors"][0]["extensions"];
    (
        ext["code"].as_str().unwrap_or("none"),
        ext["reason"].as_str().unwrap_or("none"),
    )
}

#[tokio::test]
async fn a_session_runs_from_the_kiosk_to_stopped_with_the_device_over_mqtt() {
    let app = spawn_app().await;
    let bays = app.seed(1, 1, 1).await;
    let bay = &bays[0];
    let staff = TestUser::staff(&app, "warden").await;
    let cabinet = voltgate::entities::bay::Entity::find_by_id(bay.bay_id)
        .one(&app.db)
        .await
        .expect("query")
        .expect("bay")
        .cabinet_id;
    // The kiosk signs in with the credential staff issued.
    let issued = staff
        .gql(
            "mutation($c: ID!) { issueKioskCredential(input: { cabinetId: $c }) { secret } }",
            json!({ "c": global_id("Cabinet", cabinet) }),
        )
        .await;
    let secret = issued["data"]["issueKioskCredential"]["secret"]
        .as_str()
        .expect("secret");
    let signed_in = app
        .graphql(
            "mutation($s: String!) { kioskSignIn(input: { credential: $s }) { accessToken } }",
            json!({ "s": secret }),
        )
        .await;
    let kiosk = TestUser::bearer(
        &app,
        signed_in["data"]["kioskSignIn"]["accessToken"]
            .as_str()
            .expect("token"),
    );

    let customer = TestUser::customer(&app, "cleo").await;
    let (_, code) = reserve(&customer, bay, "CODE").await;
    let device = app.listening_device(bay).await;
    // The customer follows the bay's sessions; a stranger following it sees none of theirs.
    let follow =
        "subscription($bay: ID) { chargeStateChanged(bayId: $bay) { sessionId state at cursor } }";
    let mut mine = crate::helpers::Subscription::start_with(
        app.addr,
        "graphql-transport-ws",
        json!({ "authorization": format!("Bearer {}", customer.token) }),
        follow,
        json!({ "bay": global_id("Bay", bay.bay_id) }),
    )
    .await;
    let stranger = TestUser::customer(&app, "mallory").await;
    let mut strangers = crate::helpers::Subscription::start_with(
        app.addr,
        "graphql-transport-ws",
        json!({ "authorization": format!("Bearer {}", stranger.token) }),
        follow,
        json!({ "bay": global_id("Bay", bay.bay_id) }),
    )
    .await;

    let wrong = if code == "00000000" {
        "11111111"
    } else {
        "00000000"
    };
    let refused = kiosk
        .gql(
            AUTHENTICATE,
            json!({ "bay": global_id("Bay", bay.bay_id), "method": "CODE", "credential": wrong }),
        )
        .await;
    assert_eq!(
        error(&refused),
        ("FORBIDDEN", "INVALID_CREDENTIAL"),
        "{refused}"
    );
    assert_eq!(
        bay_status(&app, bay).await,
        voltgate::entities::BayStatus::Available
    );

    let opened = kiosk
        .gql(
            AUTHENTICATE,
            json!({ "bay": global_id("Bay", bay.bay_id), "method": "CODE", "credential": code }),
        )
        .await;
    let session = &opened["data"]["terminalAuthenticate"]["session"];
    assert_eq!(session["state"], "ACCESS_VALIDATED", "{opened}");
    assert_eq!(session["method"], "CODE");
    let id = session["id"].clone();
    assert_eq!(
        reservation_status(&app).await,
        voltgate::entities::reservation::ReservationStatus::Active
    );
    assert_eq!(
        bay_status(&app, bay).await,
        voltgate::entities::BayStatus::Occupied
    );

    answer(&device, "unlock", "done").await;
    let waiting = wait_state(&customer, &id, "WAITING_PLUG").await;
    assert!(waiting["plugDeadline"].is_string());
    plug_in(&device).await;
    answer(&device, "start_charge", "accepted").await;
    // The same command's "done" follows; re-read it from the log.
    let start = voltgate::entities::device_command::Entity::find()
        .filter(voltgate::entities::device_command::Column::Action.eq("start_charge"))
        .one(&app.db)
        .await
        .expect("query")
        .expect("start_charge was logged");
    let topic = format!("{}/bays/{}/ack", bay.prefix, bay.number);
    let done = json!({ "v": 1, "ts": chrono::Utc::now().to_rfc3339(), "command_id": start.command_id,
        "action": "start_charge", "status": "done", "message": null });
    device.publish(&topic, done.to_string().into_bytes()).await;
    let charging = wait_state(&customer, &id, "CHARGING").await;
    assert!(charging["chargingSince"].is_string());

    // Someone else's stop is NOT_FOUND; the customer's own goes through.
    let theirs = stranger
        .gql("mutation($s: ID!) { stopChargingSession(input: { session: $s }) { session { state } } }", json!({ "s": id }))
        .await;
    assert_eq!(error(&theirs).0, "NOT_FOUND");
    let stopping = customer
        .gql("mutation($s: ID!) { stopChargingSession(input: { session: $s }) { session { state } } }", json!({ "s": id }))
        .await;
    assert_eq!(
        stopping["data"]["stopChargingSession"]["session"]["state"], "STOPPING",
        "{stopping}"
    );
    answer(&device, "stop_charge", "done").await;
    let stopped = wait_state(&customer, &id, "STOPPED").await;
    assert!(stopped["endedAt"].is_string());
    assert_eq!(
        reservation_status(&app).await,
        voltgate::entities::reservation::ReservationStatus::Completed
    );
    assert_eq!(
        bay_status(&app, bay).await,
        voltgate::entities::BayStatus::Available
    );

    // The subscription saw the session through, in order, each change with a
    // cursor (the first may precede the subscription's start: it has no ready signal).
    let mut states = Vec::new();
    let mut cursors = Vec::new();
    while states.last().is_none_or(|s| s != "STOPPED") {
        let event = mine.next_event().await;
        let change = &event["data"]["chargeStateChanged"];
        assert_eq!(change["sessionId"], id, "{event}");
        states.push(change["state"].as_str().expect("a state").to_owned());
        cursors.push(change["cursor"].as_str().expect("a cursor").to_owned());
    }
    let tail: Vec<&str> = states
        .iter()
        .map(String::as_str)
        .skip_while(|s| *s == "ACCESS_VALIDATED")
        .collect();
    assert_eq!(
        tail,
        ["WAITING_PLUG", "CHARGING", "STOPPING", "STOPPED"],
        "{states:?}"
    );
    assert!(
        strangers
            .try_next(std::time::Duration::from_millis(300))
            .await
            .is_none(),
        "another customer's subscription sees nothing of this session"
    );
    // Resuming after the WAITING_PLUG change replays what came after it.
    let waiting_at = states
        .iter()
        .position(|s| s == "WAITING_PLUG")
        .expect("seen");
    let mut resumed = crate::helpers::Subscription::start_with(
        app.addr,
        "graphql-transport-ws",
        json!({ "authorization": format!("Bearer {}", customer.token) }),
        "subscription($bay: ID, $after: String) { chargeStateChanged(bayId: $bay, after: $after) { state } }",
        json!({ "bay": global_id("Bay", bay.bay_id), "after": cursors[waiting_at] }),
    )
    .await;
    for expected in ["CHARGING", "STOPPING", "STOPPED"] {
        assert_eq!(
            resumed.next_event().await["data"]["chargeStateChanged"]["state"],
            expected
        );
    }

    // A stopped session cannot be stopped again.
    let again = kiosk
        .gql("mutation($s: ID!) { terminalStopSession(input: { session: $s }) { session { state } } }", json!({ "s": id }))
        .await;
    assert_eq!(error(&again), ("CONFLICT", "INVALID_TRANSITION"), "{again}");

    // The authentication history: one failure, one success, no secret stored.
    let attempts = voltgate::entities::charging_auth_attempt::Entity::find()
        .all(&app.db)
        .await
        .expect("rows");
    assert_eq!(attempts.len(), 2);
    assert!(!attempts[0].succeeded && attempts[1].succeeded);
    assert!(attempts[1].session_id.is_some());
}

#[tokio::test]
async fn a_session_nobody_plugs_in_ends_and_frees_the_bay() {
    let app = spawn_app_with(&["--session-plug-timeout-secs", "1"]).await;
    let bays = app.seed(1, 1, 1).await;
    let bay = &bays[0];
    let customer = TestUser::customer(&app, "cleo").await;
    let (_, code) = reserve(&customer, bay, "CODE").await;
    let device = app.listening_device(bay).await;
    let kiosk = kiosk_for(&app, bay).await;
    let opened = kiosk
        .gql(
            AUTHENTICATE,
            json!({ "bay": global_id("Bay", bay.bay_id), "method": "CODE", "credential": code }),
        )
        .await;
    let id = opened["data"]["terminalAuthenticate"]["session"]["id"].clone();
    answer(&device, "unlock", "done").await;
    let ended = wait_state(&customer, &id, "ERROR").await;
    assert!(
        ended["error"]
            .as_str()
            .is_some_and(|e| e.contains("plugged")),
        "{ended}"
    );
    assert_eq!(
        reservation_status(&app).await,
        voltgate::entities::reservation::ReservationStatus::Completed
    );
    assert_eq!(
        bay_status(&app, bay).await,
        voltgate::entities::BayStatus::Available
    );
}

#[tokio::test]
async fn an_unlock_the_device_never_answers_fails_the_session_and_the_reservation_can_be_used_again()
 {
    let app = spawn_app_with(&["--device-command-timeout-secs", "1"]).await;
    let bays = app.seed(1, 1, 1).await;
    let bay = &bays[0];
    let customer = TestUser::customer(&app, "cleo").await;
    let (_, code) = reserve(&customer, bay, "CODE").await;
    let kiosk = kiosk_for(&app, bay).await;
    let opened = kiosk
        .gql(
            AUTHENTICATE,
            json!({ "bay": global_id("Bay", bay.bay_id), "method": "CODE", "credential": code }),
        )
        .await;
    let id = opened["data"]["terminalAuthenticate"]["session"]["id"].clone();
    let failed = wait_state(&customer, &id, "ERROR").await;
    assert!(
        failed["error"]
            .as_str()
            .is_some_and(|e| e.contains("unlock timed_out")),
        "{failed}"
    );
    assert_eq!(
        reservation_status(&app).await,
        voltgate::entities::reservation::ReservationStatus::Confirmed
    );
    // The customer tries again, and this time the device answers.
    let device = app.listening_device(bay).await;
    let retried = kiosk
        .gql(
            AUTHENTICATE,
            json!({ "bay": global_id("Bay", bay.bay_id), "method": "CODE", "credential": code }),
        )
        .await;
    let second = retried["data"]["terminalAuthenticate"]["session"]["id"].clone();
    assert!(second.is_string(), "{retried}");
    answer(&device, "unlock", "done").await;
    wait_state(&customer, &second, "WAITING_PLUG").await;
}

#[tokio::test]
async fn an_unlock_that_cannot_leave_ends_the_session_logs_the_command_and_frees_the_reservation() {
    use voltgate::entities::{charging_auth_attempt, charging_session, device_command};
    let app = spawn_app().await;
    let bays = app.seed(1, 1, 2).await;
    let customer = TestUser::customer(&app, "cleo").await;
    let kiosk = kiosk_for(&app, &bays[0]).await;
    // Bay 0's device has no credentials (the transport refuses it); bay 1 has no device.
    let device = crate::device_commands::stored_device(&app, &bays[0]).await;
    voltgate::devices::credentials::revoke(&app.db, device.id)
        .await
        .map_err(|e| e.message())
        .expect("revoked");
    voltgate::entities::device::Entity::delete_many()
        .filter(voltgate::entities::device::Column::BayId.eq(bays[1].bay_id))
        .exec(&app.db)
        .await
        .expect("deleted");

    for (bay, expect_command) in [(&bays[0], true), (&bays[1], false)] {
        let (_, code) = reserve(&customer, bay, "CODE").await;
        for attempt in 0..2 {
            let refused = kiosk
                .gql(
                    AUTHENTICATE,
                    json!({ "bay": global_id("Bay", bay.bay_id), "method": "CODE", "credential": code }),
                )
                .await;
            assert_eq!(
                error(&refused),
                ("CONFLICT", "DEVICE_UNREACHABLE"),
                "attempt {attempt}: {refused}"
            );
        }
        // Each attempt opened a session that ended at once; the reservation
        // can be used again and the bay is reserved, not occupied.
        let sessions = charging_session::Entity::find()
            .filter(charging_session::Column::BayId.eq(bay.bay_id))
            .all(&app.db)
            .await
            .expect("sessions");
        assert_eq!(sessions.len(), 2);
        for session in &sessions {
            assert_eq!(
                session.state,
                voltgate::entities::charging_session::SessionState::Error
            );
            assert_eq!(
                session.error.as_deref(),
                Some("the bay's device cannot be reached")
            );
            assert!(session.ended_at.is_some());
        }
        let row = voltgate::entities::reservation::Entity::find()
            .filter(voltgate::entities::reservation::Column::BayId.eq(bay.bay_id))
            .one(&app.db)
            .await
            .expect("query")
            .expect("the reservation");
        assert_eq!(
            row.status,
            voltgate::entities::reservation::ReservationStatus::Confirmed
        );
        assert_ne!(
            bay_status(&app, bay).await,
            voltgate::entities::BayStatus::Occupied
        );
        // The credential matched both times: recorded as successes, with their sessions.
        let attempts = charging_auth_attempt::Entity::find()
            .filter(charging_auth_attempt::Column::BayId.eq(bay.bay_id))
            .all(&app.db)
            .await
            .expect("attempts");
        assert_eq!(attempts.len(), 2);
        assert!(
            attempts
                .iter()
                .all(|a| a.succeeded && a.session_id.is_some())
        );
        // The unlock the transport refused is logged as unsent, owned by its session.
        let commands = device_command::Entity::find()
            .filter(device_command::Column::BayId.eq(bay.bay_id))
            .all(&app.db)
            .await
            .expect("commands");
        if expect_command {
            assert_eq!(commands.len(), 2);
            for (command, session) in commands.iter().zip(&sessions) {
                assert_eq!(command.action, "unlock");
                assert_eq!(
                    command.status,
                    voltgate::entities::device_command::CommandStatus::Unsent
                );
                assert_eq!(
                    command.owner.as_deref(),
                    Some(format!("charging_session:{}", session.id).as_str())
                );
            }
        } else {
            assert!(commands.is_empty(), "no device, nothing to log");
        }
    }
}

#[tokio::test]
async fn guessing_is_rate_limited_and_kiosks_act_only_on_their_own_bays() {
    let app = spawn_app_with(&["--terminal-failures-per-reservation", "3"]).await;
    let bays = app.seed(1, 2, 1).await;
    let customer = TestUser::customer(&app, "cleo").await;
    let (_, code) = reserve(&customer, &bays[0], "CODE").await;
    let other_kiosk = kiosk_for(&app, &bays[1]).await;
    let foreign = other_kiosk
        .gql(AUTHENTICATE, json!({ "bay": global_id("Bay", bays[0].bay_id), "method": "CODE", "credential": code }))
        .await;
    assert_eq!(error(&foreign).0, "FORBIDDEN", "{foreign}");
    assert_ne!(
        error(&foreign).1,
        "INVALID_CREDENTIAL",
        "another cabinet's bay, not a bad code"
    );

    let kiosk = kiosk_for(&app, &bays[0]).await;
    // A badge UID or a QR content for a CODE reservation is as wrong as a bad code.
    for (method, guess) in [
        ("CODE", "12345678"),
        ("RFID", "AABBCCDD"),
        ("QR", "voltgate:reservation:VG-X:y"),
    ] {
        let refused = kiosk
            .gql(AUTHENTICATE, json!({ "bay": global_id("Bay", bays[0].bay_id), "method": method, "credential": guess }))
            .await;
        assert_eq!(
            error(&refused),
            ("FORBIDDEN", "INVALID_CREDENTIAL"),
            "{refused}"
        );
    }
    let limited = kiosk
        .gql(AUTHENTICATE, json!({ "bay": global_id("Bay", bays[0].bay_id), "method": "CODE", "credential": code }))
        .await;
    assert_eq!(
        error(&limited).0,
        "RATE_LIMITED",
        "even the right code waits: {limited}"
    );
    assert_eq!(
        reservation_status(&app).await,
        voltgate::entities::reservation::ReservationStatus::Confirmed
    );
    let sessions = voltgate::entities::charging_session::Entity::find()
        .all(&app.db)
        .await
        .expect("rows");
    assert!(sessions.is_empty(), "refused attempts opened nothing");

    let empty = kiosk
        .gql(
            AUTHENTICATE,
            json!({ "bay": global_id("Bay", bays[0].bay_id), "method": "CODE", "credential": " " }),
        )
        .await;
    assert_eq!(empty["errors"][0]["extensions"]["field"], "credential");
}

#[tokio::test]
async fn concurrent_authentications_of_one_reservation_open_one_session() {
    let app = spawn_app().await;
    let bays = app.seed(1, 1, 1).await;
    let bay = &bays[0];
    let customer = TestUser::customer(&app, "cleo").await;
    let (_, code) = reserve(&customer, bay, "CODE").await;
    let _device = app.listening_device(bay).await;
    let kiosk = kiosk_for(&app, bay).await;
    let answers = futures_util::future::join_all((0..10).map(|_| {
        kiosk.gql(
            AUTHENTICATE,
            json!({ "bay": global_id("Bay", bay.bay_id), "method": "CODE", "credential": code }),
        )
    }))
    .await;
    let opened = answers
        .iter()
        .filter(|b| b["data"]["terminalAuthenticate"]["session"]["id"].is_string())
        .count();
    assert_eq!(opened, 1, "{answers:?}");
    for body in answers.iter().filter(|b| b["errors"].is_array()) {
        assert_eq!(error(body), ("CONFLICT", "BAY_UNAVAILABLE"), "{body}");
    }
    let open = voltgate::entities::charging_session::Entity::find()
        .filter(voltgate::entities::charging_session::Column::EndedAt.is_null())
        .all(&app.db)
        .await
        .expect("rows");
    assert_eq!(open.len(), 1);
}

#[tokio::test]
async fn technicians_follow_the_sessions_of_their_stations_only() {
    let app = spawn_app().await;
    let bays = app.seed(2, 1, 1).await;
    let bay = &bays[0];
    let own = TestUser::technician(&app, "tom", &[bay.station_id]).await;
    let other = TestUser::technician(&app, "tim", &[bays[1].station_id]).await;
    let staff = TestUser::staff(&app, "warden").await;
    let follow = |user: &TestUser| {
        crate::helpers::Subscription::start_with(
            app.addr,
            "graphql-transport-ws",
            json!({ "authorization": format!("Bearer {}", user.token) }),
            "subscription { chargeStateChanged { state bayId } }",
            json!({}),
        )
    };
    let mut own_sub = follow(&own).await;
    let mut other_sub = follow(&other).await;
    let mut staff_sub = follow(&staff).await;

    let customer = TestUser::customer(&app, "cleo").await;
    let (_, code) = reserve(&customer, bay, "CODE").await;
    let device = app.listening_device(bay).await;
    let kiosk = kiosk_for(&app, bay).await;
    kiosk
        .gql(
            AUTHENTICATE,
            json!({ "bay": global_id("Bay", bay.bay_id), "method": "CODE", "credential": code }),
        )
        .await;
    answer(&device, "unlock", "done").await;
    for subscription in [&mut own_sub, &mut staff_sub] {
        loop {
            let event = subscription.next_event().await;
            let change = &event["data"]["chargeStateChanged"];
            assert_eq!(change["bayId"], global_id("Bay", bay.bay_id), "{event}");
            if change["state"] == "WAITING_PLUG" {
                break;
            }
        }
    }
    assert!(
        other_sub
            .try_next(std::time::Duration::from_millis(300))
            .await
            .is_none(),
        "another station's technician sees nothing"
    );
}
