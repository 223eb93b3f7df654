//! Charging seen by staff and customers beyond a single reservation: no-shows
//! expiring, staff lists of reservations and sessions, the customer's
//! dashboard and authentication history, codes sent through the outbox, and
//! maintenance windows.

use std::sync::Arc;
use std::time::Duration;

use chrono::{DurationRound as _, TimeDelta, Utc};
use sea_orm::{ColumnTrait, EntityTrait, QueryFilter};
use serde_json::{Value, json};
use voltgate::auth::rate_limit::RateLimiter;
use voltgate::entities::reservation::ReservationStatus;
use voltgate::entities::{notification_outbox, reservation};
use voltgate::jobs::Job;
use voltgate::services::{ManualClock, ServiceContext};

use crate::client::{TestUser, keys};
use crate::helpers::{SeededBay, TestApp, global_id, spawn_app};

const RESERVE: &str =
    "mutation($input: CreateReservationInput!) { createReservation(input: $input) {
  reservation { id referenceCode status } access { content } } }";

fn error(body: &Value) -> (&str, &str) {
    let ext = &body["errors"][0]["extensions"];
    (
        ext["code"].as_str().unwrap_or("none"),
        ext["reason"].as_str().unwrap_or("none"),
    )
}

/// The start of the current minute, plus `minutes`.
fn minute_from_now(minutes: i64) -> chrono::DateTime<Utc> {
    Utc::now()
        .duration_trunc(TimeDelta::minutes(1))
        .expect("truncates")
        + TimeDelta::minutes(minutes)
}

/// A reservation of `bay` starting at `starts`; its global ID and access content.
async fn reserve_at(
    customer: &TestUser,
    bay: &SeededBay,
    starts: chrono::DateTime<Utc>,
    mode: &str,
) -> (String, String) {
    let body = customer
        .gql(
            RESERVE,
            json!({ "input": { "bayId": global_id("Bay", bay.bay_id), "startsAt": starts.to_rfc3339(),
            "durationMinutes": 30, "accessMode": mode } }),
        )
        .await;
    let created = &body["data"]["createReservation"];
    (
        created["reservation"]["id"]
            .as_str()
            .unwrap_or_else(|| panic!("{body}"))
            .to_owned(),
        created["access"]["content"]
            .as_str()
            .unwrap_or_default()
            .to_owned(),
    )
}

/// The server's services with a clock of their own, as a replica's job runner has.
fn services_at(app: &TestApp, clock: Arc<ManualClock>) -> ServiceContext {
    let mut services = ServiceContext::new(
        app.db.clone(),
        app.bus.clone(),
        Arc::new(keys()),
        Arc::new(RateLimiter::disabled()),
    );
    services.clock = clock;
    services
}

async fn status_of(app: &TestApp, reference: &str) -> ReservationStatus {
    reservation::Entity::find()
        .filter(reservation::Column::Id.eq(voltgate_id(reference)))
        .one(&app.db)
        .await
        .expect("query")
        .expect("the reservation")
        .status
}

/// The database ID behind a global ID.
fn voltgate_id(global: &str) -> i32 {
    use voltgate::graphql::ids::{Kind, decode};
    decode(&global.into(), Kind::RESERVATION, "id")
        .unwrap_or_else(|_| panic!("not an ID: {global}"))
}

