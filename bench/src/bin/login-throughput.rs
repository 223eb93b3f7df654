//! Login throughput with the production argon2id parameters.
//!
//! Starts `voltgate serve` (SQLite, MQTT off) on a free port, registers one
//! account, then runs N concurrent clients that sign in over HTTP for a fixed
//! time, for N = 1, 2, 4 and 8. Prints sign-ins per second and latency
//! percentiles, next to the cost of one argon2id verification measured in
//! this process, so the share of hashing in a sign-in shows.
//!
//! Run it with `bench/run-login.sh` (release build) or directly with
//! `cargo run --release -p voltgate-bench --bin login-throughput`.

use std::time::{Duration, Instant};

use voltgate_bench::{Server, percentile, post, seconds_arg};

const PASSWORD: &str = "Bench-password-2026";

fn login_body() -> String {
    serde_json::json!({
        "query": "mutation($input: LoginInput!) { login(input: $input) { accessToken } }",
        "variables": { "input": { "login": "loadtester", "password": PASSWORD } },
    })
    .to_string()
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let seconds = seconds_arg(10);
    let cores = std::thread::available_parallelism()
        .map(|n| n.get())
        .unwrap_or(1);
    println!(
        "login throughput: argon2id m=19456 KiB, t=2, p=1; {cores} cores; {seconds} s per step"
    );

    // The cost of one verification, in this process, single-threaded.
    let hash = voltgate::auth::password::hash(PASSWORD)
        .await
        .map_err(|err| anyhow::anyhow!(err.message()))?;
    let rounds = 10;
    let started = Instant::now();
    for _ in 0..rounds {
        voltgate::auth::password::verify(PASSWORD, &hash).await;
    }
    let per_verify = started.elapsed().as_secs_f64() * 1000.0 / f64::from(rounds);
    println!(
        "one argon2id verification: {per_verify:.1} ms (upper bound {:.0} sign-ins/s on {cores} cores)",
        1000.0 / per_verify * cores as f64
    );

    // The sign-in limits would stop one client after a few attempts.
    let server = Server::start("login", &[("VOLTGATE_RATE_LIMITS", "false")]).await?;
    let register = serde_json::json!({
        "query": "mutation($input: RegisterInput!) { register(input: $input) { accessToken } }",
        "variables": { "input": { "username": "loadtester", "email": "loadtester@example.com", "password": PASSWORD,
            "acceptTerms": true, "acceptPrivacyPolicy": true } },
    });
    let (status, body) = post(server.addr, &register.to_string()).await?;
    anyhow::ensure!(
        status == 200 && body.contains("accessToken"),
        "registration failed: {body}"
    );

    println!("\n| clients | sign-ins/s | p50 ms | p99 ms | errors |");
    println!("|---|---|---|---|---|");
    let body = login_body();
    for clients in [1_usize, 2, 4, 8] {
        let deadline = Instant::now() + Duration::from_secs(seconds);
        let mut tasks = Vec::new();
        for _ in 0..clients {
            let body = body.clone();
            let addr = server.addr;
            tasks.push(tokio::spawn(async move {
                let (mut latencies, mut errors) = (Vec::new(), 0_u32);
                while Instant::now() < deadline {
                    let started = Instant::now();
                    match post(addr, &body).await {
                        Ok((200, response)) if response.contains("accessToken") => {
                            latencies.push(started.elapsed())
                        }
                        _ => errors += 1,
                    }
                }
                (latencies, errors)
            }));
        }
        let (mut latencies, mut errors) = (Vec::new(), 0);
        for task in tasks {
            let (l, e) = task.await?;
            latencies.extend(l);
            errors += e;
        }
        latencies.sort();
        println!(
            "| {clients} | {:.1} | {:.1} | {:.1} | {errors} |",
            latencies.len() as f64 / seconds as f64,
            percentile(&latencies, 0.50),
            percentile(&latencies, 0.99),
        );
    }
    Ok(())
}
