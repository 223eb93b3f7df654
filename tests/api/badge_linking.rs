//! Badges at kiosks: UIDs stored under a keyed hash (older hashes still open
//! and are re-hashed), and linking a badge to an account with a one-use code
//! typed at a cabinet's kiosk.

use sea_orm::{ColumnTrait, EntityTrait as _, QueryFilter};
use serde_json::{Value, json};

use crate::client::TestUser;
use crate::helpers::{TestApp, global_id, spawn_app};

const CREATE_CODE: &str = "mutation($cabinet: ID!) { createBadgeLinkCode(input: { cabinetId: $cabinet }) { code expiresAt } }";
const LINK: &str = "mutation($code: String!, $uid: String!) { terminalLinkBadge(input: { code: $code, uid: $uid }) { hint } }";
const MY_BADGES: &str = "{ me { authMethods { id displayValue } } }";

fn error(body: &Value) -> (&str, &str) {
    let ext = &body["errors"][0]["extensions"];
    (
        ext["code"].as_str().unwrap_or("none"),
        ext["reason"].as_str().unwrap_or("none"),
    )
}

async fn cabinet_ids(app: &TestApp) -> Vec<i32> {
    use sea_orm::QueryOrder;
    voltgate::entities::cabinet::Entity::find()
        .order_by_asc(voltgate::entities::cabinet::Column::Id)
        .all(&app.db)
        .await
        .expect("cabinets")
        .into_iter()
        .map(|c| c.id)
        .collect()
}

async fn code_for(customer: &TestUser, cabinet: i32) -> String {
    let body = customer
        .gql(
            CREATE_CODE,
            json!({ "cabinet": global_id("Cabinet", cabinet) }),
        )
        .await;
    body["data"]["createBadgeLinkCode"]["code"]
        .as_str()
        .unwrap_or_else(|| panic!("{body}"))
        .to_owned()
}

async fn badges_of(app: &TestApp, user: i32) -> Vec<voltgate::entities::auth_method::Model> {
    voltgate::entities::auth_method::Entity::find()
        .filter(voltgate::entities::auth_method::Column::UserId.eq(user))
        .all(&app.db)
        .await
        .expect("badges")
}

#[tokio::test]
async fn a_code_links_the_scanned_badge_once_and_only_at_its_kiosk() {
    let app = spawn_app().await;
    app.seed(1, 2, 1).await;
    let cabinets = cabinet_ids(&app).await;
    let customer = TestUser::customer(&app, "lina").await;
    let user_id = customer.id.expect("an account");
    let kiosk = TestUser::kiosk(&app, cabinets[0]);
    let other_kiosk = TestUser::kiosk(&app, cabinets[1]);

    let code = code_for(&customer, cabinets[0]).await;
    assert_eq!(code.len(), 8, "{code}");
    let stored = voltgate::entities::badge_link_code::Entity::find()
        .all(&app.db)
        .await
        .expect("codes");
    assert!(
        stored.iter().all(|c| !c.code_hash.contains(&code)),
        "stored hashed"
    );

    // Another cabinet's kiosk cannot use it.
    let foreign = other_kiosk
        .gql(LINK, json!({ "code": code, "uid": "04:A2:2B:1A" }))
        .await;
    assert_eq!(
        error(&foreign),
        ("FORBIDDEN", "INVALID_CREDENTIAL"),
        "{foreign}"
    );
    assert!(badges_of(&app, user_id).await.is_empty());

    let linked = kiosk
        .gql(LINK, json!({ "code": code, "uid": "04:A2:2B:1A" }))
        .await;
    assert_eq!(
        linked["data"]["terminalLinkBadge"]["hint"], "••••2B1A",
        "{linked}"
    );
    let badges = badges_of(&app, user_id).await;
    assert_eq!(badges.len(), 1);
    assert!(badges[0].value_hash.starts_with("h1:"), "keyed hash");
    let mine = customer.gql(MY_BADGES, json!({})).await;
    assert_eq!(
        mine["data"]["me"]["authMethods"][0]["displayValue"], "••••2B1A",
        "{mine}"
    );

    // Used once.
    let reused = kiosk
        .gql(LINK, json!({ "code": code, "uid": "04A22B1B" }))
        .await;
    assert_eq!(
        error(&reused),
        ("FORBIDDEN", "INVALID_CREDENTIAL"),
        "{reused}"
    );
    assert_eq!(badges_of(&app, user_id).await.len(), 1);

    // A badge on an account already is refused and the code stays usable.
    let other = TestUser::customer(&app, "omar").await;
    let other_code = code_for(&other, cabinets[0]).await;
    let taken = kiosk
        .gql(LINK, json!({ "code": other_code, "uid": "04A22B1A" }))
        .await;
    assert_eq!(error(&taken), ("CONFLICT", "BADGE_TAKEN"), "{taken}");
    let second = kiosk
        .gql(LINK, json!({ "code": other_code, "uid": "04A22B1C" }))
        .await;
    assert_eq!(
        second["data"]["terminalLinkBadge"]["hint"], "••••2B1C",
        "{second}"
    );

    // A person cannot act as a kiosk, nor a kiosk as a customer.
    let as_person = customer
        .gql(LINK, json!({ "code": code, "uid": "04A22B1D" }))
        .await;
    assert_eq!(error(&as_person).0, "FORBIDDEN", "{as_person}");
    let kiosk_asks = kiosk
        .gql(
            CREATE_CODE,
            json!({ "cabinet": global_id("Cabinet", cabinets[0]) }),
        )
        .await;
    assert_eq!(error(&kiosk_asks).0, "FORBIDDEN", "{kiosk_asks}");
}

