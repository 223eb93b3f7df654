//! Kiosk credentials: issued by staff (shown once, stored hashed), exchanged by
//! a kiosk for a short-lived token that acts for its own cabinet only, revoked.

use sea_orm::{ColumnTrait, EntityTrait as _, QueryFilter};
use serde_json::{Value, json};

use crate::client::TestUser;
use crate::helpers::{TestApp, global_id, spawn_app, spawn_app_with};

const ISSUE: &str = "mutation($cabinet: ID!, $label: String!) { issueKioskCredential(input: { cabinetId: $cabinet, label: $label }) { secret credential { id hint label active } } }";
const SIGN_IN: &str = "mutation($secret: String!) { kioskSignIn(input: { credential: $secret }) { accessToken expiresAt cabinetId } }";
const TERMINAL: &str = "{ terminal { cabinet { id } bays { id number } expiresAt } }";

async fn cabinets(app: &TestApp) -> Vec<voltgate::entities::cabinet::Model> {
    use sea_orm::QueryOrder;
    voltgate::entities::cabinet::Entity::find()
        .order_by_asc(voltgate::entities::cabinet::Column::Id)
        .all(&app.db)
        .await
        .expect("cabinets")
}

async fn issue(staff: &TestUser, cabinet: i32) -> (String, Value) {
    let body = staff
        .gql(
            ISSUE,
            json!({ "cabinet": global_id("Cabinet", cabinet), "label": "north entrance" }),
        )
        .await;
    let issued = &body["data"]["issueKioskCredential"];
    let secret = issued["secret"]
        .as_str()
        .unwrap_or_else(|| panic!("{body}"))
        .to_owned();
    (secret, issued["credential"].clone())
}

fn code(body: &Value) -> &str {
    body["errors"][0]["extensions"]["code"]
        .as_str()
        .unwrap_or("none")
}

#[tokio::test]
async fn a_kiosk_signs_in_with_its_credential_and_sees_only_its_cabinet() {
    let app = spawn_app().await;
    let bays = app.seed(1, 2, 2).await;
    let cabinets = cabinets(&app).await;
    let staff = TestUser::staff(&app, "warden").await;
    let (secret, credential) = issue(&staff, cabinets[0].id).await;
    assert!(secret.starts_with("vgk_") && secret.len() > 40, "{secret}");
    assert_eq!(credential["hint"], secret[..8]);
    assert_eq!(credential["label"], "north entrance");
    assert_eq!(credential["active"], true);

    // Stored as a hash only.
    let stored = voltgate::entities::kiosk_credential::Entity::find()
        .all(&app.db)
        .await
        .expect("rows");
    assert_eq!(stored.len(), 1);
    assert_ne!(stored[0].secret_hash, secret);
    assert_eq!(
        stored[0].secret_hash,
        voltgate::auth::tokens::sha256_hex(&secret)
    );

    let signed_in = app.graphql(SIGN_IN, json!({ "secret": secret })).await;
    let token = signed_in["data"]["kioskSignIn"]["accessToken"]
        .as_str()
        .unwrap_or_else(|| panic!("{signed_in}"))
        .to_owned();
    assert_eq!(
        signed_in["data"]["kioskSignIn"]["cabinetId"],
        global_id("Cabinet", cabinets[0].id)
    );
    let kiosk = TestUser::bearer(&app, &token);
    let terminal = kiosk.gql(TERMINAL, json!({})).await;
    assert_eq!(
        terminal["data"]["terminal"]["cabinet"]["id"],
        global_id("Cabinet", cabinets[0].id),
        "{terminal}"
    );
    let own: Vec<String> = bays
        .iter()
        .filter(|b| b.prefix == cabinets[0].mqtt_prefix)
        .map(|b| global_id("Bay", b.bay_id))
        .collect();
    let shown: Vec<String> = terminal["data"]["terminal"]["bays"]
        .as_array()
        .expect("bays")
        .iter()
        .map(|b| b["id"].as_str().expect("id").to_owned())
        .collect();
    assert_eq!(
        shown, own,
        "the kiosk's bays are its cabinet's, and only those"
    );

    // The last use is recorded; the kiosk is not a person and not staff.
    let used = voltgate::entities::kiosk_credential::Entity::find()
        .one(&app.db)
        .await
        .expect("row")
        .expect("a credential");
    assert!(used.last_used_at.is_some());
    assert_eq!(
        code(&kiosk.gql("{ me { id } }", json!({})).await),
        "FORBIDDEN"
    );
    assert_eq!(
        code(
            &kiosk
                .gql(
                    ISSUE,
                    json!({ "cabinet": global_id("Cabinet", cabinets[0].id), "label": "" })
                )
                .await
        ),
        "FORBIDDEN"
    );
}

