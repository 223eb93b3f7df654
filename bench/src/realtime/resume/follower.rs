//! A subscriber that follows its station's bay changes and, when its
//! replica goes away, waits its backoff and resumes on the other replica with
//! `after:` the last cursor it received; `SUBSCRIBER_LAGGING` makes it
//! subscribe again from the cursor the notice carries.

use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use chrono::Utc;
use futures_util::{SinkExt as _, StreamExt as _};
use tokio::sync::watch;
use tokio::task::JoinHandle;
use tokio_tungstenite::tungstenite::Message;

use crate::listeners::{self, Incoming, Socket, station_global_id};

use super::{REPLICA_NAMES, ResumePlan};

const QUERY: &str = "subscription($s: ID, $after: String){ bayStatusChanged(stationId: $s, after: $after){ cursor bay { id } status lockState deviceStatus changedAt } }";

/// One delivery.
#[derive(Debug, Clone, Copy)]
pub(super) struct Got {
    pub(super) ts_us: i64,
    pub(super) received_us: i64,
    pub(super) replica: usize,
}

/// A subscriber's move to the surviving replica.
#[derive(Debug, Clone, Copy)]
pub(super) struct Resumption {
    /// When the resuming `subscribe` was sent, µs.
    pub(super) subscribed_us: i64,
    /// The `ts` of the last event seen before the connection was lost.
    pub(super) last_seen_ts_us: Option<i64>,
}

/// What one subscriber saw.
#[derive(Debug, Default)]
pub(super) struct Trail {
    pub(super) got: Vec<Got>,
    pub(super) last_cursor: Option<String>,
    pub(super) resumed: Option<Resumption>,
    /// `extensions.reason` (or the message) of every error received.
    pub(super) errors: Vec<String>,
    /// Why the subscriber stopped before the end, if it did.
    pub(super) gave_up: Option<String>,
}

pub(super) struct Follower {
    pub(super) station: u32,
    pub(super) home: usize,
    pub(super) trail: Arc<Mutex<Trail>>,
    pub(super) task: JoinHandle<()>,
}

pub(super) fn lock(trail: &Mutex<Trail>) -> std::sync::MutexGuard<'_, Trail> {
    trail.lock().unwrap_or_else(PoisonError::into_inner)
}

/// Opens `subscribers_per_station` subscribers on every station, alternately on
/// each replica, and starts following.
pub(super) async fn open_followers(
    replicas: &[SocketAddr; 2],
    stations: u32,
    plan: &ResumePlan,
    delivered: &Arc<AtomicU64>,
    stop: &watch::Receiver<bool>,
) -> anyhow::Result<Vec<Follower>> {
    let targets: Vec<(u32, usize)> = (0..plan.subscribers_per_station)
        .flat_map(|k| (1..=stations).map(move |station| (station, k as usize % 2)))
        .collect();
    let opened: Vec<anyhow::Result<Follower>> = futures_util::stream::iter(targets)
        .map(|(station, home)| {
            let (replicas, delivered, stop) = (*replicas, Arc::clone(delivered), stop.clone());
            let backoff = plan.backoff;
            async move {
                let variables =
                    serde_json::json!({ "s": station_global_id(station), "after": null });
                let (ws, _) =
                    listeners::open_subscription(replicas[home], QUERY, variables).await?;
                let trail = Arc::new(Mutex::new(Trail::default()));
                let task = tokio::spawn(follow(
                    ws,
                    Route {
                        replicas,
                        home,
                        station,
                        backoff,
                    },
                    Arc::clone(&trail),
                    delivered,
                    stop,
                ));
                anyhow::Ok(Follower {
                    station,
                    home,
                    trail,
                    task,
                })
            }
        })
        .buffer_unordered(32)
        .collect()
        .await;
    opened.into_iter().collect()
}

/// Where a subscriber is and where it goes.
#[derive(Clone, Copy)]
struct Route {
    replicas: [SocketAddr; 2],
    home: usize,
    station: u32,
    backoff: Duration,
}

