//! graphql-transport-ws as its specification says: close codes, pings, limits.

use futures_util::{SinkExt as _, StreamExt as _};
use serde_json::{Value, json};
use tokio::net::TcpStream;
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::tungstenite::client::IntoClientRequest as _;
use tokio_tungstenite::{MaybeTlsStream, WebSocketStream};

use crate::helpers::{PATIENCE, TestApp, spawn_app, spawn_app_with};

struct Raw(WebSocketStream<MaybeTlsStream<TcpStream>>);

/// What the server sent: a message, or the close frame's code and reason.
#[derive(Debug)]
enum Heard {
    Message(Value),
    Closed(u16, String),
}

impl Raw {
    async fn connect(app: &TestApp, protocol: &str) -> Self {
        let (socket, _) = tokio_tungstenite::connect_async(upgrade_request(app, protocol))
            .await
            .expect("WebSocket connects");
        Self(socket)
    }

    async fn send(&mut self, message: Value) {
        self.send_text(&message.to_string()).await;
    }

    async fn send_text(&mut self, text: &str) {
        self.0.send(Message::Text(text.into())).await.expect("send");
    }

    async fn hear(&mut self) -> Heard {
        loop {
            let frame = tokio::time::timeout(PATIENCE, self.0.next())
                .await
                .expect("the server says something in time");
            match frame {
                Some(Ok(Message::Text(text))) => {
                    return Heard::Message(serde_json::from_str(&text).expect("JSON"));
                }
                Some(Ok(Message::Close(frame))) => {
                    let (code, reason) = frame.map_or((0, String::new()), |f| {
                        (u16::from(f.code), f.reason.to_string())
                    });
                    return Heard::Closed(code, reason);
                }
                Some(Ok(_)) => {}
                other => panic!("the connection ended without a close frame: {other:?}"),
            }
        }
    }

    async fn closed_with(&mut self) -> u16 {
        loop {
            match self.hear().await {
                Heard::Closed(code, _) => return code,
                Heard::Message(_) => {}
            }
        }
    }

    async fn acknowledged(app: &TestApp) -> Self {
        let mut socket = Self::connect(app, "graphql-transport-ws").await;
        socket.send(json!({ "type": "connection_init" })).await;
        match socket.hear().await {
            Heard::Message(ack) => assert_eq!(ack["type"], "connection_ack", "{ack}"),
            closed => panic!("{closed:?}"),
        }
        socket
    }
}

/// The upgrade request of a WebSocket to `app` offering `protocol`.
fn upgrade_request(
    app: &TestApp,
    protocol: &str,
) -> tokio_tungstenite::tungstenite::handshake::client::Request {
    let mut request = format!("ws://{}/graphql", app.addr)
        .into_client_request()
        .expect("request");
    request
        .headers_mut()
        .insert("Sec-WebSocket-Protocol", protocol.parse().expect("header"));
    request
}

fn subscribe(id: &str) -> Value {
    json!({ "id": id, "type": "subscribe",
        "payload": { "query": "subscription { bayStatusChanged { changedAt } }" } })
}

#[tokio::test]
async fn a_socket_that_never_initialises_is_closed_with_4408() {
    let app = spawn_app_with(&["--ws-init-timeout-secs", "1"]).await;
    let mut socket = Raw::connect(&app, "graphql-transport-ws").await;
    assert_eq!(socket.closed_with().await, 4408);
}

#[tokio::test]
async fn subscribing_before_the_acknowledgement_closes_with_4401() {
    let app = spawn_app().await;
    let mut socket = Raw::connect(&app, "graphql-transport-ws").await;
    socket.send(subscribe("1")).await;
    assert_eq!(socket.closed_with().await, 4401);
}

#[tokio::test]
async fn a_second_connection_init_closes_with_4429() {
    let app = spawn_app().await;
    let mut socket = Raw::acknowledged(&app).await;
    socket.send(json!({ "type": "connection_init" })).await;
    assert_eq!(socket.closed_with().await, 4429);
}

#[tokio::test]
async fn a_duplicate_subscription_id_closes_with_4409() {
    let app = spawn_app().await;
    let mut socket = Raw::acknowledged(&app).await;
    socket.send(subscribe("same")).await;
    socket.send(subscribe("same")).await;
    assert_eq!(socket.closed_with().await, 4409);
}

#[tokio::test]
async fn malformed_messages_close_with_4400() {
    let app = spawn_app().await;
    for text in [
        "not json",
        r#"{"type":"subscribe","payload":{}}"#,
        r#"{"type":"nope"}"#,
    ] {
        let mut socket = Raw::acknowledged(&app).await;
        socket.send_text(text).await;
        assert_eq!(socket.closed_with().await, 4400, "{text}");
    }
}

