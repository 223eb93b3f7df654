//! Resume after a replica dies: two replicas on the production setup (one
//! database, one Redis bus, one shared MQTT subscription), subscribers split
//! over both, messages flowing; one replica is killed with SIGKILL, and its
//! subscribers reconnect to the other with `after: <the last cursor they saw>`.
//!
//! The publisher knows every message it sent and its station, so each
//! subscriber's deliveries are checked message by message (by the report's
//! `ts`, which the event carries as `changedAt`): missed, received twice,
//! and, for the subscribers that moved, how long the first replayed event took
//! from the resuming `subscribe`.

use std::collections::{HashMap, HashSet};
use std::fmt::Write as _;
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
use crate::procfs::{CpuSnapshot, CpuUse};
use crate::publisher::{Order, Publisher, Sent};
use crate::report::{GRACE, micros_text, ms, per, percent};
use crate::server::Server;

use super::latency::verdict;
use super::setup::Deployment;

const QUERY: &str = "subscription($s: ID, $after: String){ bayStatusChanged(stationId: $s, after: $after){ cursor bay { id } status lockState deviceStatus changedAt } }";

/// Aim of the issue for the time from the resuming subscribe to the first replayed event.
const AIM_REPLAY_P99_MS: f64 = 250.0;

/// The replica that is killed, and the one that survives.
const KILLED: usize = 0;
const SURVIVOR: usize = 1;
const REPLICA_NAMES: [&str; 2] = ["A", "B"];

/// What to run.
#[derive(Debug, Clone)]
pub struct ResumePlan {
    pub subscribers_per_station: u32,
    pub rate: f64,
    /// Publishing time before the kill, and after it.
    pub before_kill: Duration,
    pub after_kill: Duration,
    /// How long a subscriber waits after losing its connection before it
    /// reconnects, as clients back off; it gives each one events to catch up on.
    pub backoff: Duration,
    pub pacers: usize,
}

/// One delivery.
#[derive(Debug, Clone, Copy)]
struct Got {
    ts_us: i64,
    received_us: i64,
    replica: usize,
}

/// A subscriber's move to the surviving replica.
#[derive(Debug, Clone, Copy)]
struct Resumption {
    /// When the resuming `subscribe` was sent, µs.
    subscribed_us: i64,
    /// The `ts` of the last event seen before the connection was lost.
    last_seen_ts_us: Option<i64>,
}

/// What one subscriber saw.
#[derive(Debug, Default)]
struct Trail {
    got: Vec<Got>,
    last_cursor: Option<String>,
    resumed: Option<Resumption>,
    /// `extensions.reason` (or the message) of every error received.
    errors: Vec<String>,
    /// Why the subscriber stopped before the end, if it did.
    gave_up: Option<String>,
}

struct Follower {
    station: u32,
    home: usize,
    trail: Arc<Mutex<Trail>>,
    task: JoinHandle<()>,
}

/// Figures of one group of subscribers (those that moved, those that stayed).
#[derive(Debug, Default)]
pub struct Group {
    pub subscribers: usize,
    pub expected: u64,
    pub delivered: u64,
    pub missed: u64,
    /// Missed events that no subscriber of the station got either: lost before
    /// the event bus (broker or ingestion), not by the resume.
    pub missed_everywhere: u64,
    pub duplicates: u64,
    pub with_missed: usize,
    pub with_duplicates: usize,
    /// Deliveries of messages the publisher never sent to that station.
    pub foreign: u64,
    /// Reconnect (subscribe sent) → first replayed event, sorted, in µs.
    pub replay_us: Vec<i64>,
    /// Subscribers that resumed with nothing to catch up on.
    pub nothing_to_replay: usize,
    pub not_resumed: usize,
}

/// CPU of one replica in one phase.
pub struct ReplicaCpu {
    pub phase: &'static str,
    pub replica: &'static str,
    /// Messages sent in the phase, and over how many seconds.
    pub messages: u64,
    pub seconds: f64,
    /// Deliveries by this replica, until they stopped.
    pub deliveries: u64,
    pub cpu: CpuUse,
}

