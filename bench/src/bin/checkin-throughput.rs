//! Check-in throughput: 50 concurrent door scanners admitting 10,000 tickets.
//!
//! Starts `voltgate serve` (MQTT off, rate limits off) on the defaults (a
//! throw-away SQLite database) or on the database `--database-url` names
//! (PostgreSQL), creates a staff account with `voltgate admin
//! create-superuser`, then through the API alone: an organizer, a live event,
//! one admission product, 10,000 paid tickets (100 orders of 100), a check-in
//! list and 50 scanner devices, each signed in with its own credential. The 50
//! scanners then scan every ticket once (`redeemTicket`, an entry with a
//! nonce, each scanner on its own kept-alive connection, or a new connection
//! per request with `--fresh-connections`), as fast as the server answers. It
//! prints scans per second and latency percentiles, and checks that every
//! ticket was admitted exactly once.
//!
//! Run it with `bench/run-checkin.sh` (release build, both setups) or directly
//! with `cargo run --release -p voltgate-bench --bin checkin-throughput --
//! [--database-url postgres://…] [--scanners 50] [--tickets 10000]
//! [--fresh-connections] [--rate <scans per second offered>]`. Without
//! `--rate` each scanner scans as fast as it is answered (throughput); with
//! it, the scanners together offer that many scans a second on a schedule
//! (latency at a given load, counted from when each scan was due).

use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use anyhow::Context as _;
use clap::Parser;
use serde_json::json;
use voltgate_bench::{KeepAlive, Server, field, gql, percentile, superuser_token};

const PER_ORDER: usize = 100;

/// Check-in throughput: scanners admitting every ticket of an event once.
#[derive(Parser)]
struct Args {
    /// The PostgreSQL database to run on; a throw-away SQLite database otherwise.
    #[arg(long)]
    database_url: Option<String>,
    #[arg(long, default_value_t = 50)]
    scanners: usize,
    #[arg(long, default_value_t = 10_000)]
    tickets: usize,
    /// A new HTTP connection per scan instead of one kept open per scanner.
    #[arg(long)]
    fresh_connections: bool,
    /// Scans per second offered by all scanners together (each at its share,
    /// on a schedule); without it, every scanner as fast as answered.
    #[arg(long)]
    rate: Option<f64>,
}

struct Door {
    list: String,
    scanners: Vec<String>,
    secrets: Vec<String>,
}

/// Everything a door needs, made through the API as an organizer would.
async fn set_up(addr: SocketAddr, database_url: &str, args: &Args) -> anyhow::Result<Door> {
    let run = std::process::id();
    let username = format!("scanbench{run}");
    let staff = superuser_token(addr, database_url, &username).await?;
    let staff = Some(staff.as_str());
    let organizer = gql(
        addr,
        staff,
        "mutation($input: CreateOrganizerInput!) { createOrganizer(input: $input) { organizer { id } } }",
        json!({ "input": { "name": "Scan bench", "slug": format!("scan-bench-{run}") } }),
    )
    .await?;
    let organizer = field(&organizer, &["createOrganizer", "organizer", "id"])?;
    let event = gql(
        addr,
        staff,
        "mutation($input: CreateEventInput!) { createEvent(input: $input) { event { id } } }",
        json!({ "input": { "organizerId": organizer, "name": "Stadium", "slug": "stadium",
            "currency": "EUR", "dateFrom": "2027-06-01T18:00:00Z", "live": true } }),
    )
    .await?;
    let event = field(&event, &["createEvent", "event", "id"])?;
    let product = gql(
        addr,
        staff,
        "mutation($input: CreateProductInput!) { createProduct(input: $input) { product { id } } }",
        json!({ "input": { "eventId": event, "name": "Seat", "kind": "ADMISSION", "price": "10",
            "totalQuantity": args.tickets } }),
    )
    .await?;
    let product = field(&product, &["createProduct", "product", "id"])?;

    let mut secrets = Vec::with_capacity(args.tickets);
    while secrets.len() < args.tickets {
        let quantity = PER_ORDER.min(args.tickets - secrets.len());
        let added = gql(
            addr,
            None,
            "mutation($input: AddToCartInput!) { addToCart(input: $input) { cart { id } } }",
            json!({ "input": { "productId": product, "quantity": quantity } }),
        )
        .await?;
        let cart = field(&added, &["addToCart", "cart", "id"])?;
        let placed = gql(
            addr,
            None,
            "mutation($input: CheckoutInput!) { checkout(input: $input) { order { id positions { secret } } } }",
            json!({ "input": { "cartId": cart, "email": "fan@example.com" } }),
        )
        .await?;
        let order = field(&placed, &["checkout", "order", "id"])?;
        let paid = gql(
            addr,
            staff,
            "mutation($id: ID!) { markOrderPaid(input: { orderId: $id }) { order { status } } }",
            json!({ "id": order }),
        )
        .await?;
        anyhow::ensure!(
            field(&paid, &["markOrderPaid", "order", "status"])? == "PAID",
            "{paid}"
        );
        let positions = placed["data"]["checkout"]["order"]["positions"]
            .as_array()
            .with_context(|| format!("positions in {placed}"))?;
        secrets.extend(
            positions
                .iter()
                .filter_map(|p| p["secret"].as_str().map(str::to_owned)),
        );
    }

    let list = gql(
        addr,
        staff,
        "mutation($input: CheckinListInput!) { createCheckinList(input: $input) { list { id } } }",
        json!({ "input": { "eventId": event, "name": "Main entrance" } }),
    )
    .await?;
    let list = field(&list, &["createCheckinList", "list", "id"])?;
    let mut scanners = Vec::with_capacity(args.scanners);
    for n in 0..args.scanners {
        let issued = gql(
            addr,
            staff,
            "mutation($input: IssueScannerInput!) { issueScanner(input: $input) { credential } }",
            json!({ "input": { "eventId": event, "name": format!("Scanner {n}"), "gate": format!("Gate {}", n % 10) } }),
        )
        .await?;
        let credential = field(&issued, &["issueScanner", "credential"])?;
        let session = gql(
            addr,
            None,
            "mutation($c: String!) { scannerSession(input: { credential: $c }) { accessToken } }",
            json!({ "c": credential }),
        )
        .await?;
        scanners.push(field(&session, &["scannerSession", "accessToken"])?);
    }
    Ok(Door {
        list,
        scanners,
        secrets,
    })
}

