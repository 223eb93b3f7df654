//! `supervision`: supervision's two figures in one run, on the defaults
//! (SQLite, in-process bus, embedded broker) and on PostgreSQL + Redis +
//! Mosquitto.
//!
//! 1. **Telemetry ingestion**: every bay's device sends a burst of telemetry
//!    samples as fast as its MQTT client takes them; the rate is samples
//!    *stored* per second (counted in the database) from the first sample
//!    sent until the last one is stored. Beside it, the **broker's raw
//!    rate**: the same burst through the same Mosquitto to one plain MQTT
//!    reader, with no voltgate running. The embedded broker admits nobody but
//!    devices and the server, so it has no raw figure of its own; the defaults
//!    are set against Mosquitto's.
//! 2. **Alert latency**: a technician of station 1 follows
//!    `alertChanged(stationIds: [station 1])` over WebSocket while station 1's
//!    bays alternately send an over-current sample (raising `OVER_CURRENT`)
//!    and a normal one (resolving it), and every other bay sends normal
//!    samples in the background. Latency is from the moment the harness hands
//!    the triggering sample to its MQTT client until the event reaches the
//!    technician. Events about other stations must not arrive at all.
//!
//! Run it with `bench/run-supervision.sh` (release build).

use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;
use std::time::{Duration, Instant};

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use chrono::{TimeDelta, Utc};
use clap::Parser;

use voltgate_bench::listeners::station_global_id;
use voltgate_bench::procfs::{self, CpuSnapshot};
use voltgate_bench::realtime::setup::{Deployment, Services, Setup};
use voltgate_bench::report::{Latencies, micros_text, ms, percent};
use voltgate_bench::server::{self, Layout};
use voltgate_bench::supervision::{
    self as parts, AlertFollower, Burst, Fleet, NORMAL_A, OVER_A, RawReader,
};
use voltgate_bench::{field, gql};

/// Runs the supervision benchmarks against fresh `voltgate serve` processes.
#[derive(Debug, Parser)]
#[command(name = "supervision", version)]
struct Args {
    /// Small bursts and few triggers: checks the harness end to end.
    #[arg(long)]
    quick: bool,
    /// Setups, comma-separated (default: both, production first so the
    /// defaults can be set against Mosquitto's raw rate).
    #[arg(long, value_enum, value_delimiter = ',')]
    setups: Vec<Setup>,
    /// Stations of one cabinet each.
    #[arg(long, default_value_t = 20)]
    stations: u32,
    /// Bays (and devices) per station.
    #[arg(long, default_value_t = 10)]
    bays_per_station: u32,
    /// Samples each device sends in the ingestion burst [250; quick: 20].
    #[arg(long)]
    samples_per_device: Option<u32>,
    /// What the ingestion burst (and the broker's raw rate) sends: telemetry
    /// samples, or temperature readings of the bays' sensors.
    #[arg(long, value_enum, default_value_t = Burst::Telemetry)]
    burst: Burst,
    /// Alert triggers (over-current and back, alternately) [400; quick: 40].
    #[arg(long)]
    triggers: Option<u32>,
    /// Alert triggers per second.
    #[arg(long, default_value_t = 20.0)]
    trigger_rate: f64,
    /// Background telemetry samples per second from the other stations
    /// during the alert phase.
    #[arg(long, default_value_t = 1000.0)]
    background_rate: f64,
    /// Ingestion workers of the server (`VOLTGATE_MQTT_WORKERS`; default: the server's).
    #[arg(long)]
    mqtt_workers: Option<usize>,
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
    fn layout(&self) -> Layout {
        Layout {
            stations: self.stations,
            bays_per_station: self.bays_per_station,
        }
    }

    fn samples_per_device(&self) -> u32 {
        self.samples_per_device
            .unwrap_or(if self.quick { 20 } else { 250 })
    }

