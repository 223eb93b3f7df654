//! Accounts: registration, sessions, lockout, refresh rotation, revocation and roles.

use sea_orm::{ActiveModelTrait, ColumnTrait, EntityTrait, QueryFilter, Set};
use serde_json::{Value, json};
use voltgate::entities::{SecurityLogStatus, security_log, user};

use crate::helpers::{TestApp, spawn_app};

const REGISTER: &str = "mutation Register($input: RegisterInput!) {
  register(input: $input) { accessToken refreshToken user { id username email status roles profile { phone } } }
}";
const LOGIN: &str = "mutation Login($input: LoginInput!) {
  login(input: $input) { accessToken refreshToken user { username needsPasswordChange } }
}";
const REFRESH: &str = "mutation Refresh($input: RefreshSessionInput!) { refreshSession(input: $input) { accessToken refreshToken refreshTokenExpiresAt } }";
const ME: &str = "{ me { username email isStaff } }";

pub const PASSWORD: &str = "Correct-horse-42";

fn registration(username: &str, email: &str) -> Value {
    json!({ "input": {
        "username": username, "email": email, "password": PASSWORD, "phone": "+33 6 12 34 56 78",
        "acceptTerms": true, "acceptPrivacyPolicy": true, "acceptNotifications": false,
    }})
}

fn code(body: &Value) -> &str {
    body["errors"][0]["extensions"]["code"]
        .as_str()
        .unwrap_or("none")
}

impl TestApp {
    /// Posts with `Authorization: Bearer <token>`.
    pub async fn graphql_as(&self, token: &str, query: &str, variables: Value) -> Value {
        crate::client::TestUser::bearer(self, token)
            .gql(query, variables)
            .await
    }

    /// Registers a customer and returns its access and refresh tokens.
    pub async fn register(&self, username: &str) -> (String, String) {
        let body = self
            .graphql(
                REGISTER,
                registration(username, &format!("{username}@example.com")),
            )
            .await;
        let payload = &body["data"]["register"];
        assert!(payload["accessToken"].is_string(), "{body}");
        (
            payload["accessToken"].as_str().unwrap_or_default().into(),
            payload["refreshToken"].as_str().unwrap_or_default().into(),
        )
    }

    /// Registers an account, makes it staff and signs it in again; returns its access token.
    pub async fn staff(&self, username: &str) -> String {
        self.register(username).await;
        let account = user::Entity::find()
            .filter(user::Column::Username.eq(username))
            .one(&self.db)
            .await
            .expect("query")
            .expect("user");
        let mut active: user::ActiveModel = account.into();
        active.is_staff = Set(true);
        active.update(&self.db).await.expect("promoted");
        let body = self
            .graphql(
                LOGIN,
                json!({ "input": { "login": username, "password": PASSWORD } }),
            )
            .await;
        body["data"]["login"]["accessToken"]
            .as_str()
            .expect("staff token")
            .to_owned()
    }
}

#[tokio::test]
async fn registering_signs_in_and_normalizes_the_account() {
    let app = spawn_app().await;
    let body = app
        .graphql(REGISTER, registration("  Alice ", "Alice@Example.COM"))
        .await;
    let payload = &body["data"]["register"];
    assert_eq!(payload["user"]["username"], "alice", "{body}");
    assert_eq!(payload["user"]["email"], "alice@example.com");
    assert_eq!(payload["user"]["status"], "ACTIVE");
    assert_eq!(payload["user"]["roles"], json!(["CUSTOMER"]));
    assert_eq!(payload["user"]["profile"]["phone"], "+33612345678");

    let token = payload["accessToken"].as_str().unwrap_or_default();
    let me = app.graphql_as(token, ME, json!({})).await;
    assert_eq!(me["data"]["me"]["username"], "alice", "{me}");

    let login = app
        .graphql(
            LOGIN,
            json!({ "input": { "login": "ALICE@example.com", "password": PASSWORD } }),
        )
        .await;
    assert!(
        login["data"]["login"]["accessToken"].is_string(),
        "login by email, any case: {login}"
    );

    let consents = voltgate::entities::consent::Entity::find()
        .all(&app.db)
        .await
        .expect("consents");
    assert_eq!(
        consents.len(),
        3,
        "terms, privacy policy and notifications are recorded"
    );
}

