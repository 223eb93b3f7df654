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

#[tokio::test]
async fn the_embedded_broker_starts_without_logging_errors() {
    use std::io::Read as _;
    use std::process::{Command, Stdio};

    let database_url = fresh_database_url().await;
    let http_addr = std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .expect("a free port");
    let mut child = Command::new(env!("CARGO_BIN_EXE_voltgate"))
        .arg("serve")
        .env("DATABASE_URL", &database_url)
        .env("VOLTGATE_HTTP_ADDR", http_addr.to_string())
        .env("VOLTGATE_EMBEDDED_MQTT_ADDR", "127.0.0.1:0")
        .env("VOLTGATE_MQTT_TOPIC_ROOT", topic_root())
        .env_remove("MQTT_URL")
        .env_remove("REDIS_URL")
        .env("RUST_LOG", "warn")
        .env("NO_COLOR", "1")
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("the voltgate binary starts");
    let http = reqwest::Client::new();
    let deadline = tokio::time::Instant::now() + crate::helpers::PATIENCE * 3;
    let mut ready = false;
    while !ready && tokio::time::Instant::now() < deadline {
        ready = http
            .get(format!("http://{http_addr}/readyz"))
            .send()
            .await
            .is_ok_and(|r| r.status().is_success());
        if !ready {
            tokio::time::sleep(std::time::Duration::from_millis(100)).await;
        }
    }
    let _ = child.kill();
    let _ = child.wait();
    let mut logs = String::new();
    for stream in [
        child.stdout.take().map(|mut s| {
            let mut text = String::new();
            let _ = s.read_to_string(&mut text);
            text
        }),
        child.stderr.take().map(|mut s| {
            let mut text = String::new();
            let _ = s.read_to_string(&mut text);
            text
        }),
    ]
    .into_iter()
    .flatten()
    {
        logs.push_str(&stream);
    }
    assert!(ready, "the server never became ready: {logs}");
    assert!(!logs.contains("ERROR"), "{logs}");
}
