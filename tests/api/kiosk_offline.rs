//! Offline kiosks: the signed cache of a cabinet's reservations, checked with
//! nothing but the public key, and the upload of events accepted offline,
//! reconciled once each (applied, duplicate, conflict with its reason).

use sea_orm::{ColumnTrait, EntityTrait as _, PaginatorTrait as _, QueryFilter};
use serde_json::{Value, json};

use crate::charging_sessions::{error, kiosk_for, reserve};
use crate::checkin::{sha256_hex, verified};
use crate::client::TestUser;
use crate::helpers::{TestApp, global_id, spawn_app};
use voltgate::entities::{charging_session, kiosk_offline_event, reservation};

const CACHE: &str = "{ terminal { signingKey signingKeyId } terminalOfflineCache { document signature publicKey keyId } }";
const UPLOAD: &str = "mutation($events: [OfflineKioskEventInput!]!) {
  terminalUploadEvents(input: { events: $events }) {
    results { eventId outcome recorded reason detail sessionId } } }";

/// The kiosk's cache, verified with the key it keeps from `terminal`.
async fn cache(kiosk: &TestUser) -> Value {
    let body = kiosk.gql(CACHE, json!({})).await;
    let key = body["data"]["terminal"]["signingKey"]
        .as_str()
        .unwrap_or_else(|| panic!("{body}"));
    assert_eq!(
        body["data"]["terminalOfflineCache"]["keyId"], body["data"]["terminal"]["signingKeyId"],
        "{body}"
    );
    verified(key, &body["data"]["terminalOfflineCache"])
}

fn entry<'a>(document: &'a Value, reservation: &Value) -> Option<&'a Value> {
    document["reservations"]
        .as_array()?
        .iter()
        .find(|e| e["id"] == *reservation)
}

fn event(kind: &str, bay: i32, reservation: &Value, at: chrono::DateTime<chrono::Utc>) -> Value {
    json!({ "eventId": uuid::Uuid::new_v4().to_string(), "kind": kind,
        "bay": global_id("Bay", bay), "reservation": reservation, "at": at.to_rfc3339() })
}

async fn upload(kiosk: &TestUser, events: &[Value]) -> Vec<Value> {
    let body = kiosk.gql(UPLOAD, json!({ "events": events })).await;
    body["data"]["terminalUploadEvents"]["results"]
        .as_array()
        .unwrap_or_else(|| panic!("{body}"))
        .clone()
}

async fn stored_events(app: &TestApp) -> u64 {
    kiosk_offline_event::Entity::find()
        .count(&app.db)
        .await
        .expect("count")
}

async fn sessions(app: &TestApp) -> Vec<charging_session::Model> {
    charging_session::Entity::find()
        .all(&app.db)
        .await
        .expect("sessions")
}

