//! Typed settings, read from command-line flags and environment variables.
//!
//! With nothing set voltgate runs self-contained: SQLite in `voltgate.db`, the
//! in-process event bus and an embedded MQTT broker. Pointing `DATABASE_URL`,
//! `REDIS_URL` and `MQTT_URL` at real services switches each one independently.

use std::net::SocketAddr;

use clap::{Args, ValueEnum};
use url::Url;

/// Settings shared by every subcommand that touches storage.
#[derive(Clone, Args)]
pub struct DatabaseSettings {
    /// Database URL: `sqlite://path?mode=rwc` or `postgres://user:pass@host/db`.
    #[arg(
        long,
        env = "DATABASE_URL",
        default_value = "sqlite://voltgate.db?mode=rwc",
        hide_env_values = true
    )]
    pub database_url: String,

    /// Largest number of pooled database connections (SQLite always uses one writer).
    #[arg(long, env = "VOLTGATE_DB_MAX_CONNECTIONS", default_value_t = 10)]
    pub db_max_connections: u32,

    /// Read-only connections beside the one writer of a SQLite file, for the
    /// hot read paths (scans at the doors).
    #[arg(long, env = "VOLTGATE_DB_READERS", default_value_t = 4)]
    pub db_readers: u32,

    /// Connections of the write lanes' own on PostgreSQL (sales rushes, door
    /// scans), beside the pool: a lane's batch never waits behind requests
    /// for a connection. One lane runs at a time per event, so this bounds
    /// how many events' lanes commit at once. SQLite's lanes use its writer.
    #[arg(long, env = "VOLTGATE_DB_LANE_CONNECTIONS", default_value_t = 4)]
    pub db_lane_connections: u32,
}

/// How the server reaches MQTT.
#[derive(Clone, PartialEq, Eq)]
pub enum MqttMode {
    /// Run the embedded broker and ingest from it.
    Embedded { addr: SocketAddr },
    /// Use an external broker such as Mosquitto.
    External { url: Url },
    /// No MQTT at all (`MQTT_URL=none`).
    Disabled,
}

/// Settings for `voltgate serve`.
#[derive(Clone, Args)]
pub struct ServeSettings {
    #[command(flatten)]
    pub database: DatabaseSettings,

    /// Address the HTTP server listens on (port 0 picks a free port).
    #[arg(long, env = "VOLTGATE_HTTP_ADDR", default_value = "127.0.0.1:8080")]
    pub http_addr: SocketAddr,

    /// Redis URL for the event bus shared by replicas; unset means the in-process bus.
    #[arg(long, env = "REDIS_URL", hide_env_values = true)]
    pub redis_url: Option<Url>,

    /// Redis pub/sub channel carrying domain events between replicas.
    #[arg(long, env = "VOLTGATE_BUS_CHANNEL", default_value = "voltgate.events")]
    pub bus_channel: String,

    /// External MQTT broker (`mqtt://host:1883`); unset runs the embedded broker, `none` disables MQTT.
    #[arg(long, env = "MQTT_URL", hide_env_values = true)]
    pub mqtt_url: Option<String>,

