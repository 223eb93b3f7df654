//! Roles, the limits of staff over superusers, and the staff view of the security journal.

use sea_orm::{ColumnTrait, EntityTrait, QueryFilter};
use serde_json::{Value, json};
use voltgate::entities::user;

use crate::accounts::PASSWORD;
use crate::helpers::{TestApp, global_id, spawn_app};

const GRANT: &str = "mutation($input: ChangeUserRoleInput!) { grantUserRole(input: $input) { user { roles isStaff isTechnician } } }";
const REVOKE: &str = "mutation($input: ChangeUserRoleInput!) { revokeUserRole(input: $input) { user { roles isStaff } } }";
const USERS: &str = "{ users { totalCount } }";

fn code(body: &Value) -> &str {
    body["errors"][0]["extensions"]["code"]
        .as_str()
        .unwrap_or("none")
}

async fn id_of(app: &TestApp, username: &str) -> String {
    let account = user::Entity::find()
        .filter(user::Column::Username.eq(username))
        .one(&app.db)
        .await
        .expect("query")
        .expect("user");
    global_id("User", account.id)
}

/// Trades a refresh token for a fresh (access, refresh) pair.
async fn refresh(app: &TestApp, refresh_token: &str) -> (String, String) {
    let body = app
        .graphql(
            "mutation($input: RefreshSessionInput!) { refreshSession(input: $input) { accessToken refreshToken } }",
            json!({ "input": { "refreshToken": refresh_token } }),
        )
        .await;
    let session = &body["data"]["refreshSession"];
    (
        session["accessToken"]
            .as_str()
            .expect("refreshed")
            .to_owned(),
        session["refreshToken"]
            .as_str()
            .expect("refreshed")
            .to_owned(),
    )
}

async fn login(app: &TestApp, username: &str, password: &str) -> Value {
    app.graphql(
        "mutation($input: LoginInput!) { login(input: $input) { accessToken } }",
        json!({ "input": { "login": username, "password": password } }),
    )
    .await
}

#[tokio::test]
async fn roles_are_granted_and_revoked_and_the_administrator_role_is_staff_access() {
    let app = spawn_app().await;
    let admin = app.staff("chief").await;
    let (before, renewal) = app.register("tess").await;
    let tess = id_of(&app, "tess").await;

    let granted = app
        .graphql_as(
            &admin,
            GRANT,
            json!({ "input": { "userId": tess, "role": "TECHNICIAN" } }),
        )
        .await;
    assert_eq!(
        granted["data"]["grantUserRole"]["user"],
        json!({ "roles": ["CUSTOMER", "TECHNICIAN"], "isStaff": false, "isTechnician": true }),
        "{granted}"
    );
    let again = app
        .graphql_as(
            &admin,
            GRANT,
            json!({ "input": { "userId": tess, "role": "TECHNICIAN" } }),
        )
        .await;
    assert_eq!(
        again["data"]["grantUserRole"]["user"]["roles"],
        json!(["CUSTOMER", "TECHNICIAN"]),
        "granting twice is harmless: {again}"
    );

    // Tokens issued before the change no longer stand for the account's rights;
    // the next refresh carries the new ones.
    assert_eq!(
        code(&app.graphql_as(&before, "{ me { id } }", json!({})).await),
        "UNAUTHENTICATED"
    );
    let (tech, renewal) = refresh(&app, &renewal).await;
    let me = app
        .graphql_as(&tech, "{ me { isTechnician } }", json!({}))
        .await;
    assert_eq!(me["data"]["me"]["isTechnician"], true, "{me}");

    // A technician is not staff: every administration path stays closed.
    for (query, variables) in [
        (USERS, json!({})),
        ("{ adminOverview { users } }", json!({})),
        ("{ securityEvents { totalCount } }", json!({})),
        ("{ roles { role } }", json!({})),
        (
            GRANT,
            json!({ "input": { "userId": tess, "role": "ADMINISTRATOR" } }),
        ),
        (
            "mutation($id: ID!) { resetUserPassword(input: { userId: $id }) { temporaryPassword } }",
            json!({ "id": tess }),
        ),
    ] {
        let body = app.graphql_as(&tech, query, variables).await;
        assert_eq!(code(&body), "FORBIDDEN", "{query}: {body}");
    }

    let kiosk = app
        .graphql_as(
            &admin,
            GRANT,
            json!({ "input": { "userId": tess, "role": "KIOSK" } }),
        )
        .await;
    assert_eq!(code(&kiosk), "BAD_USER_INPUT", "{kiosk}");
    assert_eq!(kiosk["errors"][0]["extensions"]["field"], "role");

    // The administrator role is staff access, at once for the existing token.
    let promoted = app
        .graphql_as(
            &admin,
            GRANT,
            json!({ "input": { "userId": tess, "role": "ADMINISTRATOR" } }),
        )
        .await;
    assert_eq!(
        promoted["data"]["grantUserRole"]["user"]["isStaff"], true,
        "{promoted}"
    );
    let (tech, renewal) = refresh(&app, &renewal).await;
    let listed = app.graphql_as(&tech, USERS, json!({})).await;
    assert_eq!(listed["data"]["users"]["totalCount"], 2, "{listed}");

    let demoted = app
        .graphql_as(
            &admin,
            REVOKE,
            json!({ "input": { "userId": tess, "role": "ADMINISTRATOR" } }),
        )
        .await;
    assert_eq!(
        demoted["data"]["revokeUserRole"]["user"],
        json!({ "roles": ["CUSTOMER", "TECHNICIAN"], "isStaff": false }),
        "{demoted}"
    );
    assert_eq!(
        code(&app.graphql_as(&tech, USERS, json!({})).await),
        "UNAUTHENTICATED",
        "a demoted administrator's tokens stop at once"
    );
    let (tech, _) = refresh(&app, &renewal).await;
    assert_eq!(
        code(&app.graphql_as(&tech, USERS, json!({})).await),
        "FORBIDDEN"
    );

    let chief = id_of(&app, "chief").await;
    let own = app
        .graphql_as(
            &admin,
            REVOKE,
            json!({ "input": { "userId": chief, "role": "ADMINISTRATOR" } }),
        )
        .await;
    assert_eq!(
        code(&own),
        "BAD_USER_INPUT",
        "staff keep their own access: {own}"
    );

    let catalog = app
        .graphql_as(&admin, "{ roles { role description } }", json!({}))
        .await;
    let names: Vec<&str> = catalog["data"]["roles"]
        .as_array()
        .map(|roles| roles.iter().filter_map(|r| r["role"].as_str()).collect())
        .unwrap_or_default();
    assert_eq!(
        names,
        [
            "ADMINISTRATOR",
            "CUSTOMER",
            "KIOSK",
            "ORGANIZER",
            "TECHNICIAN"
        ],
        "{catalog}"
    );

    let journal = app
        .graphql_as(
            &admin,
            "query($id: ID!) { securityEvents(filter: { userId: $id, action: \"role_change\" }) { totalCount nodes { detail } } }",
            json!({ "id": tess }),
        )
        .await;
    assert_eq!(
        journal["data"]["securityEvents"]["totalCount"], 4,
        "every grant and revocation is journaled: {journal}"
    );
}