#[tokio::test]
async fn a_kiosk_verifies_its_cache_with_the_public_key_and_checks_codes_without_the_server() {
    let app = spawn_app().await;
    let bays = app.seed(1, 1, 2).await;
    let customer = TestUser::customer(&app, "olga").await;
    let (code_id, code) = reserve(&customer, &bays[0], "CODE").await;
    let (qr_id, qr) = reserve(&customer, &bays[1], "QR").await;
    let kiosk = kiosk_for(&app, &bays[0]).await;

    let document = cache(&kiosk).await;
    assert_eq!(document["kind"], "voltgate.kiosk.offline", "{document}");
    let issued = document["issued_at"].as_str().unwrap_or_default();
    let expires = document["expires_at"].as_str().unwrap_or_default();
    assert!(
        expires > issued,
        "the cache expires after it is issued: {document}"
    );
    assert_eq!(document["bays"].as_array().map(Vec::len), Some(2));
    let text = document.to_string();
    assert!(!text.contains(&code), "the code itself is not in the cache");
    let salt = document["salt"].as_str().expect("a salt");

    // The kiosk checks a typed code as the document says: no server involved.
    let entry_of_code = entry(&document, &code_id).expect("the code reservation");
    assert_eq!(entry_of_code["access_mode"], "code");
    assert_eq!(entry_of_code["bay_number"], bays[0].number);
    let reference = entry_of_code["reference"].as_str().expect("reference");
    let check = |secret: &str| {
        sha256_hex(&format!(
            "{salt}:{}",
            sha256_hex(&format!("{reference}:{secret}"))
        ))
    };
    assert_eq!(entry_of_code["credential_hash"], check(&code).as_str());
    let wrong = if code == "00000000" {
        "11111111"
    } else {
        "00000000"
    };
    assert_ne!(entry_of_code["credential_hash"], check(wrong).as_str());

    // A QR code: its content names the reference and the secret.
    let entry_of_qr = entry(&document, &qr_id).expect("the QR reservation");
    let (qr_reference, qr_secret) = qr
        .strip_prefix("voltgate:reservation:")
        .and_then(|rest| rest.split_once(':'))
        .expect("QR content");
    assert_eq!(entry_of_qr["reference"], qr_reference);
    assert_eq!(
        entry_of_qr["credential_hash"],
        sha256_hex(&format!(
            "{salt}:{}",
            sha256_hex(&format!("{qr_reference}:{qr_secret}"))
        ))
        .as_str()
    );

    // Each cache has its own salt; a cancelled reservation is no longer in it.
    let cancelled = customer
        .gql(
            "mutation($id: ID!) { cancelReservation(input: { id: $id }) { reservation { status } } }",
            json!({ "id": qr_id }),
        )
        .await;
    assert_eq!(
        cancelled["data"]["cancelReservation"]["reservation"]["status"], "CANCELLED",
        "{cancelled}"
    );
    let again = cache(&kiosk).await;
    assert_ne!(again["salt"], document["salt"]);
    assert!(entry(&again, &qr_id).is_none(), "{again}");
    assert!(entry(&again, &code_id).is_some(), "{again}");
}

#[tokio::test]
async fn offline_events_apply_once_and_an_upload_repeated_is_a_duplicate() {
    let app = spawn_app().await;
    let bays = app.seed(1, 1, 1).await;
    let bay = &bays[0];
    let customer = TestUser::customer(&app, "paul").await;
    let (reservation_id, code) = reserve(&customer, bay, "CODE").await;
    let kiosk = kiosk_for(&app, bay).await;
    let now = chrono::Utc::now();

    let mut authenticated = event("AUTHENTICATED", bay.bay_id, &reservation_id, now);
    authenticated["method"] = json!("CODE");
    authenticated["credential"] = json!(code);
    let started = event("SESSION_STARTED", bay.bay_id, &reservation_id, now);
    let batch = [authenticated, started];
    let results = upload(&kiosk, &batch).await;
    assert_eq!(results.len(), 2);
    for result in &results {
        assert_eq!(result["outcome"], "APPLIED", "{result}");
        assert_eq!(result["recorded"], "APPLIED", "{result}");
    }
    let session_id = results[1]["sessionId"].clone();
    assert!(session_id.is_string(), "{}", results[1]);
    let opened = sessions(&app).await;
    assert_eq!(opened.len(), 1);
    assert_eq!(
        opened[0].state,
        voltgate::entities::charging_session::SessionState::WaitingPlug,
        "the kiosk unlocked the bay itself"
    );
    let attempts = voltgate::entities::charging_auth_attempt::Entity::find()
        .count(&app.db)
        .await
        .expect("count");

    // The kiosk did not hear the answer and uploads the same events again.
    let again = upload(&kiosk, &batch).await;
    for (first, second) in results.iter().zip(&again) {
        assert_eq!(second["outcome"], "DUPLICATE", "{second}");
        assert_eq!(second["recorded"], first["recorded"], "{second}");
        assert_eq!(second["sessionId"], first["sessionId"], "{second}");
    }
    assert_eq!(sessions(&app).await.len(), 1, "no second session");
    assert_eq!(stored_events(&app).await, 2, "nothing new stored");
    assert_eq!(
        voltgate::entities::charging_auth_attempt::Entity::find()
            .count(&app.db)
            .await
            .expect("count"),
        attempts,
        "no attempt recorded twice"
    );

    // The session ends at the bay, offline too.
    let stopped = upload(
        &kiosk,
        &[event(
            "SESSION_STOPPED",
            bay.bay_id,
            &reservation_id,
            chrono::Utc::now(),
        )],
    )
    .await;
    assert_eq!(stopped[0]["outcome"], "APPLIED", "{}", stopped[0]);
    assert_eq!(stopped[0]["sessionId"], session_id);
    let ended = sessions(&app).await;
    assert_eq!(
        ended[0].state,
        voltgate::entities::charging_session::SessionState::Stopped
    );
    let row = reservation::Entity::find()
        .one(&app.db)
        .await
        .expect("query")
        .expect("reservation");
    assert_eq!(
        row.status,
        voltgate::entities::reservation::ReservationStatus::Completed
    );
}