#[tokio::test]
async fn a_no_show_expires_once_after_the_grace_period_frees_the_bay_and_notifies_its_owner() {
    let app = spawn_app().await;
    let bays = app.seed(1, 1, 2).await;
    let cleo = TestUser::customer(&app, "cleo").await;
    let (missed, _) = reserve_at(&cleo, &bays[0], minute_from_now(0), "CODE").await;
    let (later, _) = reserve_at(&cleo, &bays[1], minute_from_now(60), "QR").await;
    let bay = voltgate::entities::bay::Entity::find_by_id(bays[0].bay_id)
        .one(&app.db)
        .await
        .expect("query")
        .expect("bay");
    assert_eq!(bay.status, voltgate::entities::BayStatus::Reserved);
    let mut watch = app
        .subscribe(
            "graphql-transport-ws",
            "subscription($bay: ID) { bayStatusChanged(bayId: $bay) { bay { status } } }",
            json!({ "bay": global_id("Bay", bays[0].bay_id) }),
        )
        .await;
    // A subscription has no ready signal: give it a moment.
    tokio::time::sleep(Duration::from_millis(300)).await;

    let clock = Arc::new(ManualClock::at(Utc::now() + TimeDelta::minutes(10)));
    let services = services_at(&app, clock.clone());
    let job = voltgate::charging::no_show::ExpireNoShows;
    job.run(&services).await.expect("runs");
    assert_eq!(
        status_of(&app, &missed).await,
        ReservationStatus::Confirmed,
        "within the grace period"
    );

    // Past the grace period, four replicas run the job at once.
    clock.advance(TimeDelta::minutes(7));
    let runs = (0..4).map(|_| {
        let services = services.clone();
        tokio::spawn(async move {
            voltgate::charging::no_show::ExpireNoShows
                .run(&services)
                .await
        })
    });
    for run in futures_util::future::join_all(runs).await {
        run.expect("joins").expect("runs");
    }
    assert_eq!(status_of(&app, &missed).await, ReservationStatus::Cancelled);
    assert_eq!(status_of(&app, &later).await, ReservationStatus::Confirmed);
    let queued = notification_outbox::Entity::find()
        .filter(notification_outbox::Column::Template.eq("reservation_expired"))
        .all(&app.db)
        .await
        .expect("query");
    assert_eq!(queued.len(), 1, "one notification, whoever ran: {queued:?}");
    assert_eq!(queued[0].user_id, cleo.id.expect("id"));
    assert!(queued[0].payload.contains("no_show"));
    let event = tokio::time::timeout(Duration::from_secs(5), watch.next_event())
        .await
        .expect("a bayStatusChanged event");
    assert_eq!(
        event["data"]["bayStatusChanged"]["bay"]["status"], "AVAILABLE",
        "{event}"
    );

    let body = cleo
        .gql(
            "query($id: ID!) { reservation(id: $id) { status access { active } } }",
            json!({ "id": missed }),
        )
        .await;
    assert_eq!(body["data"]["reservation"]["status"], "CANCELLED", "{body}");
    assert_eq!(
        body["data"]["reservation"]["access"]["active"], false,
        "{body}"
    );
}

const AUTHENTICATE: &str = "mutation($bay: ID!, $method: AccessMode!, $credential: String!) {
  terminalAuthenticate(input: { bay: $bay, method: $method, credential: $credential }) {
    session { id state } } }";
const STAFF_RESERVATIONS: &str = "query($period: ChargingPeriod = UPCOMING, $status: ReservationStatus, $filter: ChargingListFilter = {}, $first: Int, $after: String) {
  reservations(period: $period, status: $status, filter: $filter, first: $first, after: $after) {
    totalCount pageInfo { hasNextPage endCursor } nodes { id status } } }";
const STAFF_SESSIONS: &str =
    "query($period: ChargingPeriod = ACTIVE, $filter: ChargingListFilter = {}) {
  chargingSessions(period: $period, filter: $filter) { totalCount nodes { id state bayId } } }";

/// The kiosk's `terminalAuthenticate` with a reservation code.
async fn enter_code(kiosk: &TestUser, bay: &str, code: &str) -> Value {
    kiosk
        .gql(
            AUTHENTICATE,
            json!({ "bay": bay, "method": "CODE", "credential": code }),
        )
        .await
}

async fn kiosk_for(app: &TestApp, bay: &SeededBay) -> TestUser {
    let row = voltgate::entities::bay::Entity::find_by_id(bay.bay_id)
        .one(&app.db)
        .await
        .expect("query")
        .expect("the bay");
    TestUser::kiosk(app, row.cabinet_id)
}

fn total(body: &Value, field: &str) -> u64 {
    body["data"][field]["totalCount"]
        .as_u64()
        .unwrap_or_else(|| panic!("{body}"))
}

