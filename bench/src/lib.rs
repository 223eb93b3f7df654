//! The benchmarks' shared parts.
//!
//! At the root, for the HTTP benchmarks (`login-throughput`, `hostile-input`): a
//! `voltgate serve` child process on a throw-away SQLite database with MQTT off,
//! and a minimal HTTP client that opens one connection per request, as the
//! clients being modelled do. In the modules, for the realtime benchmarks
//! (`bay-latency`, `realtime`): the server under test with its services, the
//! devices, the subscribers, and the figures.

pub mod latency;
pub mod listeners;
pub mod procfs;
pub mod publisher;
pub mod realtime;
pub mod report;
pub mod server;
pub mod supervision;

use std::net::{SocketAddr, TcpListener};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{Context as _, bail};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

/// A running server; killed on drop, its database removed.
pub struct Server {
    child: Child,
    pub addr: SocketAddr,
    _dir: TempDir,
}

impl Server {
    /// Starts the `voltgate` binary next to the running benchmark with `env`
    /// added to the defaults (an empty value removes one), and waits until it
    /// answers.
    ///
    /// # Errors
    /// When the binary is missing or the server does not become ready.
    pub async fn start(tag: &str, env: &[(&str, &str)]) -> anyhow::Result<Self> {
        let exe = std::env::current_exe()?;
        let voltgate = exe.with_file_name("voltgate");
        anyhow::ensure!(
            voltgate.exists(),
            "build voltgate first: {} is missing",
            voltgate.display()
        );
        let dir = std::env::temp_dir().join(format!("voltgate-{tag}-bench-{}", std::process::id()));
        std::fs::create_dir_all(&dir)?;
        let addr = TcpListener::bind("127.0.0.1:0")?.local_addr()?;
        let mut command = Command::new(voltgate);
        command
            .arg("serve")
            .env(
                "DATABASE_URL",
                format!("sqlite://{}?mode=rwc", dir.join("bench.db").display()),
            )
            .env("VOLTGATE_HTTP_ADDR", addr.to_string())
            .env("MQTT_URL", "none")
            .env(
                "VOLTGATE_JWT_SECRET",
                "a-benchmark-secret-that-is-long-enough",
            )
            // `BENCH_SERVER_LOG` (a `RUST_LOG` filter) shows the server's logs, e.g. its
            // lanes' batches: `BENCH_SERVER_LOG=voltgate::ticketing::rush=debug`.
            .env(
                "RUST_LOG",
                std::env::var("BENCH_SERVER_LOG").unwrap_or_else(|_| "error".into()),
            )
            .stdout(Stdio::null());
        // An empty value removes the variable (e.g. `MQTT_URL`: the embedded broker).
        for (name, value) in env {
            if value.is_empty() {
                command.env_remove(name);
            } else {
                command.env(name, value);
            }
        }
        let child = command.spawn().context("starting voltgate")?;
        let server = Self {
            child,
            addr,
            _dir: TempDir(dir),
        };
        server.wait_ready().await?;
        Ok(server)
    }

    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    async fn wait_ready(&self) -> anyhow::Result<()> {
        let deadline = Instant::now() + Duration::from_secs(60);
        while Instant::now() < deadline {
            if post(self.addr, r#"{"query":"{ stations { totalCount } }"}"#)
                .await
                .is_ok_and(|(s, _)| s == 200)
            {
                return Ok(());
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        bail!("the server did not become ready")
    }

    /// Resident and peak resident memory of the server, in MiB (`/proc`, Linux).
    pub fn memory_mib(&self) -> (f64, f64) {
        let status =
            std::fs::read_to_string(format!("/proc/{}/status", self.pid())).unwrap_or_default();
        let field = |name: &str| {
            status
                .lines()
                .find_map(|line| line.strip_prefix(name))
                .and_then(|rest| rest.split_whitespace().next())
                .and_then(|kib| kib.parse::<f64>().ok())
                .map_or(0.0, |kib| kib / 1024.0)
        };
        (field("VmRSS:"), field("VmHWM:"))
    }
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

/// One GraphQL POST over a fresh connection; returns the HTTP status and body.
///
/// # Errors
/// When the connection fails.
pub async fn post(addr: SocketAddr, body: &str) -> anyhow::Result<(u16, String)> {
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

/// The `p` quantile of sorted durations, in milliseconds.
pub fn percentile(sorted: &[Duration], p: f64) -> f64 {
    if sorted.is_empty() {
        return 0.0;
    }
    let index = ((sorted.len() as f64 * p).ceil() as usize).clamp(1, sorted.len()) - 1;
    sorted[index].as_secs_f64() * 1000.0
}

/// The benchmark's first argument as seconds, or `default`.
pub fn seconds_arg(default: u64) -> u64 {
    std::env::args()
        .nth(1)
        .and_then(|s| s.parse().ok())
        .unwrap_or(default)
}

/// One GraphQL POST over a fresh connection, with a bearer token if given;
/// the parsed body.
///
/// # Errors
/// On connection errors or a body that is not JSON.
pub async fn gql(
    addr: SocketAddr,
    token: Option<&str>,
    query: &str,
    variables: serde_json::Value,
) -> anyhow::Result<serde_json::Value> {
    let mut stream = TcpStream::connect(addr).await?;
    let request = graphql_request(addr, token, query, variables, "Connection: close\r\n");
    stream.write_all(request.as_bytes()).await?;
    let mut response = String::new();
    stream.read_to_string(&mut response).await?;
    let body = response
        .split_once("\r\n\r\n")
        .map(|(_, b)| b)
        .unwrap_or_default();
    Ok(serde_json::from_str(body)?)
}

/// A GraphQL POST as HTTP/1.1 text, with a bearer token if given and any
/// further `headers` (each ending in CRLF).
fn graphql_request(
    addr: SocketAddr,
    token: Option<&str>,
    query: &str,
    variables: serde_json::Value,
    headers: &str,
) -> String {
    let body = serde_json::json!({ "query": query, "variables": variables }).to_string();
    let auth = token.map_or_else(String::new, |t| format!("Authorization: Bearer {t}\r\n"));
    format!(
        "POST /graphql HTTP/1.1\r\nHost: {addr}\r\nContent-Type: application/json\r\n{auth}{headers}Content-Length: {}\r\n\r\n{body}",
        body.len()
    )
}

/// One HTTP/1.1 connection kept open for many GraphQL POSTs, as a device
/// that talks to the server all day does.
pub struct KeepAlive {
    addr: SocketAddr,
    stream: Option<tokio::io::BufReader<TcpStream>>,
}

impl KeepAlive {
    pub fn new(addr: SocketAddr) -> Self {
        Self { addr, stream: None }
    }

    /// One GraphQL POST on the open connection (opened on first use, and
    /// again after the server closed it); the parsed body.
    ///
    /// # Errors
    /// On connection errors, an answer without `Content-Length`, or a body
    /// that is not JSON.
    pub async fn gql(
        &mut self,
        token: Option<&str>,
        query: &str,
        variables: serde_json::Value,
    ) -> anyhow::Result<serde_json::Value> {
        use tokio::io::AsyncBufReadExt as _;
        let request = graphql_request(self.addr, token, query, variables, "");
        let stream = match &mut self.stream {
            Some(stream) => stream,
            None => self.stream.insert(tokio::io::BufReader::new(
                TcpStream::connect(self.addr).await?,
            )),
        };
        stream.get_mut().write_all(request.as_bytes()).await?;
        let (mut length, mut close, mut line) = (None, false, String::new());
        loop {
            line.clear();
            if stream.read_line(&mut line).await? == 0 {
                self.stream = None;
                bail!("the server closed the connection");
            }
            let header = line.trim_end().to_ascii_lowercase();
            if header.is_empty() {
                break;
            }
            if let Some(value) = header.strip_prefix("content-length:") {
                length = value.trim().parse::<usize>().ok();
            } else if header == "connection: close" {
                close = true;
            }
        }
        let length = length.context("an answer without Content-Length")?;
        let mut answer = vec![0; length];
        stream.read_exact(&mut answer).await?;
        if close {
            self.stream = None;
        }
        Ok(serde_json::from_slice(&answer)?)
    }
}

/// `path` of a successful answer, as a string.
///
/// # Errors
/// When the answer has no string there.
pub fn field(body: &serde_json::Value, path: &[&str]) -> anyhow::Result<String> {
    let mut value = &body["data"];
    for key in path {
        value = &value[*key];
    }
    value
        .as_str()
        .map(str::to_owned)
        .ok_or_else(|| anyhow::anyhow!("no {} in {body}", path.join(".")))
}

/// Creates a superuser `username` in `database_url` with the sibling
/// `voltgate admin create-superuser`, and signs in as it: its access token.
///
/// # Errors
/// When the command or the sign-in fails.
pub async fn superuser_token(
    addr: SocketAddr,
    database_url: &str,
    username: &str,
) -> anyhow::Result<String> {
    const PASSWORD: &str = "Bench-password-2026";
    let voltgate = std::env::current_exe()?.with_file_name("voltgate");
    let created = Command::new(voltgate)
        .args(["admin", "create-superuser", "--username", username])
        .args(["--email", &format!("{username}@example.com")])
        .env("VOLTGATE_SUPERUSER_PASSWORD", PASSWORD)
        .env("DATABASE_URL", database_url)
        .env("RUST_LOG", "error")
        .output()?;
    anyhow::ensure!(
        created.status.success(),
        "create-superuser failed: {}",
        String::from_utf8_lossy(&created.stderr)
    );
    let login = gql(
        addr,
        None,
        "mutation($l: String!, $p: String!) { login(input: { login: $l, password: $p }) { accessToken } }",
        serde_json::json!({ "l": username, "p": PASSWORD }),
    )
    .await?;
    field(&login, &["login", "accessToken"])
}
