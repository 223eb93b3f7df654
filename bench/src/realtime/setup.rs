//! The two setups the realtime benchmarks run on, and the services they need.
//!
//! *Defaults* is what voltgate does with no configuration: SQLite, the
//! in-process bus, the embedded broker. *Production* is PostgreSQL (a database
//! of the run's own), Redis (a bus channel of the run's own) and a Mosquitto of
//! the run's own on a free port, configured by `voltgate mqtt mosquitto-auth`
//! as a deployment would be: devices log in with their credentials and may
//! publish only on their own bay's topics. Nothing of the run is left behind in
//! the shared PostgreSQL and Redis (its database is dropped, its bus's keys
//! deleted), and other servers on them are not disturbed.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::{Duration, Instant};

use anyhow::{Context as _, bail};
use sea_orm::{ConnectionTrait as _, Database};
use tokio::process::{Child, Command};

use crate::server::{self, Layout, Redis, Server, ServerOptions, TempDir};

/// The server's login on the run's Mosquitto (a throw-away broker on loopback).
const SERVER_LOGIN: (&str, &str) = ("voltgate-bench", "bench-server-secret");

/// Which services the server uses.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Setup {
    /// SQLite, in-process bus, embedded broker.
    Defaults,
    /// PostgreSQL, Redis, Mosquitto.
    Production,
}

impl Setup {
    pub fn describe(self) -> &'static str {
        match self {
            Self::Defaults => "SQLite + in-process bus + embedded broker",
            Self::Production => "PostgreSQL + Redis + Mosquitto",
        }
    }

    pub fn name(self) -> &'static str {
        match self {
            Self::Defaults => "defaults",
            Self::Production => "production",
        }
    }
}

/// Where the production setup's services are.
#[derive(Debug, Clone)]
pub struct Services {
    /// A PostgreSQL URL allowed to create databases (e.g. `…/postgres`).
    pub postgres_admin_url: String,
    pub redis_url: String,
    /// The `mosquitto` executable.
    pub mosquitto: PathBuf,
}

/// One setup made ready: its directory, seeded database and services; servers
/// are started on it with [`Deployment::start`].
pub struct Deployment {
    pub setup: Setup,
    pub options: ServerOptions,
    /// The login of a raw MQTT subscriber that may read every state (the
    /// server's own), when the broker admits one: Mosquitto only.
    pub raw_login: Option<(String, String)>,
    voltgate: PathBuf,
    mosquitto: Option<Mosquitto>,
    database: Option<PgDatabase>,
    // Last: removed after the processes that use it are gone.
    dir: TempDir,
}

impl Deployment {
    /// Creates the database (and, for production, the Mosquitto), seeds `layout`.
    ///
    /// # Errors
    /// When a service is unreachable, seeding fails or Mosquitto does not start.
    pub async fn prepare(
        voltgate: &Path,
        setup: Setup,
        layout: Layout,
        services: &Services,
        tag: &str,
    ) -> anyhow::Result<Self> {
        let dir = TempDir::new(&format!("voltgate-realtime-{tag}"))?;
        let mut options = ServerOptions::defaults(layout);
        let mut deployment = Self {
            setup,
            options: options.clone(),
            raw_login: None,
            voltgate: voltgate.to_owned(),
            mosquitto: None,
            database: None,
            dir,
        };
        if setup == Setup::Defaults {
            server::seed(voltgate, deployment.dir.path(), &options).await?;
            return Ok(deployment);
        }
        let run = format!("{}_{tag}", std::process::id()).replace('-', "_");
        let database = PgDatabase::create(&services.postgres_admin_url, &run).await?;
        options.database_url = Some(database.url.clone());
        deployment.database = Some(database);
        options.redis = Some(Redis {
            url: services.redis_url.clone(),
            channel: format!("voltgate-bench.{run}"),
        });
        server::seed(voltgate, deployment.dir.path(), &options).await?;
        let login = (SERVER_LOGIN.0.to_owned(), SERVER_LOGIN.1.to_owned());
        let mosquitto = Mosquitto::start(
            &services.mosquitto,
            voltgate,
            &deployment.dir.path().join("mosquitto"),
            &options,
            &login,
        )
        .await?;
        options.external_broker = Some(mosquitto.addr);
        options.broker_login = Some(login.clone());
        deployment.raw_login = Some(login);
        deployment.mosquitto = Some(mosquitto);
        deployment.options = options;
        Ok(deployment)
    }

