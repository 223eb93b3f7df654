//! Attacks on the HTTP edge, replayed: documents that expand, oversized batches,
//! floods, malformed and cross-site bodies. Each must be a quick, coded refusal
//! that leaves the server serving.

use std::time::{Duration, Instant};

use serde_json::{Value, json};
use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};

use crate::helpers::{Subscription, TestApp, spawn_app, spawn_app_with};

/// `levels` fragments, each spreading the next ten times: about 1 KB for ten
/// levels, ten billion fields once expanded.
fn fragment_fan_out(levels: usize) -> String {
    let mut query = String::from("query { ...F0 } ");
    for level in 0..levels {
        let spreads = format!("...F{} ", level + 1).repeat(10);
        query.push_str(&format!("fragment F{level} on Query {{ {spreads}}} "));
    }
    query.push_str(&format!("fragment F{levels} on Query {{ __typename }}"));
    query
}

/// Posts a raw body with a content type; returns the status, headers and JSON body.
async fn post_raw(
    app: &TestApp,
    content_type: Option<&str>,
    body: String,
) -> (u16, reqwest::header::HeaderMap, Value) {
    let mut request = app.http.post(app.url("/graphql")).body(body);
    if let Some(content_type) = content_type {
        request = request.header("content-type", content_type);
    }
    let response = tokio::time::timeout(Duration::from_secs(10), request.send())
        .await
        .expect("the server answers within seconds")
        .expect("the server answers");
    let status = response.status().as_u16();
    let headers = response.headers().clone();
    let text = response.text().await.expect("a body");
    let body = serde_json::from_str(&text)
        .unwrap_or_else(|_| panic!("a JSON error body, got {status}: {text}"));
    (status, headers, body)
}

async fn post_json(app: &TestApp, body: &Value) -> (u16, reqwest::header::HeaderMap, Value) {
    post_raw(app, Some("application/json"), body.to_string()).await
}

fn error_of(body: &Value) -> (&str, &str) {
    let error = &body["errors"][0];
    (
        error["extensions"]["code"].as_str().unwrap_or_default(),
        error["extensions"]["limit"].as_str().unwrap_or_default(),
    )
}

async fn still_healthy(app: &TestApp) {
    let health = app
        .http
        .get(app.url("/healthz"))
        .timeout(Duration::from_secs(2))
        .send()
        .await
        .expect("/healthz answers");
    assert!(health.status().is_success());
    let body = app.graphql("{ __typename }", json!({})).await;
    assert_eq!(body["data"]["__typename"], "Query", "{body}");
}

#[tokio::test]
async fn a_fragment_fan_out_is_refused_in_milliseconds_naming_the_limit() {
    let app = spawn_app().await;
    for levels in [7, 10] {
        let query = fragment_fan_out(levels);
        assert!(query.len() < 1100, "the attack fits in about 1 KB");
        let started = Instant::now();
        let (status, _, body) = post_json(&app, &json!({ "query": query })).await;
        assert!(
            started.elapsed() < Duration::from_secs(2),
            "refused at once, took {:?}",
            started.elapsed()
        );
        assert_eq!(status, 400, "{body}");
        assert_eq!(
            error_of(&body),
            ("BAD_USER_INPUT", "VOLTGATE_MAX_QUERY_FIELDS"),
            "{body}"
        );
        assert!(body.get("data").is_none(), "nothing ran: {body}");
    }
    still_healthy(&app).await;
}

#[tokio::test]
async fn a_fragment_fan_out_over_a_websocket_is_refused_too() {
    let app = spawn_app().await;
    let mut socket = Subscription::start(
        app.addr,
        "graphql-transport-ws",
        &fragment_fan_out(10),
        json!({}),
    )
    .await;
    let message = socket.next_message().await;
    // A query over a WebSocket answers with one result carrying the errors.
    assert_eq!(message["type"], "next", "{message}");
    assert!(
        message["payload"]["data"].is_null(),
        "nothing ran: {message}"
    );
    assert_eq!(
        error_of(&message["payload"]),
        ("BAD_USER_INPUT", "VOLTGATE_MAX_QUERY_FIELDS"),
        "{message}"
    );
    still_healthy(&app).await;
}

#[tokio::test]
async fn aliases_directives_fragments_and_tokens_are_bounded() {
    let app = spawn_app().await;
    let aliases: String = (0..65).map(|i| format!("a{i}: __typename ")).collect();
    let directives = "__typename @include(if: true) ".repeat(65);
    let fragments: String = (0..65)
        .map(|i| format!("fragment G{i} on Query {{ __typename }} "))
        .collect();
    let tokens = format!("{{ {} }}", "__typename ".repeat(10_001));
    for (query, limit) in [
        (format!("{{ {aliases} }}"), "VOLTGATE_MAX_QUERY_ALIASES"),
        (
            format!("{{ {directives} }}"),
            "VOLTGATE_MAX_QUERY_DIRECTIVES",
        ),
        (
            format!("{{ ...G0 }} {fragments}"),
            "VOLTGATE_MAX_QUERY_FRAGMENTS",
        ),
        (tokens, "VOLTGATE_MAX_QUERY_TOKENS"),
    ] {
        let (status, _, body) = post_json(&app, &json!({ "query": query })).await;
        assert_eq!(status, 400, "{limit}: {body}");
        assert_eq!(error_of(&body), ("BAD_USER_INPUT", limit), "{body}");
        let message = body["errors"][0]["message"].as_str().unwrap_or_default();
        assert!(
            message.contains(limit),
            "the message names the setting: {message}"
        );
    }
    // Within the limits, the same shapes run.
    let aliases: String = (0..64).map(|i| format!("a{i}: __typename ")).collect();
    let body = app.graphql(&format!("{{ {aliases} }}"), json!({})).await;
    assert_eq!(body["data"]["a63"], "Query", "{body}");
}