/// The run's figures.
pub struct ResumeRun {
    pub moved: Group,
    pub stayed: Group,
    pub sent: u64,
    pub cpu: Vec<ReplicaCpu>,
    /// Errors by reason, over all subscribers.
    pub errors: HashMap<String, u64>,
    pub problems: Vec<String>,
    pub plan: ResumePlan,
}

/// Runs the scenario on `deployment` (the production setup).
///
/// # Errors
/// When a replica, a subscriber or the publisher cannot start, or the server
/// refuses the resumable subscription (no `cursor`/`after` yet).
pub async fn run(deployment: &Deployment, plan: &ResumePlan) -> anyhow::Result<ResumeRun> {
    let options = &deployment.options;
    let layout = options.layout;
    let mut killed = Some(deployment.start("replica-a", &[]).await?);
    let survivor = deployment.start("replica-b", &[]).await?;
    let (killed_pid, survivor_pid) = (killed.as_ref().map_or(0, Server::pid), survivor.pid());
    let replicas = [
        killed.as_ref().map_or(survivor.http, |server| server.http),
        survivor.http,
    ];
    let (stop, stopped) = watch::channel(false);
    let delivered = Arc::new(AtomicU64::new(0));
    let followers = open_followers(&replicas, layout.stations, plan, &delivered, &stopped).await?;
    tokio::time::sleep(Duration::from_millis(500)).await;
    if let Some(refusal) = followers
        .iter()
        .find_map(|f| lock(&f.trail).errors.first().cloned())
    {
        let _ = stop.send(true);
        anyhow::bail!(
            "the server refused the resumable subscription (bayStatusChanged with cursor and after): {refusal}"
        );
    }
    println!(
        "{} subscribers following their station, half on each replica",
        followers.len()
    );
    let mut publisher = Publisher::connect(
        survivor.mqtt,
        &survivor.credentials,
        &options.topic_root,
        layout,
        Order::Interleaved,
        plan.pacers,
    )
    .await?;

    let start = [
        CpuSnapshot::take(killed_pid),
        CpuSnapshot::take(survivor_pid),
    ];
    let start_us = Utc::now().timestamp_micros();
    let choreography = async {
        tokio::time::sleep(plan.before_kill).await;
        let at_kill = [
            CpuSnapshot::take(killed_pid),
            CpuSnapshot::take(survivor_pid),
        ];
        let kill_us = Utc::now().timestamp_micros();
        if let Some(server) = killed.take() {
            // Server::stop is SIGKILL: no goodbye to the broker, the bus or the clients.
            server.stop().await;
        }
        println!("replica A killed (SIGKILL) after {:?}", plan.before_kill);
        (at_kill, kill_us)
    };
    let (burst, (at_kill, kill_us)) = tokio::join!(
        publisher.run(plan.rate, plan.before_kill + plan.after_kill),
        choreography
    );
    let burst = burst?;
    tokio::time::sleep(GRACE).await;
    // Until deliveries stop (replays of slow subscribers included), at most 30 s.
    let mut seen = delivered.load(Ordering::Relaxed);
    for _ in 0..60 {
        tokio::time::sleep(Duration::from_millis(500)).await;
        let now = delivered.load(Ordering::Relaxed);
        if now == seen {
            break;
        }
        seen = now;
    }
    let end = CpuSnapshot::take(survivor_pid);
    let end_us = Utc::now().timestamp_micros();
    let log = publisher.take_log();
    println!(
        "{} messages sent at {:.0} msg/s; {} deliveries",
        burst.sent,
        burst.sent as f64 / burst.elapsed.as_secs_f64().max(1e-9),
        delivered.load(Ordering::Relaxed)
    );

    let _ = stop.send(true);
    let mut trails = Vec::with_capacity(followers.len());
    for follower in followers {
        let _ = tokio::time::timeout(Duration::from_secs(2), follower.task).await;
        let trail = std::mem::take(&mut *lock(&follower.trail));
        trails.push((follower.station, follower.home, trail));
    }
    let mut problems = Vec::new();
    if let Some(trouble) = publisher.trouble() {
        problems.push(format!("publisher connection errors: {trouble}"));
    }
    if let Some(warnings) = deployment.broker_warnings() {
        problems.push(format!("mosquitto log: {warnings}"));
    }
    let gave_up: Vec<&String> = trails
        .iter()
        .filter_map(|(_, _, t)| t.gave_up.as_ref())
        .collect();
    if let Some(first) = gave_up.first() {
        problems.push(format!(
            "{} subscribers stopped early, first: {first}",
            gave_up.len()
        ));
    }
    if !problems.is_empty() {
        problems.push(survivor.log_excerpt());
    }
    publisher.close().await;
    survivor.stop().await;

    // Messages are counted while publishing; deliveries and CPU until they stopped.
    let windows = [
        ("before kill", start_us, kill_us, kill_us),
        ("after kill", kill_us, burst.ended_us, end_us),
    ];
    let count_messages =
        |from: i64, to: i64| log.iter().filter(|m| (from..to).contains(&m.ts_us)).count() as u64;
    let count_deliveries = |replica: usize, from: i64, to: i64| {
        trails
            .iter()
            .flat_map(|(_, _, t)| &t.got)
            .filter(|g| g.replica == replica && (from..to).contains(&g.received_us))
            .count() as u64
    };
    let seconds = |from: i64, to: i64| (to - from) as f64 / 1e6;
    let mut cpu = Vec::new();
    for replica in [KILLED, SURVIVOR] {
        let (phase, from, sending, to) = windows[0];
        cpu.push(ReplicaCpu {
            phase,
            replica: REPLICA_NAMES[replica],
            messages: count_messages(from, sending),
            deliveries: count_deliveries(replica, from, to),
            cpu: at_kill[replica].since(&start[replica]),
            seconds: seconds(from, sending),
        });
    }
    let (phase, from, sending, to) = windows[1];
    cpu.push(ReplicaCpu {
        phase,
        replica: REPLICA_NAMES[SURVIVOR],
        messages: count_messages(from, sending),
        deliveries: count_deliveries(SURVIVOR, from, to),
        cpu: end.since(&at_kill[SURVIVOR]),
        seconds: seconds(from, sending),
    });

    let mut errors: HashMap<String, u64> = HashMap::new();
    for (_, _, trail) in &trails {
        for reason in &trail.errors {
            *errors.entry(reason.clone()).or_default() += 1;
        }
    }
    let (moved, stayed) = tally(&log, &trails);
    Ok(ResumeRun {
        moved,
        stayed,
        sent: burst.sent,
        cpu,
        errors,
        problems,
        plan: plan.clone(),
    })
}