#[tokio::test]
async fn issuing_again_revokes_the_previous_credential_and_revoked_ones_cannot_sign_in() {
    let app = spawn_app().await;
    app.seed(1, 1, 1).await;
    let cabinet = cabinets(&app).await[0].id;
    let staff = TestUser::staff(&app, "warden").await;
    let (first, _) = issue(&staff, cabinet).await;
    let (second, credential) = issue(&staff, cabinet).await;

    let refused = app.graphql(SIGN_IN, json!({ "secret": first })).await;
    assert_eq!(code(&refused), "UNAUTHENTICATED", "{refused}");
    let accepted = app.graphql(SIGN_IN, json!({ "secret": second })).await;
    assert!(
        accepted["data"]["kioskSignIn"]["accessToken"].is_string(),
        "{accepted}"
    );

    let listed = staff
        .gql(
            "query($c: ID!) { kioskCredentials(cabinetId: $c) { id active revokedAt } }",
            json!({ "c": global_id("Cabinet", cabinet) }),
        )
        .await;
    let rows = listed["data"]["kioskCredentials"].as_array().expect("list");
    assert_eq!(rows.len(), 2);
    assert_eq!(rows[0]["id"], credential["id"], "newest first");
    assert_eq!(rows[0]["active"], true);
    assert_eq!(rows[1]["active"], false);
    assert!(rows[1]["revokedAt"].is_string());

    let revoked = staff
        .gql(
            "mutation($id: ID!) { revokeKioskCredential(input: { id: $id }) { credential { active } } }",
            json!({ "id": credential["id"] }),
        )
        .await;
    assert_eq!(
        revoked["data"]["revokeKioskCredential"]["credential"]["active"],
        false
    );
    let refused = app.graphql(SIGN_IN, json!({ "secret": second })).await;
    assert_eq!(code(&refused), "UNAUTHENTICATED");
    // Revoking again is harmless; an unknown one is NOT_FOUND.
    let again = staff
        .gql(
            "mutation($id: ID!) { revokeKioskCredential(input: { id: $id }) { credential { active } } }",
            json!({ "id": credential["id"] }),
        )
        .await;
    assert_eq!(
        again["data"]["revokeKioskCredential"]["credential"]["active"],
        false
    );
    let missing = staff
        .gql(
            "mutation($id: ID!) { revokeKioskCredential(input: { id: $id }) { credential { active } } }",
            json!({ "id": global_id("KioskCredential", 999_999) }),
        )
        .await;
    assert_eq!(code(&missing), "NOT_FOUND");
}

#[tokio::test]
async fn a_cabinet_out_of_service_ends_its_kiosk() {
    use sea_orm::{ActiveModelTrait, Set};
    let app = spawn_app().await;
    app.seed(1, 1, 1).await;
    let cabinet = cabinets(&app).await.remove(0);
    let staff = TestUser::staff(&app, "warden").await;
    let (secret, _) = issue(&staff, cabinet.id).await;
    let token = app.graphql(SIGN_IN, json!({ "secret": secret })).await["data"]["kioskSignIn"]
        ["accessToken"]
        .as_str()
        .expect("a token")
        .to_owned();
    let mut inactive: voltgate::entities::cabinet::ActiveModel = cabinet.into();
    inactive.status = Set(voltgate::entities::CabinetStatus::Inactive);
    inactive.update(&app.db).await.expect("updated");
    let kiosk = TestUser::bearer(&app, &token);
    assert_eq!(
        code(&kiosk.gql(TERMINAL, json!({})).await),
        "UNAUTHENTICATED"
    );
    let refused = app.graphql(SIGN_IN, json!({ "secret": secret })).await;
    assert_eq!(code(&refused), "UNAUTHENTICATED");
}

#[tokio::test]
async fn guessing_credentials_is_refused_then_rate_limited_and_bad_input_is_named() {
    let app = spawn_app_with(&["--kiosk-sign-in-per-minute", "3"]).await;
    app.seed(1, 1, 1).await;
    for guess in ["vgk_guess1", "nonsense", "vgk_guess3"] {
        let refused = app.graphql(SIGN_IN, json!({ "secret": guess })).await;
        assert_eq!(code(&refused), "UNAUTHENTICATED", "{refused}");
    }
    let limited = app
        .graphql(SIGN_IN, json!({ "secret": "vgk_guess4" }))
        .await;
    assert_eq!(code(&limited), "RATE_LIMITED", "{limited}");

    let staff = TestUser::staff(&app, "warden").await;
    let wrong_kind = staff
        .gql(
            ISSUE,
            json!({ "cabinet": global_id("Bay", 1), "label": "" }),
        )
        .await;
    assert_eq!(code(&wrong_kind), "BAD_USER_INPUT");
    assert_eq!(wrong_kind["errors"][0]["extensions"]["field"], "cabinetId");
    let too_long = staff
        .gql(ISSUE, json!({ "cabinet": global_id("Cabinet", cabinets(&app).await[0].id), "label": "x".repeat(101) }))
        .await;
    assert_eq!(too_long["errors"][0]["extensions"]["field"], "label");
    let missing = staff
        .gql(
            ISSUE,
            json!({ "cabinet": global_id("Cabinet", 999_999), "label": "" }),
        )
        .await;
    assert_eq!(code(&missing), "NOT_FOUND");
    let none = voltgate::entities::kiosk_credential::Entity::find()
        .filter(voltgate::entities::kiosk_credential::Column::CabinetId.eq(999_999))
        .all(&app.db)
        .await
        .expect("rows");
    assert!(none.is_empty());
    assert_eq!(
        voltgate::entities::kiosk_credential::Entity::find()
            .all(&app.db)
            .await
            .expect("rows")
            .len(),
        0,
        "refused issues stored nothing"
    );
}

