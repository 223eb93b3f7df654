//! `realtime`: the realtime engine's benchmarks in one run, printed as
//! Markdown tables at the end.
//!
//! 1. **Latency**: MQTT state report → `bayStatusChanged` subscribers, at a
//!    fixed rate then in a step search for the highest sustained rate, on the
//!    defaults (SQLite, in-process bus, embedded broker) and on PostgreSQL +
//!    Redis + Mosquitto, with the raw broker's latency for the same messages
//!    where the broker admits a reader of every state (Mosquitto).
//! 2. **Fan-out**: 10,000 WebSocket subscribers over 100 stations, served by
//!    voltgate's engine and by async-graphql-axum's stock handler: deliveries
//!    per second, latency, memory per subscriber.
//! 3. **Resume**: two replicas, one killed; its subscribers resume on the other
//!    with `after: <last cursor>`: events missed or received twice, time to the
//!    first replayed event.
//!
//! Every phase reports the server's CPU per message and per delivery. Run it
//! with `bench/run-realtime.sh` (release build); `docs/performance.md` says how
//! to read the output.

use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use clap::Parser;

use voltgate_bench::procfs;
use voltgate_bench::publisher::DEFAULT_PACERS;
use voltgate_bench::realtime::fanout::{self, Engine, FanoutPlan};
use voltgate_bench::realtime::latency::{self, LatencyPlan};
use voltgate_bench::realtime::resume::{self, ResumePlan};
use voltgate_bench::realtime::setup::{Deployment, Services, Setup};
use voltgate_bench::server::{self, Layout};

/// The seeded network: 100 stations of one cabinet with 10 bays (and devices).
const LAYOUT: Layout = Layout {
    stations: 100,
    bays_per_station: 10,
};

/// One of the benchmarks.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
enum Mode {
    Latency,
    Fanout,
    Resume,
}

/// Runs the realtime benchmarks against fresh `voltgate serve` processes.
#[derive(Debug, Parser)]
#[command(name = "realtime", version)]
struct Args {
    /// Short phases, fewer subscribers and lower rates: checks the harness end
    /// to end in a few minutes (explicit options below still apply).
    #[arg(long)]
    quick: bool,
    /// Benchmarks to run, comma-separated (default: all).
    #[arg(long, value_enum, value_delimiter = ',')]
    only: Vec<Mode>,
    /// Setups of the latency benchmark, comma-separated (default: both).
    #[arg(long, value_enum, value_delimiter = ',')]
    setups: Vec<Setup>,
    /// Messages per second of the latency benchmark's main phase [1000; quick: 200].
    #[arg(long)]
    rate: Option<f64>,
    /// Seconds of the latency benchmark's main phase [10; quick: 3].
    #[arg(long)]
    seconds: Option<f64>,
    /// Rates of the step search, comma-separated [1000,2000,5000,10000,15000,20000; quick: 500,1000].
    #[arg(long, value_delimiter = ',')]
    steps: Option<Vec<f64>>,
    /// Seconds per step [5; quick: 2].
    #[arg(long)]
    step_seconds: Option<f64>,
    /// WebSocket subscribers of the latency benchmark, per station.
    #[arg(long, default_value_t = 10)]
    subscribers_per_station: u32,
    /// Fan-out subscribers, spread evenly over the 100 stations [10000; quick: 2000].
    #[arg(long)]
    fanout_subscribers: Option<u32>,
    /// Messages per second of the fan-out load [1000; quick: 200].
    #[arg(long)]
    fanout_rate: Option<f64>,
    /// Seconds of the fan-out load [10; quick: 3].
    #[arg(long)]
    fanout_seconds: Option<f64>,
    /// Setup of the fan-out benchmark.
    #[arg(long, value_enum, default_value = "defaults")]
    fanout_setup: Setup,
    /// Subscribers of the resume benchmark, spread over the 100 stations and
    /// both replicas [1000; quick: 200].
    #[arg(long)]
    resume_subscribers: Option<u32>,
    /// Messages per second while a replica is killed [500; quick: 100].
    #[arg(long)]
    resume_rate: Option<f64>,
    /// How long a subscriber waits before reconnecting to the other replica.
    #[arg(long, default_value_t = 1000)]
    resume_backoff_ms: u64,
    /// Pacer tasks the publisher's device connections are shared among.
    #[arg(long, default_value_t = DEFAULT_PACERS)]
    publisher_tasks: usize,
    /// PostgreSQL server of the production setup (a database is created per run).
    #[arg(long, default_value = "postgres://postgres@127.0.0.1:5432/postgres")]
    postgres_url: String,
    /// Redis of the production setup (a bus channel is chosen per run).
    #[arg(long, default_value = "redis://127.0.0.1:6379")]
    redis_url: String,
    /// The Mosquitto executable; the production setup starts its own broker.
    #[arg(long, default_value = "mosquitto")]
    mosquitto: PathBuf,
    /// The voltgate binary to run (default: the one next to this executable).
    #[arg(long)]
    voltgate: Option<PathBuf>,
}

