//! What hostile GraphQL requests cost the server: time to refuse them and its
//! memory during and after.
//!
//! Starts `voltgate serve` with demo data (SQLite, MQTT off) and replays, in
//! order: the fragment fan-out (7 and 10 levels, about 1 KB each), 16 clients
//! posting a 1,000-operation batch at once, then a flood of batches of 10 list
//! queries from 64 clients for a fixed time. Prints, for each, the answers by
//! status and code, latency percentiles, and the server's resident memory
//! (current and peak) after it, then after a pause.
//!
//! Run it with `bench/run-hostile.sh` (release build). An optional argument sets
//! the flood's seconds (default 10).

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::time::{Duration, Instant};

use voltgate_bench::{Server, percentile, post, seconds_arg};

fn fragment_fan_out(levels: usize) -> String {
    let mut query = String::from("query { ...F0 } ");
    for level in 0..levels {
        let spreads = format!("...F{} ", level + 1).repeat(10);
        query.push_str(&format!("fragment F{level} on Query {{ {spreads}}} "));
    }
    query.push_str(&format!("fragment F{levels} on Query {{ __typename }}"));
    serde_json::json!({ "query": query }).to_string()
}

/// A label for an answer: its status and first error code.
fn outcome(status: u16, body: &str) -> String {
    let code = serde_json::from_str::<serde_json::Value>(body)
        .ok()
        .and_then(|v| {
            let first = if v.is_array() { &v[0] } else { &v };
            first["errors"][0]["extensions"]["code"]
                .as_str()
                .map(str::to_owned)
        })
        .unwrap_or_else(|| "ok".to_owned());
    format!("{status} {code}")
}

struct Tally {
    outcomes: BTreeMap<String, usize>,
    latencies: Vec<Duration>,
}

impl Tally {
    fn new() -> Self {
        Self {
            outcomes: BTreeMap::new(),
            latencies: Vec::new(),
        }
    }

    fn add(&mut self, status: u16, body: &str, took: Duration) {
        *self.outcomes.entry(outcome(status, body)).or_default() += 1;
        self.latencies.push(took);
    }

    fn merge(&mut self, other: Self) {
        for (k, v) in other.outcomes {
            *self.outcomes.entry(k).or_default() += v;
        }
        self.latencies.extend(other.latencies);
    }

    fn row(&mut self, name: &str, server: &Server) {
        self.latencies.sort();
        let outcomes: Vec<String> = self
            .outcomes
            .iter()
            .map(|(k, v)| format!("{v} × {k}"))
            .collect();
        let (rss, peak) = server.memory_mib();
        println!(
            "| {name} | {} | {:.1} | {:.1} | {:.1} | {rss:.0} | {peak:.0} |",
            outcomes.join(", "),
            percentile(&self.latencies, 0.50),
            percentile(&self.latencies, 0.99),
            percentile(&self.latencies, 1.0),
        );
    }
}

async fn concurrently(addr: SocketAddr, clients: usize, body: String) -> Tally {
    let tasks: Vec<_> = (0..clients)
        .map(|_| {
            let body = body.clone();
            tokio::spawn(async move {
                let started = Instant::now();
                let answer = post(addr, &body).await;
                (answer, started.elapsed())
            })
        })
        .collect();
    let mut tally = Tally::new();
    for task in tasks {
        if let Ok((answer, took)) = task.await {
            let (status, body) = answer.unwrap_or((0, String::new()));
            tally.add(status, &body, took);
        }
    }
    tally
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let seconds = seconds_arg(10);
    let server = Server::start("hostile", &[("VOLTGATE_DEMO", "true")]).await?;
    let addr = server.addr;
    let (rss, peak) = server.memory_mib();
    println!("hostile input against voltgate with demo data; flood {seconds} s");
    println!("server memory at rest: {rss:.0} MiB resident, {peak:.0} MiB peak\n");
    println!("| attack | answers | p50 ms | p99 ms | max ms | RSS after MiB | peak RSS MiB |");
    println!("|---|---|---|---|---|---|---|");

    for levels in [7, 10] {
        concurrently(addr, 1, fragment_fan_out(levels))
            .await
            .row(&format!("fragment fan-out, {levels} levels"), &server);
    }

    let batch: Vec<serde_json::Value> = (0..1000)
        .map(|_| serde_json::json!({ "query": "{ stations(first: 50) { totalCount } }" }))
        .collect();
    concurrently(addr, 16, serde_json::Value::Array(batch).to_string())
        .await
        .row("16 clients × 1,000-operation batch", &server);

    let operation = serde_json::json!({
        "query": "{ stations(first: 20) { edges { node { id name cabinets { number bays { number status } } } } } }"
    });
    let batch = serde_json::Value::Array(vec![operation; 10]).to_string();
    let deadline = Instant::now() + Duration::from_secs(seconds);
    let clients: Vec<_> = (0..64)
        .map(|_| {
            let batch = batch.clone();
            tokio::spawn(async move {
                let mut tally = Tally::new();
                while Instant::now() < deadline {
                    let started = Instant::now();
                    let (status, body) = post(addr, &batch).await.unwrap_or((0, String::new()));
                    tally.add(status, &body, started.elapsed());
                    if status == 503 {
                        // As a client honouring Retry-After would, briefly.
                        tokio::time::sleep(Duration::from_millis(50)).await;
                    }
                }
                tally
            })
        })
        .collect();
    let mut flood = Tally::new();
    for client in clients {
        if let Ok(tally) = client.await {
            flood.merge(tally);
        }
    }
    let served = flood
        .outcomes
        .iter()
        .filter(|(k, _)| k.starts_with("200"))
        .map(|(_, v)| v)
        .sum::<usize>();
    flood.row("64 clients × batches of 10 list queries", &server);
    println!(
        "\nflood: {:.0} batches/s served ({:.0} operations/s)",
        served as f64 / seconds as f64,
        served as f64 * 10.0 / seconds as f64
    );

    tokio::time::sleep(Duration::from_secs(5)).await;
    let (rss, peak) = server.memory_mib();
    println!("5 s after the flood: {rss:.0} MiB resident (peak {peak:.0} MiB)");
    let health = post(addr, r#"{"query":"{ __typename }"}"#).await?;
    println!("still answering: {}", outcome(health.0, &health.1));
    Ok(())
}
