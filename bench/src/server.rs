//! The server under test: a `voltgate serve` child process on a throw-away
//! database (SQLite by default, or a PostgreSQL database of the run's own), with
//! free ports, plus the small bits of HTTP and `/proc` the benchmark reads from it.
//!
//! The server runs as a separate process (not in the harness's runtime) so that
//! its scheduling, allocator and CPU use are those of a real deployment, and so
//! the CPU time it spends can be read apart from the harness's.

use std::net::{SocketAddr, TcpListener};
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::{Duration, Instant};

use anyhow::{Context as _, bail};
use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
use tokio::net::TcpStream;
use tokio::process::{Child, Command};

/// A directory removed when dropped.
pub struct TempDir(PathBuf);

impl TempDir {
    /// Creates a fresh directory under the system temp dir.
    ///
    /// # Errors
    /// When the directory cannot be created.
    pub fn new(tag: &str) -> anyhow::Result<Self> {
        let nanos = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.subsec_nanos());
        let path = std::env::temp_dir().join(format!("{tag}-{}-{nanos}", std::process::id()));
        std::fs::create_dir_all(&path)
            .with_context(|| format!("cannot create {}", path.display()))?;
        Ok(Self(path))
    }

    pub fn path(&self) -> &Path {
        &self.0
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        // Best effort: a leftover directory in /tmp is harmless.
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// Returns a loopback address with a port that was free a moment ago.
///
/// # Errors
/// When no port can be bound at all.
pub fn free_addr() -> anyhow::Result<SocketAddr> {
    // The listener is dropped at once so the server can bind the port; another
    // process could grab it in between, which would surface as a start-up error.
    let listener = TcpListener::bind(("127.0.0.1", 0)).context("cannot bind a free port")?;
    Ok(listener.local_addr()?)
}

/// Resolves `mqtt://host:port` (or `host:port`) to an address.
///
/// # Errors
/// When the URL has another scheme or the host does not resolve.
pub fn broker_addr(url: &str) -> anyhow::Result<SocketAddr> {
    let rest = url
        .strip_prefix("mqtt://")
        .or_else(|| url.strip_prefix("tcp://"))
        .unwrap_or(url);
    anyhow::ensure!(
        !rest.contains("://"),
        "--mqtt-url must look like mqtt://host:1883, got {url}"
    );
    let authority = rest.trim_end_matches('/');
    let with_port = if authority
        .rsplit_once(':')
        .is_some_and(|(_, port)| port.parse::<u16>().is_ok())
    {
        authority.to_owned()
    } else {
        format!("{authority}:1883")
    };
    std::net::ToSocketAddrs::to_socket_addrs(&with_port)
        .with_context(|| format!("cannot resolve the broker {with_port}"))?
        .next()
        .with_context(|| format!("the broker {with_port} resolves to no address"))
}

/// The `voltgate` binary next to this executable (both come from the same `cargo build`).
///
/// # Errors
/// When the executable's path cannot be read.
pub fn sibling_voltgate() -> anyhow::Result<PathBuf> {
    let exe = std::env::current_exe().context("cannot locate the benchmark executable")?;
    let dir = exe
        .parent()
        .context("the benchmark executable has no parent directory")?;
    Ok(dir.join("voltgate"))
}

/// The MQTT client id of replica `name` of this run.
pub fn mqtt_client_id(name: &str) -> String {
    format!("voltgate-bench-{}-{name}", std::process::id())
}

/// Shape of the demo data to seed.
#[derive(Debug, Clone, Copy)]
pub struct Layout {
    pub stations: u32,
    pub bays_per_station: u32,
}

/// How to run the server.
#[derive(Debug, Clone)]
pub struct ServerOptions {
    pub layout: Layout,
    /// First topic level of the seeded cabinets' prefixes.
    pub topic_root: String,
    /// An external broker (`MQTT_URL`) instead of the embedded one.
    pub external_broker: Option<SocketAddr>,
    /// The server's login on the external broker, when it wants one.
    pub broker_login: Option<(String, String)>,
    /// `VOLTGATE_MQTT_WORKERS`; `None` keeps the server's default.
    pub mqtt_workers: Option<usize>,
    /// `DATABASE_URL`; `None` is a fresh SQLite file in the run's directory.
    pub database_url: Option<String>,
    /// `REDIS_URL` and the bus channel; `None` is the in-process bus.
    pub redis: Option<Redis>,
    /// Further settings, e.g. `VOLTGATE_WS_ENGINE`.
    pub env: Vec<(String, String)>,
}

/// The Redis event bus: the server's URL and a channel of the run's own, so
/// other servers on the same Redis neither disturb nor see the run.
#[derive(Debug, Clone)]
pub struct Redis {
    pub url: String,
    pub channel: String,
}

impl ServerOptions {
    /// The self-contained setup: SQLite, in-process bus, embedded broker.
    pub fn defaults(layout: Layout) -> Self {
        Self {
            layout,
            topic_root: "voltgate".to_owned(),
            external_broker: None,
            broker_login: None,
            mqtt_workers: None,
            database_url: None,
            redis: None,
            env: Vec::new(),
        }
    }

    /// The database the server runs on, in the run's directory `dir` by default.
    pub fn database_url(&self, dir: &Path) -> String {
        self.database_url
            .clone()
            .unwrap_or_else(|| format!("sqlite://{}?mode=rwc", dir.join("bench.db").display()))
    }
}

/// Where `seed` writes the devices' credentials in a run's directory.
pub fn credentials_path(dir: &Path) -> PathBuf {
    dir.join("devices.json")
}

/// Seeds the demo stations, cabinets, bays and devices of `options.layout` into
/// the database, and writes the devices' credentials into `dir`.
///
/// # Errors
/// When `voltgate seed` fails.
pub async fn seed(voltgate: &Path, dir: &Path, options: &ServerOptions) -> anyhow::Result<()> {
    anyhow::ensure!(
        voltgate.is_file(),
        "no voltgate binary at {} (build it with `cargo build -p voltgate`, or pass --voltgate)",
        voltgate.display()
    );
    let layout = options.layout;
    let seed = hermetic(voltgate)
        .args([
            "seed",
            "--demo",
            "--cabinets",
            "1",
            "--mqtt-topic-root",
            &options.topic_root,
        ])
        .args([
            "--stations",
            &layout.stations.to_string(),
            "--bays",
            &layout.bays_per_station.to_string(),
        ])
        .env("DATABASE_URL", options.database_url(dir))
        .env("VOLTGATE_DEVICE_CREDENTIALS_FILE", credentials_path(dir))
        .output()
        .await
        .with_context(|| format!("cannot run {}", voltgate.display()))?;
    if !seed.status.success() {
        bail!(
            "`voltgate seed` failed ({}): {}",
            seed.status,
            String::from_utf8_lossy(&seed.stderr).trim()
        );
    }
    Ok(())
}

/// A running `voltgate serve`, killed when dropped.
pub struct Server {
    child: Child,
    pid: u32,
    pub http: SocketAddr,
    pub mqtt: SocketAddr,
    /// The seeded devices' MQTT credentials, as `voltgate seed --demo` wrote them.
    pub credentials: PathBuf,
    log: PathBuf,
}

impl Server {
    /// Seeds a fresh database in `dir` and starts the server on it, then waits for `/readyz`.
    ///
    /// # Errors
    /// When seeding fails, the server exits early or does not become ready in time;
    /// the message then includes the end of the server's log.
    pub async fn start(
        voltgate: &Path,
        dir: &Path,
        options: &ServerOptions,
    ) -> anyhow::Result<Self> {
        seed(voltgate, dir, options).await?;
        Self::spawn(voltgate, dir, options, "server").await
    }

    /// Starts a server (replica `name`) on the database [`seed`] filled, then
    /// waits for `/readyz`. Replicas of one run share `dir` and have their own
    /// log and MQTT client id.
    ///
    /// # Errors
    /// When the server exits early or does not become ready in time; the message
    /// then includes the end of the server's log.
    pub async fn spawn(
        voltgate: &Path,
        dir: &Path,
        options: &ServerOptions,
        name: &str,
    ) -> anyhow::Result<Self> {
        let http = free_addr()?;
        let log = dir.join(format!("{name}.log"));
        let log_file = std::fs::File::create(&log)
            .with_context(|| format!("cannot create {}", log.display()))?;
        let mut command = hermetic(voltgate);
        command
            .arg("serve")
            .env("DATABASE_URL", options.database_url(dir))
            .env("VOLTGATE_HTTP_ADDR", http.to_string())
            .env("VOLTGATE_MQTT_TOPIC_ROOT", &options.topic_root)
            // Unique per run and replica: on an external broker the session outlives the process.
            .env("VOLTGATE_MQTT_CLIENT_ID", mqtt_client_id(name))
            // The same on every replica, as a deployment sets it (and no warning in the log).
            .env(
                "VOLTGATE_JWT_SECRET",
                "a-benchmark-secret-that-is-long-enough",
            )
            // Every subscriber of the harness connects from this one host.
            .env("VOLTGATE_MAX_WS_CONNECTIONS_PER_CLIENT", "1000000")
            .env("RUST_LOG", "warn");
        let mqtt = match options.external_broker {
            Some(broker) => {
                let url = match &options.broker_login {
                    Some((user, password)) => format!("mqtt://{user}:{password}@{broker}"),
                    None => format!("mqtt://{broker}"),
                };
                command.env("MQTT_URL", url);
                broker
            }
            None => {
                let embedded = free_addr()?;
                command.env("VOLTGATE_EMBEDDED_MQTT_ADDR", embedded.to_string());
                embedded
            }
        };
        if let Some(workers) = options.mqtt_workers {
            command.env("VOLTGATE_MQTT_WORKERS", workers.to_string());
        }
        if let Some(redis) = &options.redis {
            command
                .env("REDIS_URL", &redis.url)
                .env("VOLTGATE_BUS_CHANNEL", &redis.channel);
        }
        for (name, value) in &options.env {
            command.env(name, value);
        }
        let child = command
            .stdin(Stdio::null())
            // Logs go to stdout, panics (e.g. of the embedded broker's threads) to stderr: keep both.
            .stdout(Stdio::from(log_file.try_clone()?))
            .stderr(Stdio::from(log_file))
            // Covers every early return of the harness, including `?` on errors.
            .kill_on_drop(true)
            .spawn()
            .with_context(|| format!("cannot start {} serve", voltgate.display()))?;
        let pid = child
            .id()
            .context("the server exited before it could be observed")?;
        let mut server = Self {
            child,
            pid,
            http,
            mqtt,
            credentials: credentials_path(dir),
            log,
        };
        server.wait_ready(Duration::from_secs(30)).await?;
        Ok(server)
    }

    async fn wait_ready(&mut self, patience: Duration) -> anyhow::Result<()> {
        let deadline = Instant::now() + patience;
        loop {
            self.ensure_running()?;
            if let Ok((200, _)) = http_get(self.http, "/readyz").await {
                return Ok(());
            }
            if Instant::now() >= deadline {
                bail!(
                    "the server was not ready within {patience:?}\n{}",
                    self.log_excerpt()
                );
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    /// Fails when the server process has exited.
    ///
    /// # Errors
    /// When it has, with the end of its log.
    pub fn ensure_running(&mut self) -> anyhow::Result<()> {
        match self.child.try_wait() {
            Ok(None) => Ok(()),
            Ok(Some(status)) => bail!("the server exited ({status})\n{}", self.log_excerpt()),
            Err(err) => bail!("cannot check the server process: {err}"),
        }
    }

    /// Process id, for reading its CPU use.
    pub fn pid(&self) -> u32 {
        self.pid
    }

    /// Resident memory, in KiB.
    pub fn rss_kib(&self) -> Option<u64> {
        crate::procfs::rss_kib(self.pid)
    }

    /// Scrapes `/metrics` and keeps the counters that show lost or dropped
    /// work, and how large the ingestion's batches were.
    ///
    /// # Errors
    /// When the endpoint cannot be read.
    pub async fn loss_counters(&self) -> anyhow::Result<Vec<String>> {
        const WATCHED: [&str; 8] = [
            "voltgate_batch_items_sum",
            "voltgate_batch_items_count",
            "voltgate_batch_failures_total",
            "voltgate_mqtt_messages_received_total",
            "voltgate_mqtt_messages_dropped_total",
            "voltgate_mqtt_state_stale_total",
            "voltgate_bus_events_published_total",
            "voltgate_bus_events_lagged_total",
        ];
        let (status, body) = http_get(self.http, "/metrics").await?;
        anyhow::ensure!(status == 200, "GET /metrics answered {status}");
        Ok(body
            .lines()
            .filter(|line| WATCHED.iter().any(|name| line.starts_with(name)))
            .map(str::to_owned)
            .collect())
    }

    /// Stops the server and waits for it.
    pub async fn stop(mut self) {
        // SIGKILL is enough: nothing the server keeps outlives the run (a
        // PostgreSQL database of the run's own is dropped by whoever made it).
        let _ = self.child.kill().await;
    }

    /// The first distinct lines of the server's log, where a failure's cause shows
    /// (later lines tend to repeat its consequences).
    pub fn log_excerpt(&self) -> String {
        // The readiness probe of the embedded broker opens and closes a bare TCP
        // connection, which rumqttd logs as an error: not a problem.
        const NOISE: &str = "Error while handling MQTT connect packet";
        let text = std::fs::read_to_string(&self.log).unwrap_or_default();
        let mut seen = std::collections::HashSet::new();
        let lines: Vec<&str> = text
            .lines()
            .filter(|line| !line.trim().is_empty() && !line.contains(NOISE))
            // Timestamps make every log line unique; compare what follows them.
            .filter(|line| seen.insert(line.split_once(' ').map_or(*line, |(_, rest)| rest)))
            .take(15)
            .collect();
        if lines.is_empty() {
            "(the server logged nothing)".to_owned()
        } else {
            format!("server log (first distinct lines):\n{}", lines.join("\n"))
        }
    }
}

/// A command that ignores the caller's service settings, so the benchmark measures
/// the setup it configures itself and nothing else.
pub(crate) fn hermetic(voltgate: &Path) -> Command {
    let mut command = Command::new(voltgate);
    // The log is read back into error messages: plain text, panics without backtraces.
    command.env("NO_COLOR", "1").env("RUST_BACKTRACE", "0");
    for var in [
        "MQTT_URL",
        "REDIS_URL",
        "VOLTGATE_MQTT_TOPIC_ROOT",
        "VOLTGATE_DEMO",
        "VOLTGATE_LOG_FORMAT",
        "VOLTGATE_BUS_CHANNEL",
        "VOLTGATE_WS_ENGINE",
        "VOLTGATE_MAX_WS_CONNECTIONS",
        "VOLTGATE_MAX_WS_CONNECTIONS_PER_CLIENT",
    ] {
        command.env_remove(var);
    }
    command
}

/// A minimal HTTP/1.1 GET, enough for `/readyz` and `/metrics` on loopback.
///
/// # Errors
/// When the connection fails or the answer has no status line.
pub async fn http_get(addr: SocketAddr, path: &str) -> anyhow::Result<(u16, String)> {
    let exchange = async {
        let mut stream = TcpStream::connect(addr).await?;
        let request = format!("GET {path} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n\r\n");
        stream.write_all(request.as_bytes()).await?;
        let mut response = Vec::new();
        stream.read_to_end(&mut response).await?;
        anyhow::Ok(response)
    };
    let response = tokio::time::timeout(Duration::from_secs(5), exchange)
        .await
        .map_err(|_| anyhow::anyhow!("GET {path}: no answer within 5 s"))??;
    let text = String::from_utf8_lossy(&response);
    let status = text
        .split_whitespace()
        .nth(1)
        .and_then(|code| code.parse().ok())
        .with_context(|| format!("GET {path}: not an HTTP answer"))?;
    let body = text
        .split_once("\r\n\r\n")
        .map_or("", |(_, body)| body)
        .to_owned();
    Ok((status, body))
}

#[cfg(test)]
mod tests {
    use super::broker_addr;

    #[test]
    fn broker_urls_resolve_with_a_default_port() {
        let addr = |url| broker_addr(url).ok().map(|a| a.to_string());
        assert_eq!(
            addr("mqtt://127.0.0.1:1884"),
            Some("127.0.0.1:1884".to_owned())
        );
        assert_eq!(addr("tcp://127.0.0.1"), Some("127.0.0.1:1883".to_owned()));
        assert_eq!(addr("127.0.0.1:1999/"), Some("127.0.0.1:1999".to_owned()));
        assert!(broker_addr("http://127.0.0.1:1883").is_err());
    }
}