#[tokio::test]
async fn concurrent_issues_leave_exactly_one_live_credential() {
    let app = spawn_app().await;
    app.seed(1, 1, 1).await;
    let cabinet = cabinets(&app).await[0].id;
    let staff = TestUser::staff(&app, "warden").await;
    let answers = futures_util::future::join_all((0..10).map(|_| issue_raw(&staff, cabinet))).await;
    let issued: Vec<&str> = answers
        .iter()
        .filter_map(|b| b["data"]["issueKioskCredential"]["secret"].as_str())
        .collect();
    for body in &answers {
        assert!(
            body["data"]["issueKioskCredential"]["secret"].is_string() || code(body) == "CONFLICT",
            "{body}"
        );
    }
    assert!(!issued.is_empty());
    let live = voltgate::entities::kiosk_credential::Entity::find()
        .filter(voltgate::entities::kiosk_credential::Column::RevokedAt.is_null())
        .all(&app.db)
        .await
        .expect("rows");
    assert_eq!(live.len(), 1, "one live credential per cabinet");
    let mut working = 0;
    for secret in issued {
        if app.graphql(SIGN_IN, json!({ "secret": secret })).await["data"]["kioskSignIn"]["accessToken"].is_string() {
            working += 1;
        }
    }
    assert_eq!(working, 1, "only the live credential signs in");
}

async fn issue_raw(staff: &TestUser, cabinet: i32) -> Value {
    staff
        .gql(
            ISSUE,
            json!({ "cabinet": global_id("Cabinet", cabinet), "label": "" }),
        )
        .await
}

#[tokio::test]
async fn the_demo_kiosk_credential_signs_in() {
    let app = spawn_app().await;
    app.seed(1, 1, 1).await;
    let (cabinet, secret) = voltgate::seed::demo_kiosk_credential(&app.db)
        .await
        .expect("issued");
    let signed_in = app.graphql(SIGN_IN, json!({ "secret": secret })).await;
    assert_eq!(
        signed_in["data"]["kioskSignIn"]["cabinetId"],
        global_id("Cabinet", cabinet),
        "{signed_in}"
    );
}

/// Signs in with `secret`; the kiosk's access token.
async fn sign_in(app: &TestApp, secret: &str) -> String {
    let body = app.graphql(SIGN_IN, json!({ "secret": secret })).await;
    body["data"]["kioskSignIn"]["accessToken"]
        .as_str()
        .unwrap_or_else(|| panic!("{body}"))
        .to_owned()
}

const REVOKE: &str =
    "mutation($id: ID!) { revokeKioskCredential(input: { id: $id }) { credential { active } } }";
const CABINET_STATUS: &str = "mutation($id: ID!, $status: CabinetStatus!) { updateCabinet(input: { id: $id, status: $status }) { cabinet { id } } }";

