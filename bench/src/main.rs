//! `bay-latency`: how long a bay state change takes from a device's MQTT message
//! to the GraphQL subscribers watching that bay's station.
//!
//! One run seeds a throw-away database, starts `voltgate serve` as a child
//! process with its embedded broker, opens the WebSocket subscribers and a raw
//! MQTT subscriber, then publishes state reports at fixed rates: a warm-up, the
//! main phase, and a step search for the highest sustained rate. The raw MQTT
//! subscriber gets the same messages from the same broker, so comparing the two
//! separates the broker's share of the latency from the server's (with
//! `--mqtt-url` only: the embedded broker admits devices, each on its own bay's
//! topics, and the server, so nobody else can read every state); the earliest
//! of each message's WebSocket deliveries separates the path up to the server's
//! event bus from the fan-out. See `docs/performance.md` for how to read the output.

use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;
use std::time::{Duration, Instant};

use clap::Parser;

use voltgate_bench::latency::{Bench, Subscribers, phase};
use voltgate_bench::listeners::{self, Health, Samples};
use voltgate_bench::procfs;
use voltgate_bench::publisher::{DEFAULT_PACERS, Order, Publisher};
use voltgate_bench::report::Ledger;
use voltgate_bench::server::{self, Layout, Server, ServerOptions, TempDir};

/// Rates tried by the step search, in messages per second.
const SEARCH_RATES: [f64; 5] = [1000.0, 1500.0, 2000.0, 3000.0, 4000.0];
const SEARCH_STEP: Duration = Duration::from_secs(5);
const WARM_UP_RATE: f64 = 200.0;
const WARM_UP: Duration = Duration::from_secs(2);

/// Latency target of the main phase's WebSocket p99, in ms.
const TARGET_P99_MS: f64 = 10.0;

/// Measures MQTT → GraphQL subscription latency against a fresh `voltgate serve`.
#[derive(Debug, Parser)]
#[command(name = "bay-latency", version)]
struct Args {
    /// State messages per second in the main phase.
    #[arg(long, default_value_t = 1000.0)]
    rate: f64,
    /// Length of the main phase, in seconds.
    #[arg(long, default_value_t = 10.0)]
    seconds: f64,
    /// Stations to seed (one cabinet each).
    #[arg(long, default_value_t = 100)]
    stations: u32,
    /// Bays (and devices) per station.
    #[arg(long, default_value_t = 10)]
    bays_per_station: u32,
    /// WebSocket subscribers per station, each on `bayStatusChanged(stationId)`.
    #[arg(long, default_value_t = 10)]
    subscribers_per_station: u32,
    /// Order of the round-robin over the bays.
    #[arg(long, value_enum, default_value = "interleaved")]
    order: Order,
    /// Skip the search for the highest sustained rate.
    #[arg(long)]
    skip_search: bool,
    /// The voltgate binary to run (default: the one next to this executable).
    #[arg(long)]
    voltgate: Option<PathBuf>,
    /// Server ingestion workers (`VOLTGATE_MQTT_WORKERS`; default: the server's own).
    #[arg(long)]
    mqtt_workers: Option<usize>,
    /// Use this external broker (`mqtt://host:port`) instead of the embedded one;
    /// topics go under a per-run root so a shared broker is not disturbed.
    #[arg(long)]
    mqtt_url: Option<String>,
}

#[tokio::main]
async fn main() -> ExitCode {
    let args = Args::parse();
    match run(&args).await {
        Ok(()) => ExitCode::SUCCESS,
        Err(err) => {
            eprintln!("bay-latency: {err:#}");
            ExitCode::FAILURE
        }
    }
}

async fn run(args: &Args) -> anyhow::Result<()> {
    anyhow::ensure!(
        args.rate.is_finite() && args.rate > 0.0,
        "--rate must be a positive number"
    );
    anyhow::ensure!(
        args.seconds.is_finite() && args.seconds > 0.0,
        "--seconds must be a positive number"
    );
    anyhow::ensure!(
        args.stations > 0 && args.bays_per_station > 0 && args.subscribers_per_station > 0,
        "--stations, --bays-per-station and --subscribers-per-station must be at least 1"
    );
    let voltgate = match &args.voltgate {
        Some(path) => path.clone(),
        None => server::sibling_voltgate()?,
    };
    let profile = if cfg!(debug_assertions) {
        "debug (dev profile)"
    } else {
        "release"
    };
    println!("machine: {}", procfs::machine());
    println!("build profile: {profile}");
    println!("server: {}", voltgate.display());

    let external_broker = args
        .mqtt_url
        .as_deref()
        .map(server::broker_addr)
        .transpose()?;
    let options = ServerOptions {
        topic_root: match external_broker {
            Some(_) => format!("voltgate-bench-{}", std::process::id()),
            None => "voltgate".to_owned(),
        },
        external_broker,
        mqtt_workers: args.mqtt_workers,
        ..ServerOptions::defaults(Layout {
            stations: args.stations,
            bays_per_station: args.bays_per_station,
        })
    };
    let broker = match external_broker {
        Some(addr) => format!("external broker at {addr}"),
        None => "embedded broker".to_owned(),
    };
    let workers = options
        .mqtt_workers
        .map_or_else(|| "server default".to_owned(), |n| n.to_string());
    println!("setup: {broker}, ingestion workers: {workers}, SQLite, in-process bus");
    println!(
        "load: {} stations × {} bays, {} WebSocket subscribers per station, bays visited {:?}",
        args.stations, args.bays_per_station, args.subscribers_per_station, args.order
    );

    let dir = TempDir::new("voltgate-bench")?;
    let mut server = Server::start(&voltgate, dir.path(), &options).await?;
    println!(
        "server ready: http://{} (devices' MQTT on {})",
        server.http, server.mqtt
    );
    let outcome = measure(args, &options, &mut server).await;
    server.stop().await;
    outcome
}