fn lock(trail: &Mutex<Trail>) -> std::sync::MutexGuard<'_, Trail> {
    trail.lock().unwrap_or_else(PoisonError::into_inner)
}

/// Opens `subscribers_per_station` subscribers on every station, alternately on
/// each replica, and starts following.
async fn open_followers(
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

/// Checks every subscriber's deliveries against what was sent to its station.
fn tally(log: &[Sent], trails: &[(u32, usize, Trail)]) -> (Group, Group) {
    let mut by_station: HashMap<u32, HashSet<i64>> = HashMap::new();
    for message in log {
        by_station
            .entry(message.station)
            .or_default()
            .insert(message.ts_us);
    }
    // Messages some subscriber of the station got: the rest never reached the bus.
    let mut reached: HashMap<u32, HashSet<i64>> = HashMap::new();
    for (station, _, trail) in trails {
        reached
            .entry(*station)
            .or_default()
            .extend(trail.got.iter().map(|g| g.ts_us));
    }
    let empty = HashSet::new();
    let (mut moved, mut stayed) = (Group::default(), Group::default());
    for (station, home, trail) in trails {
        let group = if *home == KILLED {
            &mut moved
        } else {
            &mut stayed
        };
        let expected = by_station.get(station).unwrap_or(&empty);
        let reached = reached.get(station).unwrap_or(&empty);
        let mut counts: HashMap<i64, u64> = HashMap::new();
        for got in &trail.got {
            *counts.entry(got.ts_us).or_default() += 1;
        }
        let missed: Vec<i64> = expected
            .iter()
            .copied()
            .filter(|ts| !counts.contains_key(ts))
            .collect();
        let duplicates: u64 = counts
            .iter()
            .filter(|(ts, _)| expected.contains(ts))
            .map(|(_, n)| n - 1)
            .sum();
        group.subscribers += 1;
        group.expected += expected.len() as u64;
        group.delivered += counts.keys().filter(|ts| expected.contains(ts)).count() as u64;
        group.foreign += counts
            .iter()
            .filter(|(ts, _)| !expected.contains(ts))
            .map(|(_, n)| n)
            .sum::<u64>();
        group.missed += missed.len() as u64;
        group.missed_everywhere += missed.iter().filter(|ts| !reached.contains(ts)).count() as u64;
        group.duplicates += duplicates;
        group.with_missed += usize::from(!missed.is_empty());
        group.with_duplicates += usize::from(duplicates > 0);
        if *home != KILLED {
            continue;
        }
        match trail.resumed {
            None => group.not_resumed += 1,
            Some(resumed) => {
                let after_seen = |ts: i64| resumed.last_seen_ts_us.is_none_or(|seen| ts > seen);
                let to_replay = expected
                    .iter()
                    .any(|&ts| after_seen(ts) && ts < resumed.subscribed_us);
                let first_replayed = trail.got.iter().find(|g| {
                    g.replica != KILLED
                        && g.received_us >= resumed.subscribed_us
                        && g.ts_us < resumed.subscribed_us
                        && after_seen(g.ts_us)
                });
                match first_replayed {
                    Some(got) => group
                        .replay_us
                        .push(got.received_us - resumed.subscribed_us),
                    None if !to_replay => group.nothing_to_replay += 1,
                    // Something to replay that never came: counted as missed above.
                    None => {}
                }
            }
        }
    }
    moved.replay_us.sort_unstable();
    (moved, stayed)
}

fn percentile_ms(sorted_us: &[i64], p: f64) -> Option<f64> {
    let rank = ((p / 100.0) * sorted_us.len() as f64).ceil() as usize;
    sorted_us
        .get(rank.clamp(1, sorted_us.len().max(1)) - 1)
        .map(|&us| us as f64 / 1000.0)
}

/// The subscribers' figures, the replicas' CPU and the aims.
pub fn table(run: &ResumeRun) -> String {
    let plan = &run.plan;
    let mut out = format!(
        "{} messages at {:.0} msg/s; replica A killed after {:.0} s, publishing went on for {:.0} s; subscribers reconnect {} ms after losing their connection\n\n",
        run.sent,
        plan.rate,
        plan.before_kill.as_secs_f64(),
        plan.after_kill.as_secs_f64(),
        plan.backoff.as_millis()
    );
    out.push_str(
        "| subscribers | count | events expected | delivered | missed | of which no subscriber got | duplicates | with a miss | with a duplicate | foreign | reconnect → 1st replayed p50 | p99 | max | nothing to replay | not resumed |\n\
         |---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|\n",
    );
    for (name, group) in [("moved A → B", &run.moved), ("stayed on B", &run.stayed)] {
        let replay = |p| ms(percentile_ms(&group.replay_us, p));
        let moved = std::ptr::eq(group, &run.moved);
        let _ = writeln!(
            out,
            "| {name} | {} | {} | {} | {} | {} | {} | {} | {} | {} | {} | {} | {} | {} | {} |",
            group.subscribers,
            group.expected,
            group.delivered,
            group.missed,
            group.missed_everywhere,
            group.duplicates,
            group.with_missed,
            group.with_duplicates,
            group.foreign,
            if moved {
                replay(50.0)
            } else {
                "–".to_owned()
            },
            if moved {
                replay(99.0)
            } else {
                "–".to_owned()
            },
            if moved {
                replay(100.0)
            } else {
                "–".to_owned()
            },
            if moved {
                group.nothing_to_replay.to_string()
            } else {
                "–".to_owned()
            },
            if moved {
                group.not_resumed.to_string()
            } else {
                "–".to_owned()
            },
        );
    }
    out.push('\n');
    out.push_str(
        "| phase | replica | msg/s | WS deliveries | server CPU | CPU/msg | CPU/delivery |\n|---|---|---:|---:|---:|---:|---:|\n",
    );
    for row in &run.cpu {
        let _ = writeln!(
            out,
            "| {} | {} | {:.0} | {} | {} | {} | {} |",
            row.phase,
            row.replica,
            row.messages as f64 / row.seconds.max(1e-9),
            row.deliveries,
            percent(row.cpu.server),
            micros_text(row.cpu.server_secs.and_then(|s| per(s, row.messages))),
            micros_text(row.cpu.server_secs.and_then(|s| per(s, row.deliveries))),
        );
    }
    out.push('\n');
    let missed = run.moved.missed + run.stayed.missed;
    let duplicates = run.moved.duplicates + run.stayed.duplicates;
    let p99 = percentile_ms(&run.moved.replay_us, 99.0);
    let _ = writeln!(
        out,
        "| aim | result |\n|---|---|\n| 0 missed | {missed}: {} |\n| 0 received twice | {duplicates}: {} |\n| reconnect → 1st replayed p99 < {AIM_REPLAY_P99_MS:.0} ms | {}: {} |",
        verdict(missed == 0),
        verdict(duplicates == 0),
        ms(p99),
        verdict(p99.is_some_and(|p| p < AIM_REPLAY_P99_MS)),
    );
    if !run.errors.is_empty() {
        let mut reasons: Vec<String> = run
            .errors
            .iter()
            .map(|(reason, n)| format!("{reason} × {n}"))
            .collect();
        reasons.sort();
        let _ = writeln!(out, "\nerrors received: {}", reasons.join(", "));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn got(ts_us: i64, received_us: i64, replica: usize) -> Got {
        Got {
            ts_us,
            received_us,
            replica,
        }
    }

    #[test]
    fn deliveries_are_checked_message_by_message() {
        // Station 1 got messages 10, 20, 30, 40, 50; station 2 got 15.
        let log: Vec<Sent> = [(10, 1), (15, 2), (20, 1), (30, 1), (40, 1), (50, 1)]
            .into_iter()
            .map(|(ts_us, station)| Sent { ts_us, station })
            .collect();
        // Moved from A after 20, resumed on B at 35: 30 is replayed at 37, 40
        // comes twice, 50 never; 15 belongs to another station.
        let moved = Trail {
            got: vec![
                got(10, 11, KILLED),
                got(20, 21, KILLED),
                got(30, 37, SURVIVOR),
                got(40, 41, SURVIVOR),
                got(40, 42, SURVIVOR),
                got(15, 43, SURVIVOR),
            ],
            resumed: Some(Resumption {
                subscribed_us: 35,
                last_seen_ts_us: Some(20),
            }),
            ..Trail::default()
        };
        // Stayed on B: everything but 50, which no subscriber got.
        let stayed = Trail {
            got: [10, 20, 30, 40]
                .into_iter()
                .map(|ts| got(ts, ts + 1, SURVIVOR))
                .collect(),
            ..Trail::default()
        };
        let (moved, stayed) = tally(&log, &[(1, KILLED, moved), (1, SURVIVOR, stayed)]);
        assert_eq!((moved.expected, moved.delivered), (5, 4));
        assert_eq!((moved.missed, moved.missed_everywhere), (1, 1));
        assert_eq!((moved.duplicates, moved.with_duplicates), (1, 1));
        assert_eq!(moved.foreign, 1);
        assert_eq!(moved.replay_us, vec![2]);
        assert_eq!(
            (stayed.missed, stayed.duplicates, stayed.with_missed),
            (1, 0, 1)
        );
    }

    #[test]
    fn a_resume_with_nothing_missed_has_nothing_to_replay() {
        let log = vec![
            Sent {
                ts_us: 10,
                station: 1,
            },
            Sent {
                ts_us: 50,
                station: 1,
            },
        ];
        let trail = Trail {
            got: vec![got(10, 11, KILLED), got(50, 51, SURVIVOR)],
            resumed: Some(Resumption {
                subscribed_us: 30,
                last_seen_ts_us: Some(10),
            }),
            ..Trail::default()
        };
        let (moved, _) = tally(&log, &[(1, KILLED, trail)]);
        assert_eq!((moved.missed, moved.nothing_to_replay), (0, 1));
        assert!(moved.replay_us.is_empty());
    }
}
