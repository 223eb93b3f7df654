//! The Redis bus outlives a Redis restart or a dropped connection: the replica
//! reconnects and re-subscribes, and its subscribers, told that they may have
//! missed events (`SUBSCRIBER_LAGGING` with their last cursor), resume from
//! the history or, when Redis lost it, subscribe again. Runs against a private `redis-server`
//! on a free port, so the shared one is never disturbed; skipped where
//! `redis-server` is not installed.

use std::net::{SocketAddr, TcpListener, TcpStream};
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
        let child = Command::new("redis-server")
            .args(["--port", &port.to_string(), "--bind", "127.0.0.1"])
            .args(["--save", "", "--appendonly", "no"])
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
        let port = TcpListener::bind("127.0.0.1:0")
            .and_then(|l| l.local_addr())
            .expect("a free port")
            .port();
        let Some(redis) = RedisServer::start(port) else {
            eprintln!("redis-server is not installed; {test} not run");
            return None;
        };
        let app = spawn_app_with(&["--redis-url", &format!("redis://127.0.0.1:{port}")]).await;
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
        cursor = message["payload"]["errors"][0]["extensions"]["cursor"]
            .as_str()
            .unwrap_or_else(|| panic!("a cursor: {message}"))
            .to_owned();
    };
    assert_eq!(
        next["payload"]["data"]["bayStatusChanged"]["lockState"], "UNLOCKED",
        "{next}"
    );
}

/// Whether `message` ends its subscription with `SUBSCRIBER_LAGGING`.
fn is_lagging(message: &serde_json::Value) -> bool {
    message["payload"]["errors"][0]["extensions"]["reason"] == "SUBSCRIBER_LAGGING"
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