    /// Address of the embedded MQTT broker (MQTT 3.1.1), used when `MQTT_URL` is unset.
    #[arg(
        long,
        env = "VOLTGATE_EMBEDDED_MQTT_ADDR",
        default_value = "127.0.0.1:1883"
    )]
    pub embedded_mqtt_addr: SocketAddr,

    /// First topic level of every cabinet's MQTT prefix; the server subscribes below it.
    #[arg(long, env = "VOLTGATE_MQTT_TOPIC_ROOT", default_value = "voltgate")]
    pub mqtt_topic_root: String,

    /// MQTT client id of this replica; it must be stable across restarts and unique per replica.
    #[arg(long, env = "VOLTGATE_MQTT_CLIENT_ID")]
    pub mqtt_client_id: Option<String>,

    /// Seconds the broker keeps this replica's MQTT session (and queued messages) while it is away.
    #[arg(long, env = "VOLTGATE_MQTT_SESSION_EXPIRY", default_value_t = 300)]
    pub mqtt_session_expiry_secs: u32,

    /// Let the other replicas take over this replica's MQTT session when it dies
    /// and ingest what the broker kept for it (through a Will on
    /// `<root>/_replicas/gone`). Applies only to an external broker shared by
    /// replicas; off, those messages wait for this replica's return or expire
    /// with its session.
    #[arg(long, env = "VOLTGATE_MQTT_TAKEOVER", default_value_t = true, action = clap::ArgAction::Set)]
    pub mqtt_takeover: bool,

    /// Seconds the broker waits, once this replica's connection dropped
    /// without a goodbye, before announcing it gone (MQTT 5 Will Delay
    /// Interval): a replica back within this time resumes its own session and
    /// is not taken over. 0 announces at once.
    #[arg(long, env = "VOLTGATE_MQTT_TAKEOVER_DELAY", default_value_t = 0)]
    pub mqtt_takeover_delay_secs: u32,

    /// Number of ingestion workers; messages of one bay always go to the same worker.
    #[arg(long, env = "VOLTGATE_MQTT_WORKERS", default_value_t = 4)]
    pub mqtt_workers: usize,

    /// Most device messages (QoS 1) the broker may send this replica before it
    /// acknowledges them (MQTT 5 Receive Maximum, announced on connecting).
    /// Without it Mosquitto allows 20 (`max_inflight_messages`), which caps
    /// ingestion batches at a few messages each; acknowledgements follow the
    /// commit of each batch, so this also bounds what one replica holds unstored.
    #[arg(long, env = "VOLTGATE_MQTT_RECEIVE_MAXIMUM", default_value_t = 2000,
          value_parser = clap::value_parser!(u16).range(1..))]
    pub mqtt_receive_maximum: u16,

    /// Largest MQTT packet, in bytes: the server's client accepts (and announces) it,
    /// and the embedded broker enforces it. Keep it at least the broker's own limit
    /// (`max_packet_size` in Mosquitto), or one large publish costs the connection.
    #[arg(long, env = "VOLTGATE_MQTT_MAX_PACKET_BYTES", default_value_t = 256 * 1024)]
    pub mqtt_max_packet_bytes: u32,

    /// Largest device payload ingested, in bytes; larger ones are acknowledged,
    /// counted as `payload_too_large` and dropped.
    #[arg(long, env = "VOLTGATE_MQTT_MAX_PAYLOAD_BYTES", default_value_t = crate::mqtt::payload::DEFAULT_MAX_PAYLOAD_BYTES)]
    pub mqtt_max_payload_bytes: usize,

    /// How many seconds a device's clock may run ahead of the server's; reports
    /// stamped later are counted as `clock_skew` and dropped.
    #[arg(long, env = "VOLTGATE_MQTT_MAX_CLOCK_SKEW_SECS", default_value_t = 300)]
    pub mqtt_max_clock_skew_secs: u32,

    /// Most device reports an ingestion worker applies in one transaction: what
    /// waits in its queue is taken together, up to this many.
    #[arg(long, env = "VOLTGATE_INGEST_BATCH_MAX", default_value_t = 1000)]
    pub ingest_batch_max: usize,

    /// Microseconds an ingestion worker waits for more reports before applying
    /// a batch that is not full. 0 (the default) adds no latency: batches still
    /// grow under load, from what arrives while the previous one commits.
    #[arg(long, env = "VOLTGATE_INGEST_BATCH_LINGER_US", default_value_t = 0)]
    pub ingest_batch_linger_us: u64,

    /// Milliseconds telemetry ingestion remembers bays and devices, the
    /// sessions of bays and the open telemetry alerts of devices, instead of
    /// reading them for every batch (`docs/supervision.md`). 0 reads every time.
    #[arg(long, env = "VOLTGATE_INGEST_CACHE_MS", default_value_t = 1000)]
    pub ingest_cache_ms: u64,

    /// A temperature reading above this (°C) raises an `OVER_TEMPERATURE` alert.
    #[arg(long, env = "VOLTGATE_ALERT_MAX_TEMPERATURE_C", default_value_t = 60.0)]
    pub alert_max_temperature_c: f64,

    /// An `OVER_TEMPERATURE` alert resolves itself once a reading is this many
    /// °C below the limit.
    #[arg(
        long,
        env = "VOLTGATE_ALERT_TEMPERATURE_HYSTERESIS_C",
        default_value_t = 5.0
    )]
    pub alert_temperature_hysteresis_c: f64,

    /// A smoke reading at or above this raises a `SMOKE` alert (resolved by a person).
    #[arg(long, env = "VOLTGATE_ALERT_SMOKE_THRESHOLD", default_value_t = 0.5)]
    pub alert_smoke_threshold: f64,

    #[command(flatten)]
    pub device_credentials: DeviceCredentialsFile,

    #[command(flatten)]
    pub reservations: crate::charging::settings::ReservationSettings,

    #[command(flatten)]
    pub checkin: crate::checkin::settings::CheckinSettings,

    #[command(flatten)]
    pub supervision: crate::supervision::settings::SupervisionSettings,

    #[command(flatten)]
    pub device_commands: crate::devices::commands_log::CommandSettings,

    #[command(flatten)]
    pub firmware: crate::devices::firmware::FirmwareSettings,

    #[command(flatten)]
    pub kiosks: crate::charging::settings::KioskSettings,

    #[command(flatten)]
    pub payments: crate::ticketing::providers::settings::PaymentSettings,

    /// HMAC secret (32 bytes or more) signing access tokens; unset generates one per
    /// process, so tokens die with it and replicas do not accept each other's.
    #[arg(long, env = "VOLTGATE_JWT_SECRET", hide_env_values = true)]
    pub jwt_secret: Option<String>,

    /// Ed25519 key (32 bytes, base64url) signing documents devices verify
    /// offline; unset generates one once and stores it in the database.
    #[arg(long, env = "VOLTGATE_SIGNING_KEY", hide_env_values = true)]
    pub signing_key: Option<String>,

    /// Earlier signing secrets still accepted while their tokens expire (key rotation), comma-separated.
    #[arg(
        long,
        env = "VOLTGATE_JWT_PREVIOUS_SECRETS",
        hide_env_values = true,
        value_delimiter = ','
    )]
    pub jwt_previous_secrets: Vec<String>,

    /// Lifetime of access tokens, in seconds.
    #[arg(long, env = "VOLTGATE_ACCESS_TOKEN_TTL", default_value_t = 900)]
    pub access_token_ttl_secs: i64,

    /// Lifetime of refresh tokens, in days.
    #[arg(long, env = "VOLTGATE_REFRESH_TOKEN_TTL_DAYS", default_value_t = 30)]
    pub refresh_token_ttl_days: i64,

    /// The most positions (tickets, add-ons, goods) one cart holds.
    #[arg(
        long,
        env = "VOLTGATE_CART_MAX_POSITIONS",
        default_value_t = crate::ticketing::carts::DEFAULT_CART_MAX_POSITIONS,
        value_parser = clap::builder::TypedValueParser::map(
            clap::value_parser!(u16).range(1..),
            usize::from
        )
    )]
    pub cart_max_positions: usize,

    /// Enforce the rate limits on sign-in, registration and availability checks;
    /// turn off only for load tests, or behind another limiter.
    #[arg(long, env = "VOLTGATE_RATE_LIMITS", default_value_t = true, action = clap::ArgAction::Set)]
    pub rate_limits: bool,

    /// Create demo stations, cabinets, bays and devices on start when the database has none.
    #[arg(long, env = "VOLTGATE_DEMO")]
    pub demo: bool,

    /// Apply pending migrations when the server starts.
    #[arg(long, env = "VOLTGATE_MIGRATE_ON_START", default_value_t = true, action = clap::ArgAction::Set)]
    pub migrate_on_start: bool,

    #[command(flatten)]
    pub graphql_limits: GraphqlLimits,

    /// Largest accepted request body, in bytes.
    #[arg(long, env = "VOLTGATE_MAX_BODY_BYTES", default_value_t = 256 * 1024)]
    pub max_body_bytes: usize,

    /// Most WebSocket connections served at once by this replica.
    #[arg(long, env = "VOLTGATE_MAX_WS_CONNECTIONS", default_value_t = 10_000)]
    pub max_ws_connections: usize,

    /// Most WebSocket connections one client (IPv4 address, IPv6 /64) holds on
    /// this replica (429 above). Behind load balancers, set
    /// `VOLTGATE_TRUSTED_PROXY_HOPS`, or every client is the balancer.
    #[arg(
        long,
        env = "VOLTGATE_MAX_WS_CONNECTIONS_PER_CLIENT",
        default_value_t = 1_000
    )]
    pub max_ws_connections_per_client: usize,

    /// Seconds a WebSocket may stay open without `connection_init` (then closed with 4408).
    #[arg(long, env = "VOLTGATE_WS_INIT_TIMEOUT_SECS", default_value_t = 10)]
    pub ws_init_timeout_secs: u64,

    /// Seconds between the server's keep-alive pings on a WebSocket.
    #[arg(long, env = "VOLTGATE_WS_KEEPALIVE_SECS", default_value_t = 15)]
    pub ws_keepalive_secs: u64,

    /// Seconds a closing WebSocket has to write what it still owes the client
    /// (its close frame last); a client that reads nothing is then cut off.
    #[arg(long, env = "VOLTGATE_WS_CLOSE_TIMEOUT_SECS", default_value_t = 5)]
    pub ws_close_timeout_secs: u64,

    /// What serves GraphQL WebSockets: `voltgate`, the realtime engine, or
    /// `stock`, async-graphql-axum's own handler on the same schema and the same
    /// `connection_init` authentication, without the engine's shared executions,
    /// limits and lag handling. `stock` exists only for comparison benchmarks
    /// (`bench/run-realtime.sh`); never run it in production.
    #[arg(
        long,
        env = "VOLTGATE_WS_ENGINE",
        value_enum,
        default_value = "voltgate"
    )]
    pub ws_engine: WsEngine,

    /// Operations (subscriptions) one WebSocket may run at once; more are refused.
    #[arg(long, env = "VOLTGATE_MAX_WS_SUBSCRIPTIONS", default_value_t = 100)]
    pub max_ws_subscriptions: usize,

    /// Messages waiting for a slow WebSocket client; a subscription whose next
    /// message finds the queue full ends with `SUBSCRIBER_LAGGING` and its last cursor.
    #[arg(long, env = "VOLTGATE_WS_QUEUE_MESSAGES", default_value_t = 256)]
    pub ws_queue_messages: usize,

    /// Results a group of identical subscriptions keeps for members that have not
    /// read them yet; a member further behind is dropped with `SUBSCRIBER_LAGGING`.
    #[arg(long, env = "VOLTGATE_SUBSCRIPTION_BUFFER", default_value_t = 1024)]
    pub subscription_buffer: usize,

    /// Seconds each topic's events are kept for subscribers that resume with
    /// `after`; an older cursor is answered with `CURSOR_EXPIRED`.
    #[arg(long, env = "VOLTGATE_EVENT_RETENTION_SECS", default_value_t = 120)]
    pub event_retention_secs: u64,

    /// Events kept per topic at most, whatever their age (also the most one
    /// resume replays).
    #[arg(
        long,
        env = "VOLTGATE_EVENT_RETENTION_EVENTS",
        default_value_t = 10_000
    )]
    pub event_retention_events: usize,

    /// Milliseconds a publish retries while Redis does not answer before its
    /// events wait in the backlog (the caller waits that long).
    #[arg(
        long,
        env = "VOLTGATE_BUS_PUBLISH_PATIENCE_MS",
        default_value_t = 15_000
    )]
    pub bus_publish_patience_ms: u64,

    /// Events a replica keeps for Redis at most while it does not answer
    /// (a row's newer state replaces its older one); beyond, the oldest are
    /// dropped and counted in `voltgate_bus_events_lost_total`.
    #[arg(long, env = "VOLTGATE_BUS_BACKLOG_EVENTS", default_value_t = 100_000)]
    pub bus_backlog_events: usize,

    /// Reverse proxies (load balancers) in front of voltgate that append the
    /// client's address to `X-Forwarded-For`: the client IP used for rate limits
    /// and the security journal is read that many hops from the right. 0 trusts
    /// no header and uses the peer address.
    #[arg(long, env = "VOLTGATE_TRUSTED_PROXY_HOPS", default_value_t = 0)]
    pub trusted_proxy_hops: usize,

    /// Origins allowed by CORS, comma-separated; `*` allows any, empty allows none.
    #[arg(
        long,
        env = "VOLTGATE_CORS_ORIGINS",
        value_delimiter = ',',
        default_value = ""
    )]
    pub cors_origins: Vec<String>,

    /// Secret (32 characters or more) keying the hashes badge UIDs are stored
    /// under; unset generates one once and stores it in the database.
    #[arg(long, env = "VOLTGATE_BADGE_KEY", hide_env_values = true)]
    pub badge_key: Option<String>,

    /// Earlier badge keys still accepted for lookups while badges are re-hashed
    /// (key rotation), comma-separated.
    #[arg(
        long,
        env = "VOLTGATE_BADGE_PREVIOUS_KEYS",
        hide_env_values = true,
        value_delimiter = ','
    )]
    pub badge_previous_keys: Vec<String>,
}