#[tokio::test]
async fn staff_list_reservations_and_sessions_by_period_and_filter_and_customers_see_their_dashboard_and_history()
 {
    let app = spawn_app().await;
    let bays = app.seed(2, 1, 1).await;
    let (here, there) = (&bays[0], &bays[1]);
    assert_ne!(here.station_id, there.station_id);
    let staff = TestUser::staff(&app, "warden").await;
    let cleo = TestUser::customer(&app, "cleo").await;
    let dan = TestUser::customer(&app, "dan").await;

    let (now_slot, code) = reserve_at(&cleo, here, minute_from_now(0), "CODE").await;
    let (soon, _) = reserve_at(&cleo, there, minute_from_now(120), "QR").await;
    let (dans, _) = reserve_at(&dan, here, minute_from_now(180), "CODE").await;
    let (dropped, _) = reserve_at(&cleo, there, minute_from_now(300), "CODE").await;
    let body = cleo
        .gql("mutation($id: ID!) { cancelReservation(input: { id: $id }) { reservation { status } } }", json!({ "id": dropped }))
        .await;
    assert_eq!(
        body["data"]["cancelReservation"]["reservation"]["status"], "CANCELLED",
        "{body}"
    );

    let list = |period: &'static str, filter: Value| {
        let staff = &staff;
        async move {
            staff
                .gql(
                    STAFF_RESERVATIONS,
                    json!({ "period": period, "filter": filter }),
                )
                .await
        }
    };
    assert_eq!(total(&list("UPCOMING", json!({})).await, "reservations"), 2);
    assert_eq!(total(&list("ACTIVE", json!({})).await, "reservations"), 1);
    let archived = list("ARCHIVED", json!({})).await;
    assert_eq!(total(&archived, "reservations"), 1);
    assert_eq!(
        archived["data"]["reservations"]["nodes"][0]["id"],
        dropped.as_str()
    );
    let by_station = list(
        "UPCOMING",
        json!({ "stationId": global_id("Station", there.station_id) }),
    )
    .await;
    assert_eq!(total(&by_station, "reservations"), 1);
    assert_eq!(
        by_station["data"]["reservations"]["nodes"][0]["id"],
        soon.as_str()
    );
    let by_user = list(
        "UPCOMING",
        json!({ "userId": global_id("User", dan.id.expect("id")) }),
    )
    .await;
    assert_eq!(
        by_user["data"]["reservations"]["nodes"][0]["id"],
        dans.as_str(),
        "{by_user}"
    );
    assert_eq!(total(&by_user, "reservations"), 1);
    let by_bay = list(
        "UPCOMING",
        json!({ "bayId": global_id("Bay", here.bay_id) }),
    )
    .await;
    assert_eq!(total(&by_bay, "reservations"), 1);
    // Slots overlapping [+150 min, +200 min): Dan's only (Cleo's ends at +150).
    let in_range = list(
        "UPCOMING",
        json!({ "from": minute_from_now(150).to_rfc3339(), "to": minute_from_now(200).to_rfc3339() }),
    )
    .await;
    assert_eq!(total(&in_range, "reservations"), 1, "{in_range}");
    let reversed = list(
        "UPCOMING",
        json!({ "from": minute_from_now(200).to_rfc3339(), "to": minute_from_now(150).to_rfc3339() }),
    )
    .await;
    assert_eq!(error(&reversed).0, "BAD_USER_INPUT", "{reversed}");
    let cancelled = staff
        .gql(
            STAFF_RESERVATIONS,
            json!({ "period": "ARCHIVED", "status": "COMPLETED" }),
        )
        .await;
    assert_eq!(total(&cancelled, "reservations"), 0);

    // Relay pages: one at a time, in order, each once.
    let first = staff
        .gql(
            STAFF_RESERVATIONS,
            json!({ "period": "UPCOMING", "first": 1 }),
        )
        .await;
    let page = &first["data"]["reservations"];
    assert_eq!(page["pageInfo"]["hasNextPage"], true, "{first}");
    let second = staff
        .gql(
            STAFF_RESERVATIONS,
            json!({ "period": "UPCOMING", "first": 1, "after": page["pageInfo"]["endCursor"] }),
        )
        .await;
    let next = &second["data"]["reservations"];
    assert_eq!(next["pageInfo"]["hasNextPage"], false, "{second}");
    assert_ne!(next["nodes"][0]["id"], page["nodes"][0]["id"]);

    let refused = cleo.gql(STAFF_RESERVATIONS, json!({})).await;
    assert_eq!(error(&refused).0, "FORBIDDEN", "{refused}");

    // Cleo opens her slot at the kiosk after one wrong code.
    let kiosk = kiosk_for(&app, here).await;
    let wrong = enter_code(&kiosk, &global_id("Bay", here.bay_id), "00000000").await;
    assert_eq!(
        error(&wrong),
        ("FORBIDDEN", "INVALID_CREDENTIAL"),
        "{wrong}"
    );
    let opened = enter_code(&kiosk, &global_id("Bay", here.bay_id), &code).await;
    let session = opened["data"]["terminalAuthenticate"]["session"]["id"]
        .as_str()
        .unwrap_or_else(|| panic!("{opened}"))
        .to_owned();

    let sessions = staff.gql(STAFF_SESSIONS, json!({})).await;
    assert_eq!(total(&sessions, "chargingSessions"), 1);
    assert_eq!(
        sessions["data"]["chargingSessions"]["nodes"][0]["id"],
        session.as_str()
    );
    let elsewhere = staff
        .gql(
            STAFF_SESSIONS,
            json!({ "filter": { "bayId": global_id("Bay", there.bay_id) } }),
        )
        .await;
    assert_eq!(total(&elsewhere, "chargingSessions"), 0);
    let ended = staff
        .gql(STAFF_SESSIONS, json!({ "period": "ARCHIVED" }))
        .await;
    assert_eq!(total(&ended, "chargingSessions"), 0);
    let local = TestUser::technician(&app, "tess", &[here.station_id]).await;
    assert_eq!(
        total(
            &local.gql(STAFF_SESSIONS, json!({})).await,
            "chargingSessions"
        ),
        1
    );
    let remote = TestUser::technician(&app, "tom", &[there.station_id]).await;
    assert_eq!(
        total(
            &remote.gql(STAFF_SESSIONS, json!({})).await,
            "chargingSessions"
        ),
        0
    );
    let refused = cleo.gql(STAFF_SESSIONS, json!({})).await;
    assert_eq!(error(&refused).0, "FORBIDDEN", "{refused}");
    let refused = kiosk.gql(STAFF_SESSIONS, json!({})).await;
    assert_eq!(error(&refused).0, "FORBIDDEN", "{refused}");

    // Cleo's dashboard and authentication history; Dan's history is empty.
    let board = cleo
        .gql(
            "{ chargingDashboard { upcomingReservations activeReservations completedReservations
               cancelledReservations chargingSessions energyKwh nextReservation { id }
               recentReservations { id } recentSessions { id state } } }",
            json!({}),
        )
        .await;
    let board = &board["data"]["chargingDashboard"];
    assert_eq!(board["upcomingReservations"], 1, "{board}");
    assert_eq!(board["activeReservations"], 1, "{board}");
    assert_eq!(board["cancelledReservations"], 1, "{board}");
    assert_eq!(board["completedReservations"], 0, "{board}");
    assert_eq!(board["chargingSessions"], 1, "{board}");
    assert_eq!(board["nextReservation"]["id"], soon.as_str(), "{board}");
    assert_eq!(
        board["recentReservations"][0]["id"],
        dropped.as_str(),
        "{board}"
    );
    assert_eq!(
        board["recentSessions"][0]["id"],
        session.as_str(),
        "{board}"
    );

    const HISTORY: &str = "{ myAuthenticationHistory { totalCount nodes {
      method succeeded at cabinetId bayId reservationId sessionId } } }";
    let history = cleo.gql(HISTORY, json!({})).await;
    let nodes = &history["data"]["myAuthenticationHistory"]["nodes"];
    assert_eq!(total(&history, "myAuthenticationHistory"), 2, "{history}");
    assert_eq!(nodes[0]["succeeded"], true, "{history}");
    assert_eq!(nodes[0]["reservationId"], now_slot.as_str(), "{history}");
    assert_eq!(nodes[0]["sessionId"], session.as_str(), "{history}");
    assert_eq!(nodes[0]["method"], "CODE");
    assert_eq!(nodes[1]["succeeded"], false, "{history}");
    assert_eq!(nodes[1]["bayId"], global_id("Bay", here.bay_id).as_str());
    assert_eq!(
        total(
            &dan.gql(HISTORY, json!({})).await,
            "myAuthenticationHistory"
        ),
        0
    );
}