async fn measure(args: &Args, options: &ServerOptions, server: &mut Server) -> anyhow::Result<()> {
    let health = Arc::new(Health::default());
    let opening = Instant::now();
    let subscribers = Subscribers::open(
        server.http,
        args.stations,
        args.subscribers_per_station,
        &health,
    )
    .await?;
    println!(
        "{} WebSocket subscribers ready in {:.1} s",
        subscribers.len(),
        opening.elapsed().as_secs_f64()
    );

    let raw_samples = Samples::default();
    let raw = if options.external_broker.is_some() {
        Some(
            listeners::subscribe_raw(
                server.mqtt,
                None,
                &options.topic_root,
                raw_samples.clone(),
                Arc::clone(&health),
            )
            .await?,
        )
    } else {
        println!(
            "no raw MQTT subscriber: the embedded broker lets only devices and the server in (use --mqtt-url)"
        );
        None
    };
    let publisher = Publisher::connect(
        server.mqtt,
        &server.credentials,
        &options.topic_root,
        options.layout,
        args.order,
        DEFAULT_PACERS,
    )
    .await?;
    let mut bench = Bench {
        server,
        publisher,
        ledger: Ledger::new(subscribers.samples.clone(), raw_samples),
        subscribers_per_station: u64::from(args.subscribers_per_station),
    };

    phase(&mut bench, "warm-up", WARM_UP_RATE, WARM_UP, false).await?;
    phase(
        &mut bench,
        "main",
        args.rate,
        Duration::from_secs_f64(args.seconds),
        true,
    )
    .await?;
    if !args.skip_search {
        for rate in SEARCH_RATES {
            let step = phase(
                &mut bench,
                &format!("step {rate:.0}"),
                rate,
                SEARCH_STEP,
                true,
            )
            .await?;
            if !step.sustained() {
                break;
            }
        }
    }

    report(args, &bench, &health).await;

    bench.publisher.close().await;
    if let Some(raw) = raw {
        raw.abort();
    }
    subscribers.close().await;
    Ok(())
}

/// Prints the results table, the verdicts and anything that went wrong.
async fn report(args: &Args, bench: &Bench<'_>, health: &Health) {
    let subscribers = u64::from(args.stations) * u64::from(args.subscribers_per_station);
    let main_p99 = bench
        .ledger
        .phases
        .iter()
        .find(|p| p.label == "main")
        .and_then(|p| p.ws.percentile_ms(99.0));
    println!();
    println!("{}", bench.ledger.table());
    let verdict = match main_p99 {
        Some(p99) if p99 < TARGET_P99_MS => format!("met ({p99:.2} ms)"),
        Some(p99) => format!("MISSED ({p99:.2} ms)"),
        None => "MISSED (no deliveries)".to_owned(),
    };
    println!(
        "main phase: WS p99 < {TARGET_P99_MS} ms with {subscribers} subscribers at {} msg/s: {verdict}",
        args.rate
    );
    let best = bench
        .ledger
        .phases
        .iter()
        .rfind(|p| p.label.starts_with("step") && p.sustained());
    if !args.skip_search {
        match best {
            Some(p) => println!("highest sustained rate tried: {:.0} msg/s", p.target_rate),
            None => println!("highest sustained rate tried: none of the steps was sustained"),
        }
    }
    match bench.server.loss_counters().await {
        Ok(lines) => {
            println!("server counters:");
            for line in lines {
                println!("  {line}");
            }
        }
        Err(err) => println!("server counters unavailable: {err:#}"),
    }
    let mut troubled = false;
    if let Some(problems) = health.summary() {
        println!("listener problems: {problems}");
        troubled = true;
    }
    if let Some(trouble) = bench.publisher.trouble() {
        println!("publisher connection errors: {trouble}");
        troubled = true;
    }
    if troubled {
        println!("{}", bench.server.log_excerpt());
    }
}
