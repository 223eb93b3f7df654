//! The rush: many buyers checking out one quota at once, on PostgreSQL.
//!
//! Creates a database of the run's own, starts `voltgate serve` on it, and
//! inserts an organizer, a live event and two products: one with a quota of
//! `--size` (100,000) and one with a quota of `--last` (2,000). Then:
//!
//! 1. the raw rate of PostgreSQL's single-row conditional update (`UPDATE
//!    rush_quota SET sold = sold + 1 WHERE id = 1 AND sold < size`, each its
//!    own synchronously committed transaction) with 1 and 32 clients;
//! 2. `--clients` (200) buyers, each adding one ticket to a new cart and
//!    checking out, again and again for `--seconds`, on the large quota:
//!    completed checkouts per second and their p50/p99 latency (add to cart
//!    and checkout together); each buyer keeps its HTTP connection open, as
//!    a browser does (`--fresh-connections`: a new connection per request);
//! 3. the same buyers on the small quota until it is sold out: it must end
//!    with exactly `--last` orders, every other buyer being refused
//!    `SOLD_OUT`.
//!
//! Run it with `bench/run-rush.sh` (release build).

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use anyhow::Context as _;
use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use clap::Parser;
use sea_orm::{ConnectionTrait as _, Database, DatabaseConnection};
use serde_json::{Value, json};
use voltgate_bench::procfs::{CpuSnapshot, CpuUse};
use voltgate_bench::{KeepAlive, Server, percentile, post};

#[derive(Parser)]
struct Args {
    /// A PostgreSQL URL allowed to create databases.
    #[arg(long, default_value = "postgres://postgres@127.0.0.1:5432/postgres")]
    postgres_admin_url: String,
    #[arg(long, default_value_t = 200)]
    clients: usize,
    /// Size of the quota the throughput is measured on.
    #[arg(long, default_value_t = 100_000)]
    size: i32,
    /// Size of the quota that is sold out.
    #[arg(long, default_value_t = 2_000)]
    last: i32,
    /// Seconds of each measured step.
    #[arg(long, default_value_t = 15)]
    seconds: u64,
    /// A new HTTP connection per request instead of one kept open per buyer.
    #[arg(long)]
    fresh_connections: bool,
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    let name = format!("voltgate_rush_{}", std::process::id());
    let admin = Database::connect(&args.postgres_admin_url)
        .await
        .context("cannot reach PostgreSQL")?;
    admin
        .execute_unprepared(&format!("CREATE DATABASE {name}"))
        .await?;
    let url = sibling_database(&args.postgres_admin_url, &name)?;
    let outcome = run(&args, &url).await;
    admin
        .execute_unprepared(&format!("DROP DATABASE IF EXISTS {name} WITH (FORCE)"))
        .await?;
    outcome
}

fn sibling_database(admin_url: &str, name: &str) -> anyhow::Result<String> {
    let (scheme, rest) = admin_url
        .split_once("://")
        .with_context(|| format!("not a PostgreSQL URL: {admin_url}"))?;
    let authority = rest.split(['/', '?']).next().unwrap_or(rest);
    Ok(format!("{scheme}://{authority}/{name}"))
}

async fn run(args: &Args, url: &str) -> anyhow::Result<()> {
    let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
    println!(
        "rush on PostgreSQL: {} clients ({}), {cores} cores, {} s per step",
        args.clients,
        if args.fresh_connections {
            "a new connection per request"
        } else {
            "one kept-alive connection each"
        },
        args.seconds
    );
    let server = Server::start(
        "rush",
        &[
            ("DATABASE_URL", url),
            ("VOLTGATE_RATE_LIMITS", "false"),
            // Every buyer's request is admitted rather than shed with 503.
            ("VOLTGATE_MAX_CONCURRENT_OPERATIONS", "512"),
        ],
    )
    .await?;
    let db = Database::connect(url).await?;
    let (large, small) = catalog(&db, args.size, args.last).await?;

    println!("\n| single-row conditional UPDATE | updates/s |");
    println!("|---|---|");
    for clients in [1_usize, 32] {
        let rate = raw_updates(url, clients, args.seconds).await?;
        println!("| {clients} client(s) | {rate:.0} |");
    }

    let before = CpuSnapshot::take(server.pid());
    let (orders, refused, latencies, elapsed) =
        rush(server.addr, &large, args, Some(args.seconds)).await?;
    let cpu = CpuSnapshot::take(server.pid()).since(&before);
    println!("\n| quota | clients | checkouts/s | p50 ms | p99 ms | refused |");
    println!("|---|---|---|---|---|---|");
    println!(
        "| {} | {} | {:.0} | {:.1} | {:.1} | {refused} |",
        args.size,
        args.clients,
        orders as f64 / elapsed.as_secs_f64(),
        percentile(&latencies, 0.50),
        percentile(&latencies, 0.99),
    );
    let large_orders = orders;
    let (orders, refused, latencies, elapsed) = rush(server.addr, &small, args, None).await?;
    println!(
        "| {} (sold out in {:.1} s) | {} | {:.0} | {:.1} | {:.1} | {refused} |",
        args.last,
        elapsed.as_secs_f64(),
        args.clients,
        orders as f64 / elapsed.as_secs_f64(),
        percentile(&latencies, 0.50),
        percentile(&latencies, 0.99),
    );
    anyhow::ensure!(
        orders == u64::try_from(args.last)?,
        "{orders} orders for a quota of {}",
        args.last
    );
    println!("\nsold out with exactly {orders} orders; {refused} buyers refused SOLD_OUT");
    print_cpu(&cpu, large_orders, args.seconds);
    Ok(())
}

