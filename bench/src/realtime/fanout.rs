//! Fan-out: many WebSocket subscribers on few stations, each event delivered
//! to every subscriber of its station, served once by voltgate's realtime
//! engine and once by async-graphql-axum's stock handler
//! (`VOLTGATE_WS_ENGINE=stock`) on the same schema, events and load.
//!
//! Besides latency and deliveries per second, it reads the server's resident
//! memory (`/proc`) before the subscribers connect, once they are all connected
//! and idle, and at the end of the load, so the cost of a subscriber shows.

use std::fmt::Write as _;
use std::sync::Arc;
use std::time::{Duration, Instant};

use crate::latency::{Bench, Subscribers, phase};
use crate::listeners::{Health, Samples};
use crate::publisher::{Order, Publisher};
use crate::report::{Ledger, Phase, micros_text, ms, percent};

use super::setup::Deployment;

/// `VOLTGATE_MAX_WS_CONNECTIONS` for the run: room for every subscriber.
const MAX_WS_CONNECTIONS: u32 = 20_000;
/// How long the connected subscribers sit idle before their memory is read.
const IDLE: Duration = Duration::from_secs(2);
const WARM_UP_RATE: f64 = 100.0;
const WARM_UP: Duration = Duration::from_secs(2);

/// What serves the WebSockets.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Engine {
    Voltgate,
    Stock,
}

impl Engine {
    pub fn setting(self) -> &'static str {
        match self {
            Self::Voltgate => "voltgate",
            Self::Stock => "stock",
        }
    }
}

/// What to run.
#[derive(Debug, Clone)]
pub struct FanoutPlan {
    pub subscribers_per_station: u32,
    pub rate: f64,
    pub duration: Duration,
    pub pacers: usize,
}

/// One engine's figures.
pub struct FanoutRun {
    pub engine: Engine,
    pub setup: &'static str,
    pub subscribers: usize,
    pub connect: Duration,
    pub rss_before_kib: Option<u64>,
    pub rss_idle_kib: Option<u64>,
    pub phase: Option<Phase>,
    pub problems: Vec<String>,
}

/// Runs the load against a fresh server of `deployment` with `engine`.
///
/// # Errors
/// When the server, a subscriber or the publisher cannot start, or the server dies.
pub async fn run(
    deployment: &Deployment,
    engine: Engine,
    plan: &FanoutPlan,
) -> anyhow::Result<FanoutRun> {
    let options = &deployment.options;
    let layout = options.layout;
    let mut server = deployment
        .start(
            &format!("fanout-{}", engine.setting()),
            &[
                ("VOLTGATE_WS_ENGINE", engine.setting().to_owned()),
                (
                    "VOLTGATE_MAX_WS_CONNECTIONS",
                    MAX_WS_CONNECTIONS.to_string(),
                ),
            ],
        )
        .await?;
    // The devices first: their connections are part of the baseline, not of the subscribers' cost.
    let publisher = Publisher::connect(
        server.mqtt,
        &server.credentials,
        &options.topic_root,
        layout,
        Order::Interleaved,
        plan.pacers,
    )
    .await?;
    tokio::time::sleep(Duration::from_secs(1)).await;
    let rss_before_kib = server.rss_kib();
    let health = Arc::new(Health::default());
    let opening = Instant::now();
    let subscribers = Subscribers::open(
        server.http,
        layout.stations,
        plan.subscribers_per_station,
        &health,
    )
    .await?;
    let connect = opening.elapsed();
    println!(
        "{} WebSocket subscribers ready in {:.1} s",
        subscribers.len(),
        connect.as_secs_f64()
    );
    tokio::time::sleep(IDLE).await;
    let rss_idle_kib = server.rss_kib();
    let mut bench = Bench {
        server: &mut server,
        publisher,
        ledger: Ledger::new(subscribers.samples.clone(), Samples::default()),
        subscribers_per_station: u64::from(plan.subscribers_per_station),
    };
    let measured = async {
        phase(&mut bench, "warm-up", WARM_UP_RATE, WARM_UP, false).await?;
        phase(&mut bench, "load", plan.rate, plan.duration, true).await?;
        anyhow::Ok(())
    }
    .await;
    let mut problems = Vec::new();
    if let Err(err) = &measured {
        problems.push(format!("stopped early: {err:#}"));
    }
    if let Some(trouble) = health.summary() {
        problems.push(format!("listeners: {trouble}"));
    }
    if let Some(trouble) = bench.publisher.trouble() {
        problems.push(format!("publisher connection errors: {trouble}"));
    }
    if !problems.is_empty() {
        problems.push(bench.server.log_excerpt());
    }
    let phase = bench.ledger.phases.pop().filter(|p| p.reported);
    bench.publisher.close().await;
    subscribers.close().await;
    server.stop().await;
    Ok(FanoutRun {
        engine,
        setup: deployment.setup.name(),
        subscribers: layout.stations as usize * plan.subscribers_per_station as usize,
        connect,
        rss_before_kib,
        rss_idle_kib,
        phase,
        problems,
    })
}