#[tokio::test]
async fn expired_and_replaced_codes_link_nothing() {
    let app = spawn_app().await;
    app.seed(1, 1, 1).await;
    let cabinet = cabinet_ids(&app).await[0];
    let customer = TestUser::customer(&app, "lina").await;
    let user_id = customer.id.expect("an account");
    let kiosk = TestUser::kiosk(&app, cabinet);

    let first = code_for(&customer, cabinet).await;
    let second = code_for(&customer, cabinet).await;
    let replaced = kiosk
        .gql(LINK, json!({ "code": first, "uid": "04A22B1A" }))
        .await;
    assert_eq!(
        error(&replaced),
        ("FORBIDDEN", "INVALID_CREDENTIAL"),
        "{replaced}"
    );

    // The second code's time runs out.
    voltgate::entities::badge_link_code::Entity::update_many()
        .col_expr(
            voltgate::entities::badge_link_code::Column::ExpiresAtUs,
            sea_orm::sea_query::Expr::value(chrono::Utc::now().timestamp_micros() - 1),
        )
        .exec(&app.db)
        .await
        .expect("expire");
    let expired = kiosk
        .gql(LINK, json!({ "code": second, "uid": "04A22B1A" }))
        .await;
    assert_eq!(
        error(&expired),
        ("FORBIDDEN", "INVALID_CREDENTIAL"),
        "{expired}"
    );
    assert!(badges_of(&app, user_id).await.is_empty());

    let malformed = kiosk
        .gql(LINK, json!({ "code": "12ab", "uid": "04A22B1A" }))
        .await;
    assert_eq!(
        malformed["errors"][0]["extensions"]["field"], "code",
        "{malformed}"
    );
    let bad_uid = kiosk
        .gql(LINK, json!({ "code": second, "uid": "nope" }))
        .await;
    assert_eq!(
        bad_uid["errors"][0]["extensions"]["field"], "uid",
        "{bad_uid}"
    );
}