#[tokio::test]
async fn staff_who_are_not_superusers_cannot_take_over_a_superuser() {
    let app = spawn_app().await;
    voltgate::accounts::admin::create_superuser(&app.db, "root", "root@example.com", PASSWORD)
        .await
        .expect("superuser");
    let root = id_of(&app, "root").await;
    let staff = app.staff("deputy").await;

    for (query, variables) in [
        (
            "mutation($id: ID!) { resetUserPassword(input: { userId: $id }) { temporaryPassword } }",
            json!({ "id": root }),
        ),
        (
            "mutation($id: ID!) { setUserStatus(input: { userId: $id, status: SUSPENDED }) { user { status } } }",
            json!({ "id": root }),
        ),
        (
            "mutation($id: ID!) { updateUser(input: { userId: $id, email: \"mine@example.com\" }) { user { email } } }",
            json!({ "id": root }),
        ),
        (
            "mutation($id: ID!) { deleteUser(input: { userId: $id }) { ok } }",
            json!({ "id": root }),
        ),
        (
            "mutation($id: ID!) { revokeUserRole(input: { userId: $id, role: ADMINISTRATOR }) { user { isStaff } } }",
            json!({ "id": root }),
        ),
        (
            "mutation($id: ID!) { registerUserBadge(input: { userId: $id, uid: \"AABBCCDD\" }) { authMethod { id } } }",
            json!({ "id": root }),
        ),
    ] {
        let body = app.graphql_as(&staff, query, variables).await;
        assert_eq!(code(&body), "FORBIDDEN", "{query}: {body}");
    }

    // Nothing changed: the superuser signs in with the same password, email and rights.
    let signed_in = login(&app, "root@example.com", PASSWORD).await;
    let token = signed_in["data"]["login"]["accessToken"]
        .as_str()
        .expect("the superuser still signs in")
        .to_owned();
    let me = app
        .graphql_as(
            &token,
            "{ me { isStaff isSuperuser roles authMethods { id } } }",
            json!({}),
        )
        .await;
    assert_eq!(
        me["data"]["me"],
        json!({ "isStaff": true, "isSuperuser": true, "roles": ["ADMINISTRATOR", "CUSTOMER"], "authMethods": [] }),
        "{me}"
    );

    // A superuser may manage another superuser's account.
    let reset = app
        .graphql_as(
            &token,
            "mutation($id: ID!) { resetUserPassword(input: { userId: $id }) { temporaryPassword } }",
            json!({ "id": id_of(&app, "deputy").await }),
        )
        .await;
    assert!(
        reset["data"]["resetUserPassword"]["temporaryPassword"].is_string(),
        "{reset}"
    );
}