/// How a subscription ended.
enum Ended {
    Stopped,
    /// The connection closed (the replica died): move to the other one.
    Closed,
    /// `SUBSCRIBER_LAGGING`: subscribe again from the last cursor delivered.
    Lagging(Option<String>),
    Failed(String),
}

/// Records events; when the connection is lost, waits `backoff` and resumes
/// on the other replica from the last cursor seen (once).
async fn follow(
    ws: Socket,
    route: Route,
    trail: Arc<Mutex<Trail>>,
    delivered: Arc<AtomicU64>,
    mut stop: watch::Receiver<bool>,
) {
    let mut ws = ws;
    let mut at = route.home;
    loop {
        let ended = read_events(&mut ws, at, &trail, &delivered, &mut stop).await;
        let after = match ended {
            Ended::Stopped => {
                let _ = ws.close(None).await;
                return;
            }
            Ended::Failed(why) => {
                lock(&trail).gave_up = Some(why);
                return;
            }
            Ended::Lagging(cursor) => cursor.or_else(|| lock(&trail).last_cursor.clone()),
            Ended::Closed if at == route.home => {
                tokio::select! {
                    _ = stop.changed() => return,
                    () = tokio::time::sleep(route.backoff) => {}
                }
                at = 1 - at;
                lock(&trail).last_cursor.clone()
            }
            Ended::Closed => {
                lock(&trail).gave_up = Some(format!(
                    "replica {} closed the connection after the move",
                    REPLICA_NAMES[at]
                ));
                return;
            }
        };
        let variables =
            serde_json::json!({ "s": station_global_id(route.station), "after": after });
        match listeners::open_subscription(route.replicas[at], QUERY, variables).await {
            Ok((socket, subscribed_us)) => {
                ws = socket;
                let mut trail = lock(&trail);
                if trail.resumed.is_none() && at != route.home {
                    let last_seen_ts_us = trail.got.last().map(|g| g.ts_us);
                    trail.resumed = Some(Resumption {
                        subscribed_us,
                        last_seen_ts_us,
                    });
                }
            }
            Err(err) => {
                lock(&trail).gave_up = Some(format!(
                    "cannot resume on replica {}: {err:#}",
                    REPLICA_NAMES[at]
                ));
                return;
            }
        }
    }
}

async fn read_events(
    ws: &mut Socket,
    replica: usize,
    trail: &Mutex<Trail>,
    delivered: &AtomicU64,
    stop: &mut watch::Receiver<bool>,
) -> Ended {
    loop {
        let message = tokio::select! {
            _ = stop.changed() => return Ended::Stopped,
            message = ws.next() => message,
        };
        let text = match message {
            Some(Ok(Message::Text(text))) => text,
            Some(Ok(Message::Close(_)) | Err(_)) | None => return Ended::Closed,
            Some(Ok(_)) => continue,
        };
        let received_us = Utc::now().timestamp_micros();
        match listeners::read_frame(&text) {
            Incoming::Next {
                changed_at_us,
                cursor,
            } => {
                let mut trail = lock(trail);
                trail.got.push(Got {
                    ts_us: changed_at_us,
                    received_us,
                    replica,
                });
                if cursor.is_some() {
                    trail.last_cursor = cursor;
                }
                delivered.fetch_add(1, Ordering::Relaxed);
            }
            Incoming::Errors {
                message,
                reason,
                cursor,
            } => {
                let lagging = reason.as_deref() == Some("SUBSCRIBER_LAGGING");
                lock(trail)
                    .errors
                    .push(reason.unwrap_or_else(|| format!("no reason: {message}")));
                return if lagging {
                    Ended::Lagging(cursor)
                } else {
                    Ended::Failed(format!(
                        "error from replica {}: {message}",
                        REPLICA_NAMES[replica]
                    ))
                };
            }
            Incoming::Ping => {
                if ws.send(Message::text(r#"{"type":"pong"}"#)).await.is_err() {
                    return Ended::Closed;
                }
            }
            Incoming::Complete => {
                return Ended::Failed(format!(
                    "replica {} completed the subscription",
                    REPLICA_NAMES[replica]
                ));
            }
            Incoming::Other(_) | Incoming::Unreadable => {}
        }
    }
}