#[tokio::test]
async fn registration_refuses_bad_input_with_the_field_named() {
    let app = spawn_app().await;
    let mut input = registration("bob", "bob@example.com");
    input["input"]["acceptTerms"] = json!(false);
    let body = app.graphql(REGISTER, input).await;
    assert_eq!(
        (code(&body), &body["errors"][0]["extensions"]["field"]),
        ("BAD_USER_INPUT", &json!("acceptTerms")),
        "{body}"
    );

    let mut input = registration("bob", "bob@example.com");
    input["input"]["password"] = json!("short");
    let body = app.graphql(REGISTER, input).await;
    assert_eq!(
        body["errors"][0]["extensions"]["field"], "password",
        "{body}"
    );

    let body = app
        .graphql(REGISTER, registration("bob", "not-an-email"))
        .await;
    assert_eq!(body["errors"][0]["extensions"]["field"], "email", "{body}");

    app.register("bob").await;
    let body = app
        .graphql(REGISTER, registration("BOB", "other@example.com"))
        .await;
    assert_eq!(
        code(&body),
        "CONFLICT",
        "usernames are unique whatever the case: {body}"
    );
    let body = app
        .graphql(REGISTER, registration("bobby", "BOB@example.com"))
        .await;
    assert_eq!(code(&body), "CONFLICT", "{body}");

    let available = app
        .graphql("{ registrationAvailability(username: \"Bob\", email: \"new@example.com\") { usernameAvailable emailAvailable } }", json!({}))
        .await;
    assert_eq!(
        available["data"]["registrationAvailability"],
        json!({ "usernameAvailable": false, "emailAvailable": true })
    );
}

#[tokio::test]
async fn concurrent_registrations_of_one_username_create_one_account() {
    let app = spawn_app().await;
    let attempts = (0..5).map(|i| {
        app.graphql(
            REGISTER,
            registration("carol", &format!("carol{i}@example.com")),
        )
    });
    let results = futures_util::future::join_all(attempts).await;
    let created = results
        .iter()
        .filter(|b| b["data"]["register"]["accessToken"].is_string())
        .count();
    let conflicts = results.iter().filter(|b| code(b) == "CONFLICT").count();
    assert_eq!((created, conflicts), (1, 4), "{results:?}");
    let accounts = user::Entity::find()
        .filter(user::Column::Username.eq("carol"))
        .all(&app.db)
        .await
        .expect("query");
    assert_eq!(accounts.len(), 1);
}

#[tokio::test]
async fn sign_in_errors_do_not_reveal_whether_an_account_exists() {
    let app = spawn_app().await;
    app.register("dave").await;
    let wrong = app
        .graphql(
            LOGIN,
            json!({ "input": { "login": "dave", "password": "Wrong-password-1" } }),
        )
        .await;
    let unknown = app
        .graphql(
            LOGIN,
            json!({ "input": { "login": "nobody", "password": "Wrong-password-1" } }),
        )
        .await;
    assert_eq!(code(&wrong), "UNAUTHENTICATED", "{wrong}");
    assert_eq!(
        wrong["errors"][0]["message"], unknown["errors"][0]["message"],
        "{wrong} vs {unknown}"
    );
    assert_eq!(code(&unknown), "UNAUTHENTICATED");

    // Nor does the lockout: an unknown account locks after as many failures.
    let mut answers = Vec::new();
    for login in ["dave", "nobody"] {
        for _ in 0..5 {
            app.graphql(
                LOGIN,
                json!({ "input": { "login": login, "password": "Wrong-password-1" } }),
            )
            .await;
        }
        let locked = app
            .graphql(
                LOGIN,
                json!({ "input": { "login": login, "password": "Wrong-password-1" } }),
            )
            .await;
        answers.push((
            code(&locked).to_owned(),
            locked["errors"][0]["message"].clone(),
        ));
    }
    assert_eq!(answers[0], answers[1], "{answers:?}");
    assert_eq!(answers[0].0, "RATE_LIMITED");
}

