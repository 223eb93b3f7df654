//! Kiosks and reservations under load, in one run:
//!
//! (a) `terminalAuthenticate` latency with `--kiosks` (200) kiosks at once,
//!     each the kiosk of its own cabinet, on one kept-alive connection. By
//!     default every authentication succeeds, as at a working kiosk: each
//!     kiosk has `--bays-per-kiosk` (10) bays, each with a code reservation
//!     for now, and authenticates at each of them once in turn; the session
//!     opens and `unlock` goes to the bay's device through the MQTT broker
//!     (the embedded one, or `--mqtt-url`; no device answers within the run).
//!     With `--unreachable`, MQTT is off and each kiosk authenticates at one
//!     bay again and again for `--seconds`: the failure path (session opened,
//!     `unlock` refused, session ended in `ERROR`, the reservation usable
//!     again), answered `DEVICE_UNREACHABLE`. With `--rate N` the kiosks
//!     together offer N authentications a second on a schedule, each in turn,
//!     and latency counts from when each was due;
//! (b) `--customers` (1,000) customers racing at once for the `--slots` (10)
//!     one-hour slots of each of 10 bays: reservations per second, and a check
//!     that every slot asked for has exactly one winner.
//!
//! Starts `voltgate serve` (rate limits off) on a throw-away SQLite
//! database, or with `--database-url` on a PostgreSQL database of the run's
//! own created beside the one named (dropped at the end); seeds the network
//! with `voltgate seed --demo`. Run it with `bench/run-kiosk.sh`.

use std::process::Command;
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::Context as _;
use clap::Parser;
use sea_orm::{ConnectionTrait as _, Database};
use serde_json::json;
use voltgate_bench::{KeepAlive, Server, field, gql, percentile, superuser_token};

const PASSWORD: &str = "Bench-password-2026";

#[derive(Debug, Parser)]
#[command(name = "kiosk")]
struct Args {
    /// A PostgreSQL URL allowed to create databases (default: SQLite).
    #[arg(long)]
    database_url: Option<String>,
    /// Kiosks authenticating at once (one bay each).
    #[arg(long, default_value_t = 200)]
    kiosks: usize,
    /// Seconds of authentications at most.
    #[arg(long, default_value_t = 10)]
    seconds: u64,
    /// Bays (reservations) per kiosk: each kiosk opens a session at each once.
    #[arg(long, default_value_t = 10)]
    bays_per_kiosk: usize,
    /// MQTT off: every authentication takes the failure path at one bay.
    #[arg(long)]
    unreachable: bool,
    /// An external MQTT broker for the server (default: the embedded one).
    #[arg(long)]
    mqtt_url: Option<String>,
    /// Authentications per second the kiosks offer together, on a schedule
    /// (each kiosk in turn; latency counts from when each was due). Without
    /// it every kiosk authenticates again as soon as it is answered.
    #[arg(long)]
    rate: Option<f64>,
    /// Customers racing for the slots.
    #[arg(long, default_value_t = 1000)]
    customers: usize,
    /// One-hour slots per bay in the race.
    #[arg(long, default_value_t = 10)]
    slots: usize,
}

const RACE_BAYS: usize = 10;

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    let scratch = std::env::temp_dir().join(format!("voltgate-kiosk-bench-{}", std::process::id()));
    std::fs::create_dir_all(&scratch)?;
    let (url, cleanup) = match &args.database_url {
        Some(admin_url) => {
            let name = format!("voltgate_kiosk_{}", std::process::id());
            let admin = Database::connect(admin_url)
                .await
                .context("cannot reach PostgreSQL")?;
            admin
                .execute_unprepared(&format!("CREATE DATABASE {name}"))
                .await?;
            let (scheme, rest) = admin_url
                .split_once("://")
                .with_context(|| format!("not a PostgreSQL URL: {admin_url}"))?;
            let authority = rest.split(['/', '?']).next().unwrap_or(rest);
            (
                format!("{scheme}://{authority}/{name}"),
                Some((admin, name)),
            )
        }
        None => (
            format!("sqlite://{}?mode=rwc", scratch.join("kiosk.db").display()),
            None,
        ),
    };
    let outcome = run(&args, &url).await;
    if let Some((admin, name)) = cleanup {
        admin
            .execute_unprepared(&format!("DROP DATABASE IF EXISTS {name} WITH (FORCE)"))
            .await?;
    }
    let _ = std::fs::remove_dir_all(&scratch);
    outcome
}