#[tokio::test]
async fn staff_revoke_and_regenerate_a_reservation_access() {
    let app = spawn_app().await;
    let bays = app.seed(1, 1, 1).await;
    let staff = TestUser::staff(&app, "warden").await;
    let cleo = TestUser::customer(&app, "cleo").await;
    let (id, code) = reserve_at(&cleo, &bays[0], minute_from_now(0), "CODE").await;
    const REVOKE: &str = "mutation($id: ID!) { revokeReservationAccess(input: { id: $id }) {
      reservation { id access { active } } } }";
    let refused = cleo.gql(REVOKE, json!({ "id": id })).await;
    assert_eq!(error(&refused).0, "FORBIDDEN", "{refused}");
    let body = staff.gql(REVOKE, json!({ "id": id })).await;
    assert_eq!(
        body["data"]["revokeReservationAccess"]["reservation"]["access"]["active"], false,
        "{body}"
    );
    let notified = notification_outbox::Entity::find()
        .filter(notification_outbox::Column::Template.eq("reservation_access_revoked"))
        .all(&app.db)
        .await
        .expect("query");
    assert_eq!(notified.len(), 1);

    // The revoked code opens nothing; the one staff regenerate does.
    let kiosk = kiosk_for(&app, &bays[0]).await;
    let bay = global_id("Bay", bays[0].bay_id);
    let body = enter_code(&kiosk, &bay, &code).await;
    assert_eq!(error(&body), ("FORBIDDEN", "INVALID_CREDENTIAL"), "{body}");
    let body = staff
        .gql(
            "mutation($id: ID!) { regenerateReservationAccess(input: { id: $id }) { access { content } } }",
            json!({ "id": id }),
        )
        .await;
    let fresh = body["data"]["regenerateReservationAccess"]["access"]["content"]
        .as_str()
        .unwrap_or_else(|| panic!("{body}"))
        .to_owned();
    let body = enter_code(&kiosk, &bay, &fresh).await;
    assert_eq!(
        body["data"]["terminalAuthenticate"]["session"]["state"], "ACCESS_VALIDATED",
        "{body}"
    );
}

