//! Mobile pairing: a kiosk shows a token as a QR code, the customer opens it,
//! authorizes one of their reservations there, and the kiosk (following the
//! pairing live) consumes it, which opens the session; single use, expiry.

use sea_orm::{ColumnTrait, EntityTrait as _, QueryFilter};
use serde_json::{Value, json};

use crate::client::TestUser;
use crate::helpers::{SeededBay, TestApp, global_id, spawn_app};

const CREATE: &str =
    "mutation { terminalCreatePairing { pairing { id state expiresAt } qrContent qrSvg } }";
const OPEN: &str =
    "query($token: String!) { pairing(token: $token) { state cabinetId reservations { id } } }";
const AUTHORIZE: &str = "mutation($token: String!, $reservation: ID!) { authorizePairing(input: { token: $token, reservationId: $reservation }) { state } }";
const CONSUME: &str = "mutation($id: ID!) { terminalConsumePairing(input: { pairing: $id }) { pairing { state sessionId } session { id state reservationId } } }";
const READ: &str = "query($id: ID!) { terminalPairing(id: $id) { state reservationId sessionId } }";

fn error(body: &Value) -> (&str, &str) {
    let ext = &body["errors"][0]["extensions"];
    (
        ext["code"].as_str().unwrap_or("none"),
        ext["reason"].as_str().unwrap_or("none"),
    )
}

async fn cabinet_of(app: &TestApp, bay: &SeededBay) -> i32 {
    voltgate::entities::bay::Entity::find_by_id(bay.bay_id)
        .one(&app.db)
        .await
        .expect("query")
        .expect("the bay")
        .cabinet_id
}

/// A CODE reservation of `bay` starting in a minute; its id.
async fn reserve(customer: &TestUser, bay: &SeededBay) -> Value {
    let starts = (chrono::Utc::now() + chrono::TimeDelta::minutes(1)).to_rfc3339();
    let body = customer
        .gql(
            "mutation($input: CreateReservationInput!) { createReservation(input: $input) { reservation { id } } }",
            json!({ "input": { "bayId": global_id("Bay", bay.bay_id), "startsAt": starts,
                "durationMinutes": 30, "accessMode": "CODE" } }),
        )
        .await;
    let id = body["data"]["createReservation"]["reservation"]["id"].clone();
    assert!(id.is_string(), "{body}");
    id
}

/// A new pairing at `kiosk`: its id and QR content.
async fn create(kiosk: &TestUser) -> (Value, String) {
    let body = kiosk.gql(CREATE, json!({})).await;
    let created = &body["data"]["terminalCreatePairing"];
    assert_eq!(created["pairing"]["state"], "PENDING", "{body}");
    (
        created["pairing"]["id"].clone(),
        created["qrContent"].as_str().expect("content").to_owned(),
    )
}