/// Cabinets of the seeded network with their bays' ids, by station; the
/// first station is left to the demo's own reservations.
async fn cabinets(
    addr: std::net::SocketAddr,
    staff: &str,
) -> anyhow::Result<Vec<(String, Vec<String>)>> {
    let mut found = Vec::new();
    let mut after: Option<String> = None;
    loop {
        let body = gql(
            addr,
            Some(staff),
            "query($after: String) { stations(first: 100, after: $after) { \
             pageInfo { hasNextPage endCursor } \
             edges { node { cabinets { id bays { id } } } } } }",
            json!({ "after": after }),
        )
        .await?;
        let page = &body["data"]["stations"];
        for cabinet in page["edges"]
            .as_array()
            .with_context(|| format!("stations in {body}"))?
            .iter()
            .flat_map(|edge| edge["node"]["cabinets"].as_array().into_iter().flatten())
        {
            let bays = cabinet["bays"].as_array().into_iter().flatten();
            found.push((
                cabinet["id"].as_str().unwrap_or_default().to_owned(),
                bays.map(|bay| bay["id"].as_str().unwrap_or_default().to_owned())
                    .collect(),
            ));
        }
        if page["pageInfo"]["hasNextPage"] != true {
            break;
        }
        after = page["pageInfo"]["endCursor"].as_str().map(str::to_owned);
    }
    // The demo's own reservations are on the first station.
    if !found.is_empty() {
        found.remove(0);
    }
    Ok(found)
}