    fn triggers(&self) -> u32 {
        // Even, so every bay ends with its alert resolved.
        self.triggers.unwrap_or(if self.quick { 40 } else { 400 }) / 2 * 2
    }
}

/// Messages over seconds.
#[derive(Debug, Clone, Copy)]
struct Rate {
    messages: u64,
    expected: u64,
    secs: f64,
}

impl Rate {
    fn per_second(self) -> f64 {
        self.messages as f64 / self.secs.max(1e-9)
    }

    fn text(self) -> String {
        let complete = if self.messages == self.expected {
            String::new()
        } else {
            format!(" (only {} of {})", self.messages, self.expected)
        };
        format!("{:.0}/s{complete}", self.per_second())
    }
}

struct Outcome {
    setup: Setup,
    raw: Option<Rate>,
    ingest: Rate,
    handed_over_secs: f64,
    server_cpu: Option<f64>,
    cpu_us_per_sample: Option<f64>,
    harness_cpu: Option<f64>,
    /// Every other process: the database, Redis, Mosquitto.
    other_cpu: Option<f64>,
    alerts: Latencies,
    triggers: u32,
    missing: usize,
    foreign: u64,
    problems: Vec<String>,
}

#[tokio::main]
async fn main() -> ExitCode {
    let args = Args::parse();
    match run(&args).await {
        Ok(true) => ExitCode::SUCCESS,
        Ok(false) => ExitCode::FAILURE,
        Err(err) => {
            eprintln!("supervision: {err:#}");
            ExitCode::FAILURE
        }
    }
}

async fn run(args: &Args) -> anyhow::Result<bool> {
    anyhow::ensure!(
        args.trigger_rate > 0.0 && args.background_rate > 0.0,
        "rates must be positive"
    );
    anyhow::ensure!(
        args.stations >= 2 && args.bays_per_station >= 1,
        "at least 2 stations"
    );
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
    println!(
        "network: {} stations × {} bays (one device each, on its own MQTT connection, QoS 1)",
        args.stations, args.bays_per_station
    );
    let setups = if args.setups.is_empty() {
        vec![Setup::Production, Setup::Defaults]
    } else {
        args.setups.clone()
    };
    let mut outcomes = Vec::new();
    let mut failed = false;
    for setup in setups {
        println!();
        println!("== {}", setup.describe());
        let outcome = async {
            let deployment =
                Deployment::prepare(&voltgate, setup, args.layout(), &services, "supervision")
                    .await?;
            let outcome = run_setup(args, &deployment).await;
            deployment.tear_down().await;
            outcome
        }
        .await;
        match outcome {
            Ok(outcome) => {
                for problem in &outcome.problems {
                    println!("problem: {problem}");
                }
                outcomes.push(outcome);
            }
            Err(err) => {
                failed = true;
                println!("{} failed: {err:#}", setup.name());
            }
        }
    }
    println!();
    println!("# Results ({profile})");
    println!();
    print!("{}", table(&outcomes, args));
    Ok(!failed)
}

/// An instant of the device clock for phase `phase`: phases are 10 minutes
/// apart, so no two samples of a device share a `ts`.
fn phase_start(phase: i64) -> chrono::DateTime<Utc> {
    Utc::now() - TimeDelta::minutes(50) + TimeDelta::minutes(10 * phase)
}

fn bay_global_id(bay: usize) -> String {
    URL_SAFE_NO_PAD.encode(format!("Bay:{bay}"))
}

