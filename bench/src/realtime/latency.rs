//! MQTT state report → GraphQL subscriber latency on one setup, and the highest
//! rate it sustains: `bay-latency`'s phases (warm-up, main, step search), with
//! the raw broker's latency for the same messages where the broker lets a
//! subscriber read every state (Mosquitto).

use std::fmt::Write as _;
use std::sync::Arc;
use std::time::{Duration, Instant};

use crate::latency::{Bench, Subscribers, phase};
use crate::listeners::{self, Health, Samples};
use crate::publisher::{Order, Publisher};
use crate::report::{Ledger, Phase, micros_text, ms, percent};

use super::setup::{Deployment, Setup};

const WARM_UP_RATE: f64 = 200.0;
const WARM_UP: Duration = Duration::from_secs(2);

/// Aims of the issue: p99 at the main rate, and the ceiling.
pub const AIM_P99_MS: f64 = 10.0;
pub const AIM_CEILING: f64 = 10_000.0;

/// What to run.
#[derive(Debug, Clone)]
pub struct LatencyPlan {
    pub rate: f64,
    pub duration: Duration,
    /// Rates of the step search, in increasing order; it stops at the first
    /// step that is not sustained.
    pub steps: Vec<f64>,
    pub step_duration: Duration,
    pub subscribers_per_station: u32,
    pub pacers: usize,
}

/// One setup's figures.
pub struct LatencyRun {
    pub setup: Setup,
    pub subscribers: usize,
    pub main_rate: f64,
    pub phases: Vec<Phase>,
    /// Lines of the server's counters that show lost or dropped work.
    pub counters: Vec<String>,
    pub problems: Vec<String>,
}

impl LatencyRun {
    fn main(&self) -> Option<&Phase> {
        self.phases.iter().find(|p| p.label == "main")
    }

    /// The highest step sustained, if any.
    pub fn ceiling(&self) -> Option<f64> {
        self.phases
            .iter()
            .filter(|p| p.label.starts_with("step") && p.sustained())
            .map(|p| p.target_rate)
            .reduce(f64::max)
    }
}

/// Runs the phases against a fresh server of `deployment`.
///
/// # Errors
/// When the server, a subscriber or the publisher cannot start, or the server dies.
pub async fn run(deployment: &Deployment, plan: &LatencyPlan) -> anyhow::Result<LatencyRun> {
    let options = &deployment.options;
    let layout = options.layout;
    let mut server = deployment.start("latency", &[]).await?;
    let health = Arc::new(Health::default());
    let opening = Instant::now();
    let subscribers = Subscribers::open(
        server.http,
        layout.stations,
        plan.subscribers_per_station,
        &health,
    )
    .await?;
    println!(
        "{} WebSocket subscribers ready in {:.1} s",
        subscribers.len(),
        opening.elapsed().as_secs_f64()
    );
    let raw_samples = Samples::default();
    let raw = match &deployment.raw_login {
        Some(login) => Some(
            listeners::subscribe_raw(
                server.mqtt,
                Some(login),
                &options.topic_root,
                raw_samples.clone(),
                Arc::clone(&health),
            )
            .await?,
        ),
        None => None,
    };
    let publisher = Publisher::connect(
        server.mqtt,
        &server.credentials,
        &options.topic_root,
        layout,
        Order::Interleaved,
        plan.pacers,
    )
    .await?;
    let mut bench = Bench {
        server: &mut server,
        publisher,
        ledger: Ledger::new(subscribers.samples.clone(), raw_samples),
        subscribers_per_station: u64::from(plan.subscribers_per_station),
    };
    let measured = phases(&mut bench, plan).await;
    let mut problems = Vec::new();
    if let Err(err) = &measured {
        problems.push(format!("stopped early: {err:#}"));
    }
    let counters = bench.server.loss_counters().await.unwrap_or_default();
    if let Some(trouble) = health.summary() {
        problems.push(format!("listeners: {trouble}"));
    }
    if let Some(trouble) = bench.publisher.trouble() {
        problems.push(format!("publisher connection errors: {trouble}"));
    }
    if let Some(warnings) = deployment.broker_warnings() {
        problems.push(format!("mosquitto log: {warnings}"));
    }
    if !problems.is_empty() {
        problems.push(bench.server.log_excerpt());
    }
    let phases = std::mem::take(&mut bench.ledger.phases);
    bench.publisher.close().await;
    if let Some(raw) = raw {
        raw.abort();
    }
    subscribers.close().await;
    server.stop().await;
    Ok(LatencyRun {
        setup: deployment.setup,
        subscribers: layout.stations as usize * plan.subscribers_per_station as usize,
        main_rate: plan.rate,
        phases,
        counters,
        problems,
    })
}