#[tokio::test]
async fn repeated_failures_lock_the_account_and_are_journaled() {
    let app = spawn_app().await;
    app.register("erin").await;
    for _ in 0..5 {
        let body = app
            .graphql(
                LOGIN,
                json!({ "input": { "login": "erin", "password": "Wrong-password-1" } }),
            )
            .await;
        assert_eq!(code(&body), "UNAUTHENTICATED", "{body}");
    }
    let body = app
        .graphql(
            LOGIN,
            json!({ "input": { "login": "erin", "password": PASSWORD } }),
        )
        .await;
    assert_eq!(
        code(&body),
        "RATE_LIMITED",
        "even the right password waits while locked: {body}"
    );

    let account = user::Entity::find()
        .filter(user::Column::Username.eq("erin"))
        .one(&app.db)
        .await
        .expect("q")
        .expect("user");
    assert_eq!(account.failed_attempts, 5);
    assert!(account.locked_until.is_some());
    let failures = security_log::Entity::find()
        .filter(security_log::Column::UserId.eq(account.id))
        .filter(security_log::Column::Status.eq(SecurityLogStatus::Failure))
        .all(&app.db)
        .await
        .expect("journal");
    assert_eq!(
        failures.len(),
        6,
        "five wrong passwords and one attempt while locked"
    );
    assert!(
        failures
            .iter()
            .all(|f| f.ip.is_some() && f.action == "login")
    );
}

#[tokio::test]
async fn refresh_tokens_rotate_and_a_reused_one_revokes_the_sign_in() {
    let app = spawn_app().await;
    let (_, first) = app.register("frank").await;
    let rotated = app
        .graphql(REFRESH, json!({ "input": { "refreshToken": first } }))
        .await;
    let second = rotated["data"]["refreshSession"]["refreshToken"]
        .as_str()
        .unwrap_or_default()
        .to_owned();
    assert!(!second.is_empty() && second != first, "{rotated}");
    let third = app
        .graphql(REFRESH, json!({ "input": { "refreshToken": second } }))
        .await;
    assert_eq!(
        third["data"]["refreshSession"]["refreshTokenExpiresAt"],
        rotated["data"]["refreshSession"]["refreshTokenExpiresAt"],
        "refreshing renews the tokens, not the sign-in's lifetime: {third}"
    );
    let second = third["data"]["refreshSession"]["refreshToken"]
        .as_str()
        .unwrap_or_default()
        .to_owned();

    let reuse = app
        .graphql(REFRESH, json!({ "input": { "refreshToken": first } }))
        .await;
    assert_eq!(code(&reuse), "UNAUTHENTICATED", "{reuse}");
    let after = app
        .graphql(REFRESH, json!({ "input": { "refreshToken": second } }))
        .await;
    assert_eq!(
        code(&after),
        "UNAUTHENTICATED",
        "the reuse revoked the whole family: {after}"
    );
}

#[tokio::test]
async fn concurrent_uses_of_one_refresh_token_succeed_once() {
    let app = spawn_app().await;
    let (_, token) = app.register("gina").await;
    let uses = (0..4).map(|_| app.graphql(REFRESH, json!({ "input": { "refreshToken": token } })));
    let results = futures_util::future::join_all(uses).await;
    let succeeded = results
        .iter()
        .filter(|b| b["data"]["refreshSession"]["accessToken"].is_string())
        .count();
    assert!(succeeded <= 1, "a refresh token is spent once: {results:?}");
}

#[tokio::test]
async fn browsers_get_the_refresh_token_as_an_http_only_cookie() {
    let app = spawn_app().await;
    app.register("hugo").await;
    let response = app
        .http
        .post(app.url("/graphql"))
        .json(&json!({ "query": LOGIN, "variables": { "input": { "login": "hugo", "password": PASSWORD, "useCookie": true } } }))
        .send()
        .await
        .expect("answers");
    let cookie = response
        .headers()
        .get("set-cookie")
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default()
        .to_owned();
    assert!(
        cookie.starts_with("vg_refresh=")
            && cookie.contains("HttpOnly")
            && cookie.contains("SameSite=Strict"),
        "{cookie}"
    );
    let body: Value = response.json().await.expect("JSON");
    assert!(
        body["data"]["login"]["refreshToken"].is_null(),
        "not in the payload: {body}"
    );

    let pair = cookie.split(';').next().unwrap_or_default().to_owned();
    let refreshed: Value = app
        .http
        .post(app.url("/graphql"))
        .header("cookie", pair)
        .json(&json!({ "query": REFRESH, "variables": { "input": {} } }))
        .send()
        .await
        .expect("answers")
        .json()
        .await
        .expect("JSON");
    assert!(
        refreshed["data"]["refreshSession"]["accessToken"].is_string(),
        "{refreshed}"
    );
}

