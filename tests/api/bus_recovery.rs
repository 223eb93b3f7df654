//! The Redis bus outlives a Redis restart: the replica reconnects, re-subscribes,
//! and subscribers keep receiving events. Runs against a private `redis-server`
//! on a free port, so the shared one is never disturbed; skipped where
//! `redis-server` is not installed.

use std::net::{SocketAddr, TcpListener, TcpStream};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use serde_json::json;

use crate::helpers::{PATIENCE, global_id, report_until_seen, spawn_app_with};

const BAY_STATUS: &str = "subscription Live($station: ID) {
  bayStatusChanged(stationId: $station) { bay { id } lockState }
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

#[tokio::test]
async fn subscribers_keep_receiving_events_after_redis_restarts() {
    let port = TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .expect("a free port")
        .port();
    let Some(redis) = RedisServer::start(port) else {
        eprintln!("redis-server is not installed; skipping the Redis restart test");
        return;
    };
    let redis_url = format!("redis://127.0.0.1:{port}");
    let app = spawn_app_with(&["--redis-url", &redis_url]).await;
    let bays = app.seed(1, 1, 1).await;
    let bay = &bays[0];
    let station = global_id("Station", bay.station_id);
    let mut subscription = app
        .subscribe(
            "graphql-transport-ws",
            BAY_STATUS,
            json!({ "station": station }),
        )
        .await;
    let device = app.device(bay).await;
    report_until_seen(&device, &mut subscription, "idle", "locked").await;

    redis.stop();
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