#[tokio::test]
async fn a_refused_connection_init_closes_with_4403() {
    let app = spawn_app().await;
    let mut socket = Raw::connect(&app, "graphql-transport-ws").await;
    socket
        .send(json!({ "type": "connection_init", "payload": { "authorization": "Bearer forged" } }))
        .await;
    match socket.hear().await {
        Heard::Closed(code, reason) => {
            assert_eq!(code, 4403);
            assert_eq!(reason, "authentication required");
        }
        other => panic!("{other:?}"),
    }
}

#[tokio::test]
async fn pings_are_answered_with_their_payload_and_the_server_pings_too() {
    let app = spawn_app_with(&["--ws-keepalive-secs", "1"]).await;
    let mut socket = Raw::acknowledged(&app).await;
    socket
        .send(json!({ "type": "ping", "payload": { "at": 1 } }))
        .await;
    match socket.hear().await {
        Heard::Message(pong) => assert_eq!(pong, json!({ "type": "pong", "payload": { "at": 1 } })),
        other => panic!("{other:?}"),
    }
    match socket.hear().await {
        Heard::Message(ping) => assert_eq!(ping, json!({ "type": "ping" })),
        other => panic!("{other:?}"),
    }
}

#[tokio::test]
async fn subscriptions_beyond_the_per_connection_limit_are_refused_and_the_rest_keep_running() {
    let app = spawn_app_with(&["--max-ws-subscriptions", "2"]).await;
    let mut socket = Raw::acknowledged(&app).await;
    for id in ["1", "2", "3"] {
        socket.send(subscribe(id)).await;
    }
    match socket.hear().await {
        Heard::Message(refused) => {
            assert_eq!(refused["type"], "error", "{refused}");
            assert_eq!(refused["id"], "3", "{refused}");
            assert_eq!(
                refused["payload"][0]["extensions"]["code"], "BAD_USER_INPUT",
                "{refused}"
            );
        }
        other => panic!("{other:?}"),
    }
    // Completing one makes room for another.
    socket.send(json!({ "id": "1", "type": "complete" })).await;
    socket.send(subscribe("4")).await;
    socket
        .send(json!({ "type": "ping", "payload": { "after": 4 } }))
        .await;
    match socket.hear().await {
        Heard::Message(pong) => assert_eq!(pong["type"], "pong", "no refusal for 4: {pong}"),
        other => panic!("{other:?}"),
    }
}

#[tokio::test]
async fn a_query_over_the_socket_answers_then_completes() {
    let app = spawn_app().await;
    let mut socket = Raw::acknowledged(&app).await;
    socket
        .send(json!({ "id": "q", "type": "subscribe", "payload": { "query": "{ __typename }" } }))
        .await;
    match socket.hear().await {
        Heard::Message(next) => {
            assert_eq!(next["type"], "next", "{next}");
            assert_eq!(next["payload"]["data"]["__typename"], "Query", "{next}");
        }
        other => panic!("{other:?}"),
    }
    match socket.hear().await {
        Heard::Message(complete) => {
            assert_eq!(complete, json!({ "type": "complete", "id": "q" }));
        }
        other => panic!("{other:?}"),
    }
}

/// Runs `tests/js/interop.mjs` (the reference `graphql-ws` client) against the
/// server; its dependencies are installed from `package-lock.json` when missing.
/// Without Node.js on the machine the check cannot run and says so.
#[tokio::test]
async fn the_reference_graphql_ws_client_interoperates() {
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/js");
    if std::process::Command::new("node")
        .arg("--version")
        .output()
        .is_err()
    {
        eprintln!("Node.js is not installed: the graphql-ws interoperability check did not run");
        return;
    }
    if !dir.join("node_modules/graphql-ws").exists() {
        let installed = tokio::process::Command::new("npm")
            .args(["ci", "--no-audit", "--no-fund", "--prefix"])
            .arg(&dir)
            .status()
            .await
            .expect("npm runs");
        assert!(installed.success(), "npm ci in tests/js");
    }
    let app = spawn_app().await;
    let output = tokio::time::timeout(
        PATIENCE,
        tokio::process::Command::new("node")
            .arg(dir.join("interop.mjs"))
            .arg(format!("ws://{}/graphql", app.addr))
            .output(),
    )
    .await
    .expect("the client finishes in time")
    .expect("node runs");
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(
        output.status.success(),
        "{stdout}\n{}",
        String::from_utf8_lossy(&output.stderr)
    );
    let checks: std::collections::HashMap<String, Value> = stdout
        .lines()
        .filter_map(|line| serde_json::from_str::<Value>(line).ok())
        .filter_map(|v| Some((v["check"].as_str()?.to_owned(), v["value"].clone())))
        .collect();
    assert_eq!(
        checks["query"],
        json!([{ "data": { "__typename": "Query" } }]),
        "{stdout}"
    );
    assert_eq!(checks["subscription"], json!(["connected"]), "{stdout}");
    assert_eq!(checks["refused"]["code"], 4403, "{stdout}");
}