#[tokio::test]
async fn a_suspended_user_is_cut_off_mid_session() {
    let app = spawn_app().await;
    let admin = app.staff("admin").await;
    let (token, refresh) = app.register("ivan").await;
    let me = app.graphql_as(&token, ME, json!({})).await;
    assert_eq!(me["data"]["me"]["username"], "ivan");

    let ivan = user::Entity::find()
        .filter(user::Column::Username.eq("ivan"))
        .one(&app.db)
        .await
        .expect("q")
        .expect("user");
    let id = crate::helpers::global_id("User", ivan.id);
    let body = app
        .graphql_as(&admin, "mutation($input: SetUserStatusInput!) { setUserStatus(input: $input) { user { status isActive } } }", json!({ "input": { "userId": id, "status": "SUSPENDED" } }))
        .await;
    assert_eq!(
        body["data"]["setUserStatus"]["user"]["status"], "SUSPENDED",
        "{body}"
    );

    let me = app.graphql_as(&token, ME, json!({})).await;
    assert_eq!(
        code(&me),
        "UNAUTHENTICATED",
        "the access token stops working at once: {me}"
    );
    let refreshed = app
        .graphql(REFRESH, json!({ "input": { "refreshToken": refresh } }))
        .await;
    assert_eq!(code(&refreshed), "UNAUTHENTICATED", "{refreshed}");
    let login = app
        .graphql(
            LOGIN,
            json!({ "input": { "login": "ivan", "password": PASSWORD } }),
        )
        .await;
    assert_eq!(code(&login), "FORBIDDEN", "{login}");
}

#[tokio::test]
async fn changing_the_password_ends_other_sessions() {
    let app = spawn_app().await;
    let (token, other_refresh) = app.register("judy").await;
    let body = app
        .graphql_as(&token, "mutation($input: ChangePasswordInput!) { changePassword(input: $input) { accessToken } }", json!({ "input": { "currentPassword": PASSWORD, "newPassword": "Another-pass-77" } }))
        .await;
    let fresh = body["data"]["changePassword"]["accessToken"]
        .as_str()
        .unwrap_or_default()
        .to_owned();
    assert!(!fresh.is_empty(), "{body}");
    assert_eq!(
        code(&app.graphql_as(&token, ME, json!({})).await),
        "UNAUTHENTICATED",
        "old access token revoked"
    );
    assert_eq!(
        code(
            &app.graphql(
                REFRESH,
                json!({ "input": { "refreshToken": other_refresh } })
            )
            .await
        ),
        "UNAUTHENTICATED"
    );
    assert_eq!(
        app.graphql_as(&fresh, ME, json!({})).await["data"]["me"]["username"],
        "judy"
    );

    let wrong = app
        .graphql_as(&fresh, "mutation($input: ChangePasswordInput!) { changePassword(input: $input) { accessToken } }", json!({ "input": { "currentPassword": "nope-nope-11", "newPassword": "Third-pass-99" } }))
        .await;
    assert_eq!(
        wrong["errors"][0]["extensions"]["field"], "currentPassword",
        "{wrong}"
    );
}

#[tokio::test]
async fn a_password_reset_by_staff_must_be_changed_at_next_sign_in() {
    let app = spawn_app().await;
    let admin = app.staff("root").await;
    app.register("kate").await;
    let kate = user::Entity::find()
        .filter(user::Column::Username.eq("kate"))
        .one(&app.db)
        .await
        .expect("q")
        .expect("user");
    let body = app
        .graphql_as(&admin, "mutation($input: ResetUserPasswordInput!) { resetUserPassword(input: $input) { temporaryPassword user { needsPasswordChange } } }", json!({ "input": { "userId": crate::helpers::global_id("User", kate.id) } }))
        .await;
    let temporary = body["data"]["resetUserPassword"]["temporaryPassword"]
        .as_str()
        .unwrap_or_default()
        .to_owned();
    assert!(temporary.len() >= 20, "{body}");
    let login = app
        .graphql(
            LOGIN,
            json!({ "input": { "login": "kate", "password": temporary } }),
        )
        .await;
    assert_eq!(
        login["data"]["login"]["user"]["needsPasswordChange"], true,
        "{login}"
    );
    let old = app
        .graphql(
            LOGIN,
            json!({ "input": { "login": "kate", "password": PASSWORD } }),
        )
        .await;
    assert_eq!(code(&old), "UNAUTHENTICATED");

    // With the temporary password, only reading `me` and changing it are allowed.
    let token = login["data"]["login"]["accessToken"]
        .as_str()
        .unwrap_or_default()
        .to_owned();
    assert_eq!(
        app.graphql_as(&token, ME, json!({})).await["data"]["me"]["username"],
        "kate"
    );
    let consent = "mutation { updateConsents(input: { notifications: true }) { status } }";
    let blocked = app.graphql_as(&token, consent, json!({})).await;
    assert_eq!(code(&blocked), "FORBIDDEN", "{blocked}");
    let changed = app
        .graphql_as(
            &token,
            "mutation($input: ChangePasswordInput!) { changePassword(input: $input) { accessToken user { needsPasswordChange } } }",
            json!({ "input": { "currentPassword": temporary, "newPassword": "Fresh-start-55" } }),
        )
        .await;
    assert_eq!(
        changed["data"]["changePassword"]["user"]["needsPasswordChange"], false,
        "{changed}"
    );
    let fresh = changed["data"]["changePassword"]["accessToken"]
        .as_str()
        .unwrap_or_default()
        .to_owned();
    let allowed = app.graphql_as(&fresh, consent, json!({})).await;
    assert_eq!(
        allowed["data"]["updateConsents"]["status"], "ACCEPTED",
        "{allowed}"
    );
}