async fn run_setup(args: &Args, deployment: &Deployment) -> anyhow::Result<Outcome> {
    let layout = args.layout();
    let root = &deployment.options.topic_root;
    let per_device = args.samples_per_device();
    let mut problems = Vec::new();
    let db = parts::connect(&deployment.database_url()).await?;

    let raw = match (deployment.broker(), &deployment.raw_login) {
        (Some(broker), Some(login)) => {
            let fleet = Fleet::connect(broker, &deployment.credentials(), root, layout).await?;
            let reader = RawReader::subscribe(broker, login, root, args.burst).await?;
            let expected = fleet.len() as u64 * u64::from(per_device);
            reader.expect(expected);
            let blasted = fleet
                .blast(args.burst, 0..fleet.len(), per_device, phase_start(0))
                .await?;
            let (received, at) = reader.wait(Duration::from_secs(60)).await;
            reader.stop();
            fleet.close().await;
            let rate = Rate {
                messages: received,
                expected,
                secs: at.duration_since(blasted.started).as_secs_f64(),
            };
            println!("broker raw: {}", rate.text());
            Some(rate)
        }
        _ => None,
    };

    let env: Vec<(&str, String)> = args
        .mqtt_workers
        .map(|workers| ("VOLTGATE_MQTT_WORKERS", workers.to_string()))
        .into_iter()
        .collect();
    let server = deployment.start("server", &env).await?;
    for who in ["bench-driver", "bench-tech"] {
        register(server.http, who).await?;
    }
    parts::open_sessions(&db, "bench-driver").await?;
    parts::make_technician(&db, "bench-tech", &[1]).await?;
    let login = gql(
        server.http,
        None,
        "mutation($l: String!, $p: String!) { login(input: { login: $l, password: $p }) { accessToken } }",
        serde_json::json!({ "l": "bench-tech", "p": PASSWORD }),
    )
    .await?;
    let token = field(&login, &["login", "accessToken"])?;

    let fleet =
        Arc::new(Fleet::connect(server.mqtt, &deployment.credentials(), root, layout).await?);
    // Warm-up: connections, caches and prepared statements. The demo network
    // holds samples of its own, so counts start from what is stored already.
    let seeded = parts::stored(&db, args.burst).await?;
    let warm = fleet
        .blast(args.burst, 0..fleet.len(), 5, phase_start(1))
        .await?;
    let (warmed, _) =
        parts::wait_stored(&db, args.burst, seeded + warm.sent, Duration::from_secs(30)).await?;
    if warmed < seeded + warm.sent {
        problems.push(format!(
            "warm-up: only {} of {} stored",
            warmed.saturating_sub(seeded),
            warm.sent
        ));
    }

    let work_before = DbWork::take(&db).await;
    let before = CpuSnapshot::take(server.pid());
    let expected = fleet.len() as u64 * u64::from(per_device);
    let blasted = fleet
        .blast(args.burst, 0..fleet.len(), per_device, phase_start(2))
        .await?;
    let (stored, at) =
        parts::wait_stored(&db, args.burst, warmed + expected, Duration::from_secs(120)).await?;
    let cpu = CpuSnapshot::take(server.pid()).since(&before);
    let ingest = Rate {
        messages: stored.saturating_sub(warmed),
        expected,
        secs: at.duration_since(blasted.started).as_secs_f64(),
    };
    println!("ingestion: {} stored", ingest.text());
    if let (Some(before), Some(after)) = (work_before, DbWork::take(&db).await) {
        println!("{}", after.since(&before, ingest.messages));
    }

    // Alerts: station 1's bays trigger, the others' keep sending.
    let station_bays = layout.bays_per_station as usize;
    let follower =
        AlertFollower::subscribe(server.http, &token, vec![station_global_id(1)]).await?;
    let stop = Arc::new(std::sync::atomic::AtomicBool::new(false));
    let background = {
        let (fleet, stop) = (Arc::clone(&fleet), Arc::clone(&stop));
        let interval = Duration::from_secs_f64(1.0 / args.background_rate);
        let first = phase_start(3);
        tokio::spawn(async move {
            let started = tokio::time::Instant::now();
            let others = fleet.len() - station_bays;
            let mut k = 0_u64;
            while !stop.load(std::sync::atomic::Ordering::Relaxed) {
                tokio::time::sleep_until(started + interval * u32::try_from(k).unwrap_or(u32::MAX))
                    .await;
                let index = station_bays + (k as usize % others);
                let round = i64::try_from(k / others as u64).unwrap_or(i64::MAX);
                fleet
                    .send(index, first + TimeDelta::milliseconds(round), NORMAL_A)
                    .await?;
                k += 1;
            }
            anyhow::Ok(k)
        })
    };
    let triggers = args.triggers();
    let interval = Duration::from_secs_f64(1.0 / args.trigger_rate);
    let started = tokio::time::Instant::now();
    for j in 0..triggers {
        tokio::time::sleep_until(started + interval * j).await;
        let index = j as usize % station_bays;
        // Each bay alternates: over the limit (raised), then within (resolved).
        let over = (j as usize / station_bays).is_multiple_of(2);
        follower.triggered(bay_global_id(index + 1));
        fleet
            .send(index, Utc::now(), if over { OVER_A } else { NORMAL_A })
            .await?;
    }
    let deadline = Instant::now() + Duration::from_secs(10);
    while follower.missing() > 0 && Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    // A little longer, for events about other stations that must not come.
    tokio::time::sleep(Duration::from_millis(200)).await;
    stop.store(true, std::sync::atomic::Ordering::Relaxed);
    match background.await {
        Ok(Ok(_)) => {}
        Ok(Err(err)) => problems.push(format!("background load: {err:#}")),
        Err(err) => problems.push(format!("background load: {err}")),
    }
    let missing = follower.missing();
    let followed = follower.finish();
    if followed.unmatched > 0 {
        problems.push(format!(
            "{} alert events matched no trigger",
            followed.unmatched
        ));
    }
    if !followed.errors.is_empty() {
        problems.push(format!("subscription errors: {:?}", followed.errors));
    }
    if let Some(trouble) = fleet.trouble() {
        problems.push(format!("device connections: {trouble}"));
    }
    if let Some(warnings) = deployment.broker_warnings() {
        problems.push(format!("mosquitto: {warnings}"));
    }
    match server.loss_counters().await {
        Ok(counters) => println!("server counters:\n  {}", counters.join("\n  ")),
        Err(err) => problems.push(format!("server counters: {err:#}")),
    }
    if let Ok(fleet) = Arc::try_unwrap(fleet) {
        fleet.close().await;
    }
    server.stop().await;
    Ok(Outcome {
        setup: deployment.setup,
        raw,
        ingest,
        handed_over_secs: blasted.handed_over.as_secs_f64(),
        server_cpu: cpu.server,
        cpu_us_per_sample: cpu
            .server_secs
            .map(|secs| secs * 1e6 / ingest.messages.max(1) as f64),
        harness_cpu: cpu.harness,
        other_cpu: cpu.other,
        alerts: Latencies::new(followed.latencies_us),
        triggers,
        missing,
        foreign: followed.foreign,
        problems,
    })
}