async fn run(args: &Args, url: &str) -> anyhow::Result<()> {
    let setup = if args.database_url.is_some() {
        "PostgreSQL"
    } else {
        "defaults (SQLite)"
    };
    let voltgate = std::env::current_exe()?.with_file_name("voltgate");
    // One station of one cabinet per kiosk, the demo's own first, the race's last.
    let bays_per_station = if args.unreachable {
        1
    } else {
        args.bays_per_kiosk.max(1)
    }
    .max(RACE_BAYS);
    let stations = 1 + args.kiosks + 1;
    let seeded = Command::new(&voltgate)
        .args(["seed", "--demo", "--cabinets", "1"])
        .args([
            "--stations",
            &stations.to_string(),
            "--bays",
            &bays_per_station.to_string(),
        ])
        .env("DATABASE_URL", url)
        .env(
            "VOLTGATE_DEVICE_CREDENTIALS_FILE",
            std::env::temp_dir().join(format!(
                "voltgate-kiosk-bench-{}/devices.json",
                std::process::id()
            )),
        )
        .env("RUST_LOG", "error")
        .output()?;
    anyhow::ensure!(
        seeded.status.success(),
        "seed failed: {}",
        String::from_utf8_lossy(&seeded.stderr)
    );
    let mut env = vec![
        ("DATABASE_URL", url),
        ("VOLTGATE_RATE_LIMITS", "false"),
        ("VOLTGATE_TERMINAL_FAILURES_PER_KIOSK", "100000000"),
        ("VOLTGATE_TERMINAL_FAILURES_PER_RESERVATION", "100000000"),
    ];
    let mqtt = if args.unreachable {
        "off"
    } else if let Some(mqtt_url) = &args.mqtt_url {
        env.push(("MQTT_URL", mqtt_url));
        "external broker"
    } else {
        // No MQTT_URL: the embedded broker, on a port of its own.
        env.extend([
            ("MQTT_URL", ""),
            ("VOLTGATE_EMBEDDED_MQTT_ADDR", "127.0.0.1:0"),
        ]);
        "embedded broker"
    };
    let server = Server::start("kiosk", &env).await?;
    let addr = server.addr;
    let username = format!("kioskbench{}", std::process::id());
    let staff = superuser_token(addr, url, &username).await?;
    let mut all = cabinets(addr, &staff).await?;
    anyhow::ensure!(
        all.len() > args.kiosks,
        "seeded {} cabinets, need {}",
        all.len(),
        args.kiosks + 1
    );
    let race_bays = all.pop().map(|(_, bays)| bays).unwrap_or_default();
    anyhow::ensure!(
        race_bays.len() >= RACE_BAYS,
        "the race needs {RACE_BAYS} bays"
    );

    // (a) One credential and token per cabinet; a reservation with a code for
    // now at each bay a kiosk uses.
    let per_kiosk = if args.unreachable {
        1
    } else {
        args.bays_per_kiosk.max(1)
    };
    let mut kiosks = Vec::with_capacity(args.kiosks);
    for (cabinet, bays) in all.iter().take(args.kiosks) {
        let issued = gql(
            addr,
            Some(&staff),
            "mutation($c: ID!) { issueKioskCredential(input: { cabinetId: $c }) { secret } }",
            json!({ "c": cabinet }),
        )
        .await?;
        let secret = field(&issued, &["issueKioskCredential", "secret"])?;
        let signed = gql(
            addr,
            None,
            "mutation($s: String!) { kioskSignIn(input: { credential: $s }) { accessToken } }",
            json!({ "s": secret }),
        )
        .await?;
        let token = field(&signed, &["kioskSignIn", "accessToken"])?;
        let mut codes = Vec::with_capacity(per_kiosk);
        for bay in bays.iter().take(per_kiosk) {
            let reserved = gql(
                addr,
                Some(&staff),
                "mutation($input: CreateReservationInput!) { createReservation(input: $input) { access { content } } }",
                json!({ "input": { "bayId": bay, "startsAt": chrono::Utc::now().to_rfc3339(),
                    "durationMinutes": 120, "accessMode": "CODE" } }),
            )
            .await?;
            codes.push((
                bay.clone(),
                field(&reserved, &["createReservation", "access", "content"])?,
            ));
        }
        kiosks.push((token, codes));
    }
    anyhow::ensure!(
        args.rate.is_none_or(|rate| rate.is_finite() && rate > 0.0),
        "--rate must be a positive number"
    );
    let unreachable = args.unreachable;
    let start = Instant::now();
    let deadline = start + Duration::from_secs(args.seconds);
    // With a rate, kiosk k's i-th authentication is due at
    // start + (k + i × kiosks) / rate: all of them in turn, evenly spaced.
    let period = args
        .rate
        .map(|rate| Duration::from_secs_f64(args.kiosks as f64 / rate));
    let mut tasks = Vec::new();
    for (k, (token, codes)) in kiosks.into_iter().enumerate() {
        let offset = period.map(|period| period.mul_f64(k as f64 / args.kiosks as f64));
        tasks.push(tokio::spawn(async move {
            let (mut latencies, mut unexpected) = (Vec::new(), Vec::new());
            // A kiosk stays connected all day.
            let mut connection = KeepAlive::new(addr);
            let mut round = 0_u32;
            // Unreachable: the one bay again and again; otherwise each bay once.
            while let Some((bay, code)) = if unreachable {
                codes.first()
            } else {
                codes.get(round as usize)
            } {
                if Instant::now() >= deadline {
                    break;
                }
                let sent = match (period, offset) {
                    (Some(period), Some(offset)) => {
                        let due = start + offset + period * round;
                        if due >= deadline {
                            break;
                        }
                        tokio::time::sleep_until(due.into()).await;
                        due
                    }
                    _ => Instant::now(),
                };
                round += 1;
                let answer = connection
                    .gql(
                    Some(&token),
                    "mutation($b: ID!, $c: String!) { terminalAuthenticate(input: { bay: $b, method: CODE, credential: $c }) { session { id } } }",
                    json!({ "b": bay, "c": code }),
                )
                .await;
                latencies.push(sent.elapsed());
                match answer {
                    Ok(body)
                        if unreachable
                            && body["errors"][0]["extensions"]["reason"]
                                == "DEVICE_UNREACHABLE" => {}
                    Ok(body)
                        if !unreachable
                            && body["data"]["terminalAuthenticate"]["session"]["id"]
                                .is_string() => {}
                    Ok(body) => unexpected.push(body.to_string()),
                    Err(err) => unexpected.push(err.to_string()),
                }
            }
            (latencies, unexpected)
        }));
    }
    let started = Instant::now();
    let (mut latencies, mut unexpected) = (Vec::new(), Vec::new());
    for task in tasks {
        let (l, u) = task.await?;
        latencies.extend(l);
        unexpected.extend(u);
    }
    let elapsed = started.elapsed();
    latencies.sort();
    let path = if unreachable {
        "failure (DEVICE_UNREACHABLE)"
    } else {
        "success (session opened, unlock sent)"
    };
    println!(
        "\n| setup | MQTT | path | kiosks | offered per s | authentications | per s | p50 ms | p99 ms | unexpected |"
    );
    println!("|---|---|---|---:|---:|---:|---:|---:|---:|---:|");
    println!(
        "| {setup} | {mqtt} | {path} | {} | {} | {} | {:.0} | {:.2} | {:.2} | {} |",
        args.kiosks,
        args.rate
            .map_or_else(|| "max".to_owned(), |rate| format!("{rate:.0}")),
        latencies.len(),
        latencies.len() as f64 / elapsed.as_secs_f64(),
        percentile(&latencies, 0.50),
        percentile(&latencies, 0.99),
        unexpected.len()
    );
    if let Some(first) = unexpected.first() {
        println!("first unexpected answer: {first}");
    }

    // (b) Customers, then the race: customer n asks for slot n of the
    // RACE_BAYS × slots, round robin, all at once.
    let mut customers = Vec::with_capacity(args.customers);
    for n in 0..args.customers {
        let name = format!("racer{n}x{}", std::process::id());
        let registered = gql(
            addr,
            None,
            "mutation($input: RegisterInput!) { register(input: $input) { accessToken } }",
            json!({ "input": { "username": name, "email": format!("{name}@example.com"),
                "password": PASSWORD, "acceptTerms": true, "acceptPrivacyPolicy": true } }),
        )
        .await?;
        customers.push(field(&registered, &["register", "accessToken"])?);
    }
    let tomorrow = (chrono::Utc::now() + chrono::TimeDelta::days(1))
        .date_naive()
        .and_hms_opt(6, 0, 0)
        .context("a time")?
        .and_utc();
    let race_bays: Arc<Vec<String>> = Arc::new(race_bays[..RACE_BAYS].to_vec());
    let slots = RACE_BAYS * args.slots.max(1);
    let gate = Arc::new(tokio::sync::Barrier::new(customers.len()));
    let mut tasks = Vec::new();
    for (n, token) in customers.into_iter().enumerate() {
        let (gate, race_bays) = (Arc::clone(&gate), Arc::clone(&race_bays));
        let slot = n % slots;
        let (bay, hour) = (slot % RACE_BAYS, slot / RACE_BAYS);
        tasks.push(tokio::spawn(async move {
            let starts = tomorrow + chrono::TimeDelta::hours(i64::try_from(hour).unwrap_or(0));
            gate.wait().await;
            let answer = gql(
                addr,
                Some(&token),
                "mutation($input: CreateReservationInput!) { createReservation(input: $input) { reservation { id } } }",
                json!({ "input": { "bayId": race_bays[bay], "startsAt": starts.to_rfc3339(),
                    "durationMinutes": 60, "accessMode": "CODE" } }),
            )
            .await;
            let won = answer
                .as_ref()
                .is_ok_and(|body| body["data"]["createReservation"]["reservation"]["id"].is_string());
            let refused = answer.as_ref().is_ok_and(|body| {
                let reason = &body["errors"][0]["extensions"]["reason"];
                reason == "SLOT_TAKEN" || reason == "BAY_UNAVAILABLE"
            });
            (slot, won, refused, answer.map(|b| b.to_string()).unwrap_or_else(|e| e.to_string()))
        }));
    }
    let started = Instant::now();
    let mut winners = vec![0_usize; slots];
    let mut odd = Vec::new();
    for task in tasks {
        let (slot, won, refused, text) = task.await?;
        if won {
            winners[slot] += 1;
        } else if !refused {
            odd.push(text);
        }
    }
    let elapsed = started.elapsed();
    let asked = winners.len().min(args.customers);
    let won: usize = winners.iter().sum();
    println!(
        "\n| setup | customers | slots | reservations | reservations per s | requests per s | other answers |"
    );
    println!("|---|---:|---:|---:|---:|---:|---:|");
    println!(
        "| {setup} | {} | {asked} | {won} | {:.0} | {:.0} | {} |",
        args.customers,
        won as f64 / elapsed.as_secs_f64(),
        args.customers as f64 / elapsed.as_secs_f64(),
        odd.len()
    );
    if let Some(first) = odd.first() {
        println!("first other answer: {first}");
    }
    drop(server);
    anyhow::ensure!(
        winners.iter().take(asked).all(|w| *w == 1),
        "every slot asked for should have exactly one winner: {winners:?}"
    );
    Ok(())
}