/// The demo devices' credentials: written (mode 0600) by `serve --demo` and
/// `seed --demo`, read by `voltgate simulate`.
#[derive(Debug, Clone, Args)]
pub struct DeviceCredentialsFile {
    /// The demo devices' credentials file (written by `--demo`, read by `simulate`).
    #[arg(
        long = "device-credentials-file",
        env = "VOLTGATE_DEVICE_CREDENTIALS_FILE",
        default_value = "voltgate-devices.json"
    )]
    pub path: std::path::PathBuf,
}

/// What one GraphQL request may cost; `docs/security.md` explains each limit.
#[derive(Debug, Clone, Args)]
pub struct GraphqlLimits {
    /// Deepest GraphQL selection accepted (GraphiQL's introspection query needs 13).
    #[arg(long, env = "VOLTGATE_MAX_QUERY_DEPTH", default_value_t = 16)]
    pub max_query_depth: usize,

    /// Highest complexity of a request (one point per field, lists multiplied by
    /// `first`); a batch's operations share it.
    #[arg(long, env = "VOLTGATE_MAX_QUERY_COMPLEXITY", default_value_t = 2000)]
    pub max_query_complexity: usize,

    /// Most lexical tokens in a GraphQL document, counted before it is parsed.
    #[arg(long, env = "VOLTGATE_MAX_QUERY_TOKENS", default_value_t = 10_000)]
    pub max_query_tokens: usize,