#[tokio::test]
async fn each_role_is_refused_where_it_must_be() {
    let app = spawn_app().await;
    let (customer, _) = app.register("liam").await;
    let admin = app.staff("boss").await;
    let users = "{ users(first: 5) { totalCount edges { node { username } } } }";

    assert_eq!(
        code(&app.graphql(users, json!({})).await),
        "UNAUTHENTICATED"
    );
    assert_eq!(code(&app.graphql(ME, json!({})).await), "UNAUTHENTICATED");
    assert_eq!(
        code(&app.graphql_as(&customer, users, json!({})).await),
        "FORBIDDEN"
    );
    let status = "mutation($input: SetUserStatusInput!) { setUserStatus(input: $input) { user { status } } }";
    let target = json!({ "input": { "userId": crate::helpers::global_id("User", 1), "status": "ARCHIVED" } });
    assert_eq!(
        code(&app.graphql_as(&customer, status, target.clone()).await),
        "FORBIDDEN"
    );
    assert_eq!(code(&app.graphql(status, target).await), "UNAUTHENTICATED");
    assert_eq!(
        code(&app.graphql_as("not-a-token", ME, json!({})).await),
        "UNAUTHENTICATED"
    );

    let listed = app.graphql_as(&admin, users, json!({})).await;
    assert_eq!(listed["data"]["users"]["totalCount"], 2, "{listed}");
    let filtered = app
        .graphql_as(
            &admin,
            "{ users(filter: { search: \"LI\" }) { totalCount } }",
            json!({}),
        )
        .await;
    assert_eq!(filtered["data"]["users"]["totalCount"], 1, "{filtered}");
}

#[tokio::test]
async fn a_websocket_with_a_bad_token_is_refused() {
    use futures_util::{SinkExt, StreamExt};
    use tokio_tungstenite::tungstenite::{Message, client::IntoClientRequest};

    let app = spawn_app().await;
    let mut request = format!("ws://{}/graphql", app.addr)
        .into_client_request()
        .expect("request");
    request.headers_mut().insert(
        "Sec-WebSocket-Protocol",
        "graphql-transport-ws".parse().expect("header"),
    );
    let (mut socket, _) = tokio_tungstenite::connect_async(request)
        .await
        .expect("connects");
    let init =
        json!({ "type": "connection_init", "payload": { "authorization": "Bearer forged" } });
    socket
        .send(Message::Text(init.to_string().into()))
        .await
        .expect("send");
    let reply = tokio::time::timeout(crate::helpers::PATIENCE, socket.next())
        .await
        .expect("an answer");
    let reason = match reply {
        Some(Ok(Message::Close(frame))) => frame.map(|f| f.reason.to_string()),
        other => panic!("expected the connection to be closed, got {other:?}"),
    };
    assert_eq!(reason.as_deref(), Some("authentication required"));
}

#[tokio::test]
async fn suspending_a_user_ends_their_live_subscriptions() {
    let app = spawn_app().await;
    let admin = app.staff("warden").await;
    let (token, _) = app.register("zoe").await;
    let mut live = crate::helpers::Subscription::start_with(
        app.addr,
        "graphql-transport-ws",
        json!({ "authorization": format!("Bearer {token}") }),
        "subscription { bayStatusChanged { changedAt } }",
        json!({}),
    )
    .await;
    assert!(
        live.try_next(std::time::Duration::from_millis(500))
            .await
            .is_none(),
        "a valid session keeps streaming"
    );
    let zoe = user::Entity::find()
        .filter(user::Column::Username.eq("zoe"))
        .one(&app.db)
        .await
        .expect("q")
        .expect("user");
    app.graphql_as(
        &admin,
        "mutation($input: SetUserStatusInput!) { setUserStatus(input: $input) { user { status } } }",
        json!({ "input": { "userId": crate::helpers::global_id("User", zoe.id), "status": "SUSPENDED" } }),
    )
    .await;
    let ended = live.next_message().await;
    assert_eq!(
        ended["payload"]["errors"][0]["extensions"]["code"], "UNAUTHENTICATED",
        "{ended}"
    );
    assert_eq!(live.next_message().await["type"], "complete");
}