#[tokio::test]
async fn staff_read_the_whole_security_journal_newest_first() {
    let app = spawn_app().await;
    let admin = app.staff("auditor").await;
    let (customer, _) = app.register("uma").await;
    let failed = login(&app, "nobody", "Wrong-password-1").await;
    assert_eq!(code(&failed), "UNAUTHENTICATED");
    let failed = login(&app, "uma", "Wrong-password-1").await;
    assert_eq!(code(&failed), "UNAUTHENTICATED");

    let page = "query($after: String) { securityEvents(first: 1, after: $after, filter: { action: \"login\", status: FAILURE }) {
        totalCount pageInfo { hasNextPage endCursor } nodes { detail user { username } } } }";
    let first = app.graphql_as(&admin, page, json!({})).await;
    let events = &first["data"]["securityEvents"];
    assert_eq!(events["totalCount"], 2, "{first}");
    assert_eq!(
        events["nodes"][0]["user"]["username"], "uma",
        "newest first: {first}"
    );
    assert_eq!(events["pageInfo"]["hasNextPage"], true);
    let second = app
        .graphql_as(
            &admin,
            page,
            json!({ "after": events["pageInfo"]["endCursor"] }),
        )
        .await;
    let events = &second["data"]["securityEvents"];
    assert_eq!(
        events["nodes"][0]["user"],
        Value::Null,
        "a sign-in to an unknown account has no user: {second}"
    );
    assert_eq!(events["pageInfo"]["hasNextPage"], false);

    let bad = app
        .graphql_as(
            &admin,
            "{ securityEvents(filter: { userId: \"nonsense\" }) { totalCount } }",
            json!({}),
        )
        .await;
    assert_eq!(code(&bad), "BAD_USER_INPUT", "{bad}");
    assert_eq!(
        code(
            &app.graphql_as(&customer, "{ securityEvents { totalCount } }", json!({}))
                .await
        ),
        "FORBIDDEN"
    );
    assert_eq!(
        code(
            &app.graphql("{ securityEvents { totalCount } }", json!({}))
                .await
        ),
        "UNAUTHENTICATED"
    );

    let overview = app
        .graphql_as(
            &admin,
            "{ adminOverview { recentUsers { username } recentSecurityEvents { action status } } }",
            json!({}),
        )
        .await;
    let recent = &overview["data"]["adminOverview"];
    assert_eq!(
        recent["recentUsers"],
        json!([{ "username": "uma" }, { "username": "auditor" }]),
        "{overview}"
    );
    assert_eq!(
        recent["recentSecurityEvents"][0],
        json!({ "action": "login", "status": "FAILURE" }),
        "{overview}"
    );
}

#[tokio::test]
async fn registering_one_username_over_and_over_is_rate_limited() {
    let app = spawn_app().await;
    let attempt = |i: usize| {
        app.graphql(
            "mutation($input: RegisterInput!) { register(input: $input) { accessToken } }",
            json!({ "input": {
                "username": "vera", "email": format!("vera{i}@example.com"), "password": PASSWORD,
                "acceptTerms": true, "acceptPrivacyPolicy": true,
            }}),
        )
    };
    let mut codes = Vec::new();
    for i in 0..6 {
        codes.push(code(&attempt(i).await).to_owned());
    }
    assert_eq!(
        codes,
        [
            "none",
            "CONFLICT",
            "CONFLICT",
            "CONFLICT",
            "CONFLICT",
            "RATE_LIMITED"
        ]
    );
}

#[tokio::test]
async fn a_demoted_administrator_cannot_go_on_over_an_open_websocket() {
    let app = spawn_app().await;
    let chief = app.staff("chief").await;
    let (_, renewal) = app.register("ivan").await;
    let ivan = id_of(&app, "ivan").await;
    app.graphql_as(
        &chief,
        GRANT,
        json!({ "input": { "userId": ivan, "role": "ADMINISTRATOR" } }),
    )
    .await;
    let (admin_token, _) = refresh(&app, &renewal).await;

    // A socket opened while staff; queries over it work...
    let mut socket = crate::helpers::Subscription::start_with(
        app.addr,
        "graphql-transport-ws",
        json!({ "authorization": format!("Bearer {admin_token}") }),
        USERS,
        json!({}),
    )
    .await;
    let first = socket.next_message().await;
    assert_eq!(
        first["payload"]["data"]["users"]["totalCount"], 2,
        "{first}"
    );

    // ...until the role is revoked: the same socket is refused from then on.
    app.graphql_as(
        &chief,
        REVOKE,
        json!({ "input": { "userId": ivan, "role": "ADMINISTRATOR" } }),
    )
    .await;
    socket.start_operation("2", USERS).await;
    let refused = loop {
        let message = socket.next_message().await;
        if message["id"] == "2" {
            break message;
        }
    };
    assert_eq!(
        refused["payload"]["errors"][0]["extensions"]["code"], "UNAUTHENTICATED",
        "the open socket no longer carries staff rights: {refused}"
    );
    assert_eq!(refused["payload"]["data"], Value::Null, "{refused}");
}