const PASSWORD: &str = "Bench-password-2026";

async fn register(http: std::net::SocketAddr, username: &str) -> anyhow::Result<()> {
    let answer = gql(
        http,
        None,
        "mutation($u: String!, $e: String!, $p: String!) { register(input: { username: $u, email: $e, password: $p, acceptTerms: true, acceptPrivacyPolicy: true }) { accessToken } }",
        serde_json::json!({ "u": username, "e": format!("{username}@example.com"), "p": PASSWORD }),
    )
    .await?;
    field(&answer, &["register", "accessToken"]).map(|_| ())
}

fn table(outcomes: &[Outcome], args: &Args) -> String {
    let mosquitto_raw = outcomes.iter().find_map(|o| o.raw);
    let mut out = String::from(
        "| setup | broker raw | ingestion (stored) | of raw | samples handed over in | server CPU | CPU/sample | harness CPU | other CPU | alert p50 | alert p90 | alert p99 | alert max | alerts | other stations' alerts seen |\n|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|\n",
    );
    for o in outcomes {
        let reference = o.raw.or(mosquitto_raw);
        let share = reference.map(|raw| o.ingest.per_second() / raw.per_second() * 100.0);
        let raw = match (o.raw, mosquitto_raw) {
            (Some(raw), _) => raw.text(),
            (None, Some(raw)) => format!("– (Mosquitto's: {})", raw.text()),
            (None, None) => "–".to_owned(),
        };
        out.push_str(&format!(
            "| {} | {} | {} | {} | {:.2} s | {} | {} | {} | {} | {} | {} | {} | {} | {}/{} | {} |\n",
            o.setup.describe(),
            raw,
            o.ingest.text(),
            percent(share),
            o.handed_over_secs,
            percent(o.server_cpu),
            micros_text(o.cpu_us_per_sample),
            percent(o.harness_cpu),
            percent(o.other_cpu),
            ms(o.alerts.percentile_ms(50.0)),
            ms(o.alerts.percentile_ms(90.0)),
            ms(o.alerts.percentile_ms(99.0)),
            ms(o.alerts.max_ms()),
            o.triggers as usize - o.missing,
            o.triggers,
            o.foreign,
        ));
    }
    out.push_str(&format!(
        "\n{} devices; ingestion: {} {} each, sent as fast as the clients take them; alerts: {} triggers at {}/s with {} background samples/s.\n",
        args.stations * args.bays_per_station,
        args.samples_per_device(),
        match args.burst {
            Burst::Telemetry => "telemetry samples",
            Burst::Readings => "temperature readings",
        },
        args.triggers(),
        args.trigger_rate,
        args.background_rate,
    ));
    out
}

