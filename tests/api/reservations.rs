//! The charging network end to end: staff administration of stations,
//! cabinets and bays; maintenance; the catalog; reservations without double
//! booking, cancelled, listed and accessed.

use std::time::Duration;

use chrono::{DurationRound as _, TimeDelta, Utc};
use sea_orm::{ColumnTrait, EntityTrait, PaginatorTrait, QueryFilter};
use serde_json::{Value, json};

use crate::client::TestUser;
use crate::helpers::{TestApp, global_id, spawn_app};

fn code(body: &Value) -> &str {
    body["errors"][0]["extensions"]["code"]
        .as_str()
        .unwrap_or("none")
}

fn reason(body: &Value) -> &str {
    body["errors"][0]["extensions"]["reason"]
        .as_str()
        .unwrap_or("none")
}

fn field(body: &Value) -> &str {
    body["errors"][0]["extensions"]["field"]
        .as_str()
        .unwrap_or("none")
}

/// A slot start `hours` from now, on the minute.
fn in_hours(hours: i64) -> String {
    (Utc::now() + TimeDelta::hours(hours))
        .duration_trunc(TimeDelta::minutes(1))
        .expect("truncates")
        .to_rfc3339()
}

const CREATE_STATION: &str = "mutation($input: CreateStationInput!) {
  createStation(input: $input) { station { id name latitude longitude status } } }";
const CREATE_CABINET: &str = "mutation($input: CreateCabinetInput!) {
  createCabinet(input: $input) { cabinet { id number mqttPrefix station { id } } } }";
const CREATE_BAY: &str = "mutation($input: CreateBayInput!) {
  createBay(input: $input) { bay { id number status station { id } cabinet { id } } } }";
const UPDATE_BAY: &str = "mutation($input: UpdateBayInput!) {
  updateBay(input: $input) { bay { id number status } } }";
const RESERVE: &str = "mutation($input: CreateReservationInput!) {
  createReservation(input: $input) {
    reservation { id referenceCode status accessMode durationMinutes canCancel startsAt endsAt
      bay { id } access { mode hint active validFrom validUntil } }
    access { mode content validFrom validUntil } } }";
const CANCEL: &str = "mutation($id: ID!) { cancelReservation(input: { id: $id }) {
  reservation { id status canCancel cancelledAt } } }";
const MINE: &str = "query($period: ReservationPeriod) { myReservations(period: $period) {
  totalCount nodes { id referenceCode status canCancel } } }";

/// A station at (lat, lon) with one cabinet and `bays` bays, made by staff; the bays' IDs.
async fn build_station(
    staff: &TestUser,
    name: &str,
    at: (f64, f64),
    prefix: &str,
    bays: i32,
) -> (String, String, Vec<String>) {
    let body = staff
        .gql(
            CREATE_STATION,
            json!({ "input": { "name": name, "locationText": "Quai 1", "latitude": at.0, "longitude": at.1 } }),
        )
        .await;
    let station = body["data"]["createStation"]["station"]["id"]
        .as_str()
        .unwrap_or_else(|| panic!("{body}"))
        .to_owned();
    let body = staff
        .gql(
            CREATE_CABINET,
            json!({ "input": { "stationId": station, "number": 1, "mqttPrefix": prefix } }),
        )
        .await;
    let cabinet = body["data"]["createCabinet"]["cabinet"]["id"]
        .as_str()
        .unwrap_or_else(|| panic!("{body}"))
        .to_owned();
    let mut ids = Vec::new();
    for number in 1..=bays {
        let body = staff
            .gql(
                CREATE_BAY,
                json!({ "input": { "cabinetId": cabinet, "number": number } }),
            )
            .await;
        let bay = &body["data"]["createBay"]["bay"];
        assert_eq!(
            bay["station"]["id"], station,
            "a bay is in its cabinet's station: {body}"
        );
        ids.push(bay["id"].as_str().unwrap_or_default().to_owned());
    }
    (station, cabinet, ids)
}

async fn reserve(user: &TestUser, bay: &str, starts_at: &str, minutes: i64, mode: &str) -> Value {
    user.gql(
        RESERVE,
        json!({ "input": { "bayId": bay, "startsAt": starts_at, "durationMinutes": minutes, "accessMode": mode } }),
    )
    .await
}