#[tokio::test]
async fn a_code_sent_by_sms_goes_through_the_outbox_is_blanked_once_delivered_and_is_rate_limited()
{
    let app = spawn_app().await;
    let bays = app.seed(1, 1, 1).await;
    let cleo = TestUser::customer(&app, "cleo").await;
    let dan = TestUser::customer(&app, "dan").await;
    let (id, shown) = reserve_at(&cleo, &bays[0], minute_from_now(0), "CODE").await;
    const SEND: &str = "mutation($id: ID!) { sendReservationCode(input: { id: $id }) {
      reservation { id access { active } } access { content } } }";
    let refused = dan.gql(SEND, json!({ "id": id })).await;
    assert_eq!(error(&refused).0, "NOT_FOUND", "{refused}");

    let body = cleo.gql(SEND, json!({ "id": id })).await;
    let sent = &body["data"]["sendReservationCode"];
    assert_eq!(sent["reservation"]["access"]["active"], true, "{body}");
    assert!(sent["access"].is_null(), "the code is not shown: {body}");
    let message = notification_outbox::Entity::find()
        .filter(notification_outbox::Column::Template.eq("reservation_code"))
        .one(&app.db)
        .await
        .expect("query")
        .expect("a queued message");
    assert_eq!(message.user_id, cleo.id.expect("id"));
    let kiosk = kiosk_for(&app, &bays[0]).await;
    let bay = global_id("Bay", bays[0].bay_id);
    // The code shown at creation was replaced by the one sent.
    let body = enter_code(&kiosk, &bay, &shown).await;
    assert_eq!(error(&body), ("FORBIDDEN", "INVALID_CREDENTIAL"), "{body}");
    if message.sent_at_us.is_none() {
        let payload: Value = serde_json::from_str(&message.payload).expect("JSON");
        let code = payload["code"].as_str().expect("the code, until delivered");
        let body = enter_code(&kiosk, &bay, code).await;
        assert_eq!(
            body["data"]["terminalAuthenticate"]["session"]["state"], "ACCESS_VALIDATED",
            "{body}"
        );
    }

    // The delivery job hands it to the provider and blanks the code.
    let deadline = tokio::time::Instant::now() + crate::helpers::PATIENCE;
    let delivered = loop {
        let row = notification_outbox::Entity::find_by_id(message.id)
            .one(&app.db)
            .await
            .expect("query")
            .expect("the row");
        if row.sent_at_us.is_some() {
            break row;
        }
        assert!(tokio::time::Instant::now() < deadline, "never delivered");
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    let payload: Value = serde_json::from_str(&delivered.payload).expect("JSON");
    assert!(payload.get("code").is_none(), "{payload}");
    assert_eq!(
        payload["reference"].as_str().map(|r| r.starts_with("VG-")),
        Some(true)
    );

    // Three messages an hour per customer.
    for _ in 0..2 {
        let body = cleo.gql(SEND, json!({ "id": id })).await;
        assert!(body["errors"].is_null(), "{body}");
    }
    let body = cleo.gql(SEND, json!({ "id": id })).await;
    assert_eq!(error(&body).0, "RATE_LIMITED", "{body}");
}

