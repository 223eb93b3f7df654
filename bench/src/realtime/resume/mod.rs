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

mod follower;
mod tally;

use std::collections::HashMap;
use std::fmt::Write as _;
use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use chrono::Utc;
use tokio::sync::watch;

use crate::procfs::{CpuSnapshot, CpuUse};
use crate::publisher::{Order, Publisher};
use crate::report::{GRACE, micros_text, ms, per, percent};
use crate::server::{self, Server};

use super::latency::verdict;
use super::setup::Deployment;
use follower::{lock, open_followers};
pub use tally::Group;
use tally::{percentile_ms, tally};

/// Aim of the issue for the time from the resuming subscribe to the first replayed event.
const AIM_REPLAY_P99_MS: f64 = 250.0;

/// The replica that is killed, and the one that survives.
const KILLED: usize = 0;
const SURVIVOR: usize = 1;
const REPLICA_NAMES: [&str; 2] = ["A", "B"];
const KILLED_NAME: &str = "replica-a";

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
    /// Messages the broker still held for the killed replica's MQTT session
    /// after the run (read back by resuming that session); `None` when it
    /// could not be read.
    pub held: Option<u64>,
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
    let mut killed = Some(deployment.start(KILLED_NAME, &[]).await?);
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
    let publisher_trouble = publisher.trouble();
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
    // Everything is over before the killed replica's MQTT session is read back.
    publisher.close().await;
    let survivor_log = survivor.log_excerpt();
    survivor.stop().await;
    let held = match (options.external_broker, &options.broker_login) {
        (Some(broker), Some(login)) => {
            held_in_session(broker, login, &server::mqtt_client_id(KILLED_NAME)).await
        }
        _ => None,
    };
    let mut problems = Vec::new();
    if let Some(trouble) = publisher_trouble {
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
        problems.push(survivor_log);
    }

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
        held,
        sent: burst.sent,
        cpu,
        errors,
        problems,
        plan: plan.clone(),
    })
}

/// Resumes the killed replica's persistent MQTT session, as the replica would
/// on restart, and counts the messages the broker delivers from it: those it
/// kept routing to the dead member of the shared subscription.
async fn held_in_session(
    broker: SocketAddr,
    login: &(String, String),
    client_id: &str,
) -> Option<u64> {
    use rumqttc::v5::mqttbytes::v5::Packet;
    use rumqttc::v5::{AsyncClient, Event, MqttOptions};

    let mut options = MqttOptions::new(client_id, broker.ip().to_string(), broker.port());
    options
        .set_credentials(&login.0, &login.1)
        .set_clean_start(false)
        .set_session_expiry_interval(Some(0));
    let (client, mut eventloop) = AsyncClient::new(options, 64);
    let mut held = 0;
    let mut connected = false;
    loop {
        match tokio::time::timeout(Duration::from_millis(1500), eventloop.poll()).await {
            Ok(Ok(Event::Incoming(Packet::ConnAck(_)))) => connected = true,
            Ok(Ok(Event::Incoming(Packet::Publish(_)))) => held += 1,
            Ok(Ok(_)) => {}
            Ok(Err(_)) => return None,
            // Quiet for 1.5 s: the session is drained.
            Err(_) => break,
        }
    }
    let _ = client.disconnect().await;
    let _ = tokio::time::timeout(Duration::from_millis(200), eventloop.poll()).await;
    connected.then_some(held)
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
    if let Some(held) = run.held {
        let _ = writeln!(
            out,
            "\nmessages the broker kept for the killed replica's MQTT session (read back after the run): {held}"
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
