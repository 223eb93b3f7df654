//! Principals and their scopes: a technician sees the stations assigned to them,
//! a kiosk its own station, and each is refused what it is not.

use sea_orm::{EntityTrait, QueryOrder};
use serde_json::json;
use voltgate::auth::principal::{self, Principal};
use voltgate::auth::{Scope, TeamPermission};
use voltgate::entities::{bay, cabinet, station};

use crate::client::{TestUser, keys};
use crate::helpers::{TestApp, spawn_app};

async fn principal_of(app: &TestApp, user: &TestUser) -> Principal {
    principal::authenticate(&app.db, &keys(), &user.token)
        .await
        .expect("the credential authenticates")
}

async fn stations_seen(app: &TestApp, principal: &Principal) -> Vec<i32> {
    station::Entity::visible_to(principal)
        .order_by_asc(station::Column::Id)
        .all(&app.db)
        .await
        .expect("query")
        .into_iter()
        .map(|s| s.id)
        .collect()
}

async fn cabinets(app: &TestApp) -> Vec<cabinet::Model> {
    cabinet::Entity::find()
        .order_by_asc(cabinet::Column::Id)
        .all(&app.db)
        .await
        .expect("cabinets")
}

#[tokio::test]
async fn a_technician_sees_only_the_stations_assigned_to_them() {
    let app = spawn_app().await;
    let bays = app.seed(3, 1, 2).await;
    let (first, third) = (bays[0].station_id, bays[4].station_id);
    let technician = TestUser::technician(&app, "tom", &[first, third]).await;

    let tom = principal_of(&app, &technician).await;
    assert_eq!(tom.stations(), Scope::Only(vec![first, third]));
    assert_eq!(stations_seen(&app, &tom).await, vec![first, third]);
    let seen_bays = bay::Entity::visible_to(&tom)
        .all(&app.db)
        .await
        .expect("bays");
    assert_eq!(seen_bays.len(), 4, "two bays in each assigned station");
    assert!(
        seen_bays
            .iter()
            .all(|b| b.station_id == first || b.station_id == third)
    );

    // A customer sees no station's operation; staff see every station.
    let customer = principal_of(&app, &TestUser::customer(&app, "cleo").await).await;
    assert!(stations_seen(&app, &customer).await.is_empty());
    let staff = principal_of(&app, &TestUser::staff(&app, "warden").await).await;
    assert_eq!(stations_seen(&app, &staff).await.len(), 3);

    // The technician is a person: their own account, nobody else's.
    let me = technician
        .gql("{ me { username isTechnician } }", json!({}))
        .await;
    assert_eq!(
        me["data"]["me"],
        json!({ "username": "tom", "isTechnician": true }),
        "{me}"
    );
    let others = technician.gql("{ users { totalCount } }", json!({})).await;
    assert_eq!(others["errors"][0]["extensions"]["code"], "FORBIDDEN");
}

#[tokio::test]
async fn a_kiosk_acts_for_its_own_cabinet_and_sees_its_own_station() {
    let app = spawn_app().await;
    app.seed(2, 2, 1).await;
    let cabinets = cabinets(&app).await;
    let (mine, other) = (&cabinets[0], &cabinets[2]);
    assert_ne!(mine.station_id, other.station_id);

    let kiosk = TestUser::kiosk(&app, mine.id);
    let principal = principal_of(&app, &kiosk).await;
    assert!(principal.kiosk_of(mine.id).is_ok());
    assert!(principal.kiosk_of(other.id).is_err());
    assert_eq!(stations_seen(&app, &principal).await, vec![mine.station_id]);
    let seen = cabinet::Entity::visible_to(&principal)
        .all(&app.db)
        .await
        .expect("cabinets");
    assert_eq!(seen.len(), 2, "both cabinets of its station");
    assert_eq!(principal.accounts(), Scope::NONE);

    // Public data is public to a kiosk; a person's operations are not.
    let stations = kiosk.gql("{ stations { totalCount } }", json!({})).await;
    assert_eq!(stations["data"]["stations"]["totalCount"], 2, "{stations}");
    let me = kiosk.gql("{ me { id } }", json!({})).await;
    assert_eq!(me["errors"][0]["extensions"]["code"], "FORBIDDEN", "{me}");

    // A cabinet taken out of service ends its kiosk's access at once (the
    // replica that changes it forgets what it kept of the kiosk).
    let staff = TestUser::staff(&app, "warden").await;
    let retired = staff
        .gql(
            "mutation($id: ID!) { updateCabinet(input: { id: $id, status: INACTIVE }) { cabinet { id } } }",
            json!({ "id": crate::helpers::global_id("Cabinet", mine.id) }),
        )
        .await;
    assert!(
        retired["data"]["updateCabinet"]["cabinet"]["id"].is_string(),
        "{retired}"
    );
    assert!(
        principal::authenticate(&app.db, &keys(), &kiosk.token)
            .await
            .is_err()
    );
    let refused = kiosk.gql("{ me { id } }", json!({})).await;
    assert_eq!(
        refused["errors"][0]["extensions"]["code"], "UNAUTHENTICATED",
        "{refused}"
    );
}

