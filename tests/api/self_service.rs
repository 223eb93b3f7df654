//! The user's own account: profile, consents, badges, export and deletion.

use sea_orm::{ColumnTrait, EntityTrait, QueryFilter};
use serde_json::json;
use voltgate::entities::{security_log, user};

use crate::accounts::PASSWORD;
use crate::helpers::spawn_app;

#[tokio::test]
async fn the_profile_updates_in_sync_and_consents_are_a_history() {
    let app = spawn_app().await;
    let (token, _) = app.register("mona").await;
    let unconfirmed = app
        .graphql_as(
            &token,
            "mutation { updateProfile(input: { fullName: \"Not Applied\", email: \"thief@example.com\" }) { user { email } } }",
            json!({}),
        )
        .await;
    assert_eq!(
        unconfirmed["errors"][0]["extensions"]["field"], "currentPassword",
        "a new email needs the password: {unconfirmed}"
    );
    let body = app
        .graphql_as(&token, "mutation($input: UpdateProfileInput!) { updateProfile(input: $input) { user { fullName email profile { name phone phoneVerified } } } }",
            json!({ "input": { "fullName": " Mona Lisa ", "phone": "06 11 22 33 44", "email": "MONA@louvre.fr", "currentPassword": PASSWORD } }))
        .await;
    let user = &body["data"]["updateProfile"]["user"];
    assert_eq!(user["fullName"], "Mona Lisa", "{body}");
    assert_eq!(
        user["profile"]["name"], "Mona Lisa",
        "account and profile names stay in sync"
    );
    assert_eq!(user["profile"]["phone"], "0611223344");
    assert_eq!(user["email"], "mona@louvre.fr");

    let bad = app
        .graphql_as(
            &token,
            "mutation { updateProfile(input: { phone: \"call me\" }) { user { id } } }",
            json!({}),
        )
        .await;
    assert_eq!(bad["errors"][0]["extensions"]["field"], "phone", "{bad}");

    app.graphql_as(
        &token,
        "mutation { updateConsents(input: { notifications: true }) { status } }",
        json!({}),
    )
    .await;
    let consents = app
        .graphql_as(
            &token,
            "{ me { consents { consentType status } } }",
            json!({}),
        )
        .await;
    let history = consents["data"]["me"]["consents"]
        .as_array()
        .cloned()
        .unwrap_or_default();
    assert_eq!(
        history.len(),
        4,
        "three at registration plus the change: {consents}"
    );
    assert_eq!(
        history[0],
        json!({ "consentType": "NOTIFICATIONS", "status": "ACCEPTED" }),
        "newest first"
    );
    assert!(
        history.contains(&json!({ "consentType": "NOTIFICATIONS", "status": "REFUSED" })),
        "the old decision is kept"
    );
}

#[tokio::test]
async fn badges_are_stored_hashed_shown_as_hints_and_unique_while_active() {
    let app = spawn_app().await;
    let (nina, _) = app.register("nina").await;
    let (omar, _) = app.register("omar").await;
    let add = "mutation($input: AddRfidBadgeInput!) { addRfidBadge(input: $input) { authMethod { id displayValue label isActive } } }";
    let body = app
        .graphql_as(
            &nina,
            add,
            json!({ "input": { "uid": "04:a2:2b:1a", "label": "Work" } }),
        )
        .await;
    let method = &body["data"]["addRfidBadge"]["authMethod"];
    assert_eq!(method["displayValue"], "••••2B1A", "{body}");
    assert_eq!(method["label"], "Work");
    let stored = voltgate::entities::auth_method::Entity::find()
        .one(&app.db)
        .await
        .expect("q")
        .expect("row");
    assert!(
        !stored.value_hash.contains("04A22B1A")
            && stored.value_hash.starts_with("h1:")
            && stored.value_hash.len() == 64,
        "only a keyed hash is stored"
    );

    let taken = app
        .graphql_as(&omar, add, json!({ "input": { "uid": "04A22B1A" } }))
        .await;
    assert_eq!(
        taken["errors"][0]["extensions"]["code"], "CONFLICT",
        "{taken}"
    );

    let id = method["id"].clone();
    let foreign = app
        .graphql_as(
            &omar,
            "mutation($id: ID!) { deleteAuthMethod(input: { id: $id }) { ok } }",
            json!({ "id": id }),
        )
        .await;
    assert_eq!(
        foreign["errors"][0]["extensions"]["code"], "NOT_FOUND",
        "not omar's badge: {foreign}"
    );
    let deleted = app
        .graphql_as(
            &nina,
            "mutation($id: ID!) { deleteAuthMethod(input: { id: $id }) { ok } }",
            json!({ "id": id }),
        )
        .await;
    assert_eq!(deleted["data"]["deleteAuthMethod"]["ok"], true, "{deleted}");
    let again = app
        .graphql_as(&omar, add, json!({ "input": { "uid": "04A22B1A" } }))
        .await;
    assert!(
        again["data"]["addRfidBadge"]["authMethod"]["id"].is_string(),
        "free again once deleted: {again}"
    );
}