/// Opens a WebSocket as the client at `ip` behind one trusted proxy; the
/// refusal's status and `Retry-After` when the upgrade is refused.
async fn connect_from(
    app: &TestApp,
    ip: &str,
) -> Result<WebSocketStream<MaybeTlsStream<TcpStream>>, (u16, Option<String>)> {
    let mut request = upgrade_request(app, "graphql-transport-ws");
    request
        .headers_mut()
        .insert("X-Forwarded-For", ip.parse().expect("header"));
    match tokio_tungstenite::connect_async(request).await {
        Ok((socket, _)) => Ok(socket),
        Err(tokio_tungstenite::tungstenite::Error::Http(response)) => Err((
            response.status().as_u16(),
            response
                .headers()
                .get("retry-after")
                .and_then(|v| v.to_str().ok())
                .map(str::to_owned),
        )),
        Err(other) => panic!("the upgrade failed otherwise: {other}"),
    }
}

/// Connects as the client at `ip` once the server has room again, which it
/// refuses with `busy` until then (it frees a closed connection's room
/// when it has seen it go).
async fn connect_once_room_frees(app: &TestApp, ip: &str, busy: u16) {
    let deadline = tokio::time::Instant::now() + PATIENCE;
    loop {
        match connect_from(app, ip).await {
            Ok(_) => return,
            Err((status, _)) if status == busy && tokio::time::Instant::now() < deadline => {
                tokio::time::sleep(std::time::Duration::from_millis(20)).await;
            }
            Err(refused) => panic!("room never came back: {refused:?}"),
        }
    }
}

#[tokio::test]
async fn one_client_holds_at_most_its_share_of_connections_and_others_are_still_served() {
    let app = spawn_app_with(&[
        "--max-ws-connections-per-client",
        "2",
        "--trusted-proxy-hops",
        "1",
    ])
    .await;
    let first = connect_from(&app, "198.51.100.1").await.expect("room");
    let _second = connect_from(&app, "198.51.100.1").await.expect("room");
    let refused = connect_from(&app, "198.51.100.1").await.err();
    assert_eq!(refused, Some((429, Some("1".to_owned()))));
    assert!(
        connect_from(&app, "198.51.100.2").await.is_ok(),
        "another client is served"
    );
    assert!(
        app.metric("voltgate_websocket_rejected_total{reason=\"client_limit\"}")
            .await
            >= 1.0
    );

    // Closing a connection gives the client its room back.
    let mut first = first;
    first.close(None).await.expect("closes");
    drop(first);
    connect_once_room_frees(&app, "198.51.100.1", 429).await;
}

#[tokio::test]
async fn connections_beyond_the_replicas_limit_are_refused_with_503() {
    let app = spawn_app_with(&["--max-ws-connections", "1"]).await;
    let _held = Raw::acknowledged(&app).await;
    let refused = connect_from(&app, "127.0.0.1").await.err();
    assert_eq!(refused.map(|(status, _)| status), Some(503));
    assert!(
        app.metric("voltgate_websocket_rejected_total{reason=\"replica_limit\"}")
            .await
            >= 1.0
    );
}

#[tokio::test]
async fn a_client_that_reads_nothing_at_all_is_cut_off_after_the_close_timeout() {
    let app = spawn_app_with(&[
        "--ws-queue-messages",
        "1",
        "--max-ws-subscriptions",
        "1",
        "--max-ws-connections",
        "1",
        "--ws-close-timeout-secs",
        "1",
    ])
    .await;
    let mut silent = Raw::acknowledged(&app).await;
    // It pings and never reads the pongs, which echo large payloads: the
    // sockets' buffers fill, then the queue, and the server closes the
    // connection (1013). The close frame cannot be written either; the
    // server lets the socket go instead of waiting for room, and the next
    // ping fails.
    let ping = json!({ "type": "ping", "payload": { "fill": "x".repeat(200_000) } }).to_string();
    let mut cut_off = false;
    for _ in 0..500 {
        let sent =
            tokio::time::timeout(PATIENCE, silent.0.send(Message::Text(ping.clone().into())))
                .await
                .expect("the server neither reads nor lets go");
        if sent.is_err() {
            cut_off = true;
            break;
        }
    }
    assert!(
        cut_off,
        "100 MB of pongs went unread and the server kept writing"
    );
    // Its one connection slot is free again.
    connect_once_room_frees(&app, "127.0.0.1", 503).await;
    assert!(app.metric("voltgate_websocket_cut_off_total").await >= 1.0);
}