#[tokio::test]
async fn oversized_batches_from_many_clients_are_refused_quickly_and_whole() {
    let app = spawn_app().await;
    let batch: Vec<Value> = (0..1000)
        .map(|_| json!({ "query": "{ stations(first: 50) { totalCount } }" }))
        .collect();
    let batch = Value::Array(batch);
    let started = Instant::now();
    let answers = futures_util::future::join_all((0..16).map(|_| post_json(&app, &batch))).await;
    assert!(
        started.elapsed() < Duration::from_secs(5),
        "16 refusals took {:?}",
        started.elapsed()
    );
    for (status, _, body) in answers {
        assert_eq!(status, 400, "{body}");
        assert_eq!(
            error_of(&body),
            ("BAD_USER_INPUT", "VOLTGATE_MAX_BATCH_OPERATIONS"),
            "{body}"
        );
    }
    still_healthy(&app).await;
}

#[tokio::test]
async fn a_batch_shares_one_complexity_budget_and_one_fields_budget() {
    let app = spawn_app_with(&["--max-query-complexity", "50", "--max-query-fields", "70"]).await;
    // 20 fields, complexity 20 (`stations(first: 1)` costs 1 + 1 × its one
    // field): alone, each operation is well within both limits.
    let twenty: String = (0..10)
        .map(|i| format!("a{i}: stations(first: 1) {{ totalCount }} "))
        .collect();
    let operation = json!({ "query": format!("{{ {twenty} }}") });

    let (status, _, body) = post_json(&app, &json!([operation, operation])).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body[0]["data"]["a9"]["totalCount"], 0, "{body}");
    assert_eq!(body[1]["data"]["a9"]["totalCount"], 0, "{body}");

    // Three together: complexity 60 > 50, so none of them runs.
    let (status, _, body) = post_json(&app, &json!([operation, operation, operation])).await;
    assert_eq!(status, 200, "{body}");
    for answer in body.as_array().expect("a batch answer") {
        assert!(answer["data"].is_null(), "{answer}");
        assert_eq!(
            error_of(answer),
            ("BAD_USER_INPUT", "VOLTGATE_MAX_QUERY_COMPLEXITY"),
            "{answer}"
        );
    }

    // Four together: 80 fields > 70, refused before anything is executed.
    let (status, _, body) =
        post_json(&app, &json!([operation, operation, operation, operation])).await;
    assert_eq!(status, 400, "{body}");
    assert_eq!(
        error_of(&body),
        ("BAD_USER_INPUT", "VOLTGATE_MAX_QUERY_FIELDS"),
        "{body}"
    );
}

#[tokio::test]
async fn a_batch_with_a_broken_operation_does_not_hang_the_others() {
    let app = spawn_app().await;
    let (status, _, body) = post_json(
        &app,
        &json!([
            { "query": "{ __typename }" },
            { "query": "{ noSuchField }" },
            { "query": "{ __typename" },
            { "query": "query A { __typename } query B { __typename }" },
        ]),
    )
    .await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body[0]["data"]["__typename"], "Query", "{body}");
    for broken in 1..4 {
        assert_eq!(
            body[broken]["errors"][0]["extensions"]["code"], "BAD_USER_INPUT",
            "{body}"
        );
    }
}

#[tokio::test]
async fn overload_is_a_quick_coded_refusal_with_retry_after() {
    // One operation at a time, no waiting: sign-ins (argon2 work, tens of
    // milliseconds each) arriving together cannot all be admitted.
    let app = spawn_app_with(&[
        "--max-concurrent-operations",
        "1",
        "--max-batch-operations",
        "1",
        "--operation-queue-timeout-ms",
        "0",
        "--rate-limits",
        "false",
    ])
    .await;
    let login = json!({
        "query": "mutation($input: LoginInput!) { login(input: $input) { accessToken } }",
        "variables": { "input": { "login": "nobody", "password": "not the password" } }
    });
    let started = Instant::now();
    let answers = futures_util::future::join_all((0..24).map(|_| post_json(&app, &login))).await;
    let mut refused = 0;
    for (status, headers, body) in &answers {
        let (code, _) = error_of(body);
        assert_ne!(code, "INTERNAL", "{body}");
        if *status == 503 {
            refused += 1;
            assert_eq!(code, "RATE_LIMITED", "{body}");
            assert_eq!(headers["retry-after"], "1");
        } else {
            assert_eq!(*status, 200, "{body}");
            assert!(body["data"]["login"].is_null(), "a failed sign-in: {body}");
        }
    }
    assert!(refused > 0, "some sign-ins were refused: {answers:?}");
    assert!(refused < answers.len(), "some were admitted");
    assert!(
        started.elapsed() < Duration::from_secs(10),
        "took {:?}",
        started.elapsed()
    );
    assert!(
        app.metric("voltgate_graphql_requests_refused_total{reason=\"overload\"}")
            .await
            >= refused as f64
    );
}