#[tokio::test]
async fn events_in_conflict_are_stored_with_their_reason_and_change_nothing() {
    let app = spawn_app().await;
    let bays = app.seed(1, 1, 1).await;
    let bay = &bays[0];
    let customer = TestUser::customer(&app, "rita").await;
    let (reservation_id, _) = reserve(&customer, bay, "CODE").await;
    let (badge_reservation, _) = {
        // An RFID reservation needs a badge on the account.
        let added = customer
            .gql(
                "mutation { addRfidBadge(input: { uid: \"04A1B2C3D4\" }) { authMethod { id } } }",
                json!({}),
            )
            .await;
        let badge = added["data"]["addRfidBadge"]["authMethod"]["id"].clone();
        assert!(badge.is_string(), "{added}");
        let later = chrono::Utc::now() + chrono::TimeDelta::hours(2);
        let body = customer
            .gql(
                "mutation($input: CreateReservationInput!) { createReservation(input: $input) { reservation { id } } }",
                json!({ "input": { "bayId": global_id("Bay", bay.bay_id), "startsAt": later.to_rfc3339(),
                    "durationMinutes": 30, "accessMode": "RFID", "badgeId": badge } }),
            )
            .await;
        assert!(body["errors"].is_null(), "{body}");
        (
            body["data"]["createReservation"]["reservation"]["id"].clone(),
            body,
        )
    };
    let kiosk = kiosk_for(&app, bay).await;
    let cancelled = customer
        .gql(
            "mutation($id: ID!) { cancelReservation(input: { id: $id }) { reservation { status } } }",
            json!({ "id": reservation_id }),
        )
        .await;
    assert!(cancelled["errors"].is_null(), "{cancelled}");

    let now = chrono::Utc::now();
    let results = upload(
        &kiosk,
        &[
            event("SESSION_STARTED", bay.bay_id, &reservation_id, now),
            event(
                "AUTHENTICATED",
                bay.bay_id,
                &reservation_id,
                now + chrono::TimeDelta::hours(1),
            ),
            event("SESSION_STARTED", bay.bay_id, &badge_reservation, now),
            event("SESSION_STOPPED", bay.bay_id, &reservation_id, now),
        ],
    )
    .await;
    let reasons: Vec<(&str, &str)> = results
        .iter()
        .map(|r| {
            (
                r["outcome"].as_str().unwrap_or_default(),
                r["reason"].as_str().unwrap_or_default(),
            )
        })
        .collect();
    assert_eq!(
        reasons,
        [
            ("CONFLICT", "RESERVATION_CANCELLED"),
            ("CONFLICT", "CLOCK_SKEW"),
            ("CONFLICT", "OUTSIDE_WINDOW"),
            ("CONFLICT", "NO_OPEN_SESSION"),
        ],
        "{results:?}"
    );
    assert!(sessions(&app).await.is_empty(), "no session opened");
    // Every event is kept, with its reason.
    let kept = kiosk_offline_event::Entity::find()
        .filter(kiosk_offline_event::Column::Outcome.eq("conflict"))
        .all(&app.db)
        .await
        .expect("events");
    assert_eq!(kept.len(), 4);
    assert!(
        kept.iter()
            .all(|e| e.reason.is_some() && e.detail.is_some())
    );
    // Uploaded again: the same answer, nothing new.
    let again = upload(
        &kiosk,
        &[json!({ "eventId": results[0]["eventId"], "kind": "SESSION_STARTED",
            "bay": global_id("Bay", bay.bay_id), "reservation": reservation_id, "at": now.to_rfc3339() })],
    )
    .await;
    assert_eq!(again[0]["outcome"], "DUPLICATE");
    assert_eq!(again[0]["recorded"], "CONFLICT");
    assert_eq!(again[0]["reason"], "RESERVATION_CANCELLED");
    assert_eq!(stored_events(&app).await, 4);

    // Staff see what the kiosks uploaded, newest first, by outcome.
    const EVENTS: &str = "query($filter: KioskOfflineEventFilter) { kioskOfflineEvents(filter: $filter, first: 10) {
        totalCount nodes { eventId kind outcome reason detail occurredAt receivedAt cabinetId } } }";
    let staff = TestUser::staff(&app, "overseer").await;
    let conflicts = staff
        .gql(EVENTS, json!({ "filter": { "outcome": "CONFLICT" } }))
        .await;
    let listed = &conflicts["data"]["kioskOfflineEvents"];
    assert_eq!(listed["totalCount"], 4, "{conflicts}");
    let ids: Vec<&Value> = listed["nodes"]
        .as_array()
        .map(|n| n.iter().map(|e| &e["eventId"]).collect())
        .unwrap_or_default();
    let uploaded: Vec<&Value> = results.iter().rev().map(|r| &r["eventId"]).collect();
    assert_eq!(ids, uploaded, "newest first");
    assert_eq!(listed["nodes"][3]["reason"], "RESERVATION_CANCELLED");
    assert_eq!(listed["nodes"][3]["kind"], "session_started");
    assert_eq!(
        listed["nodes"][3]["cabinetId"],
        global_id("Cabinet", kept[0].cabinet_id).as_str()
    );
    let applied = staff
        .gql(EVENTS, json!({ "filter": { "outcome": "APPLIED" } }))
        .await;
    assert_eq!(
        applied["data"]["kioskOfflineEvents"]["totalCount"], 0,
        "{applied}"
    );
    let duplicate = staff
        .gql(EVENTS, json!({ "filter": { "outcome": "DUPLICATE" } }))
        .await;
    assert_eq!(
        duplicate["errors"][0]["extensions"]["field"], "outcome",
        "{duplicate}"
    );
    let refused = customer.gql(EVENTS, json!({})).await;
    assert_eq!(
        refused["errors"][0]["extensions"]["code"], "FORBIDDEN",
        "{refused}"
    );
}