#[tokio::test]
async fn availability_checks_are_rate_limited_per_ip() {
    let app = spawn_app().await;
    let query = "{ registrationAvailability(username: \"someone\") { usernameAvailable } }";
    for _ in 0..60 {
        let body = app.graphql(query, json!({})).await;
        assert_eq!(
            body["data"]["registrationAvailability"]["usernameAvailable"], true,
            "{body}"
        );
    }
    let limited = app.graphql(query, json!({})).await;
    assert_eq!(code(&limited), "RATE_LIMITED", "{limited}");
}

#[tokio::test]
async fn a_stolen_session_cannot_guess_the_current_password() {
    let app = spawn_app().await;
    let (token, _) = app.register("gus").await;
    let change = "mutation { changePassword(input: { currentPassword: \"Guess-number-1\", newPassword: \"Another-horse-43\" }) { accessToken } }";
    for _ in 0..5 {
        let body = app.graphql_as(&token, change, json!({})).await;
        assert_eq!(code(&body), "BAD_USER_INPUT", "{body}");
    }
    let limited = app.graphql_as(&token, change, json!({})).await;
    assert_eq!(code(&limited), "RATE_LIMITED", "{limited}");
    let delete = app
        .graphql_as(
            &token,
            "mutation { deleteAccount(input: { password: \"Guess-number-2\" }) { ok } }",
            json!({}),
        )
        .await;
    assert_eq!(
        code(&delete),
        "RATE_LIMITED",
        "account deletion checks the same password: {delete}"
    );
}

/// A refresh racing a password change never outlives it: several sign-ins keep
/// refreshing while the password changes, and afterwards every refresh token of
/// the account is dead, whichever way each race went.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn refreshes_racing_a_password_change_do_not_survive_it() {
    use std::sync::Arc;
    use std::sync::atomic::{AtomicBool, Ordering};

    let app = Arc::new(spawn_app().await);
    let (token, first) = app.register("hugo").await;
    let mut sign_ins = vec![first];
    for _ in 0..3 {
        let body = app
            .graphql(
                "mutation { login(input: { login: \"hugo\", password: \"Correct-horse-42\" }) { refreshToken } }",
                json!({}),
            )
            .await;
        sign_ins.push(
            body["data"]["login"]["refreshToken"]
                .as_str()
                .expect("signed in")
                .to_owned(),
        );
    }
    let changed_yet = Arc::new(AtomicBool::new(false));
    // Each sign-in refreshes in a loop until the change is over or its token dies;
    // it returns its newest token while that still worked.
    let racers: Vec<_> = sign_ins
        .into_iter()
        .map(|mut refresh| {
            let (app, changed_yet) = (Arc::clone(&app), Arc::clone(&changed_yet));
            tokio::spawn(async move {
                while !changed_yet.load(Ordering::SeqCst) {
                    let body = app
                        .graphql(REFRESH, json!({ "input": { "refreshToken": refresh } }))
                        .await;
                    match body["data"]["refreshSession"]["refreshToken"].as_str() {
                        Some(next) => refresh = next.to_owned(),
                        None => return None,
                    }
                }
                Some(refresh)
            })
        })
        .collect();
    let changed = app.graphql_as(
        &token,
        "mutation { changePassword(input: { currentPassword: \"Correct-horse-42\", newPassword: \"Another-horse-43\" }) { accessToken } }",
        json!({}),
    )
    .await;
    changed_yet.store(true, Ordering::SeqCst);
    assert!(
        changed["data"]["changePassword"]["accessToken"].is_string(),
        "{changed}"
    );
    for racer in racers {
        if let Some(survivor) = racer.await.expect("the racer ran") {
            let after = app
                .graphql(REFRESH, json!({ "input": { "refreshToken": survivor } }))
                .await;
            assert_eq!(
                code(&after),
                "UNAUTHENTICATED",
                "a token issued during the change was revoked by it: {after}"
            );
        }
    }
}