/// Inserts an organizer, a live event and two products with their quotas;
/// returns the products' global ids.
async fn catalog(
    db: &DatabaseConnection,
    size: i32,
    last: i32,
) -> anyhow::Result<(String, String)> {
    let now = "now()";
    db.execute_unprepared(&format!(
        "INSERT INTO organizers (name, slug, created_at) VALUES ('Rush', 'rush', {now});
         INSERT INTO events (organizer_id, name, slug, currency, date_from, time_zone, live, testmode,
             has_subevents, sales_channels, cart_hold_minutes, created_at)
         SELECT id, 'Finals', 'finals', 'EUR', now() + interval '30 days', 'UTC', true, false, false,
             'web', 30, {now} FROM organizers WHERE slug = 'rush';"
    ))
    .await?;
    let mut products = Vec::new();
    for (name, quota) in [("Seat", size), ("Last seats", last)] {
        db.execute_unprepared(&format!(
            "INSERT INTO products (event_id, name, description, kind, active, admission, price_minor,
                 tax_rate_bp, require_voucher, hide_without_voucher, require_approval, personalized,
                 checkin_attention, position, created_at, updated_at)
             SELECT id, '{name}', '', 'admission', true, true, 4950, 1900, false, false, false, false,
                 false, 0, {now}, {now} FROM events WHERE slug = 'finals';
             INSERT INTO quotas (event_id, name, size, paid, pending, in_carts)
             SELECT id, '{name}', {quota}, 0, 0, 0 FROM events WHERE slug = 'finals';
             INSERT INTO quota_products (quota_id, product_id, added_at)
             SELECT (SELECT max(id) FROM quotas), (SELECT max(id) FROM products), {now};"
        ))
        .await?;
        let id = db
            .query_one_raw(sea_orm::Statement::from_string(
                db.get_database_backend(),
                "SELECT max(id) AS id FROM products",
            ))
            .await?
            .context("a product")?
            .try_get::<i32>("", "id")?;
        products.push(URL_SAFE_NO_PAD.encode(format!("Product:{id}")));
    }
    Ok((products.remove(0), products.remove(0)))
}

/// Single-row conditional updates per second with `clients` connections.
async fn raw_updates(url: &str, clients: usize, seconds: u64) -> anyhow::Result<f64> {
    let mut options = sea_orm::ConnectOptions::new(url.to_owned());
    options
        .max_connections(u32::try_from(clients)?)
        .min_connections(u32::try_from(clients)?)
        .sqlx_logging(false);
    let db = Database::connect(options).await?;
    db.execute_unprepared(
        "CREATE TABLE IF NOT EXISTS rush_quota (id INT PRIMARY KEY, size INT NOT NULL, sold INT NOT NULL);
         DELETE FROM rush_quota; INSERT INTO rush_quota VALUES (1, 2000000000, 0);",
    )
    .await?;
    let done = Arc::new(AtomicU64::new(0));
    let deadline = Instant::now() + Duration::from_secs(seconds);
    let mut tasks = Vec::new();
    for _ in 0..clients {
        let (db, done) = (db.clone(), Arc::clone(&done));
        tasks.push(tokio::spawn(async move {
            while Instant::now() < deadline {
                let updated = db
                    .execute_unprepared(
                        "UPDATE rush_quota SET sold = sold + 1 WHERE id = 1 AND sold < size",
                    )
                    .await?;
                if updated.rows_affected() == 1 {
                    done.fetch_add(1, Ordering::Relaxed);
                }
            }
            anyhow::Ok(())
        }));
    }
    for task in tasks {
        task.await??;
    }
    db.close().await?;
    Ok(done.load(Ordering::Relaxed) as f64 / seconds as f64)
}