async fn phases(bench: &mut Bench<'_>, plan: &LatencyPlan) -> anyhow::Result<()> {
    phase(bench, "warm-up", WARM_UP_RATE, WARM_UP, false).await?;
    phase(bench, "main", plan.rate, plan.duration, true).await?;
    for &rate in &plan.steps {
        let step = phase(
            bench,
            &format!("step {rate:.0}"),
            rate,
            plan.step_duration,
            true,
        )
        .await?;
        if !step.sustained() {
            break;
        }
    }
    Ok(())
}

/// Every setup's phases in one table, then the aims.
pub fn table(runs: &[LatencyRun]) -> String {
    let mut out = String::from(
        "| setup | phase | target msg/s | sent msg/s | WS delivered | WS p50 | WS p90 | WS p99 | WS max | WS 1st p99 | MQTT raw p50 | MQTT raw p99 | server CPU | CPU/msg | CPU/delivery | harness CPU | other CPU | sustained |\n\
         |---|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|:---:|\n",
    );
    for run in runs {
        for p in run.phases.iter().filter(|p| p.reported) {
            let _ = writeln!(
                out,
                "| {} | {} | {:.0} | {:.0} | {:.2} % | {} | {} | {} | {} | {} | {} | {} | {} | {} | {} | {} | {} | {} |",
                run.setup.name(),
                p.label,
                p.target_rate,
                p.achieved_rate(),
                p.ws_delivered() * 100.0,
                ms(p.ws.percentile_ms(50.0)),
                ms(p.ws.percentile_ms(90.0)),
                ms(p.ws.percentile_ms(99.0)),
                ms(p.ws.max_ms()),
                ms(p.ws_first.percentile_ms(99.0)),
                ms(p.mqtt.percentile_ms(50.0)),
                ms(p.mqtt.percentile_ms(99.0)),
                percent(p.cpu.server),
                micros_text(p.cpu_us_per_message()),
                micros_text(p.cpu_us_per_delivery()),
                percent(p.cpu.harness),
                percent(p.cpu.other),
                if p.sustained() { "yes" } else { "no" },
            );
        }
    }
    out.push('\n');
    out.push_str(&format!(
        "| setup | subscribers | WS p99 at the main rate (aim < {AIM_P99_MS:.0} ms) | highest sustained step (aim ≥ {AIM_CEILING:.0} msg/s) |\n|---|---:|---|---|\n"
    ));
    for run in runs {
        let p99 = match run.main().and_then(|p| p.ws.percentile_ms(99.0)) {
            Some(p99) => format!(
                "{p99:.2} ms at {:.0} msg/s: {}",
                run.main_rate,
                verdict(p99 < AIM_P99_MS)
            ),
            None => "no deliveries: MISSED".to_owned(),
        };
        let ceiling = match run.ceiling() {
            Some(rate) => format!("{rate:.0} msg/s: {}", verdict(rate >= AIM_CEILING)),
            None => "no step sustained: MISSED".to_owned(),
        };
        let _ = writeln!(
            out,
            "| {} | {} | {p99} | {ceiling} |",
            run.setup.name(),
            run.subscribers
        );
    }
    out
}

pub fn verdict(met: bool) -> &'static str {
    if met { "met" } else { "MISSED" }
}