#[tokio::test]
async fn only_the_cabinets_own_kiosk_reads_its_cache_and_uploads_for_its_bays() {
    let app = spawn_app().await;
    let bays = app.seed(1, 2, 1).await;
    let customer = TestUser::customer(&app, "sven").await;
    let (reservation_id, _) = reserve(&customer, &bays[0], "CODE").await;
    let event = event(
        "SESSION_STARTED",
        bays[0].bay_id,
        &reservation_id,
        chrono::Utc::now(),
    );

    for body in [
        customer.gql(CACHE, json!({})).await,
        customer
            .gql(UPLOAD, json!({ "events": [event.clone()] }))
            .await,
    ] {
        assert_eq!(error(&body).0, "FORBIDDEN", "{body}");
    }
    let unsigned = app
        .graphql(UPLOAD, json!({ "events": [event.clone()] }))
        .await;
    assert_eq!(error(&unsigned).0, "UNAUTHENTICATED", "{unsigned}");

    // The other cabinet's kiosk names this cabinet's bay: refused, nothing stored.
    let other = kiosk_for(&app, &bays[1]).await;
    let refused = other
        .gql(UPLOAD, json!({ "events": [event.clone()] }))
        .await;
    assert_eq!(error(&refused).0, "FORBIDDEN", "{refused}");
    assert_eq!(stored_events(&app).await, 0);
    assert!(sessions(&app).await.is_empty());
    // Its cache lists its own cabinet only.
    let document = cache(&other).await;
    assert!(entry(&document, &reservation_id).is_none(), "{document}");

    // Bad input is refused before anything is stored.
    let mut bad = event.clone();
    bad["eventId"] = json!("not-a-uuid");
    let own = kiosk_for(&app, &bays[0]).await;
    let body = own.gql(UPLOAD, json!({ "events": [bad] })).await;
    assert_eq!(error(&body).0, "BAD_USER_INPUT", "{body}");
    let body = own.gql(UPLOAD, json!({ "events": [] })).await;
    assert_eq!(error(&body).0, "BAD_USER_INPUT", "{body}");
    assert_eq!(stored_events(&app).await, 0);
}