impl Args {
    fn runs(&self, mode: Mode) -> bool {
        self.only.is_empty() || self.only.contains(&mode)
    }

    fn pick<T>(&self, given: Option<T>, full: T, quick: T) -> T {
        given.unwrap_or(if self.quick { quick } else { full })
    }

    fn latency_plan(&self) -> LatencyPlan {
        LatencyPlan {
            rate: self.pick(self.rate, 1000.0, 200.0),
            duration: Duration::from_secs_f64(self.pick(self.seconds, 10.0, 3.0)),
            steps: self.pick(
                self.steps.clone(),
                vec![1000.0, 2000.0, 5000.0, 10_000.0, 15_000.0, 20_000.0],
                vec![500.0, 1000.0],
            ),
            step_duration: Duration::from_secs_f64(self.pick(self.step_seconds, 5.0, 2.0)),
            subscribers_per_station: self.subscribers_per_station,
            pacers: self.publisher_tasks,
        }
    }

    fn fanout_plan(&self) -> FanoutPlan {
        let subscribers = self.pick(self.fanout_subscribers, 10_000, 2_000);
        FanoutPlan {
            subscribers_per_station: (subscribers / LAYOUT.stations).max(1),
            rate: self.pick(self.fanout_rate, 1000.0, 200.0),
            duration: Duration::from_secs_f64(self.pick(self.fanout_seconds, 10.0, 3.0)),
            pacers: self.publisher_tasks,
        }
    }

    fn resume_plan(&self) -> ResumePlan {
        let subscribers = self.pick(self.resume_subscribers, 1000, 200);
        ResumePlan {
            subscribers_per_station: (subscribers / LAYOUT.stations).max(2),
            rate: self.pick(self.resume_rate, 500.0, 100.0),
            before_kill: Duration::from_secs(if self.quick { 3 } else { 4 }),
            after_kill: Duration::from_secs(if self.quick { 4 } else { 6 }),
            backoff: Duration::from_millis(self.resume_backoff_ms),
            pacers: self.publisher_tasks,
        }
    }
}

#[tokio::main]
async fn main() -> ExitCode {
    let args = Args::parse();
    match run(&args).await {
        Ok(true) => ExitCode::SUCCESS,
        Ok(false) => ExitCode::FAILURE,
        Err(err) => {
            eprintln!("realtime: {err:#}");
            ExitCode::FAILURE
        }
    }
}