/// Both engines side by side: memory, then the load's figures.
pub fn table(runs: &[FanoutRun]) -> String {
    let mut out = String::from(
        "| engine | setup | subscribers | connect | RSS before | RSS idle | per subscriber, idle | RSS after load | per subscriber, after load |\n\
         |---|---|---:|---:|---:|---:|---:|---:|---:|\n",
    );
    for run in runs {
        let after = run.phase.as_ref().and_then(|p| p.rss_kib);
        let _ = writeln!(
            out,
            "| {} | {} | {} | {:.1} s | {} | {} | {} | {} | {} |",
            run.engine.setting(),
            run.setup,
            run.subscribers,
            run.connect.as_secs_f64(),
            mib(run.rss_before_kib),
            mib(run.rss_idle_kib),
            per_subscriber(run.rss_before_kib, run.rss_idle_kib, run.subscribers),
            mib(after),
            per_subscriber(run.rss_before_kib, after, run.subscribers),
        );
    }
    out.push('\n');
    out.push_str(
        "| engine | target msg/s | sent msg/s | deliveries/s | WS delivered | WS p50 | WS p90 | WS p99 | WS max | server CPU | CPU/msg | CPU/delivery | harness CPU | other CPU |\n\
         |---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|\n",
    );
    for run in runs {
        let Some(p) = &run.phase else {
            let _ = writeln!(
                out,
                "| {} | – | – | – | – | – | – | – | – | – | – | – | – | – |",
                run.engine.setting()
            );
            continue;
        };
        let _ = writeln!(
            out,
            "| {} | {:.0} | {:.0} | {:.0} | {:.2} % | {} | {} | {} | {} | {} | {} | {} | {} | {} |",
            run.engine.setting(),
            p.target_rate,
            p.achieved_rate(),
            p.ws.count() as f64 / p.burst.elapsed.as_secs_f64().max(1e-9),
            p.ws_delivered() * 100.0,
            ms(p.ws.percentile_ms(50.0)),
            ms(p.ws.percentile_ms(90.0)),
            ms(p.ws.percentile_ms(99.0)),
            ms(p.ws.max_ms()),
            percent(p.cpu.server),
            micros_text(p.cpu_us_per_message()),
            micros_text(p.cpu_us_per_delivery()),
            percent(p.cpu.harness),
            percent(p.cpu.other),
        );
    }
    out
}

fn mib(kib: Option<u64>) -> String {
    kib.map_or_else(
        || "–".to_owned(),
        |k| format!("{:.1} MiB", k as f64 / 1024.0),
    )
}

fn per_subscriber(before: Option<u64>, after: Option<u64>, subscribers: usize) -> String {
    match (before, after) {
        (Some(before), Some(after)) if subscribers > 0 => format!(
            "{:.1} KiB",
            (after as f64 - before as f64) / subscribers as f64
        ),
        _ => "–".to_owned(),
    }
}
