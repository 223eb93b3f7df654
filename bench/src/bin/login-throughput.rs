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

use std::net::{SocketAddr, TcpListener};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{Context as _, bail};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

const PASSWORD: &str = "Bench-password-2026";

struct Server {
    child: Child,
    addr: SocketAddr,
    _dir: TempDir,
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A scratch directory removed on drop.
struct TempDir(std::path::PathBuf);

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

fn free_addr() -> anyhow::Result<SocketAddr> {
    Ok(TcpListener::bind("127.0.0.1:0")?.local_addr()?)
}

fn start_server() -> anyhow::Result<Server> {
    let exe = std::env::current_exe()?;
    let voltgate = exe.with_file_name("voltgate");
    anyhow::ensure!(
        voltgate.exists(),
        "build voltgate first: {} is missing",
        voltgate.display()
    );
    let dir = std::env::temp_dir().join(format!("voltgate-login-bench-{}", std::process::id()));
    std::fs::create_dir_all(&dir)?;
    let addr = free_addr()?;
    let child = Command::new(voltgate)
        .arg("serve")
        .env(
            "DATABASE_URL",
            format!("sqlite://{}?mode=rwc", dir.join("bench.db").display()),
        )
        .env("VOLTGATE_HTTP_ADDR", addr.to_string())
        .env("MQTT_URL", "none")
        // The sign-in limits would stop one client after a few attempts.
        .env("VOLTGATE_RATE_LIMITS", "false")
        .env(
            "VOLTGATE_JWT_SECRET",
            "a-benchmark-secret-that-is-long-enough",
        )
        .env("RUST_LOG", "error")
        .stdout(Stdio::null())
        .spawn()
        .context("starting voltgate")?;
    Ok(Server {
        child,
        addr,
        _dir: TempDir(dir),
    })
}

/// One GraphQL POST over a fresh connection; returns the HTTP status and body.
async fn post(addr: SocketAddr, body: &str) -> anyhow::Result<(u16, String)> {
    let mut stream = TcpStream::connect(addr).await?;
    let request = format!(
        "POST /graphql HTTP/1.1\r\nHost: {addr}\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
        body.len()
    );
    stream.write_all(request.as_bytes()).await?;
    let mut response = String::new();
    stream.read_to_string(&mut response).await?;
    let status = response
        .split(' ')
        .nth(1)
        .and_then(|s| s.parse().ok())
        .unwrap_or(0);
    let body = response
        .split_once("\r\n\r\n")
        .map(|(_, b)| b.to_owned())
        .unwrap_or_default();
    Ok((status, body))
}

async fn wait_ready(addr: SocketAddr) -> anyhow::Result<()> {
    let deadline = Instant::now() + Duration::from_secs(30);
    while Instant::now() < deadline {
        if post(addr, r#"{"query":"{ stations { totalCount } }"}"#)
            .await
            .is_ok_and(|(s, _)| s == 200)
        {
            return Ok(());
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    bail!("the server did not become ready")
}

fn login_body() -> String {
    serde_json::json!({
        "query": "mutation($input: LoginInput!) { login(input: $input) { accessToken } }",
        "variables": { "input": { "login": "loadtester", "password": PASSWORD } },
    })
    .to_string()
}

fn percentile(sorted: &[Duration], p: f64) -> f64 {
    if sorted.is_empty() {
        return 0.0;
    }
    let index = ((sorted.len() as f64 * p).ceil() as usize).clamp(1, sorted.len()) - 1;
    sorted[index].as_secs_f64() * 1000.0
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let seconds = std::env::args()
        .nth(1)
        .and_then(|s| s.parse().ok())
        .unwrap_or(10_u64);
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

    let server = start_server()?;
    wait_ready(server.addr).await?;
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