/// Runs the chosen benchmarks; `Ok(false)` when one of them failed (the
/// others still ran and are reported).
async fn run(args: &Args) -> anyhow::Result<bool> {
    for (name, rate) in [
        ("--rate", args.rate),
        ("--fanout-rate", args.fanout_rate),
        ("--resume-rate", args.resume_rate),
    ] {
        anyhow::ensure!(
            rate.is_none_or(|r| r.is_finite() && r > 0.0),
            "{name} must be a positive number"
        );
    }
    let voltgate = match &args.voltgate {
        Some(path) => path.clone(),
        None => server::sibling_voltgate()?,
    };
    let services = Services {
        postgres_admin_url: args.postgres_url.clone(),
        redis_url: args.redis_url.clone(),
        mosquitto: args.mosquitto.clone(),
    };
    let profile = if cfg!(debug_assertions) {
        "debug (dev profile): the figures say nothing about production performance"
    } else {
        "release"
    };
    println!("machine: {}", procfs::machine());
    println!("build profile: {profile}");
    println!("server: {}", voltgate.display());
    println!(
        "network: {} stations × {} bays (one device each, on its own MQTT connection, QoS 1)",
        LAYOUT.stations, LAYOUT.bays_per_station
    );

    let mut tables = Vec::new();
    let mut failed = false;
    if args.runs(Mode::Latency) {
        let setups = if args.setups.is_empty() {
            vec![Setup::Defaults, Setup::Production]
        } else {
            args.setups.clone()
        };
        let plan = args.latency_plan();
        let mut runs = Vec::new();
        for setup in setups {
            section(&format!("latency on {}", setup.describe()));
            let outcome = async {
                let deployment =
                    Deployment::prepare(&voltgate, setup, LAYOUT, &services, "latency").await?;
                let outcome = latency::run(&deployment, &plan).await;
                deployment.tear_down().await;
                outcome
            }
            .await;
            match outcome {
                Ok(run) => {
                    print_problems(&run.problems);
                    if !run.counters.is_empty() {
                        println!("server counters:\n  {}", run.counters.join("\n  "));
                    }
                    runs.push(run);
                }
                Err(err) => {
                    failed = true;
                    println!("latency on {} failed: {err:#}", setup.name());
                }
            }
        }
        if !runs.is_empty() {
            tables.push((
                "MQTT state report → subscriber latency",
                latency::table(&runs),
            ));
        }
    }
    if args.runs(Mode::Fanout) {
        let plan = args.fanout_plan();
        let mut runs = Vec::new();
        for engine in [Engine::Voltgate, Engine::Stock] {
            section(&format!(
                "fan-out, {} WebSocket engine, {} subscribers at {:.0} msg/s",
                engine.setting(),
                plan.subscribers_per_station * LAYOUT.stations,
                plan.rate
            ));
            let outcome = async {
                let deployment = Deployment::prepare(
                    &voltgate,
                    args.fanout_setup,
                    LAYOUT,
                    &services,
                    &format!("fanout-{}", engine.setting()),
                )
                .await?;
                let outcome = fanout::run(&deployment, engine, &plan).await;
                deployment.tear_down().await;
                outcome
            }
            .await;
            match outcome {
                Ok(run) => {
                    print_problems(&run.problems);
                    runs.push(run);
                }
                Err(err) => {
                    failed = true;
                    println!("fan-out with {} failed: {err:#}", engine.setting());
                }
            }
        }
        if !runs.is_empty() {
            tables.push(("Fan-out", fanout::table(&runs)));
        }
    }
    if args.runs(Mode::Resume) {
        let plan = args.resume_plan();
        section(&format!(
            "resume: 2 replicas on {}, {} subscribers, {:.0} msg/s",
            Setup::Production.describe(),
            plan.subscribers_per_station * LAYOUT.stations,
            plan.rate
        ));
        let outcome = async {
            let deployment =
                Deployment::prepare(&voltgate, Setup::Production, LAYOUT, &services, "resume")
                    .await?;
            let outcome = resume::run(&deployment, &plan).await;
            deployment.tear_down().await;
            outcome
        }
        .await;
        match outcome {
            Ok(run) => {
                print_problems(&run.problems);
                tables.push(("Resume after a replica is killed", resume::table(&run)));
            }
            Err(err) => {
                failed = true;
                println!("resume failed: {err:#}");
            }
        }
    }

    println!();
    println!("# Results ({profile})");
    for (title, table) in tables {
        println!();
        println!("## {title}");
        println!();
        print!("{table}");
    }
    Ok(!failed)
}

fn section(title: &str) {
    println!();
    println!("== {title}");
}

fn print_problems(problems: &[String]) {
    for problem in problems {
        println!("problem: {problem}");
    }
}