#[tokio::test]
async fn a_revoked_credential_or_a_cabinet_out_of_service_stops_a_busy_kiosk_at_once() {
    // Kept a minute: what stops the kiosk below is the change, not the time.
    let app = spawn_app_with(&["--kiosk-cache-ms", "60000"]).await;
    app.seed(1, 1, 1).await;
    let cabinet = cabinets(&app).await[0].id;
    let staff = TestUser::staff(&app, "warden").await;
    let (secret, credential) = issue(&staff, cabinet).await;
    let kiosk = TestUser::bearer(&app, &sign_in(&app, &secret).await);
    for _ in 0..3 {
        let seen = kiosk.gql(TERMINAL, json!({})).await;
        assert!(
            seen["data"]["terminal"]["cabinet"]["id"].is_string(),
            "{seen}"
        );
    }

    let revoked = staff.gql(REVOKE, json!({ "id": credential["id"] })).await;
    assert_eq!(
        revoked["data"]["revokeKioskCredential"]["credential"]["active"], false,
        "{revoked}"
    );
    assert_eq!(
        code(&kiosk.gql(TERMINAL, json!({})).await),
        "UNAUTHENTICATED",
        "the next request after the revocation is refused"
    );

    // Issuing a new credential revokes the previous one: its tokens stop too.
    let (second, _) = issue(&staff, cabinet).await;
    let kiosk = TestUser::bearer(&app, &sign_in(&app, &second).await);
    assert!(kiosk.gql(TERMINAL, json!({})).await["data"]["terminal"].is_object());
    let (third, _) = issue(&staff, cabinet).await;
    assert_eq!(
        code(&kiosk.gql(TERMINAL, json!({})).await),
        "UNAUTHENTICATED"
    );

    // Taking the cabinet out of service stops its kiosk; back in service, it acts again.
    let kiosk = TestUser::bearer(&app, &sign_in(&app, &third).await);
    assert!(kiosk.gql(TERMINAL, json!({})).await["data"]["terminal"].is_object());
    let cabinet_id = global_id("Cabinet", cabinet);
    for (status, works) in [("INACTIVE", false), ("ACTIVE", true)] {
        let changed = staff
            .gql(
                CABINET_STATUS,
                json!({ "id": cabinet_id, "status": status }),
            )
            .await;
        assert!(
            changed["data"]["updateCabinet"]["cabinet"]["id"].is_string(),
            "{changed}"
        );
        let seen = kiosk.gql(TERMINAL, json!({})).await;
        if works {
            assert!(seen["data"]["terminal"].is_object(), "{seen}");
        } else {
            assert_eq!(code(&seen), "UNAUTHENTICATED", "{seen}");
        }
    }
}

#[tokio::test]
async fn a_revocation_this_replica_did_not_see_stops_the_kiosk_within_the_cache_time() {
    use sea_orm::sea_query::Expr;
    let ttl = std::time::Duration::from_secs(3);
    let app = spawn_app_with(&["--kiosk-cache-ms", "3000"]).await;
    app.seed(1, 1, 1).await;
    let cabinet = cabinets(&app).await[0].id;
    let staff = TestUser::staff(&app, "warden").await;
    let (secret, _) = issue(&staff, cabinet).await;
    let kiosk = TestUser::bearer(&app, &sign_in(&app, &secret).await);
    assert!(kiosk.gql(TERMINAL, json!({})).await["data"]["terminal"].is_object());

    // Revoked behind the replica's back (another replica whose message was lost).
    let revoked_at = std::time::Instant::now();
    voltgate::entities::kiosk_credential::Entity::update_many()
        .col_expr(
            voltgate::entities::kiosk_credential::Column::RevokedAt,
            Expr::value(chrono::Utc::now()),
        )
        .filter(voltgate::entities::kiosk_credential::Column::CabinetId.eq(cabinet))
        .exec(&app.db)
        .await
        .expect("revoked");
    loop {
        let seen = kiosk.gql(TERMINAL, json!({})).await;
        if code(&seen) == "UNAUTHENTICATED" {
            break;
        }
        assert!(seen["data"]["terminal"].is_object(), "{seen}");
        assert!(
            revoked_at.elapsed() < ttl + std::time::Duration::from_secs(2),
            "still accepted {:?} after the revocation",
            revoked_at.elapsed()
        );
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
}

#[tokio::test]
async fn a_revocation_on_one_replica_stops_the_kiosk_on_another_through_the_bus() {
    if crate::helpers::Services::from_env().redis.is_none() {
        eprintln!("needs REDIS_URL (replicas share the bus through Redis); not run");
        return;
    }
    let channel = format!("voltgate.test.{}", uuid::Uuid::new_v4().simple());
    // Kept a minute on both: only the bus can make the other replica forget.
    let flags = [
        "--kiosk-cache-ms",
        "60000",
        "--bus-channel",
        channel.as_str(),
    ];
    let a = spawn_app_with(&flags).await;
    let b = crate::helpers::spawn_app_on_with(&a.database_url, &flags).await;
    a.seed(1, 1, 1).await;
    let cabinet = cabinets(&a).await[0].id;
    let staff = TestUser::staff(&a, "warden").await;
    let (secret, credential) = issue(&staff, cabinet).await;
    let kiosk = TestUser::bearer(&b, &sign_in(&b, &secret).await);
    assert!(kiosk.gql(TERMINAL, json!({})).await["data"]["terminal"].is_object());

    let revoked = staff.gql(REVOKE, json!({ "id": credential["id"] })).await;
    assert_eq!(
        revoked["data"]["revokeKioskCredential"]["credential"]["active"],
        false
    );
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(5);
    loop {
        let seen = kiosk.gql(TERMINAL, json!({})).await;
        if code(&seen) == "UNAUTHENTICATED" {
            break;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "the other replica still accepts the revoked kiosk: {seen}"
        );
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
}