#[tokio::test]
async fn a_maintenance_window_cancels_overlapping_reservations_and_blocks_new_ones_there() {
    let app = spawn_app().await;
    let bays = app.seed(2, 1, 1).await;
    let (here, there) = (&bays[0], &bays[1]);
    let staff = TestUser::staff(&app, "warden").await;
    let cleo = TestUser::customer(&app, "cleo").await;
    let dan = TestUser::customer(&app, "dan").await;
    let (inside, _) = reserve_at(&cleo, here, minute_from_now(120), "QR").await;
    let (before, _) = reserve_at(&dan, here, minute_from_now(30), "CODE").await;
    let (elsewhere, _) = reserve_at(&dan, there, minute_from_now(120), "CODE").await;

    // A planned intervention from +100 min for the default four hours.
    let body = staff
        .gql(
            "mutation($input: CreateMaintenanceInput!) { createMaintenance(input: $input) { maintenance { id status } } }",
            json!({ "input": { "stationId": global_id("Station", here.station_id), "kind": "corrective",
              "plannedAt": minute_from_now(100).to_rfc3339() } }),
        )
        .await;
    assert_eq!(
        body["data"]["createMaintenance"]["maintenance"]["status"], "PLANNED",
        "{body}"
    );
    assert_eq!(status_of(&app, &inside).await, ReservationStatus::Cancelled);
    assert_eq!(status_of(&app, &before).await, ReservationStatus::Confirmed);
    assert_eq!(
        status_of(&app, &elsewhere).await,
        ReservationStatus::Confirmed
    );
    let notified = notification_outbox::Entity::find()
        .filter(notification_outbox::Column::Template.eq("reservation_cancelled"))
        .all(&app.db)
        .await
        .expect("query");
    assert_eq!(notified.len(), 1, "{notified:?}");
    assert_eq!(notified[0].user_id, cleo.id.expect("id"));
    assert!(notified[0].payload.contains("maintenance"));

    // New reservations in the window are refused; the catalog says so.
    let body = cleo
        .gql(
            RESERVE,
            json!({ "input": { "bayId": global_id("Bay", here.bay_id), "startsAt": minute_from_now(180).to_rfc3339(),
            "durationMinutes": 30, "accessMode": "QR" } }),
        )
        .await;
    assert_eq!(error(&body), ("CONFLICT", "BAY_UNAVAILABLE"), "{body}");
    let body = cleo
        .gql(
            "query($station: ID!, $at: DateTime!) { bayAvailability(stationId: $station, startsAt: $at, durationMinutes: 30) { state } }",
            json!({ "station": global_id("Station", here.station_id), "at": minute_from_now(180).to_rfc3339() }),
        )
        .await;
    assert_eq!(
        body["data"]["bayAvailability"][0]["state"], "OUT_OF_SERVICE",
        "{body}"
    );
    let (after_window, _) = reserve_at(&cleo, here, minute_from_now(360), "QR").await;
    assert_eq!(
        status_of(&app, &after_window).await,
        ReservationStatus::Confirmed
    );
}