#[tokio::test]
async fn guessing_codes_at_a_kiosk_is_rate_limited() {
    let app = spawn_app().await;
    app.seed(1, 2, 1).await;
    let cabinets = cabinet_ids(&app).await;
    let customer = TestUser::customer(&app, "lina").await;
    let kiosk = TestUser::kiosk(&app, cabinets[0]);
    let code = code_for(&customer, cabinets[0]).await;
    let wrong = if code == "00000000" {
        "11111111"
    } else {
        "00000000"
    };
    let limit = voltgate::charging::badge_links::FAILURES_PER_KIOSK;
    let guesses = futures_util::future::join_all(
        (0..limit).map(|_| kiosk.gql(LINK, json!({ "code": wrong, "uid": "04A22B1A" }))),
    )
    .await;
    for guess in &guesses {
        assert_eq!(error(guess), ("FORBIDDEN", "INVALID_CREDENTIAL"), "{guess}");
    }
    let limited = kiosk
        .gql(LINK, json!({ "code": code, "uid": "04A22B1A" }))
        .await;
    assert_eq!(
        error(&limited).0,
        "RATE_LIMITED",
        "even the right code waits: {limited}"
    );
    assert!(badges_of(&app, customer.id.expect("id")).await.is_empty());

    // Another kiosk's count is its own.
    let elsewhere = code_for(&customer, cabinets[1]).await;
    let other_kiosk = TestUser::kiosk(&app, cabinets[1]);
    let linked = other_kiosk
        .gql(LINK, json!({ "code": elsewhere, "uid": "04A22B1A" }))
        .await;
    assert_eq!(
        linked["data"]["terminalLinkBadge"]["hint"], "••••2B1A",
        "{linked}"
    );
}

#[tokio::test]
async fn a_badge_stored_before_keyed_hashes_still_opens_and_is_rehashed() {
    use sea_orm::{ActiveModelTrait as _, Set};
    let app = spawn_app().await;
    let bays = app.seed(1, 1, 1).await;
    let bay = &bays[0];
    let customer = TestUser::customer(&app, "lina").await;
    let user_id = customer.id.expect("an account");
    let rfid = voltgate::entities::auth_type::Entity::find()
        .filter(voltgate::entities::auth_type::Column::Label.eq("rfid"))
        .one(&app.db)
        .await
        .expect("query")
        .expect("rfid type");
    // What `addRfidBadge` stored before: a plain SHA-256.
    let legacy = voltgate::entities::auth_method::ActiveModel {
        user_id: Set(user_id),
        auth_type_id: Set(rfid.id),
        value_hash: Set(voltgate::auth::tokens::sha256_hex("04A22B1A")),
        display_value: Set("••••2B1A".into()),
        metadata: Set(json!({ "label": "old" })),
        is_active: Set(true),
        created_at: Set(chrono::Utc::now()),
        ..Default::default()
    }
    .insert(&app.db)
    .await
    .expect("legacy badge");

    // The same badge cannot be registered again under the new hash.
    let again = customer
        .gql(
            "mutation { addRfidBadge(input: { uid: \"04a22b1a\" }) { authMethod { id } } }",
            json!({}),
        )
        .await;
    assert_eq!(error(&again), ("CONFLICT", "BADGE_TAKEN"), "{again}");

    let starts = (chrono::Utc::now() + chrono::TimeDelta::minutes(1)).to_rfc3339();
    let reserved = customer
        .gql(
            "mutation($input: CreateReservationInput!) { createReservation(input: $input) { reservation { id } } }",
            json!({ "input": { "bayId": global_id("Bay", bay.bay_id), "startsAt": starts,
                "durationMinutes": 30, "accessMode": "RFID", "badgeId": global_id("AuthMethod", legacy.id) } }),
        )
        .await;
    assert!(
        reserved["data"]["createReservation"]["reservation"]["id"].is_string(),
        "{reserved}"
    );
    let _device = app.listening_device(bay).await;
    let bay_row = voltgate::entities::bay::Entity::find_by_id(bay.bay_id)
        .one(&app.db)
        .await
        .expect("query")
        .expect("bay");
    let kiosk = TestUser::kiosk(&app, bay_row.cabinet_id);
    let opened = kiosk
        .gql(
            "mutation($bay: ID!) { terminalAuthenticate(input: { bay: $bay, method: RFID, credential: \"04:A2:2B:1A\" }) { session { state } } }",
            json!({ "bay": global_id("Bay", bay.bay_id) }),
        )
        .await;
    assert_eq!(
        opened["data"]["terminalAuthenticate"]["session"]["state"], "ACCESS_VALIDATED",
        "{opened}"
    );
    let rehashed = voltgate::entities::auth_method::Entity::find_by_id(legacy.id)
        .one(&app.db)
        .await
        .expect("query")
        .expect("badge");
    assert!(
        rehashed.value_hash.starts_with("h1:"),
        "{}",
        rehashed.value_hash
    );
}