    /// Starts replica `name` with `env` added to the setup's settings.
    ///
    /// # Errors
    /// When the server does not become ready.
    pub async fn start(&self, name: &str, env: &[(&str, String)]) -> anyhow::Result<Server> {
        let mut options = self.options.clone();
        options.env.extend(
            env.iter()
                .map(|(name, value)| ((*name).to_owned(), value.clone())),
        );
        Server::spawn(&self.voltgate, self.dir.path(), &options, name).await
    }

    /// The setup's database.
    pub fn database_url(&self) -> String {
        self.options.database_url(self.dir.path())
    }

    /// The external broker's address (production), before any server starts.
    pub fn broker(&self) -> Option<SocketAddr> {
        self.mosquitto.as_ref().map(|m| m.addr)
    }

    /// Where `voltgate seed` wrote the devices' credentials.
    pub fn credentials(&self) -> PathBuf {
        server::credentials_path(self.dir.path())
    }

    /// Mosquitto's own complaints (dropped messages, refused clients), if any.
    pub fn broker_warnings(&self) -> Option<String> {
        self.mosquitto.as_ref().and_then(Mosquitto::warnings)
    }

    /// Stops the services and removes what the run created.
    pub async fn tear_down(self) {
        if let Some(mut mosquitto) = self.mosquitto {
            let _ = mosquitto.child.kill().await;
        }
        if let Some(database) = self.database {
            database.drop_database().await;
        }
        if let Some(redis) = &self.options.redis
            && let Err(err) = forget_bus(redis).await
        {
            eprintln!(
                "could not remove the keys {}:* from Redis: {err}",
                redis.channel
            );
        }
    }
}

/// Deletes the bus's keys (its history streams, which would expire, and its
/// epoch, which would not).
async fn forget_bus(redis: &Redis) -> redis::RedisResult<()> {
    let client = redis::Client::open(redis.url.as_str())?;
    let mut connection = client.get_multiplexed_async_connection().await?;
    let pattern = format!("{}:*", redis.channel);
    let mut cursor = 0_u64;
    loop {
        let (next, keys): (u64, Vec<String>) = redis::cmd("SCAN")
            .arg(cursor)
            .arg("MATCH")
            .arg(&pattern)
            .arg("COUNT")
            .arg(1000)
            .query_async(&mut connection)
            .await?;
        if !keys.is_empty() {
            redis::cmd("DEL")
                .arg(&keys)
                .query_async::<()>(&mut connection)
                .await?;
        }
        if next == 0 {
            return Ok(());
        }
        cursor = next;
    }
}

/// A PostgreSQL database of the run's own.
struct PgDatabase {
    admin_url: String,
    name: String,
    url: String,
}

impl PgDatabase {
    async fn create(admin_url: &str, run: &str) -> anyhow::Result<Self> {
        let name = format!("voltgate_bench_{run}");
        let admin = Database::connect(admin_url)
            .await
            .with_context(|| format!("cannot reach PostgreSQL at {admin_url}"))?;
        let created = admin
            .execute_unprepared(&format!("CREATE DATABASE {name}"))
            .await
            .with_context(|| format!("cannot create the database {name}"));
        let _ = admin.close().await;
        created?;
        Ok(Self {
            admin_url: admin_url.to_owned(),
            url: sibling_database(admin_url, &name)?,
            name,
        })
    }

    /// Best effort: a leftover database is reported, not fatal.
    async fn drop_database(self) {
        let dropped = async {
            let admin = Database::connect(&self.admin_url).await?;
            // FORCE: a killed replica's connections may not have been noticed yet.
            let result = admin
                .execute_unprepared(&format!(
                    "DROP DATABASE IF EXISTS {} WITH (FORCE)",
                    self.name
                ))
                .await;
            let _ = admin.close().await;
            result.map(|_| ())
        };
        if let Err(err) = dropped.await {
            eprintln!("could not drop the database {}: {err}", self.name);
        }
    }
}

