//! The Redis bus outlives a Redis restart or a dropped connection: the replica
//! reconnects and re-subscribes, and its subscribers, told that they may have
//! missed events (`SUBSCRIBER_LAGGING` with their last cursor), resume from
//! the history or, when Redis lost it, subscribe again. Runs against a private `redis-server`
//! on a free port, so the shared one is never disturbed; skipped where
//! `redis-server` is not installed.

use std::net::{SocketAddr, TcpListener, TcpStream};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use serde_json::json;

use crate::helpers::{
    PATIENCE, SeededBay, Subscription, TestApp, TestDevice, global_id, report_until_seen,
    spawn_app_with,
};

const BAY_STATUS: &str = "subscription Live($station: ID, $after: String) {
  bayStatusChanged(stationId: $station, after: $after) { cursor bay { id } lockState }
}";

struct RedisServer {
    child: Child,
}

impl RedisServer {
    /// Starts `redis-server` on `port`, or `None` when it is not installed.
    fn start(port: u16) -> Option<Self> {
        Self::start_in(port, None)
    }

    /// [`Self::start`], keeping its data in `dir` when given: a server
    /// started again there loads what the last one saved.
    fn start_in(port: u16, dir: Option<&Path>) -> Option<Self> {
        let mut command = Command::new("redis-server");
        command
            .args(["--port", &port.to_string(), "--bind", "127.0.0.1"])
            .args(["--save", "", "--appendonly", "no"]);
        if let Some(dir) = dir {
            command.arg("--dir").arg(dir);
        }
        let child = command
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .ok()?;
        let addr = SocketAddr::from(([127, 0, 0, 1], port));
        let deadline = std::time::Instant::now() + PATIENCE;
        while TcpStream::connect(addr).is_err() {
            assert!(
                std::time::Instant::now() < deadline,
                "redis-server did not start"
            );
            std::thread::sleep(Duration::from_millis(50));
        }
        Some(Self { child })
    }

    fn stop(mut self) {
        self.child.kill().ok();
        self.child.wait().ok();
    }

    /// Shuts the server down after saving its data (`SHUTDOWN SAVE`).
    async fn stop_saving(mut self, port: u16) {
        let admin = redis::Client::open(format!("redis://127.0.0.1:{port}")).expect("a Redis URL");
        let mut admin = admin
            .get_multiplexed_async_connection()
            .await
            .expect("Redis");
        // The server closes the connection instead of answering.
        let _ = redis::cmd("SHUTDOWN")
            .arg("SAVE")
            .query_async::<redis::Value>(&mut admin)
            .await;
        self.child.wait().ok();
    }
}

impl Drop for RedisServer {
    fn drop(&mut self) {
        self.child.kill().ok();
        self.child.wait().ok();
    }
}

/// A replica on a private Redis, with a subscriber following its bay's
/// station that has seen one event.
struct Following {
    redis: RedisServer,
    port: u16,
    app: TestApp,
    bay: SeededBay,
    station: String,
    device: TestDevice,
    subscription: Subscription,
    /// The cursor of the event seen.
    cursor: String,
}

impl Following {
    /// `None` (and a note) where `redis-server` is not installed.
    async fn start(test: &str) -> Option<Self> {
        Self::start_with(test, None, &[]).await
    }

    /// [`Self::start`] with Redis's data kept in `dir`, and `extra` arguments
    /// for the replica.
    async fn start_with(test: &str, dir: Option<&Path>, extra: &[&str]) -> Option<Self> {
        let port = TcpListener::bind("127.0.0.1:0")
            .and_then(|l| l.local_addr())
            .expect("a free port")
            .port();
        let Some(redis) = RedisServer::start_in(port, dir) else {
            eprintln!("redis-server is not installed; {test} not run");
            return None;
        };
        let url = format!("redis://127.0.0.1:{port}");
        let mut args = vec!["--redis-url", &url];
        args.extend_from_slice(extra);
        let app = spawn_app_with(&args).await;
        let bay = app.seed(1, 1, 1).await.remove(0);
        let station = global_id("Station", bay.station_id);
        let mut subscription = follow(&app, &station, None).await;
        let device = app.device(&bay).await;
        let seen = report_until_seen(&device, &mut subscription, "idle", "locked").await;
        let cursor = seen["payload"]["data"]["bayStatusChanged"]["cursor"]
            .as_str()
            .unwrap_or_else(|| panic!("a cursor: {seen}"))
            .to_owned();
        Some(Self {
            redis,
            port,
            app,
            bay,
            station,
            device,
            subscription,
            cursor,
        })
    }
}