#[tokio::test]
async fn staff_build_the_network_with_validated_input() {
    let app = spawn_app().await;
    let staff = TestUser::staff(&app, "warden").await;
    let (station, cabinet, bays) =
        build_station(&staff, "Gare", (48.84, 2.37), "vg/gare/1", 2).await;
    assert_eq!(bays.len(), 2);

    // Coordinates out of range, half given, bad prefixes: BAD_USER_INPUT naming the field.
    for (input, expected) in [
        (
            json!({ "name": "X", "latitude": 91.0, "longitude": 2.0 }),
            "latitude",
        ),
        (
            json!({ "name": "X", "latitude": 45.0, "longitude": 181.0 }),
            "longitude",
        ),
        (json!({ "name": "X", "latitude": 45.0 }), "longitude"),
        (json!({ "name": "  " }), "name"),
    ] {
        let body = staff.gql(CREATE_STATION, json!({ "input": input })).await;
        assert_eq!(code(&body), "BAD_USER_INPUT", "{body}");
        assert_eq!(field(&body), expected, "{body}");
    }
    let body = staff
        .gql(
            CREATE_CABINET,
            json!({ "input": { "stationId": station, "number": 2, "mqttPrefix": "vg/#" } }),
        )
        .await;
    assert_eq!(field(&body), "mqttPrefix", "{body}");

    // Numbers unique within their parent, prefixes unique everywhere.
    let body = staff
        .gql(
            CREATE_CABINET,
            json!({ "input": { "stationId": station, "number": 1, "mqttPrefix": "vg/gare/2" } }),
        )
        .await;
    assert_eq!(code(&body), "CONFLICT", "{body}");
    let body = staff
        .gql(
            CREATE_CABINET,
            json!({ "input": { "stationId": station, "number": 2, "mqttPrefix": "vg/gare/1" } }),
        )
        .await;
    assert_eq!(code(&body), "CONFLICT", "{body}");
    let body = staff
        .gql(
            CREATE_BAY,
            json!({ "input": { "cabinetId": cabinet, "number": 2 } }),
        )
        .await;
    assert_eq!(code(&body), "CONFLICT", "{body}");
    let body = staff
        .gql(
            UPDATE_BAY,
            json!({ "input": { "id": bays[1], "number": 1 } }),
        )
        .await;
    assert_eq!(code(&body), "CONFLICT", "{body}");

    // Moving a cabinet moves its bays.
    let (other, _, _) = build_station(&staff, "Port", (43.3, 5.37), "vg/port/1", 0).await;
    let body = staff
        .gql(
            "mutation($input: UpdateCabinetInput!) { updateCabinet(input: $input) { cabinet { station { id } bays { station { id } } } } }",
            json!({ "input": { "id": cabinet, "stationId": other, "number": 2 } }),
        )
        .await;
    let moved = &body["data"]["updateCabinet"]["cabinet"];
    assert_eq!(moved["station"]["id"], other, "{body}");
    assert_eq!(moved["bays"][0]["station"]["id"], other, "{body}");

    // Wrong kind of ID, unknown rows.
    let body = staff
        .gql(
            UPDATE_BAY,
            json!({ "input": { "id": station, "number": 3 } }),
        )
        .await;
    assert_eq!(code(&body), "BAD_USER_INPUT", "{body}");
    let body = staff
        .gql(
            "mutation($id: ID!) { deleteBay(input: { id: $id }) { ok } }",
            json!({ "id": global_id("Bay", 9999) }),
        )
        .await;
    assert_eq!(code(&body), "NOT_FOUND", "{body}");

    // Deleting what has no reservation works.
    let body = staff
        .gql(
            "mutation($id: ID!) { deleteStation(input: { id: $id }) { ok } }",
            json!({ "id": station }),
        )
        .await;
    assert_eq!(body["data"]["deleteStation"]["ok"], true, "{body}");
}