#[tokio::test]
async fn a_customer_authorizes_a_pairing_and_the_kiosk_opens_the_session() {
    let app = spawn_app().await;
    let bays = app.seed(1, 1, 2).await;
    let cabinet = cabinet_of(&app, &bays[0]).await;
    let customer = TestUser::customer(&app, "lina").await;
    let reservation = reserve(&customer, &bays[1]).await;
    let _device = app.listening_device(&bays[1]).await;
    let kiosk = TestUser::kiosk(&app, cabinet);

    let body = kiosk.gql(CREATE, json!({})).await;
    let created = &body["data"]["terminalCreatePairing"];
    let svg = created["qrSvg"]
        .as_str()
        .unwrap_or_else(|| panic!("{body}"));
    assert!(svg.contains("<svg"), "an SVG document");
    let content = created["qrContent"].as_str().expect("content").to_owned();
    assert!(content.starts_with("voltgate:pairing:vgp_"), "{content}");
    let pairing_id = created["pairing"]["id"].clone();
    let stored = voltgate::entities::kiosk_pairing::Entity::find()
        .all(&app.db)
        .await
        .expect("rows");
    assert!(
        stored.iter().all(|p| !content.contains(&p.token_hash)),
        "stored hashed"
    );

    let mut follow = crate::helpers::Subscription::start_with(
        app.addr,
        "graphql-transport-ws",
        json!({ "authorization": format!("Bearer {}", kiosk.token) }),
        "subscription($id: ID!) { terminalPairingChanged(pairingId: $id) { state sessionId cursor } }",
        json!({ "id": pairing_id }),
    )
    .await;

    // Not authorized yet: nothing to consume.
    let early = kiosk.gql(CONSUME, json!({ "id": pairing_id })).await;
    assert_eq!(error(&early), ("CONFLICT", "INVALID_TRANSITION"), "{early}");

    let opened = customer.gql(OPEN, json!({ "token": content })).await;
    assert_eq!(opened["data"]["pairing"]["state"], "PENDING", "{opened}");
    assert_eq!(
        opened["data"]["pairing"]["reservations"],
        json!([{ "id": reservation }]),
        "{opened}"
    );
    let authorized = customer
        .gql(
            AUTHORIZE,
            json!({ "token": content, "reservation": reservation }),
        )
        .await;
    assert_eq!(
        authorized["data"]["authorizePairing"]["state"], "AUTHORIZED",
        "{authorized}"
    );

    let event = follow.next_event().await;
    assert_eq!(
        event["data"]["terminalPairingChanged"]["state"], "AUTHORIZED",
        "{event}"
    );
    let read = kiosk.gql(READ, json!({ "id": pairing_id })).await;
    assert_eq!(
        read["data"]["terminalPairing"]["state"], "AUTHORIZED",
        "{read}"
    );
    assert_eq!(
        read["data"]["terminalPairing"]["reservationId"],
        reservation
    );

    let consumed = kiosk.gql(CONSUME, json!({ "id": pairing_id })).await;
    let payload = &consumed["data"]["terminalConsumePairing"];
    assert_eq!(
        payload["session"]["state"], "ACCESS_VALIDATED",
        "{consumed}"
    );
    assert_eq!(payload["session"]["reservationId"], reservation);
    assert_eq!(payload["pairing"]["state"], "CONSUMED");
    let event = follow.next_event().await;
    assert_eq!(
        event["data"]["terminalPairingChanged"]["state"], "CONSUMED",
        "{event}"
    );
    assert_eq!(
        event["data"]["terminalPairingChanged"]["sessionId"], payload["session"]["id"],
        "{event}"
    );

    // Single use.
    let again = kiosk.gql(CONSUME, json!({ "id": pairing_id })).await;
    assert_eq!(error(&again), ("CONFLICT", "INVALID_TRANSITION"), "{again}");
    let reopened = customer.gql(OPEN, json!({ "token": content })).await;
    assert_eq!(error(&reopened).0, "NOT_FOUND", "{reopened}");
    let sessions = voltgate::entities::charging_session::Entity::find()
        .all(&app.db)
        .await
        .expect("sessions");
    assert_eq!(sessions.len(), 1);
}

#[tokio::test]
async fn expired_pairings_authorize_and_open_nothing() {
    let app = spawn_app().await;
    let bays = app.seed(1, 1, 1).await;
    let cabinet = cabinet_of(&app, &bays[0]).await;
    let customer = TestUser::customer(&app, "lina").await;
    let reservation = reserve(&customer, &bays[0]).await;
    let kiosk = TestUser::kiosk(&app, cabinet);

    // Authorized, then its time runs out before the kiosk consumes it.
    let (authorized_id, authorized_token) = create(&kiosk).await;
    let ok = customer
        .gql(
            AUTHORIZE,
            json!({ "token": authorized_token, "reservation": reservation }),
        )
        .await;
    assert_eq!(
        ok["data"]["authorizePairing"]["state"], "AUTHORIZED",
        "{ok}"
    );
    let (pending_id, pending_token) = create(&kiosk).await;
    voltgate::entities::kiosk_pairing::Entity::update_many()
        .col_expr(
            voltgate::entities::kiosk_pairing::Column::ExpiresAtUs,
            sea_orm::sea_query::Expr::value(chrono::Utc::now().timestamp_micros() - 1),
        )
        .exec(&app.db)
        .await
        .expect("expire");

    let read = kiosk.gql(READ, json!({ "id": authorized_id })).await;
    assert_eq!(
        read["data"]["terminalPairing"]["state"], "EXPIRED",
        "{read}"
    );
    let consumed = kiosk.gql(CONSUME, json!({ "id": authorized_id })).await;
    assert_eq!(
        error(&consumed),
        ("CONFLICT", "INVALID_TRANSITION"),
        "{consumed}"
    );
    let opened = customer.gql(OPEN, json!({ "token": pending_token })).await;
    assert_eq!(error(&opened).0, "NOT_FOUND", "{opened}");
    let late = customer
        .gql(
            AUTHORIZE,
            json!({ "token": pending_token, "reservation": reservation }),
        )
        .await;
    assert_eq!(error(&late).0, "NOT_FOUND", "{late}");
    let read = kiosk.gql(READ, json!({ "id": pending_id })).await;
    assert_eq!(
        read["data"]["terminalPairing"]["state"], "EXPIRED",
        "{read}"
    );
    assert!(
        voltgate::entities::charging_session::Entity::find()
            .all(&app.db)
            .await
            .expect("sessions")
            .is_empty()
    );
    let status = voltgate::entities::reservation::Entity::find()
        .one(&app.db)
        .await
        .expect("query")
        .expect("reservation")
        .status;
    assert_eq!(
        status,
        voltgate::entities::reservation::ReservationStatus::Confirmed
    );
}