#[tokio::test]
async fn subscribers_are_told_of_a_redis_restart_and_follow_again_after_it() {
    let Some(Following {
        redis,
        port,
        app,
        bay,
        station,
        device,
        mut subscription,
        cursor,
    }) = Following::start("the Redis restart test").await
    else {
        return;
    };

    redis.stop();
    // Events published meanwhile may never reach this replica: its subscribers
    // are told, with the last cursor they were given.
    let lagging = subscription.next_message().await;
    let notice = &lagging["payload"]["errors"][0]["extensions"];
    assert_eq!(notice["reason"], "SUBSCRIBER_LAGGING", "{lagging}");
    assert_eq!(notice["cursor"], cursor.as_str(), "{lagging}");
    // While Redis is away the report is stored; its event waits for the reconnection.
    device
        .report(chrono::Utc::now(), "charging", "unlocked")
        .await;
    tokio::time::sleep(Duration::from_millis(1500)).await;
    let ready = app
        .http
        .get(app.url("/readyz"))
        .send()
        .await
        .expect("readyz");
    assert_eq!(ready.status(), 503, "readiness reports the bus as down");
    let _redis = RedisServer::start(port).expect("redis-server restarts");

    // The restarted Redis lost the history: a resume is refused, so the
    // client refetches and subscribes again, and follows the bay from there.
    // (Until the replica has reconnected, the history cannot be read at all.)
    let deadline = tokio::time::Instant::now() + PATIENCE;
    loop {
        let mut resumed = follow(&app, &station, Some(&cursor)).await;
        let refused = resumed.next_event().await;
        if refused["errors"][0]["extensions"]["reason"] == "CURSOR_EXPIRED" {
            break;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "a resume from the lost history is refused: {refused}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let mut subscription = follow(&app, &station, None).await;
    let deadline = tokio::time::Instant::now() + PATIENCE;
    loop {
        assert!(
            tokio::time::Instant::now() < deadline,
            "no event after Redis came back"
        );
        device.report(chrono::Utc::now(), "idle", "locked").await;
        let Some(event) = subscription.try_next(Duration::from_millis(500)).await else {
            continue;
        };
        if is_lagging(&event) {
            // Begun before the replica had subscribed again: told so, the
            // client subscribes once more.
            subscription = follow(&app, &station, None).await;
            continue;
        }
        let change = &event["payload"]["data"]["bayStatusChanged"];
        assert_eq!(change["bay"]["id"], global_id("Bay", bay.bay_id), "{event}");
        if change["lockState"] == "LOCKED" {
            break;
        }
    }
    let ready = app
        .http
        .get(app.url("/readyz"))
        .send()
        .await
        .expect("readyz");
    assert_eq!(ready.status(), 200, "readiness recovers with the bus");
}

/// What a replica's subscription says when its Redis connection drops: events
/// other replicas publish meanwhile never reach it, so every subscription ends
/// with `SUBSCRIBER_LAGGING` and the last cursor it was given, and resumes
/// from Redis's history once the replica is back.
#[tokio::test]
async fn a_dropped_redis_connection_ends_subscriptions_with_a_cursor_to_resume_from() {
    let Some(Following {
        redis: _redis,
        port,
        app,
        station,
        device,
        mut subscription,
        cursor,
        ..
    }) = Following::start("the Redis connection test").await
    else {
        return;
    };

    // Redis closes the replica's connection (its only clients are the replica's).
    let admin = redis::Client::open(format!("redis://127.0.0.1:{port}")).expect("a Redis URL");
    let mut admin = admin
        .get_multiplexed_async_connection()
        .await
        .expect("Redis");
    for kind in ["pubsub", "normal"] {
        let _: redis::Value = redis::cmd("CLIENT")
            .arg("KILL")
            .arg("TYPE")
            .arg(kind)
            .query_async(&mut admin)
            .await
            .expect("CLIENT KILL");
    }
    let message = subscription.next_message().await;
    let errors = match message["type"].as_str() {
        Some("next") => message["payload"]["errors"].clone(),
        Some("error") => message["payload"].clone(),
        _ => panic!("unexpected message {message}"),
    };
    let notice = &errors[0]["extensions"];
    assert_eq!(notice["reason"], "SUBSCRIBER_LAGGING", "{message}");
    assert_eq!(
        notice["cursor"],
        cursor.as_str(),
        "the last one it was given"
    );

    // Resumed from it, the subscription follows the bay again; one resumed
    // before the replica had subscribed again is told so too, and resumes.
    let mut cursor = cursor;
    let next = loop {
        let mut resumed = follow(&app, &station, Some(&cursor)).await;
        let message = report_until_seen(&device, &mut resumed, "charging", "unlocked").await;
        if !is_lagging(&message) {
            break message;
        }
        cursor = lagging_cursor(&message);
    };
    assert_eq!(
        next["payload"]["data"]["bayStatusChanged"]["lockState"], "UNLOCKED",
        "{next}"
    );
}

/// A change committed while Redis is away for longer than a publish waits
/// is not lost: the replica keeps its event and publishes it once Redis
/// answers, so a subscriber resuming from its last cursor receives it though
/// the bay has not changed since.
#[tokio::test]
async fn an_event_committed_through_a_long_redis_outage_is_published_once_redis_answers() {
    let dir = std::env::temp_dir().join(format!("voltgate-redis-{}", uuid::Uuid::new_v4()));
    std::fs::create_dir_all(&dir).expect("a data directory");
    let Some(Following {
        redis,
        port,
        app,
        station,
        device,
        mut subscription,
        cursor,
        ..
    }) = Following::start_with(
        "the long Redis outage test",
        Some(&dir),
        &["--bus-publish-patience-ms", "300"],
    )
    .await
    else {
        return;
    };

    // Redis goes away, its data (the history, the epoch) saved.
    redis.stop_saving(port).await;
    let lagging = subscription.next_message().await;
    assert!(is_lagging(&lagging), "{lagging}");
    // A report is stored meanwhile; its publish gives up waiting.
    let deferred = app.metric("voltgate_bus_events_deferred_total").await;
    device
        .report(chrono::Utc::now(), "charging", "unlocked")
        .await;
    let deadline = tokio::time::Instant::now() + PATIENCE;
    while app.metric("voltgate_bus_events_deferred_total").await <= deferred {
        assert!(
            tokio::time::Instant::now() < deadline,
            "the report's event was not kept for later"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }

    let _redis = RedisServer::start_in(port, Some(&dir)).expect("redis-server restarts");
    // Resumed from its last cursor (again, while the replica has not read the
    // history back yet), the subscriber gets the kept event.
    let mut cursor = cursor;
    let deadline = tokio::time::Instant::now() + PATIENCE;
    let event = loop {
        assert!(
            tokio::time::Instant::now() < deadline,
            "the resume was never served"
        );
        let mut resumed = follow(&app, &station, Some(&cursor)).await;
        let message = resumed
            .try_next(PATIENCE / 2)
            .await
            .expect("the event kept through the outage reaches the subscriber");
        if is_lagging(&message) {
            cursor = lagging_cursor(&message);
            continue;
        }
        if message["type"] == "next" && message["payload"]["errors"].is_null() {
            break message;
        }
        // The history cannot be read until the replica has reconnected.
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    assert_eq!(
        event["payload"]["data"]["bayStatusChanged"]["lockState"], "UNLOCKED",
        "{event}"
    );
    std::fs::remove_dir_all(&dir).ok();
}

/// Whether `message` ends its subscription with `SUBSCRIBER_LAGGING`.
fn is_lagging(message: &serde_json::Value) -> bool {
    message["payload"]["errors"][0]["extensions"]["reason"] == "SUBSCRIBER_LAGGING"
}

/// The cursor a `SUBSCRIBER_LAGGING` notice says to resume from.
fn lagging_cursor(message: &serde_json::Value) -> String {
    message["payload"]["errors"][0]["extensions"]["cursor"]
        .as_str()
        .unwrap_or_else(|| panic!("a cursor: {message}"))
        .to_owned()
}

/// Follows `station`'s bays on `app`, from `after` when given.
async fn follow(app: &TestApp, station: &str, after: Option<&str>) -> Subscription {
    app.subscribe(
        "graphql-transport-ws",
        BAY_STATUS,
        json!({ "station": station, "after": after }),
    )
    .await
}