const REDEEM: &str = "mutation($input: RedeemTicketInput!) { redeemTicket(input: $input) { __typename ... on CheckinRejected { reason } } }";

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let mut args = Args::parse();
    args.rate = args.rate.filter(|r| *r > 0.0);
    let scratch =
        std::env::temp_dir().join(format!("voltgate-checkin-bench-{}", std::process::id()));
    std::fs::create_dir_all(&scratch)?;
    let database_url = args
        .database_url
        .clone()
        .unwrap_or_else(|| format!("sqlite://{}?mode=rwc", scratch.join("scan.db").display()));
    let setup = if args.database_url.is_some() {
        "PostgreSQL"
    } else {
        "defaults (SQLite)"
    };
    let server = Server::start(
        "checkin",
        &[
            ("DATABASE_URL", database_url.as_str()),
            ("VOLTGATE_RATE_LIMITS", "false"),
            ("VOLTGATE_CHECKIN_SCANS_PER_MINUTE", "100000000"),
        ],
    )
    .await?;
    let started = Instant::now();
    let door = set_up(server.addr, &database_url, &args).await?;
    println!(
        "check-in throughput on {setup}: {} scanners ({}, {}), {} tickets (set up in {:.1} s)",
        door.scanners.len(),
        if args.fresh_connections {
            "a new connection per scan"
        } else {
            "one kept-alive connection each"
        },
        args.rate.map_or_else(
            || "as fast as answered".to_owned(),
            |rate| format!("{rate} scans/s offered in all")
        ),
        door.secrets.len(),
        started.elapsed().as_secs_f64()
    );

    let door = Arc::new(door);
    let next = Arc::new(AtomicUsize::new(0));
    let started = Instant::now();
    let mut tasks = Vec::new();
    for scanner in 0..door.scanners.len() {
        let (door, next, addr) = (Arc::clone(&door), Arc::clone(&next), server.addr);
        let fresh = args.fresh_connections;
        // Paced: this scanner's scans are due one `every` apart (scanners
        // start spread over the first interval), and latency counts from
        // when a scan was due, so a slow answer that delays the next scan
        // is not hidden.
        let every = args
            .rate
            .map(|rate| Duration::from_secs_f64(door.scanners.len() as f64 / rate));
        let offset = every.map(|e| e.mul_f64(scanner as f64 / door.scanners.len() as f64));
        tasks.push(tokio::spawn(async move {
            let (mut latencies, mut accepted, mut failures) = (Vec::new(), 0_usize, Vec::new());
            let mut connection = KeepAlive::new(addr);
            let mut due = started + offset.unwrap_or_default();
            loop {
                let index = next.fetch_add(1, Ordering::Relaxed);
                let Some(secret) = door.secrets.get(index) else {
                    break;
                };
                let input = json!({ "input": { "secret": secret, "listIds": [door.list],
                    "nonce": format!("bench-{index}") } });
                let sent = match every {
                    Some(every) => {
                        tokio::time::sleep_until(due.into()).await;
                        let at = due;
                        due += every;
                        at
                    }
                    None => Instant::now(),
                };
                let token = Some(door.scanners[scanner].as_str());
                let answer = if fresh {
                    gql(addr, token, REDEEM, input).await
                } else {
                    connection.gql(token, REDEEM, input).await
                };
                latencies.push(sent.elapsed());
                match answer {
                    Ok(body) if body["data"]["redeemTicket"]["__typename"] == "CheckinAccepted" => {
                        accepted += 1;
                    }
                    Ok(body) => failures.push(body.to_string()),
                    Err(err) => failures.push(err.to_string()),
                }
            }
            (latencies, accepted, failures)
        }));
    }
    let (mut latencies, mut accepted, mut failures) = (Vec::new(), 0, Vec::new());
    for task in tasks {
        let (l, a, f) = task.await?;
        latencies.extend(l);
        accepted += a;
        failures.extend(f);
    }
    let elapsed = started.elapsed();
    latencies.sort();
    println!(
        "\n| setup | scanners | offered/s | scans | scans/s | p50 ms | p99 ms | max ms | accepted | failed |"
    );
    println!("|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|");
    println!(
        "| {setup} | {} | {} | {} | {:.0} | {:.2} | {:.2} | {:.2} | {accepted} | {} |",
        door.scanners.len(),
        args.rate
            .map_or_else(|| "max".to_owned(), |rate| format!("{rate:.0}")),
        latencies.len(),
        latencies.len() as f64 / elapsed.as_secs_f64(),
        percentile(&latencies, 0.50),
        percentile(&latencies, 0.99),
        latencies
            .last()
            .copied()
            .unwrap_or(Duration::ZERO)
            .as_secs_f64()
            * 1000.0,
        failures.len(),
    );
    if let Some(first) = failures.first() {
        println!("first failure: {first}");
    }
    drop(server);
    let _ = std::fs::remove_dir_all(&scratch);
    anyhow::ensure!(
        accepted == door.secrets.len(),
        "every ticket should be admitted once"
    );
    Ok(())
}