    /// Most fields (and fragment spreads) of a request after fragment expansion;
    /// a batch's operations share it.
    #[arg(long, env = "VOLTGATE_MAX_QUERY_FIELDS", default_value_t = 2_000)]
    pub max_query_fields: usize,

    /// Most fragment definitions in a document.
    #[arg(long, env = "VOLTGATE_MAX_QUERY_FRAGMENTS", default_value_t = 64)]
    pub max_query_fragments: usize,

    /// Most aliased fields in a document.
    #[arg(long, env = "VOLTGATE_MAX_QUERY_ALIASES", default_value_t = 64)]
    pub max_query_aliases: usize,

    /// Most directives in a document.
    #[arg(long, env = "VOLTGATE_MAX_QUERY_DIRECTIVES", default_value_t = 64)]
    pub max_query_directives: usize,

    /// Deepest nesting of selection sets, fragment spreads included.
    #[arg(long, env = "VOLTGATE_MAX_QUERY_NESTING", default_value_t = 32)]
    pub max_query_nesting: usize,

    /// Most operations in one batched POST.
    #[arg(long, env = "VOLTGATE_MAX_BATCH_OPERATIONS", default_value_t = 10)]
    pub max_batch_operations: usize,

    /// Operations executed at once by this replica over HTTP; more wait their turn
    /// (see `VOLTGATE_OPERATION_QUEUE_TIMEOUT_MS`). At least `VOLTGATE_MAX_BATCH_OPERATIONS`.
    #[arg(long, env = "VOLTGATE_MAX_CONCURRENT_OPERATIONS", default_value_t = 64)]
    pub max_concurrent_operations: usize,