#[tokio::test]
async fn deleting_what_has_upcoming_reservations_is_a_conflict_that_says_why() {
    let app = spawn_app().await;
    let staff = TestUser::staff(&app, "warden").await;
    let cleo = TestUser::customer(&app, "cleo").await;
    let (station, cabinet, bays) = build_station(&staff, "Gare", (48.8, 2.3), "vg/g/1", 1).await;
    let body = reserve(&cleo, &bays[0], &in_hours(2), 60, "CODE").await;
    assert!(body["data"]["createReservation"].is_object(), "{body}");
    for (mutation, id) in [
        ("deleteBay", &bays[0]),
        ("deleteCabinet", &cabinet),
        ("deleteStation", &station),
    ] {
        let body = staff
            .gql(
                &format!("mutation($id: ID!) {{ {mutation}(input: {{ id: $id }}) {{ ok }} }}"),
                json!({ "id": id }),
            )
            .await;
        assert_eq!(code(&body), "CONFLICT", "{mutation}: {body}");
        let message = body["errors"][0]["message"].as_str().unwrap_or_default();
        assert!(message.contains("reservation"), "{message}");
    }
    let left = voltgate::entities::bay::Entity::find()
        .count(&app.db)
        .await
        .expect("count");
    assert_eq!(left, 1, "a refused deletion changes nothing");
}