#[tokio::test]
async fn the_export_holds_everything_and_deletion_anonymizes() {
    let app = spawn_app().await;
    let (token, _) = app.register("paul").await;
    let export = app.graphql_as(&token, "{ exportMyData }", json!({})).await;
    let data = &export["data"]["exportMyData"];
    assert_eq!(data["account"]["username"], "paul", "{export}");
    assert_eq!(data["account"]["roles"], json!(["customer"]), "{export}");
    for section in [
        "profile",
        "consents",
        "authMethods",
        "sessions",
        "securityJournal",
    ] {
        assert!(!data[section].is_null(), "{section} missing: {export}");
    }
    assert_eq!(data["consents"].as_array().map(Vec::len), Some(3));

    let wrong = app
        .graphql_as(
            &token,
            "mutation { deleteAccount(input: { password: \"nope-nope-11\" }) { ok } }",
            json!({}),
        )
        .await;
    assert_eq!(
        wrong["errors"][0]["extensions"]["field"], "password",
        "{wrong}"
    );
    let done = app
        .graphql_as(
            &token,
            "mutation($p: String!) { deleteAccount(input: { password: $p }) { ok } }",
            json!({ "p": PASSWORD }),
        )
        .await;
    assert_eq!(done["data"]["deleteAccount"]["ok"], true, "{done}");

    let row = user::Entity::find()
        .one(&app.db)
        .await
        .expect("q")
        .expect("the row stays");
    assert!(
        row.username.starts_with("deleted:") && !row.email.contains("paul"),
        "{row:?}"
    );
    assert!(row.deleted_at.is_some());
    assert!(row.last_login.is_none(), "{row:?}");
    let sign_ins = voltgate::entities::refresh_token::Entity::find()
        .filter(voltgate::entities::refresh_token::Column::UserId.eq(row.id))
        .all(&app.db)
        .await
        .expect("q");
    assert!(
        sign_ins.is_empty(),
        "sign-ins (IPs, user agents) go with the person"
    );
    let journal = security_log::Entity::find()
        .filter(security_log::Column::UserId.eq(row.id))
        .all(&app.db)
        .await
        .expect("q");
    assert!(
        journal.iter().any(|e| e.action == "account_delete"),
        "the journal is kept, de-identified"
    );
    assert!(
        journal.iter().all(|e| e.ip.is_none()),
        "IPs are erased with the person"
    );
    assert_eq!(
        app.graphql_as(&token, "{ me { id } }", json!({})).await["errors"][0]["extensions"]["code"],
        "UNAUTHENTICATED"
    );
    let login = app.graphql("mutation { login(input: { login: \"paul\", password: \"Correct-horse-42\" }) { accessToken } }", json!({})).await;
    assert_eq!(login["errors"][0]["extensions"]["code"], "UNAUTHENTICATED");
    // The name is free again.
    app.register("paul").await;
    // And nobody can pre-empt an anonymized identity to block a deletion.
    let squat = app
        .graphql(
            "mutation($input: RegisterInput!) { register(input: $input) { accessToken } }",
            json!({ "input": { "username": format!("deleted:{}", row.id + 1), "email": format!("deleted:{}", row.id + 1),
                "password": PASSWORD, "acceptTerms": true, "acceptPrivacyPolicy": true } }),
        )
        .await;
    assert_eq!(
        squat["errors"][0]["extensions"]["code"], "BAD_USER_INPUT",
        "{squat}"
    );
}