#[tokio::test]
async fn the_demo_books_a_reservation_usable_now_upcoming_ones_and_a_session_charging_once() {
    let app = spawn_app().await;
    let bays = app.seed(1, 1, 3).await;
    let demo = voltgate::charging::demo::seed(&app.db)
        .await
        .expect("the demo runs")
        .expect("reservations and a session");
    assert_eq!(demo.upcoming, 3);
    // The printed code opens the reservation usable now: the kiosk's cache says so.
    let kiosk = kiosk_for(&app, &bays[0]).await;
    let document = cache(&kiosk).await;
    let salt = document["salt"].as_str().expect("salt");
    let usable = document["reservations"]
        .as_array()
        .and_then(|all| {
            all.iter()
                .find(|e| e["reference"] == demo.reference.as_str())
        })
        .unwrap_or_else(|| panic!("{document}"));
    assert_eq!(usable["bay_number"], demo.bay_number);
    assert_eq!(
        usable["credential_hash"],
        sha256_hex(&format!(
            "{salt}:{}",
            sha256_hex(&format!("{}:{}", demo.reference, demo.code))
        ))
        .as_str()
    );
    // The session charges, with its meter's readings.
    let session = charging_session::Entity::find_by_id(demo.session_id)
        .one(&app.db)
        .await
        .expect("query")
        .expect("the session");
    assert_eq!(
        session.state,
        voltgate::entities::charging_session::SessionState::Charging
    );
    assert!(session.energy_kwh.is_some_and(|e| e > 0.0));
    let readings = voltgate::entities::session_telemetry::Entity::find()
        .filter(voltgate::entities::session_telemetry::Column::SessionId.eq(demo.session_id))
        .count(&app.db)
        .await
        .expect("count");
    assert_eq!(readings, 10);
    // The driver signs in with the printed password and sees it all.
    let login = app
        .graphql(
            "mutation($l: String!, $p: String!) { login(input: { login: $l, password: $p }) { accessToken } }",
            json!({ "l": demo.driver.username, "p": demo.driver.password }),
        )
        .await;
    let driver = TestUser::bearer(
        &app,
        login["data"]["login"]["accessToken"]
            .as_str()
            .unwrap_or_else(|| panic!("{login}")),
    );
    let board = driver
        .gql(
            "{ chargingDashboard { upcomingReservations activeReservations } }",
            json!({}),
        )
        .await;
    let board = &board["data"]["chargingDashboard"];
    // The one usable now waits for the driver; the charging one is in use.
    assert_eq!(board["upcomingReservations"], 4, "{board}");
    assert_eq!(board["activeReservations"], 1, "{board}");
    assert!(
        voltgate::charging::demo::seed(&app.db)
            .await
            .expect("the demo runs")
            .is_none(),
        "only once"
    );
}