#[tokio::test]
async fn maintenance_cancels_overlapping_reservations_notifies_owners_and_publishes_the_bay_status()
{
    let app = spawn_app().await;
    let staff = TestUser::staff(&app, "warden").await;
    let cleo = TestUser::customer(&app, "cleo").await;
    let (_, _, bays) = build_station(&staff, "Gare", (48.8, 2.3), "vg/m/1", 2).await;
    let bay_id: i32 = voltgate::entities::bay::Entity::find()
        .one(&app.db)
        .await
        .expect("query")
        .expect("a bay")
        .id;
    assert_eq!(global_id("Bay", bay_id), bays[0]);

    let body = reserve(&cleo, &bays[0], &in_hours(3), 60, "QR").await;
    let reservation = body["data"]["createReservation"]["reservation"]["id"].clone();
    assert!(reservation.is_string(), "{body}");

    let mut watch = app
        .subscribe(
            "graphql-transport-ws",
            "subscription($bay: ID) { bayStatusChanged(bayId: $bay) { cursor bay { id status } } }",
            json!({ "bay": bays[0] }),
        )
        .await;
    // A subscription has no ready signal: give it a moment.
    tokio::time::sleep(Duration::from_millis(300)).await;
    let body = staff
        .gql(UPDATE_BAY, json!({ "input": { "id": bays[0], "maintenance": true, "maintenanceReason": "cable cut" } }))
        .await;
    assert_eq!(
        body["data"]["updateBay"]["bay"]["status"], "MAINTENANCE",
        "{body}"
    );
    let event = tokio::time::timeout(Duration::from_secs(5), watch.next_event())
        .await
        .expect("a bayStatusChanged event");
    assert_eq!(
        event["data"]["bayStatusChanged"]["bay"]["status"], "MAINTENANCE",
        "{event}"
    );
    assert!(
        event["data"]["bayStatusChanged"]["cursor"].is_string(),
        "{event}"
    );

    // The reservation is cancelled and its owner notified through the outbox.
    let body = cleo
        .gql(
            "query($id: ID!) { reservation(id: $id) { status access { active } } }",
            json!({ "id": reservation }),
        )
        .await;
    assert_eq!(body["data"]["reservation"]["status"], "CANCELLED", "{body}");
    assert_eq!(
        body["data"]["reservation"]["access"]["active"], false,
        "{body}"
    );
    let queued = voltgate::entities::notification_outbox::Entity::find()
        .filter(voltgate::entities::notification_outbox::Column::UserId.eq(cleo.id.expect("id")))
        .all(&app.db)
        .await
        .expect("outbox");
    assert_eq!(queued.len(), 1);
    assert_eq!(queued[0].template, "reservation_cancelled");
    // The delivery job hands it to the provider and marks it sent.
    let mut delivered = false;
    for _ in 0..50 {
        let row = voltgate::entities::notification_outbox::Entity::find_by_id(queued[0].id)
            .one(&app.db)
            .await
            .expect("query")
            .expect("row");
        if row.sent_at_us.is_some() {
            delivered = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert!(delivered, "the outbox is delivered");

    // A bay in maintenance takes no reservation; the other bay does.
    let body = reserve(&cleo, &bays[0], &in_hours(5), 60, "CODE").await;
    assert_eq!(reason(&body), "BAY_UNAVAILABLE", "{body}");
    let body = reserve(&cleo, &bays[1], &in_hours(5), 60, "CODE").await;
    assert!(body["data"]["createReservation"].is_object(), "{body}");

    // Lifting the flag makes the bay available again.
    let body = staff
        .gql(
            UPDATE_BAY,
            json!({ "input": { "id": bays[0], "maintenance": false } }),
        )
        .await;
    assert_eq!(
        body["data"]["updateBay"]["bay"]["status"], "AVAILABLE",
        "{body}"
    );
    let event = tokio::time::timeout(Duration::from_secs(5), watch.next_event())
        .await
        .expect("a second event");
    assert_eq!(
        event["data"]["bayStatusChanged"]["bay"]["status"], "AVAILABLE",
        "{event}"
    );

    // A station in maintenance takes its bays out of service.
    let station = body_station(&staff, &bays[1]).await;
    let body = staff
        .gql(
            "mutation($id: ID!) { updateStation(input: { id: $id, status: MAINTENANCE }) { station { status bays { status } } } }",
            json!({ "id": station }),
        )
        .await;
    let bays_now = &body["data"]["updateStation"]["station"]["bays"];
    assert_eq!(bays_now[0]["status"], "MAINTENANCE", "{body}");
    assert_eq!(bays_now[1]["status"], "MAINTENANCE", "{body}");
    let body = cleo.gql(MINE, json!({ "period": "UPCOMING" })).await;
    assert_eq!(body["data"]["myReservations"]["totalCount"], 0, "{body}");
}

async fn body_station(staff: &TestUser, bay: &str) -> String {
    let body = staff
        .gql("{ stations { nodes { id bays { id } } } }", json!({}))
        .await;
    body["data"]["stations"]["nodes"]
        .as_array()
        .into_iter()
        .flatten()
        .find(|s| {
            s["bays"]
                .as_array()
                .into_iter()
                .flatten()
                .any(|b| b["id"] == bay)
        })
        .map(|s| s["id"].as_str().unwrap_or_default().to_owned())
        .unwrap_or_else(|| panic!("{body}"))
}

#[tokio::test]
async fn customers_find_the_nearest_stations_and_free_bays() {
    let app = spawn_app().await;
    let staff = TestUser::staff(&app, "warden").await;
    let cleo = TestUser::customer(&app, "cleo").await;
    let (paris, _, paris_bays) =
        build_station(&staff, "Paris", (48.8566, 2.3522), "vg/p/1", 2).await;
    build_station(&staff, "Lyon", (45.764, 4.8357), "vg/l/1", 1).await;

    let body = app
        .graphql(
            "{ nearestStations(latitude: 48.85, longitude: 2.35, first: 2) { distanceKm station { id name } } }",
            json!({}),
        )
        .await;
    let found = &body["data"]["nearestStations"];
    assert_eq!(found[0]["station"]["name"], "Paris", "{body}");
    assert_eq!(found[1]["station"]["name"], "Lyon", "{body}");
    let lyon_km = found[1]["distanceKm"].as_f64().unwrap_or_default();
    assert!(
        (380.0..400.0).contains(&lyon_km),
        "Paris–Lyon is about 392 km: {lyon_km}"
    );
    let body = app
        .graphql(
            "{ nearestStations(latitude: 100, longitude: 2) { distanceKm } }",
            json!({}),
        )
        .await;
    assert_eq!(field(&body), "latitude", "{body}");

    let rules = app
        .graphql(
            "{ reservationRules { durationsMinutes horizonDays } }",
            json!({}),
        )
        .await;
    assert_eq!(
        rules["data"]["reservationRules"]["durationsMinutes"],
        json!([30, 60, 90, 120])
    );

    let start = in_hours(2);
    let body = reserve(&cleo, &paris_bays[0], &start, 60, "CODE").await;
    assert!(body["data"]["createReservation"].is_object(), "{body}");
    let query = "query($s: ID!, $at: DateTime!, $d: Int!) { bayAvailability(stationId: $s, startsAt: $at, durationMinutes: $d) { available state bay { id } } }";
    let body = app
        .graphql(query, json!({ "s": paris, "at": start, "d": 30 }))
        .await;
    let bays = &body["data"]["bayAvailability"];
    assert_eq!(bays[0]["state"], "TAKEN", "{body}");
    assert_eq!(bays[1]["available"], true, "{body}");
    let later = in_hours(4);
    let body = app
        .graphql(query, json!({ "s": paris, "at": later, "d": 30 }))
        .await;
    assert_eq!(
        body["data"]["bayAvailability"][0]["available"], true,
        "{body}"
    );
    let body = app
        .graphql(query, json!({ "s": paris, "at": start, "d": 45 }))
        .await;
    assert_eq!(field(&body), "durationMinutes", "{body}");
    let body = app
        .graphql(
            query,
            json!({ "s": paris, "at": in_hours(24 * 30), "d": 30 }),
        )
        .await;
    assert_eq!(field(&body), "startsAt", "{body}");
}

#[tokio::test]
async fn a_reservation_gets_a_reference_and_a_credential_shown_once() {
    let app = spawn_app().await;
    let staff = TestUser::staff(&app, "warden").await;
    let cleo = TestUser::customer(&app, "cleo").await;
    let (_, _, bays) = build_station(&staff, "Gare", (48.8, 2.3), "vg/r/1", 2).await;

    let body = reserve(&cleo, &bays[0], &in_hours(2), 90, "CODE").await;
    let created = &body["data"]["createReservation"];
    let reservation = &created["reservation"];
    assert_eq!(reservation["status"], "CONFIRMED", "{body}");
    assert_eq!(reservation["durationMinutes"], 90);
    assert_eq!(reservation["canCancel"], true);
    let reference = reservation["referenceCode"].as_str().unwrap_or_default();
    assert!(
        reference.starts_with("VG-") && reference.len() == 11,
        "{reference}"
    );
    let secret = created["access"]["content"]
        .as_str()
        .unwrap_or_default()
        .to_owned();
    assert_eq!(secret.len(), 8, "{body}");
    assert!(secret.chars().all(|c| c.is_ascii_digit()));
    assert_eq!(reservation["access"]["active"], true);
    assert!(reservation["access"]["validFrom"].as_str() < reservation["startsAt"].as_str());

    // Stored hashed only.
    let stored = voltgate::entities::auth_method::Entity::find()
        .all(&app.db)
        .await
        .expect("methods");
    assert!(stored.iter().all(|m| !m.value_hash.contains(&secret)));
    assert!(
        stored
            .iter()
            .any(|m| m.value_hash
                == voltgate::charging::reservations::access_hash(reference, &secret))
    );

    // Reading it again shows no secret; regenerating replaces it.
    let id = reservation["id"].clone();
    let body = cleo
        .gql("mutation($id: ID!) { regenerateReservationAccess(input: { id: $id }) { access { content } reservation { access { active hint } } } }", json!({ "id": id }))
        .await;
    let fresh = body["data"]["regenerateReservationAccess"]["access"]["content"]
        .as_str()
        .unwrap_or_default();
    assert_eq!(fresh.len(), 8, "{body}");
    let active = voltgate::entities::auth_method::Entity::find()
        .filter(voltgate::entities::auth_method::Column::IsActive.eq(true))
        .all(&app.db)
        .await
        .expect("methods");
    assert_eq!(active.len(), 1, "the old code no longer works");
    assert_eq!(
        active[0].value_hash,
        voltgate::charging::reservations::access_hash(reference, fresh)
    );

    // QR content names the reservation; RFID needs one of one's badges.
    let body = reserve(&cleo, &bays[1], &in_hours(2), 30, "QR").await;
    let content = body["data"]["createReservation"]["access"]["content"]
        .as_str()
        .unwrap_or_default();
    assert!(content.starts_with("voltgate:reservation:VG-"), "{body}");
    let body = reserve(&cleo, &bays[1], &in_hours(6), 30, "RFID").await;
    assert_eq!(field(&body), "badgeId", "{body}");
    let badge = cleo
        .gql(
            "mutation { addRfidBadge(input: { uid: \"04A1B2C3D4\" }) { authMethod { id } } }",
            json!({}),
        )
        .await["data"]["addRfidBadge"]["authMethod"]["id"]
        .clone();
    let body = cleo
        .gql(
            RESERVE,
            json!({ "input": { "bayId": bays[1], "startsAt": in_hours(6), "durationMinutes": 30, "accessMode": "RFID", "badgeId": badge } }),
        )
        .await;
    let created = &body["data"]["createReservation"];
    assert_eq!(created["reservation"]["accessMode"], "RFID", "{body}");
    assert!(created["access"].is_null(), "{body}");
    assert_eq!(
        created["reservation"]["access"]["hint"], "••••C3D4",
        "{body}"
    );

    // Someone else's badge, bad durations, slots in the past.
    let dan = TestUser::customer(&app, "dan").await;
    let body = dan
        .gql(
            RESERVE,
            json!({ "input": { "bayId": bays[1], "startsAt": in_hours(8), "durationMinutes": 30, "accessMode": "RFID", "badgeId": badge } }),
        )
        .await;
    assert_eq!(field(&body), "badgeId", "{body}");
    let body = reserve(&dan, &bays[1], &in_hours(8), 45, "CODE").await;
    assert_eq!(field(&body), "durationMinutes", "{body}");
    let body = reserve(&dan, &bays[1], &in_hours(-2), 30, "CODE").await;
    assert_eq!(field(&body), "startsAt", "{body}");
    let body = reserve(&dan, &global_id("Bay", 999), &in_hours(8), 30, "CODE").await;
    assert_eq!(code(&body), "NOT_FOUND", "{body}");
}

#[tokio::test]
async fn customers_list_and_cancel_their_own_reservations_and_staff_cancel_any() {
    let app = spawn_app().await;
    let staff = TestUser::staff(&app, "warden").await;
    let cleo = TestUser::customer(&app, "cleo").await;
    let dan = TestUser::customer(&app, "dan").await;
    let (_, _, bays) = build_station(&staff, "Gare", (48.8, 2.3), "vg/c/1", 1).await;

    let first = reserve(&cleo, &bays[0], &in_hours(2), 60, "CODE").await["data"]["createReservation"]["reservation"]["id"].clone();
    let second = reserve(&cleo, &bays[0], &in_hours(4), 60, "QR").await["data"]["createReservation"]["reservation"]["id"].clone();
    assert!(first.is_string() && second.is_string());

    // Someone else's reservation is invisible to them.
    let body = dan.gql(CANCEL, json!({ "id": first })).await;
    assert_eq!(code(&body), "NOT_FOUND", "{body}");
    let body = dan
        .gql(
            "query($id: ID!) { reservation(id: $id) { id } }",
            json!({ "id": first }),
        )
        .await;
    assert!(body["data"]["reservation"].is_null(), "{body}");

    let body = cleo.gql(CANCEL, json!({ "id": first })).await;
    assert_eq!(
        body["data"]["cancelReservation"]["reservation"]["status"], "CANCELLED",
        "{body}"
    );
    assert_eq!(
        body["data"]["cancelReservation"]["reservation"]["canCancel"],
        false
    );
    let body = cleo.gql(CANCEL, json!({ "id": first })).await;
    assert_eq!(reason(&body), "INVALID_TRANSITION", "{body}");

    let body = cleo.gql(MINE, json!({ "period": "UPCOMING" })).await;
    assert_eq!(body["data"]["myReservations"]["totalCount"], 1, "{body}");
    assert_eq!(body["data"]["myReservations"]["nodes"][0]["id"], second);
    let body = cleo.gql(MINE, json!({ "period": "ARCHIVED" })).await;
    assert_eq!(body["data"]["myReservations"]["totalCount"], 1, "{body}");
    assert_eq!(
        body["data"]["myReservations"]["nodes"][0]["status"],
        "CANCELLED"
    );

    // The freed slot can be booked again; staff cancel someone else's and the owner is told.
    let body = reserve(&dan, &bays[0], &in_hours(2), 60, "CODE").await;
    assert!(body["data"]["createReservation"].is_object(), "{body}");
    let body = staff.gql(CANCEL, json!({ "id": second })).await;
    assert_eq!(
        body["data"]["cancelReservation"]["reservation"]["status"], "CANCELLED",
        "{body}"
    );
    let told = voltgate::entities::notification_outbox::Entity::find()
        .filter(voltgate::entities::notification_outbox::Column::UserId.eq(cleo.id.expect("id")))
        .count(&app.db)
        .await
        .expect("outbox");
    assert_eq!(
        told, 1,
        "staff cancelling notifies the owner; the owner's own cancel does not"
    );
}

#[tokio::test]
async fn a_bay_reserved_now_shows_reserved_and_is_available_again_once_cancelled() {
    let app = spawn_app().await;
    let staff = TestUser::staff(&app, "warden").await;
    let cleo = TestUser::customer(&app, "cleo").await;
    let (_, _, bays) = build_station(&staff, "Gare", (48.8, 2.3), "vg/n/1", 1).await;
    let now = Utc::now().to_rfc3339();
    let body = reserve(&cleo, &bays[0], &now, 30, "CODE").await;
    let reservation = body["data"]["createReservation"]["reservation"]["id"].clone();
    assert!(reservation.is_string(), "{body}");
    let status = || async {
        app.graphql(
            "query { stations { nodes { bays { status } } } }",
            json!({}),
        )
        .await["data"]["stations"]["nodes"][0]["bays"][0]["status"]
            .clone()
    };
    assert_eq!(status().await, "RESERVED");
    // Once started, only staff may cancel it.
    let body = cleo.gql(CANCEL, json!({ "id": reservation })).await;
    assert_eq!(reason(&body), "INVALID_TRANSITION", "{body}");
    let body = staff.gql(CANCEL, json!({ "id": reservation })).await;
    assert_eq!(
        body["data"]["cancelReservation"]["reservation"]["status"], "CANCELLED",
        "{body}"
    );
    assert_eq!(status().await, "AVAILABLE");
}

/// Many customers race for overlapping slots of one bay: exactly one wins.
#[tokio::test]
async fn concurrent_requests_for_overlapping_slots_give_exactly_one_reservation() {
    let app = spawn_app().await;
    let staff = TestUser::staff(&app, "warden").await;
    let customers = [
        TestUser::customer(&app, "cleo").await,
        TestUser::customer(&app, "dan").await,
    ];
    let (_, _, bays) = build_station(&staff, "Gare", (48.8, 2.3), "vg/race/1", 1).await;
    let base = Utc::now() + TimeDelta::hours(3);

    const REQUESTS: usize = 60;
    let mut tasks = Vec::new();
    for i in 0..REQUESTS {
        let user = customers[i % customers.len()].clone();
        let bay = bays[0].clone();
        // Slots of 60 minutes starting within 30 minutes of each other: all overlap.
        let start = (base + TimeDelta::minutes(i64::try_from(i % 30).unwrap_or(0))).to_rfc3339();
        tasks.push(tokio::spawn(async move {
            reserve(&user, &bay, &start, 60, "CODE").await
        }));
    }
    let mut won = 0;
    let mut taken = 0;
    for task in tasks {
        let body = task.await.expect("request task");
        if body["data"]["createReservation"].is_object() {
            won += 1;
        } else {
            assert_eq!(reason(&body), "SLOT_TAKEN", "{body}");
            taken += 1;
        }
    }
    assert_eq!(won, 1, "exactly one reservation");
    assert_eq!(taken, REQUESTS - 1);
    let stored = voltgate::entities::reservation::Entity::find()
        .count(&app.db)
        .await
        .expect("count");
    assert_eq!(stored, 1);
}

#[tokio::test]
async fn network_and_reservation_operations_refuse_the_wrong_callers() {
    let app: TestApp = spawn_app().await;
    let staff = TestUser::staff(&app, "warden").await;
    let cleo = TestUser::customer(&app, "cleo").await;
    let (_, cabinet, bays) = build_station(&staff, "Gare", (48.8, 2.3), "vg/a/1", 1).await;
    let body = cleo
        .gql(
            CREATE_BAY,
            json!({ "input": { "cabinetId": cabinet, "number": 5 } }),
        )
        .await;
    assert_eq!(code(&body), "FORBIDDEN", "{body}");
    let body = app
        .graphql(RESERVE, json!({ "input": { "bayId": bays[0], "startsAt": in_hours(2), "durationMinutes": 30, "accessMode": "CODE" } }))
        .await;
    assert_eq!(code(&body), "UNAUTHENTICATED", "{body}");
}