#[tokio::test]
async fn scanners_and_team_tokens_carry_their_events() {
    let app = spawn_app().await;
    let scanner = principal_of(&app, &TestUser::scanner(&app, 7, "north")).await;
    assert_eq!(scanner.events(), Scope::one(7));
    assert!(scanner.scanner_at(7).is_ok() && scanner.scanner_at(8).is_err());
    assert_eq!(scanner.stations(), Scope::NONE);

    let team = principal_of(
        &app,
        &TestUser::team(&app, &[7, 9], &[TeamPermission::ViewOrders]),
    )
    .await;
    assert_eq!(team.events(), Scope::Only(vec![7, 9]));
    assert!(team.team_may(TeamPermission::ViewOrders, 9).is_ok());
    assert!(team.team_may(TeamPermission::ChangeOrders, 9).is_err());
    assert!(team.team_may(TeamPermission::ViewOrders, 8).is_err());
}

#[tokio::test]
async fn a_token_signed_with_another_key_is_no_credential() {
    let app = spawn_app().await;
    let foreign = voltgate::auth::tokens::TokenKeys::ephemeral(
        chrono::TimeDelta::minutes(5),
        chrono::TimeDelta::days(1),
    )
    .expect("keys");
    let (token, _) = foreign
        .issue_credential(
            voltgate::auth::tokens::Credential::Kiosk {
                cabinet: 1,
                credential: None,
            },
            chrono::TimeDelta::minutes(5),
            chrono::Utc::now(),
        )
        .expect("signed");
    let body = app.graphql_as(&token, "{ me { id } }", json!({})).await;
    assert_eq!(body["errors"][0]["extensions"]["code"], "UNAUTHENTICATED");
}

#[tokio::test]
async fn operators_issue_kiosk_credentials_from_the_command_line() {
    let database_url = crate::helpers::fresh_database_url().await;
    let app = crate::helpers::spawn_app_on(&database_url).await;
    app.seed(1, 1, 1).await;
    let cabinet = cabinets(&app).await[0].id;
    let output = tokio::process::Command::new(env!("CARGO_BIN_EXE_voltgate"))
        .args([
            "admin",
            "kiosk-credential",
            "--cabinet",
            &cabinet.to_string(),
        ])
        .args(["--days", "1", "--database-url", &database_url])
        .env("VOLTGATE_JWT_SECRET", crate::client::TEST_JWT_SECRET)
        .output()
        .await
        .expect("the command runs");
    assert!(output.status.success(), "{output:?}");
    let token = String::from_utf8_lossy(&output.stdout).trim().to_owned();
    let kiosk = TestUser::bearer(&app, &token);
    assert_eq!(
        principal_of(&app, &kiosk)
            .await
            .kiosk_of(cabinet)
            .ok()
            .map(|k| k.cabinet_id),
        Some(cabinet)
    );

    let unknown = tokio::process::Command::new(env!("CARGO_BIN_EXE_voltgate"))
        .args(["admin", "kiosk-credential", "--cabinet", "999"])
        .args(["--database-url", &database_url])
        .env("VOLTGATE_JWT_SECRET", crate::client::TEST_JWT_SECRET)
        .output()
        .await
        .expect("the command runs");
    assert!(
        !unknown.status.success(),
        "no credential for an unknown cabinet"
    );
}