#[tokio::test]
async fn a_revoked_kiosk_credential_stops_its_tokens_at_once() {
    let app = spawn_app().await;
    let bays = app.seed(1, 1, 1).await;
    let cabinet = voltgate::entities::bay::Entity::find_by_id(bays[0].bay_id)
        .one(&app.db)
        .await
        .expect("query")
        .expect("bay")
        .cabinet_id;
    let staff = TestUser::staff(&app, "warden").await;
    let body = staff
        .gql(
            "mutation($cabinet: ID!) { issueKioskCredential(input: { cabinetId: $cabinet, label: \"door\" }) { secret credential { id } } }",
            json!({ "cabinet": global_id("Cabinet", cabinet) }),
        )
        .await;
    let issued = &body["data"]["issueKioskCredential"];
    let signed_in = app
        .graphql(
            "mutation($secret: String!) { kioskSignIn(input: { credential: $secret }) { accessToken } }",
            json!({ "secret": issued["secret"] }),
        )
        .await;
    let token = signed_in["data"]["kioskSignIn"]["accessToken"]
        .as_str()
        .unwrap_or_else(|| panic!("{signed_in}"));
    let kiosk = TestUser::bearer(&app, token);
    const TERMINAL: &str = "{ terminal { expiresAt } }";
    let body = kiosk.gql(TERMINAL, json!({})).await;
    assert!(body["data"]["terminal"]["expiresAt"].is_string(), "{body}");
    let body = staff
        .gql(
            "mutation($id: ID!) { revokeKioskCredential(input: { id: $id }) { credential { active } } }",
            json!({ "id": issued["credential"]["id"] }),
        )
        .await;
    assert_eq!(
        body["data"]["revokeKioskCredential"]["credential"]["active"], false,
        "{body}"
    );
    let body = kiosk.gql(TERMINAL, json!({})).await;
    assert_eq!(error(&body).0, "UNAUTHENTICATED", "{body}");
}

#[tokio::test]
async fn wrong_credentials_are_counted_against_the_reservation_beyond_the_window_until_it_is_regenerated()
 {
    use voltgate::charging::sessions::{Attempt, authenticate};
    let app = spawn_app().await;
    let bays = app.seed(1, 1, 1).await;
    let cleo = TestUser::customer(&app, "cleo").await;
    let body = cleo
        .gql(
            RESERVE,
            json!({ "input": { "bayId": global_id("Bay", bays[0].bay_id), "startsAt": minute_from_now(0).to_rfc3339(),
            "durationMinutes": 120, "accessMode": "CODE" } }),
        )
        .await;
    let id = body["data"]["createReservation"]["reservation"]["id"]
        .as_str()
        .unwrap_or_else(|| panic!("{body}"))
        .to_owned();
    let cabinet = voltgate::entities::bay::Entity::find_by_id(bays[0].bay_id)
        .one(&app.db)
        .await
        .expect("query")
        .expect("bay")
        .cabinet_id;
    let bay_id = bays[0].bay_id;
    let guessed_at = Utc::now() + TimeDelta::seconds(1);
    let clock = Arc::new(ManualClock::at(guessed_at));
    let services = services_at(&app, clock.clone());
    let guess = |services: ServiceContext| async move {
        authenticate(
            &services,
            Attempt {
                cabinet_id: cabinet,
                bay_id,
                method: voltgate::entities::reservation::AccessMode::Code,
                credential: "12345678",
            },
        )
        .await
        .map(|_| ())
        .map_err(|err| format!("{err:?}"))
    };
    // Five failures (the default) within the window, then refused.
    for _ in 0..5 {
        let refused = guess(services.clone()).await.expect_err("a wrong code");
        assert!(refused.contains("InvalidCredential"), "{refused}");
    }
    let refused = guess(services.clone()).await.expect_err("limited");
    assert!(refused.contains("RateLimited"), "{refused}");
    // Past the 15-minute window the bay would accept guesses again; the
    // reservation's count still refuses them.
    clock.advance(TimeDelta::minutes(20));
    let refused = guess(services.clone()).await.expect_err("still limited");
    assert!(refused.contains("RateLimited"), "{refused}");
    let failures = voltgate::entities::charging_auth_attempt::Entity::find()
        .all(&app.db)
        .await
        .expect("rows");
    assert_eq!(failures.len(), 5);
    assert!(
        failures
            .iter()
            .all(|f| f.reservation_id == Some(voltgate_id(&id)))
    );
    // The owner regenerates the code: the new one gets its own count.
    // (After the guesses, on the server's clock.)
    while Utc::now() <= guessed_at {
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let body = cleo
        .gql(
            "mutation($id: ID!) { regenerateReservationAccess(input: { id: $id }) { access { content } } }",
            json!({ "id": id }),
        )
        .await;
    assert!(body["errors"].is_null(), "{body}");
    let refused = guess(services.clone()).await.expect_err("a wrong code");
    assert!(refused.contains("InvalidCredential"), "{refused}");
}
