//! Staff administration: users, badges, overview, and the create-superuser command.

use serde_json::json;

use crate::accounts::PASSWORD;
use crate::helpers::{fresh_database_url, global_id, spawn_app};

#[tokio::test]
async fn staff_create_update_and_delete_accounts() {
    let app = spawn_app().await;
    let admin = app.staff("admin").await;
    let created = app
        .graphql_as(&admin, "mutation($input: CreateUserInput!) { createUser(input: $input) { user { id username isStaff roles } } }",
            json!({ "input": { "username": "quinn", "email": "quinn@example.com", "password": PASSWORD } }))
        .await;
    let quinn = created["data"]["createUser"]["user"].clone();
    assert_eq!(quinn["roles"], json!(["CUSTOMER"]), "{created}");

    let escalate = app
        .graphql_as(&admin, "mutation($input: UpdateUserInput!) { updateUser(input: $input) { user { isSuperuser } } }",
            json!({ "input": { "userId": quinn["id"], "isSuperuser": true } }))
        .await;
    assert_eq!(
        escalate["errors"][0]["extensions"]["code"], "FORBIDDEN",
        "only superusers grant superuser: {escalate}"
    );
    let updated = app
        .graphql_as(&admin, "mutation($input: UpdateUserInput!) { updateUser(input: $input) { user { isStaff fullName } } }",
            json!({ "input": { "userId": quinn["id"], "isStaff": true, "fullName": "Quinn Q." } }))
        .await;
    assert_eq!(
        updated["data"]["updateUser"]["user"],
        json!({ "isStaff": true, "fullName": "Quinn Q." }),
        "{updated}"
    );

    let deleted = app
        .graphql_as(
            &admin,
            "mutation($id: ID!) { deleteUser(input: { userId: $id }) { ok } }",
            json!({ "id": quinn["id"] }),
        )
        .await;
    assert_eq!(deleted["data"]["deleteUser"]["ok"], true, "{deleted}");
    let gone = app
        .graphql_as(
            &admin,
            "query($id: ID!) { user(id: $id) { username status } }",
            json!({ "id": quinn["id"] }),
        )
        .await;
    assert_eq!(gone["data"]["user"]["status"], "ARCHIVED", "{gone}");

    let overview = app
        .graphql_as(
            &admin,
            "{ adminOverview { users staff stations orders } }",
            json!({}),
        )
        .await;
    assert_eq!(
        overview["data"]["adminOverview"],
        json!({ "users": 1, "staff": 1, "stations": 0, "orders": 0 }),
        "{overview}"
    );
}

#[tokio::test]
async fn staff_register_and_soft_revoke_badges() {
    let app = spawn_app().await;
    let admin = app.staff("desk").await;
    let (rita, _) = app.register("rita").await;
    let rita_id =
        app.graphql_as(&rita, "{ me { id } }", json!({})).await["data"]["me"]["id"].clone();
    let registered = app
        .graphql_as(&admin, "mutation($input: RegisterUserBadgeInput!) { registerUserBadge(input: $input) { authMethod { id displayValue } } }",
            json!({ "input": { "userId": rita_id, "uid": "DEADBEEF01" } }))
        .await;
    let badge = registered["data"]["registerUserBadge"]["authMethod"]["id"].clone();
    assert!(badge.is_string(), "{registered}");
    let forbidden = app
        .graphql_as(&rita, "mutation($id: ID!) { revokeUserBadge(input: { authMethodId: $id }) { authMethod { isActive } } }", json!({ "id": badge }))
        .await;
    assert_eq!(forbidden["errors"][0]["extensions"]["code"], "FORBIDDEN");
    let revoked = app
        .graphql_as(&admin, "mutation($id: ID!) { revokeUserBadge(input: { authMethodId: $id }) { authMethod { isActive revokedAt } } }", json!({ "id": badge }))
        .await;
    assert_eq!(
        revoked["data"]["revokeUserBadge"]["authMethod"]["isActive"], false,
        "{revoked}"
    );
    let listed = app
        .graphql_as(&rita, "{ me { authMethods { id } } }", json!({}))
        .await;
    assert_eq!(
        listed["data"]["me"]["authMethods"],
        json!([]),
        "revoked badges are not active: {listed}"
    );
    let other = app
        .graphql_as(
            &rita,
            "query($id: ID!) { user(id: $id) { authMethods { id } } }",
            json!({ "id": global_id("User", 1) }),
        )
        .await;
    assert_eq!(other["errors"][0]["extensions"]["code"], "FORBIDDEN");
}

#[tokio::test]
async fn create_superuser_makes_a_first_administrator() {
    let database_url = fresh_database_url().await;
    let output = std::process::Command::new(env!("CARGO_BIN_EXE_voltgate"))
        .args([
            "admin",
            "create-superuser",
            "--username",
            "Founder",
            "--email",
            "founder@example.com",
        ])
        .env("DATABASE_URL", &database_url)
        .env("VOLTGATE_SUPERUSER_PASSWORD", PASSWORD)
        .env("RUST_LOG", "warn")
        .output()
        .expect("the command runs");
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );

    let app = crate::helpers::spawn_app_on(&database_url).await;
    let login = app.graphql("mutation { login(input: { login: \"founder\", password: \"Correct-horse-42\" }) { accessToken user { isStaff isSuperuser roles } } }", json!({})).await;
    let user = &login["data"]["login"]["user"];
    assert_eq!(
        (user["isStaff"].clone(), user["isSuperuser"].clone()),
        (json!(true), json!(true)),
        "{login}"
    );
    assert!(
        user["roles"]
            .as_array()
            .is_some_and(|r| r.contains(&json!("ADMINISTRATOR")))
    );

    let again = std::process::Command::new(env!("CARGO_BIN_EXE_voltgate"))
        .args([
            "admin",
            "create-superuser",
            "--username",
            "founder",
            "--email",
            "f2@example.com",
        ])
        .env("DATABASE_URL", &database_url)
        .env("VOLTGATE_SUPERUSER_PASSWORD", PASSWORD)
        .output()
        .expect("runs");
    assert!(!again.status.success(), "a taken username is refused");
    assert!(String::from_utf8_lossy(&again.stderr).contains("taken"));
}

#[tokio::test]
async fn wildcards_in_the_staff_user_search_are_plain_letters() {
    let app = spawn_app().await;
    let admin = app.staff("admin").await;
    app.register("under_score").await;
    let search = |term: &'static str| {
        let app = &app;
        let admin = admin.clone();
        async move {
            let body = app
                .graphql_as(
                    &admin,
                    "query($search: String) { users(filter: { search: $search }) { edges { node { username } } } }",
                    json!({ "search": term }),
                )
                .await;
            let mut names: Vec<String> = body["data"]["users"]["edges"]
                .as_array()
                .unwrap_or_else(|| panic!("a user list: {body}"))
                .iter()
                .filter_map(|edge| edge["node"]["username"].as_str().map(str::to_owned))
                .collect();
            names.sort();
            names
        }
    };
    assert!(search("%").await.is_empty(), "% is not a wildcard");
    assert!(search("_").await.is_empty(), "_ is not a wildcard");
    assert_eq!(search("under_").await, vec!["under_score"]);
    assert!(search("unde%score").await.is_empty());
    assert_eq!(search("ad").await, vec!["admin"]);
}