#[tokio::test]
async fn pairings_refuse_other_customers_reservations_and_other_cabinets() {
    let app = spawn_app().await;
    let bays = app.seed(1, 2, 1).await;
    let here = cabinet_of(&app, &bays[0]).await;
    let there = cabinet_of(&app, &bays[1]).await;
    let customer = TestUser::customer(&app, "lina").await;
    let stranger = TestUser::customer(&app, "omar").await;
    let theirs = reserve(&stranger, &bays[0]).await;
    let elsewhere = reserve(&customer, &bays[1]).await;
    let kiosk = TestUser::kiosk(&app, here);
    let other_kiosk = TestUser::kiosk(&app, there);
    let (pairing_id, token) = create(&kiosk).await;

    // The customer sees none of their reservations here: theirs is at the other cabinet.
    let opened = customer.gql(OPEN, json!({ "token": token })).await;
    assert_eq!(
        opened["data"]["pairing"]["reservations"],
        json!([]),
        "{opened}"
    );
    let foreign = customer
        .gql(AUTHORIZE, json!({ "token": token, "reservation": theirs }))
        .await;
    assert_eq!(
        error(&foreign).0,
        "NOT_FOUND",
        "another customer's: {foreign}"
    );
    let wrong_cabinet = customer
        .gql(
            AUTHORIZE,
            json!({ "token": token, "reservation": elsewhere }),
        )
        .await;
    assert_eq!(
        wrong_cabinet["errors"][0]["extensions"]["field"], "reservationId",
        "{wrong_cabinet}"
    );
    let read = kiosk.gql(READ, json!({ "id": pairing_id })).await;
    assert_eq!(
        read["data"]["terminalPairing"]["state"], "PENDING",
        "{read}"
    );

    // The stranger authorizes their own; another cabinet's kiosk cannot see or consume it.
    let authorized = stranger
        .gql(AUTHORIZE, json!({ "token": token, "reservation": theirs }))
        .await;
    assert_eq!(
        authorized["data"]["authorizePairing"]["state"], "AUTHORIZED",
        "{authorized}"
    );
    let peek = other_kiosk.gql(READ, json!({ "id": pairing_id })).await;
    assert_eq!(error(&peek).0, "NOT_FOUND", "{peek}");
    let steal = other_kiosk.gql(CONSUME, json!({ "id": pairing_id })).await;
    assert_eq!(error(&steal).0, "NOT_FOUND", "{steal}");
    // Once authorized by one customer, the token is closed to others.
    let late = customer.gql(OPEN, json!({ "token": token })).await;
    assert_eq!(error(&late).0, "NOT_FOUND", "{late}");
    assert!(
        voltgate::entities::charging_session::Entity::find()
            .filter(voltgate::entities::charging_session::Column::CabinetId.eq(there))
            .all(&app.db)
            .await
            .expect("sessions")
            .is_empty()
    );
}
