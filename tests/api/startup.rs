//! Start-up failures are clear errors naming the service, never panics or leaked secrets.

use crate::helpers::{fresh_database_url, serve_args, settings, topic_root};

async fn start_error(extra: &[&str]) -> String {
    let database_url = fresh_database_url().await;
    let mut args = serve_args(&database_url, &topic_root(), &[]);
    args.extend(extra.iter().map(|s| (*s).to_owned()));
    match voltgate::App::build(settings(&args)).await {
        Ok(_) => panic!("the server should not start with {extra:?}"),
        Err(err) => format!("{err:#}"),
    }
}

#[tokio::test]
async fn an_unreachable_database_is_named_without_its_password() {
    let message = start_error(&[
        "--database-url",
        "postgres://voltgate:s3cret@127.0.0.1:1/voltgate",
    ])
    .await;
    assert!(
        message.contains("database") && message.contains("127.0.0.1:1"),
        "{message}"
    );
    assert!(!message.contains("s3cret"), "{message}");
}

#[tokio::test]
async fn an_unreachable_redis_is_named() {
    let message = start_error(&["--redis-url", "redis://:hunter2@127.0.0.1:1"]).await;
    assert!(
        message.contains("Redis") && message.contains("127.0.0.1:1"),
        "{message}"
    );
    assert!(!message.contains("hunter2"), "{message}");
}

#[tokio::test]
async fn an_unreachable_mqtt_broker_is_named() {
    let message = start_error(&["--mqtt-url", "mqtt://127.0.0.1:1"]).await;
    assert!(
        message.contains("MQTT broker") && message.contains("127.0.0.1:1"),
        "{message}"
    );
}

#[tokio::test]
async fn a_taken_embedded_broker_address_names_the_ways_out() {
    let taken = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
    let addr = taken.local_addr().expect("addr").to_string();
    let message = start_error(&["--mqtt-url", "", "--embedded-mqtt-addr", &addr]).await;
    assert!(message.contains("already in use"), "{message}");
    assert!(
        message.contains("MQTT_URL") && message.contains("VOLTGATE_EMBEDDED_MQTT_ADDR"),
        "{message}"
    );
}

#[tokio::test]
async fn sigterm_stops_the_server_gracefully() {
    let database_url = fresh_database_url().await;
    let addr = std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .expect("a free port");
    let mut child = std::process::Command::new(env!("CARGO_BIN_EXE_voltgate"))
        .args([
            "serve",
            "--mqtt-url",
            "none",
            "--http-addr",
            &addr.to_string(),
        ])
        .env("DATABASE_URL", &database_url)
        .env("RUST_LOG", "warn")
        .spawn()
        .expect("starts");
    let http = reqwest::Client::new();
    let deadline = tokio::time::Instant::now() + crate::helpers::PATIENCE;
    while http
        .get(format!("http://{addr}/healthz"))
        .send()
        .await
        .is_err()
    {
        assert!(
            tokio::time::Instant::now() < deadline,
            "the server never answered"
        );
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
    let mut live = crate::helpers::Subscription::start(
        addr,
        "graphql-transport-ws",
        "subscription { bayStatusChanged { changedAt } }",
        serde_json::json!({}),
    )
    .await;
    let status = std::process::Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status()
        .expect("kill runs");
    assert!(status.success());
    assert_eq!(
        live.close_frame().await,
        Some((1001, "server shutting down".to_owned())),
        "open WebSockets are closed as going away"
    );
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
    loop {
        if let Some(exit) = child.try_wait().expect("wait") {
            assert!(exit.success(), "a SIGTERM ends the server cleanly: {exit}");
            break;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "the server did not stop after SIGTERM"
        );
        std::thread::sleep(std::time::Duration::from_millis(50));
    }
}

#[tokio::test]
async fn cors_allows_only_the_configured_origins() {
    let app = crate::helpers::spawn_app_with(&["--cors-origins", "https://dash.example"]).await;
    let preflight = |origin: &'static str| {
        app.http
            .request(reqwest::Method::OPTIONS, app.url("/graphql"))
            .header("origin", origin)
            .header("access-control-request-method", "POST")
            .header(
                "access-control-request-headers",
                "content-type,authorization",
            )
            .send()
    };
    let allowed = preflight("https://dash.example").await.expect("answers");
    assert_eq!(
        allowed
            .headers()
            .get("access-control-allow-origin")
            .and_then(|v| v.to_str().ok()),
        Some("https://dash.example")
    );
    let refused = preflight("https://evil.example").await.expect("answers");
    assert!(
        refused
            .headers()
            .get("access-control-allow-origin")
            .is_none()
    );
}