#[tokio::test]
async fn requests_beyond_the_concurrency_limit_wait_their_turn_within_the_queue_timeout() {
    let app = spawn_app_with(&[
        "--max-concurrent-operations",
        "2",
        "--max-batch-operations",
        "2",
        "--operation-queue-timeout-ms",
        "20000",
    ])
    .await;
    let query = json!({ "query": "{ stations(first: 5) { totalCount } }" });
    let answers = futures_util::future::join_all((0..30).map(|_| post_json(&app, &query))).await;
    for (status, _, body) in answers {
        assert_eq!(status, 200, "{body}");
        assert_eq!(body["data"]["stations"]["totalCount"], 0, "{body}");
    }
}

#[tokio::test]
async fn malformed_bodies_get_a_coded_graphql_error() {
    let app = spawn_app().await;
    for body in ["", "{", "[1, 2]", "{\"query\": 5}", "null"] {
        let (status, _, answer) = post_raw(&app, Some("application/json"), body.to_owned()).await;
        assert_eq!(status, 400, "{body:?}: {answer}");
        assert_eq!(error_of(&answer).0, "BAD_USER_INPUT", "{answer}");
        let message = answer["errors"][0]["message"].as_str().unwrap_or_default();
        assert!(
            !message.contains("InvalidRequest") && !message.contains("Error("),
            "no Rust debug output: {message}"
        );
    }
    let (status, _, answer) = post_json(&app, &json!([])).await;
    assert_eq!(status, 400, "{answer}");
}

#[tokio::test]
async fn only_json_posts_are_executed() {
    let app = spawn_app().await;
    let register = json!({
        "query": "mutation { register(input: { username: \"csrf\", email: \"csrf@example.com\", password: \"correct horse battery staple\" }) { user { id } } }"
    })
    .to_string();
    for content_type in [
        Some("text/plain"),
        Some("application/x-www-form-urlencoded"),
        Some("multipart/form-data; boundary=x"),
        None,
    ] {
        let (status, _, answer) = post_raw(&app, content_type, register.clone()).await;
        assert_eq!(status, 415, "{content_type:?}: {answer}");
        assert_eq!(error_of(&answer).0, "BAD_USER_INPUT", "{answer}");
    }
    let available = app
        .graphql(
            "{ registrationAvailability(username: \"csrf\") { usernameAvailable } }",
            json!({}),
        )
        .await;
    assert_eq!(
        available["data"]["registrationAvailability"]["usernameAvailable"], true,
        "the cross-site registration did not run: {available}"
    );

    for content_type in [
        "application/json; charset=utf-8",
        "Application/JSON",
        "application/graphql-response+json",
    ] {
        let (status, _, answer) = post_raw(
            &app,
            Some(content_type),
            json!({ "query": "{ __typename }" }).to_string(),
        )
        .await;
        assert_eq!(status, 200, "{content_type}: {answer}");
        assert_eq!(answer["data"]["__typename"], "Query");
    }
}

#[tokio::test]
async fn a_chunked_body_over_the_limit_gets_413() {
    let app = spawn_app_with(&["--max-body-bytes", "1024"]).await;
    let mut stream = tokio::net::TcpStream::connect(app.addr)
        .await
        .expect("connects");
    let chunk = format!("{{\"query\":\"{{ __typename }}{}\"}}", " ".repeat(4000));
    let request = format!(
        "POST /graphql HTTP/1.1\r\nHost: {}\r\nContent-Type: application/json\r\n\
         Transfer-Encoding: chunked\r\nConnection: close\r\n\r\n{:x}\r\n{chunk}\r\n0\r\n\r\n",
        app.addr,
        chunk.len()
    );
    stream
        .write_all(request.as_bytes())
        .await
        .expect("writes the request");
    let mut answer = Vec::new();
    let _ = tokio::time::timeout(Duration::from_secs(10), stream.read_to_end(&mut answer)).await;
    let answer = String::from_utf8_lossy(&answer);
    assert!(answer.starts_with("HTTP/1.1 413"), "{answer}");
    assert!(answer.contains("VOLTGATE_MAX_BODY_BYTES"), "{answer}");
    still_healthy(&app).await;
}

#[tokio::test]
async fn a_batch_of_one_is_answered_with_an_array() {
    let app = spawn_app().await;
    let (status, _, body) = post_json(&app, &json!([{ "query": "{ __typename }" }])).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body, json!([{ "data": { "__typename": "Query" } }]));
}