#[tokio::test]
async fn two_uploads_of_one_event_at_once_open_one_session() {
    let app = spawn_app().await;
    let bays = app.seed(1, 1, 1).await;
    let bay = &bays[0];
    let customer = TestUser::customer(&app, "tess").await;
    let (reservation_id, _) = reserve(&customer, bay, "CODE").await;
    let kiosk = kiosk_for(&app, bay).await;
    let started = [event(
        "SESSION_STARTED",
        bay.bay_id,
        &reservation_id,
        chrono::Utc::now(),
    )];
    let (first, second) = tokio::join!(upload(&kiosk, &started), upload(&kiosk, &started));
    let mut outcomes = [
        first[0]["outcome"].as_str().unwrap_or_default(),
        second[0]["outcome"].as_str().unwrap_or_default(),
    ];
    outcomes.sort_unstable();
    assert_eq!(outcomes, ["APPLIED", "DUPLICATE"], "{first:?} {second:?}");
    assert_eq!(first[0]["recorded"], "APPLIED", "{first:?}");
    assert_eq!(second[0]["recorded"], "APPLIED", "{second:?}");
    assert_eq!(first[0]["sessionId"], second[0]["sessionId"]);
    assert_eq!(sessions(&app).await.len(), 1);
    assert_eq!(stored_events(&app).await, 1);
}

#[tokio::test]
async fn a_badge_accepted_offline_is_checked_by_the_server_when_uploaded() {
    let app = spawn_app().await;
    let bays = app.seed(1, 1, 1).await;
    let bay = &bays[0];
    let customer = TestUser::customer(&app, "uma").await;
    let added = customer
        .gql(
            "mutation { addRfidBadge(input: { uid: \"04C0FFEE42\" }) { authMethod { id } } }",
            json!({}),
        )
        .await;
    let badge = added["data"]["addRfidBadge"]["authMethod"]["id"].clone();
    let starts = (chrono::Utc::now() + chrono::TimeDelta::minutes(1)).to_rfc3339();
    let body = customer
        .gql(
            "mutation($input: CreateReservationInput!) { createReservation(input: $input) { reservation { id } } }",
            json!({ "input": { "bayId": global_id("Bay", bay.bay_id), "startsAt": starts,
                "durationMinutes": 30, "accessMode": "RFID", "badgeId": badge } }),
        )
        .await;
    let reservation_id = body["data"]["createReservation"]["reservation"]["id"].clone();
    assert!(reservation_id.is_string(), "{body}");
    let kiosk = kiosk_for(&app, bay).await;
    // The cache lists it without a verifier: the badge key stays on the server.
    let document = cache(&kiosk).await;
    let listed = entry(&document, &reservation_id).unwrap_or_else(|| panic!("{document}"));
    assert_eq!(listed["access_mode"], "rfid");
    assert!(listed["credential_hash"].is_null(), "{listed}");

    let now = chrono::Utc::now();
    let mut without = event("AUTHENTICATED", bay.bay_id, &reservation_id, now);
    without["method"] = json!("RFID");
    let mut wrong = without.clone();
    wrong["eventId"] = json!(uuid::Uuid::new_v4().to_string());
    wrong["credential"] = json!("04C0FFEE43");
    let mut right = without.clone();
    right["eventId"] = json!(uuid::Uuid::new_v4().to_string());
    right["credential"] = json!("04:c0:ff:ee:42");
    let results = upload(&kiosk, &[without, wrong, right]).await;
    let answers: Vec<(&str, &str)> = results
        .iter()
        .map(|r| {
            (
                r["outcome"].as_str().unwrap_or_default(),
                r["reason"].as_str().unwrap_or_default(),
            )
        })
        .collect();
    assert_eq!(
        answers,
        [
            ("CONFLICT", "CREDENTIAL_REQUIRED"),
            ("CONFLICT", "INVALID_CREDENTIAL"),
            ("APPLIED", ""),
        ],
        "{results:?}"
    );
}