/// `postgres://user@host:port/admin` → `postgres://user@host:port/<name>`
/// (query parameters are not carried over).
fn sibling_database(admin_url: &str, name: &str) -> anyhow::Result<String> {
    let (scheme, rest) = admin_url
        .split_once("://")
        .with_context(|| format!("not a PostgreSQL URL: {admin_url}"))?;
    let authority = rest.split(['/', '?']).next().unwrap_or(rest);
    Ok(format!("{scheme}://{authority}/{name}"))
}

/// A Mosquitto of the run's own on a free port, with the password and ACL
/// files `voltgate mqtt mosquitto-auth` writes; killed when dropped.
struct Mosquitto {
    child: Child,
    addr: SocketAddr,
    log: PathBuf,
}

impl Mosquitto {
    async fn start(
        mosquitto: &Path,
        voltgate: &Path,
        dir: &Path,
        options: &ServerOptions,
        login: &(String, String),
    ) -> anyhow::Result<Self> {
        let addr = server::free_addr()?;
        let database_url = options
            .database_url
            .as_deref()
            .context("the production setup has a database URL")?;
        let auth = server::hermetic(voltgate)
            .args(["mqtt", "mosquitto-auth", "--dir"])
            .arg(dir)
            .args(["--listen", &addr.to_string()])
            .args(["--mqtt-topic-root", &options.topic_root])
            .env("DATABASE_URL", database_url)
            .env("MQTT_URL", format!("mqtt://{}:{}@{addr}", login.0, login.1))
            .env("RUST_LOG", "warn")
            .output()
            .await
            .with_context(|| format!("cannot run {}", voltgate.display()))?;
        if !auth.status.success() {
            bail!(
                "`voltgate mqtt mosquitto-auth` failed: {}",
                String::from_utf8_lossy(&auth.stderr).trim()
            );
        }
        // Run as root, Mosquitto would switch to the `mosquitto` user, who cannot
        // read the private files just written; `user root` keeps it as it is (and
        // is ignored when not run as root).
        let conf = dir.join("mosquitto.conf");
        let mut text = std::fs::read_to_string(&conf)
            .with_context(|| format!("cannot read {}", conf.display()))?;
        text.push_str("user root\n");
        std::fs::write(&conf, text)?;
        let log = dir.join("mosquitto.log");
        let log_file = std::fs::File::create(&log)?;
        let child = Command::new(mosquitto)
            .arg("-c")
            .arg(&conf)
            .stdin(Stdio::null())
            .stdout(Stdio::from(log_file.try_clone()?))
            .stderr(Stdio::from(log_file))
            .kill_on_drop(true)
            .spawn()
            .with_context(|| format!("cannot start {}", mosquitto.display()))?;
        let mut broker = Self { child, addr, log };
        let deadline = Instant::now() + Duration::from_secs(10);
        loop {
            if let Ok(Some(status)) = broker.child.try_wait() {
                bail!(
                    "mosquitto exited ({status}): {}",
                    std::fs::read_to_string(&broker.log).unwrap_or_default()
                );
            }
            if tokio::net::TcpStream::connect(addr).await.is_ok() {
                return Ok(broker);
            }
            if Instant::now() >= deadline {
                let _ = broker.child.kill().await;
                bail!("mosquitto did not listen on {addr} within 10 s");
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    fn warnings(&self) -> Option<String> {
        let text = std::fs::read_to_string(&self.log).ok()?;
        let lines: Vec<&str> = text
            .lines()
            .filter(|line| {
                let line = line.to_ascii_lowercase();
                line.contains("dropped") || line.contains("denied") || line.contains("error")
            })
            .collect();
        (!lines.is_empty()).then(|| {
            format!(
                "{} lines, first: {}",
                lines.len(),
                lines.first().copied().unwrap_or_default()
            )
        })
    }
}

#[cfg(test)]
mod tests {
    use super::sibling_database;

    #[test]
    fn the_run_database_sits_next_to_the_admin_one() {
        let url = |admin| sibling_database(admin, "run").ok();
        assert_eq!(
            url("postgres://postgres@127.0.0.1:5432/postgres").as_deref(),
            Some("postgres://postgres@127.0.0.1:5432/run")
        );
        assert_eq!(
            url("postgres://u:p@db?sslmode=disable").as_deref(),
            Some("postgres://u:p@db/run")
        );
        assert!(url("db:5432").is_none());
    }
}