    /// How long a request waits for its turn before it is refused with 503 and `Retry-After`.
    #[arg(
        long,
        env = "VOLTGATE_OPERATION_QUEUE_TIMEOUT_MS",
        default_value_t = 1000
    )]
    pub operation_queue_timeout_ms: u64,
}

impl ServeSettings {
    /// How much of each topic's history the bus keeps for resuming subscribers.
    pub fn event_retention(&self) -> crate::bus::Retention {
        crate::bus::Retention {
            max_age: std::time::Duration::from_secs(self.event_retention_secs.max(1)),
            max_events: self.event_retention_events.max(1),
        }
    }

    /// How the Redis bus publishes through an outage.
    pub fn bus_publishing(&self) -> crate::bus::redis::Publishing {
        crate::bus::redis::Publishing {
            patience: std::time::Duration::from_millis(self.bus_publish_patience_ms),
            backlog_events: self.bus_backlog_events.max(1),
        }
    }

    /// Resolves `MQTT_URL` into a mode.
    ///
    /// # Errors
    /// When the URL is neither `none` nor a valid `mqtt://host:port` URL.
    pub fn mqtt_mode(&self) -> anyhow::Result<MqttMode> {
        match self.mqtt_url.as_deref().map(str::trim) {
            None | Some("") => Ok(MqttMode::Embedded {
                addr: self.embedded_mqtt_addr,
            }),
            Some(s) if s.eq_ignore_ascii_case("none") => Ok(MqttMode::Disabled),
            Some(s) => {
                let url = Url::parse(s)
                    .map_err(|e| anyhow::anyhow!("MQTT_URL is not a URL ({e}): {}", redact(s)))?;
                if !matches!(url.scheme(), "mqtt" | "tcp") || url.host_str().is_none() {
                    anyhow::bail!(
                        "MQTT_URL must look like mqtt://host:1883, got {}",
                        redact(s)
                    );
                }
                Ok(MqttMode::External { url })
            }
        }
    }
}