/// `clients` buyers add one `product` to a new cart and check out, again and
/// again, for `seconds` or (without) until each is refused `SOLD_OUT`.
/// Returns the orders placed, the refusals, the sorted latencies of placed
/// orders and the time taken.
async fn rush(
    addr: std::net::SocketAddr,
    product: &str,
    args: &Args,
    seconds: Option<u64>,
) -> anyhow::Result<(u64, u64, Vec<Duration>, Duration)> {
    let started = Instant::now();
    let deadline = seconds.map(|s| started + Duration::from_secs(s));
    let mut tasks = Vec::new();
    for client in 0..args.clients {
        let product = product.to_owned();
        let mut buyer = Buyer {
            addr,
            kept: (!args.fresh_connections).then(|| KeepAlive::new(addr)),
            email: format!("buyer{client}@example.com"),
        };
        tasks.push(tokio::spawn(async move {
            let (mut latencies, mut refused) = (Vec::new(), 0_u64);
            while deadline.is_none_or(|d| Instant::now() < d) {
                let began = Instant::now();
                match buyer.buy(&product).await? {
                    true => latencies.push(began.elapsed()),
                    false => {
                        refused += 1;
                        if deadline.is_none() {
                            break;
                        }
                    }
                }
            }
            anyhow::Ok((latencies, refused))
        }));
    }
    let (mut latencies, mut refused) = (Vec::new(), 0);
    for task in tasks {
        let (l, r) = task.await??;
        latencies.extend(l);
        refused += r;
    }
    let elapsed = started.elapsed();
    latencies.sort();
    Ok((latencies.len() as u64, refused, latencies, elapsed))
}

/// One buyer: its connection (kept open unless `--fresh-connections`).
struct Buyer {
    addr: std::net::SocketAddr,
    kept: Option<KeepAlive>,
    email: String,
}

impl Buyer {
    /// One add to cart and checkout: `true` when the order was placed,
    /// `false` when refused `SOLD_OUT`.
    async fn buy(&mut self, product: &str) -> anyhow::Result<bool> {
        let added = self
            .graphql(
                "mutation($p: ID!) { addToCart(input: { productId: $p }) { cart { id } } }",
                json!({ "p": product }),
            )
            .await?;
        let Some(cart) = added["data"]["addToCart"]["cart"]["id"].as_str() else {
            anyhow::ensure!(
                added["errors"][0]["extensions"]["reason"] == "SOLD_OUT",
                "add to cart failed: {added}"
            );
            return Ok(false);
        };
        let placed = self
            .graphql(
                "mutation($c: String!, $e: String!) { checkout(input: { cartId: $c, email: $e }) { order { code } } }",
                json!({ "c": cart, "e": self.email }),
            )
            .await?;
        anyhow::ensure!(
            placed["data"]["checkout"]["order"]["code"].is_string(),
            "checkout failed: {placed}"
        );
        Ok(true)
    }

    async fn graphql(&mut self, query: &str, variables: Value) -> anyhow::Result<Value> {
        match &mut self.kept {
            Some(kept) => kept.gql(None, query, variables).await,
            None => graphql(self.addr, query, variables).await,
        }
    }
}

async fn graphql(
    addr: std::net::SocketAddr,
    query: &str,
    variables: Value,
) -> anyhow::Result<Value> {
    let body = json!({ "query": query, "variables": variables }).to_string();
    let (status, response) = post(addr, &body).await?;
    anyhow::ensure!(status == 200, "HTTP {status}: {response}");
    Ok(serde_json::from_str(&response)?)
}

/// Where the CPU of the large-quota step went, in % of one core and in
/// milliseconds per completed checkout (PostgreSQL is most of "others").
fn print_cpu(cpu: &CpuUse, orders: u64, seconds: u64) {
    let per_checkout = |share: Option<f64>| {
        share.map_or_else(
            || "–".to_owned(),
            |share| {
                let busy = share / 100.0 * seconds as f64;
                format!(
                    "{share:.0} % ({:.2} ms)",
                    busy * 1000.0 / orders.max(1) as f64
                )
            },
        )
    };
    println!("\nCPU during the large-quota step, in % of one core (ms per checkout):");
    println!("| server | harness (200 buyers) | others (PostgreSQL, …) |");
    println!("|---|---|---|");
    println!(
        "| {} | {} | {} |",
        per_checkout(cpu.server),
        per_checkout(cpu.harness),
        per_checkout(cpu.other)
    );
    let threads: Vec<String> = cpu
        .server_threads
        .iter()
        .map(|(name, share)| format!("{name} {share:.0} %"))
        .collect();
    println!("server's busiest threads: {}", threads.join(", "));
}