/// PostgreSQL's own counts of the work done on the run's database
/// (`pg_stat_database`, `pg_stat_user_tables`); `None` on SQLite. The
/// harness's own polling of the stored count is in them too (one scan and
/// one transaction per poll, every 20 ms).
#[derive(Debug, Clone, Copy)]
struct DbWork {
    commits: i64,
    /// Sequential and index scans of every table: each lookup, update and
    /// conflict check starts at least one.
    scans: i64,
    /// Rows inserted and updated.
    rows: i64,
}

impl DbWork {
    async fn take(db: &sea_orm::DatabaseConnection) -> Option<Self> {
        use sea_orm::{ConnectionTrait as _, DbBackend, Statement};
        if db.get_database_backend() != DbBackend::Postgres {
            return None;
        }
        // Backends report their counts at most once a second.
        tokio::time::sleep(Duration::from_millis(1100)).await;
        let _ = db
            .execute_unprepared("SELECT pg_stat_clear_snapshot()")
            .await;
        let row = db
            .query_one_raw(Statement::from_string(
                DbBackend::Postgres,
                "SELECT (SELECT xact_commit FROM pg_stat_database WHERE datname = current_database())::bigint, \
                 (SELECT COALESCE(SUM(seq_scan + COALESCE(idx_scan, 0)), 0) FROM pg_stat_user_tables)::bigint, \
                 (SELECT COALESCE(SUM(n_tup_ins + n_tup_upd), 0) FROM pg_stat_user_tables)::bigint",
            ))
            .await
            .ok()??;
        Some(Self {
            commits: row.try_get_by_index(0).ok()?,
            scans: row.try_get_by_index(1).ok()?,
            rows: row.try_get_by_index(2).ok()?,
        })
    }

    fn since(&self, before: &Self, samples: u64) -> String {
        let (commits, scans, rows) = (
            self.commits - before.commits,
            self.scans - before.scans,
            self.rows - before.rows,
        );
        let per = |n: i64, d: f64| if d > 0.0 { n as f64 / d } else { 0.0 };
        format!(
            "database: {commits} transactions, {scans} table scans, {rows} rows written \
             ({:.2} scans per transaction, {:.3} per sample; {:.1} samples per transaction)",
            per(scans, commits as f64),
            per(scans, samples as f64),
            per(samples as i64, commits as f64),
        )
    }
}