// Settings carry secrets (URL passwords, signing keys): their `Debug` shows
// neither, so a settings value can be logged safely.

impl std::fmt::Debug for DatabaseSettings {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("DatabaseSettings")
            .field("database_url", &redact(&self.database_url))
            .field("db_max_connections", &self.db_max_connections)
            .field("db_readers", &self.db_readers)
            .field("db_lane_connections", &self.db_lane_connections)
            .finish()
    }
}

impl std::fmt::Debug for MqttMode {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::Embedded { addr } => f.debug_struct("Embedded").field("addr", addr).finish(),
            Self::External { url } => f
                .debug_struct("External")
                .field("url", &redact(url.as_str()))
                .finish(),
            Self::Disabled => f.write_str("Disabled"),
        }
    }
}

impl std::fmt::Debug for ServeSettings {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ServeSettings")
            .field("database", &self.database)
            .field("http_addr", &self.http_addr)
            .field(
                "redis_url",
                &self.redis_url.as_ref().map(|u| redact(u.as_str())),
            )
            .field(
                "mqtt_url",
                &self.mqtt_url.as_deref().map(redact_mqtt_setting),
            )
            .field("embedded_mqtt_addr", &self.embedded_mqtt_addr)
            .field("mqtt_topic_root", &self.mqtt_topic_root)
            .field("jwt_secret", &self.jwt_secret.as_ref().map(|_| "<set>"))
            .field("jwt_previous_secrets", &self.jwt_previous_secrets.len())
            .finish_non_exhaustive()
    }
}

fn redact_mqtt_setting(value: &str) -> String {
    if value.trim().eq_ignore_ascii_case("none") {
        "none".to_owned()
    } else {
        redact(value)
    }
}

/// What serves GraphQL WebSockets (`VOLTGATE_WS_ENGINE`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum WsEngine {
    /// `crate::realtime`: shared executions, bounded queues, lag handling.
    Voltgate,
    /// `async_graphql_axum::GraphQLWebSocket`, for comparison benchmarks only.
    Stock,
}

/// Output format of the logs.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum LogFormat {
    Text,
    Json,
}

/// Returns `url` with any password replaced by `***`, for logs and error messages.
pub fn redact(url: &str) -> String {
    match Url::parse(url) {
        Ok(mut parsed) if parsed.password().is_some() => {
            // Setting a password only fails for URLs that cannot carry one.
            let _ = parsed.set_password(Some("***"));
            parsed.to_string()
        }
        Ok(parsed) => parsed.to_string(),
        Err(_) => "<unparseable URL>".to_owned(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn redact_hides_the_password_only() {
        assert_eq!(
            redact("postgres://app:s3cret@db:5432/vg"),
            "postgres://app:***@db:5432/vg"
        );
        assert_eq!(redact("redis://127.0.0.1:6379"), "redis://127.0.0.1:6379");
        assert_eq!(redact("not a url with s3cret"), "<unparseable URL>");
    }

    /// `serve`'s settings from its flags alone.
    fn serve(flags: &[&str]) -> Result<ServeSettings, clap::Error> {
        use clap::Parser;
        #[derive(Parser)]
        struct Probe {
            #[command(flatten)]
            serve: ServeSettings,
        }
        Probe::try_parse_from(std::iter::once("voltgate").chain(flags.iter().copied()))
            .map(|probe| probe.serve)
    }

    #[test]
    fn settings_never_show_their_secrets() {
        let settings = serve(&[
            "--database-url",
            "postgres://app:db-s3cret@db/vg",
            "--redis-url",
            "redis://:redis-s3cret@cache:6379",
            "--mqtt-url",
            "mqtt://dev:mqtt-s3cret@broker:1883",
            "--jwt-secret",
            "jwt-s3cret-jwt-s3cret-jwt-s3cret-jwt",
        ])
        .expect("valid flags");
        let shown = format!("{settings:?} {:?}", settings.mqtt_mode().ok());
        assert!(!shown.contains("s3cret"), "{shown}");
        assert!(shown.contains("postgres://app:***@db/vg"), "{shown}");
    }

    #[test]
    fn a_cart_limit_is_at_least_one_position() {
        let limit = |flags: &[&str]| serve(flags).map(|s| s.cart_max_positions).ok();
        assert_eq!(limit(&["--cart-max-positions", "250"]), Some(250));
        assert_eq!(limit(&["--cart-max-positions", "0"]), None);
        assert_eq!(limit(&["--cart-max-positions", "-3"]), None);
        assert_eq!(limit(&["--cart-max-positions", "many"]), None);
        assert_eq!(limit(&[]), Some(100));
    }

    #[test]
    fn the_mqtt_window_is_one_to_65535_messages() {
        let window = |flags: &[&str]| serve(flags).map(|s| s.mqtt_receive_maximum).ok();
        assert_eq!(window(&["--mqtt-receive-maximum", "65535"]), Some(65535));
        assert_eq!(window(&["--mqtt-receive-maximum", "0"]), None);
        assert_eq!(window(&["--mqtt-receive-maximum", "65536"]), None);
        assert_eq!(window(&[]), Some(2000));
    }

    #[test]
    fn a_maintenance_window_lasts_one_hour_to_two_weeks() {
        let window = |flags: &[&str]| {
            serve(flags)
                .map(|s| s.reservations.maintenance_window())
                .ok()
        };
        let hours = |value| window(&["--maintenance-window-hours", value]);
        assert_eq!(hours("336"), Some(chrono::TimeDelta::weeks(2)));
        assert_eq!(hours("0"), None);
        assert_eq!(hours("337"), None);
        assert_eq!(window(&[]), Some(chrono::TimeDelta::hours(4)));
    }
}
