//! Wiring: settings in, a running server out.
//!
//! [`App::build`] connects to every configured service (failing with a clear
//! message when one is unreachable), binds the HTTP listener and starts MQTT
//! ingestion. Binding happens here, not in `run`, so callers (tests, benchmarks)
//! can ask for port 0 and read the real port before serving.

use std::future::Future;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context as _;
use axum::serve::ListenerExt as _;
use sea_orm::DatabaseConnection;
use tokio::net::TcpListener;
use tokio::sync::Semaphore;

use crate::auth::rate_limit::RateLimiter;
use crate::auth::tokens::TokenKeys;
use crate::bus::{SharedBus, memory::MemoryBus, redis::RedisBus};
use crate::config::{GraphqlLimits, MqttMode, ServeSettings};
use crate::devices::commands::{BayAddress, CommandAction, DeviceCommands};
use crate::graphql::document_limits::DocumentLimits;
use crate::graphql::{self, Limits};
use crate::http::admission::{Admission, ClientConnections};
use crate::http::{self, AppState};
use crate::mqtt::{self, MqttHandle, MqttOptions};
use crate::realtime::connection::ConnectionLimits;
use crate::realtime::groups::Groups;
use crate::services::ServiceContext;
use crate::{db, jobs, seed, telemetry};

pub struct App {
    listener: TcpListener,
    router: axum::Router,
    db: DatabaseConnection,
    bus: SharedBus,
    mqtt: Option<Arc<MqttHandle>>,
    device_mqtt_addr: Option<SocketAddr>,
    /// Tells WebSocket connections that the server is shutting down.
    shutting_down: tokio::sync::watch::Sender<bool>,
    ws_permits: Arc<Semaphore>,
    max_ws_connections: usize,
    _wal_checkpointer: Option<db::WalCheckpointer>,
    jobs: jobs::Runner,
    subscription_groups: Arc<Groups>,
}

/// How long shutdown waits for WebSocket connections to close.
const WS_DRAIN: std::time::Duration = std::time::Duration::from_secs(5);

impl App {
    /// Connects everything and binds the listener.
    ///
    /// # Errors
    /// When a configured service is unreachable, a migration fails or an address is taken.
    pub async fn build(settings: ServeSettings) -> anyhow::Result<Self> {
        let metrics = telemetry::metrics_handle();
        let mqtt_mode = settings.mqtt_mode()?;
        anyhow::ensure!(
            settings.mqtt_max_payload_bytes as u64 <= u64::from(settings.mqtt_max_packet_bytes),
            "VOLTGATE_MQTT_MAX_PAYLOAD_BYTES cannot exceed VOLTGATE_MQTT_MAX_PACKET_BYTES"
        );
        // The broker's address is checked first: a taken port should fail before any data is written.
        let broker = start_embedded_broker(&mqtt_mode, settings.mqtt_max_packet_bytes).await?;
        let (db, wal_checkpointer) = db::connect_for_serving(&settings.database).await?;
        if settings.migrate_on_start {
            db::migrate(&db).await?;
        }
        if settings.demo {
            let size = seed::DemoSize::default();
            let root = &settings.mqtt_topic_root;
            // Secrets made now are shown once, to whoever started the server.
            for line in
                seed::everything(&db, &size, root, &settings.device_credentials.path).await?
            {
                println!("{line}");
            }
        }
        let internal_broker = broker.as_ref().map(EmbeddedBroker::internal);
        let device_mqtt_addr = match broker {
            Some(broker) => Some(broker.serve_devices(&db, settings.mqtt_max_packet_bytes)?),
            None => None,
        };

        let retention = settings.event_retention();
        let bus: SharedBus = match &settings.redis_url {
            Some(url) => Arc::new(
                RedisBus::connect(
                    url,
                    &settings.bus_channel,
                    retention,
                    settings.bus_publishing(),
                )
                .await?,
            ),
            None => Arc::new(MemoryBus::new(retention)),
        };

        let mqtt = start_ingestion(&settings, &mqtt_mode, internal_broker, &db, &bus).await?;

        let keys = Arc::new(token_keys(&settings)?);
        let limiter = Arc::new(if settings.rate_limits {
            RateLimiter::default()
        } else {
            RateLimiter::disabled()
        });
        let mut services = ServiceContext::new(db.clone(), bus.clone(), keys.clone(), limiter);
        // Opened after the migrations, so readers see the schema they read.
        if let Some(readers) = db::connect_readers(&settings.database).await? {
            services.reader = readers;
        }
        if let Some(lanes) = db::connect_lanes(&settings.database).await? {
            services.lanes_db = lanes;
        }
        services.doors = Arc::new(crate::checkin::cache::DoorCache::new(
            settings.checkin.cache_ttl(),
        ));
        services.reservations = settings.reservations.clone();
        services.checkin = settings.checkin.clone();
        services.supervision = settings.supervision.clone();
        services.firmware = settings.firmware.clone();
        services.commands = settings.device_commands.clone();
        services.kiosks = settings.kiosks.clone();
        services.cart_max_positions = settings.cart_max_positions;
        services.kiosk_access = Arc::new(crate::auth::kiosk_access::KioskAccess::new(
            settings.kiosks.cache_ttl(),
        ));
        tokio::spawn(crate::auth::kiosk_access::listen(
            &bus,
            Arc::clone(&services.kiosk_access),
        ));
        services.payments = Arc::new(crate::ticketing::providers::Providers::new(
            settings.payments.clone(),
        ));
        services.signer = Arc::new(crate::signing::SignerCell::new(
            settings.signing_key.as_deref(),
        )?);
        services.badge_keys = Arc::new(crate::accounts::badges::BadgeKeys::new(
            settings.badge_key.as_deref(),
            &settings.badge_previous_keys,
        )?);
        if let Some(mqtt) = &mqtt {
            services.devices = Arc::new(MqttCommands(mqtt.clone()));
        }
        let jobs = jobs::Runner::start(services.clone(), jobs::registry());
        let limits = graphql_limits(&settings.graphql_limits)?;
        let schema = graphql::build_schema(services.clone(), limits);
        let subscription_groups = Groups::new(schema.clone(), settings.subscription_buffer);
        let (shutting_down, shutdown_signal) = tokio::sync::watch::channel(false);
        let ws_permits = Arc::new(Semaphore::new(settings.max_ws_connections));
        let state = AppState {
            schema,
            services,
            db: db.clone(),
            bus: bus.clone(),
            mqtt: mqtt.clone(),
            ws_permits: ws_permits.clone(),
            ws_clients: ClientConnections::new(settings.max_ws_connections_per_client),
            shutting_down: shutdown_signal,
            // A WebSocket message carries one GraphQL operation: same cap as a POST body.
            max_ws_message_bytes: settings.max_body_bytes,
            trusted_proxy_hops: settings.trusted_proxy_hops,
            keys,
            metrics,
            limits,
            max_batch_operations: settings.graphql_limits.max_batch_operations,
            ws_limits: ConnectionLimits {
                init_timeout: Duration::from_secs(settings.ws_init_timeout_secs.max(1)),
                keep_alive: Duration::from_secs(settings.ws_keepalive_secs.max(1)),
                close_timeout: Duration::from_secs(settings.ws_close_timeout_secs.max(1)),
                max_operations: settings.max_ws_subscriptions.max(1),
                queue_frames: settings.ws_queue_messages.max(1),
                document: limits.document,
            },
            subscription_groups: Arc::clone(&subscription_groups),
            ws_engine: settings.ws_engine,
            admission: Admission::new(
                settings.graphql_limits.max_concurrent_operations,
                Duration::from_millis(settings.graphql_limits.operation_queue_timeout_ms),
            ),
        };
        let router = http::router(state, settings.max_body_bytes, &settings.cors_origins);
        let listener = TcpListener::bind(settings.http_addr)
            .await
            .with_context(|| {
                format!(
                    "cannot listen on {} (VOLTGATE_HTTP_ADDR)",
                    settings.http_addr
                )
            })?;
        Ok(Self {
            listener,
            router,
            db,
            bus,
            mqtt,
            device_mqtt_addr,
            shutting_down,
            ws_permits,
            max_ws_connections: settings.max_ws_connections,
            _wal_checkpointer: wal_checkpointer,
            jobs,
            subscription_groups,
        })
    }

    /// The replica's subscription groups (their counts show how executions are shared).
    pub fn subscription_groups(&self) -> &Arc<Groups> {
        &self.subscription_groups
    }

    pub fn local_addr(&self) -> SocketAddr {
        // A bound listener always has an address; fall back to unspecified just in case.
        self.listener
            .local_addr()
            .unwrap_or_else(|_| SocketAddr::from(([0, 0, 0, 0], 0)))
    }

    pub fn db(&self) -> &DatabaseConnection {
        &self.db
    }

    pub fn bus(&self) -> &SharedBus {
        &self.bus
    }

    /// The MQTT client, when MQTT is on: what sends commands to devices.
    pub fn mqtt(&self) -> Option<Arc<MqttHandle>> {
        self.mqtt.clone()
    }

    /// Where devices reach the embedded broker, when it runs.
    pub fn device_mqtt_addr(&self) -> Option<SocketAddr> {
        self.device_mqtt_addr
    }

    /// Serves until `shutdown` completes, then drains connections and leaves MQTT cleanly.
    ///
    /// # Errors
    /// When the HTTP server fails.
    pub async fn run_until(
        self,
        shutdown: impl Future<Output = ()> + Send + 'static,
    ) -> anyhow::Result<()> {
        tracing::info!(addr = %self.local_addr(), "voltgate listening; GraphiQL at /graphql");
        // Handlers read the peer address for the security journal and rate limits.
        let service = self
            .router
            .into_make_service_with_connect_info::<SocketAddr>();
        // Subscription events are small frames that must leave at once, not wait for
        // Nagle's algorithm to coalesce them with the next one.
        let listener = self.listener.tap_io(|stream| {
            if let Err(error) = stream.set_nodelay(true) {
                tracing::debug!(%error, "could not set TCP_NODELAY");
            }
        });
        let shutting_down = self.shutting_down;
        let announce = async move {
            shutdown.await;
            let _ = shutting_down.send(true);
        };
        axum::serve(listener, service)
            .with_graceful_shutdown(announce)
            .await?;
        // Upgraded WebSockets outlive the HTTP server: each sends a close frame
        // ("going away") once told; wait for them, within bounds.
        let everyone = u32::try_from(self.max_ws_connections).unwrap_or(u32::MAX);
        if tokio::time::timeout(WS_DRAIN, self.ws_permits.acquire_many(everyone))
            .await
            .is_err()
        {
            tracing::warn!("WebSocket connections still open at shutdown");
        }
        self.jobs.stop().await;
        if let Some(mqtt) = self.mqtt {
            mqtt.shutdown().await;
        }
        self.db.close_by_ref().await.ok();
        tracing::info!("voltgate stopped");
        Ok(())
    }
}

/// Device commands over MQTT, for the service context.
struct MqttCommands(Arc<MqttHandle>);

#[async_trait::async_trait]
impl DeviceCommands for MqttCommands {
    async fn send(
        &self,
        bay: &BayAddress,
        command_id: uuid::Uuid,
        action: CommandAction,
        params: serde_json::Map<String, serde_json::Value>,
    ) -> anyhow::Result<()> {
        self.0
            .send_command_as(bay, command_id, action, params)
            .await
    }
}

/// The embedded broker and its device gate, bound but not yet serving devices.
#[cfg(feature = "embedded-broker")]
struct EmbeddedBroker {
    gate: tokio::net::TcpListener,
    broker: mqtt::broker::EmbeddedBroker,
}

/// Where the server's own client reaches the embedded broker, and its login.
#[derive(Clone)]
struct InternalBroker {
    server_addr: SocketAddr,
    credentials: mqtt::ingest::Credentials,
}

#[cfg(feature = "embedded-broker")]
impl EmbeddedBroker {
    fn internal(&self) -> InternalBroker {
        InternalBroker {
            server_addr: self.broker.server_addr,
            credentials: self.broker.internal.clone(),
        }
    }

    /// Starts accepting devices (the gate needs the database); returns their address.
    fn serve_devices(
        self,
        db: &DatabaseConnection,
        max_packet_bytes: u32,
    ) -> anyhow::Result<SocketAddr> {
        let addr = self.gate.local_addr()?;
        let config = mqtt::gate::GateConfig {
            upstream: self.broker.device_upstream,
            internal: self.broker.internal,
            max_packet_bytes: usize::try_from(max_packet_bytes).unwrap_or(usize::MAX),
        };
        tokio::spawn(mqtt::gate::serve(self.gate, config, db.clone()));
        tracing::info!(%addr, "embedded MQTT broker listening for devices (MQTT 3.1.1, credentials required)");
        Ok(addr)
    }
}

#[cfg(not(feature = "embedded-broker"))]
struct EmbeddedBroker {
    internal: InternalBroker,
}

#[cfg(not(feature = "embedded-broker"))]
impl EmbeddedBroker {
    fn internal(&self) -> InternalBroker {
        self.internal.clone()
    }

    fn serve_devices(self, _: &DatabaseConnection, _: u32) -> anyhow::Result<SocketAddr> {
        anyhow::bail!("this build has no embedded MQTT broker")
    }
}

async fn start_embedded_broker(
    mode: &MqttMode,
    max_packet_bytes: u32,
) -> anyhow::Result<Option<EmbeddedBroker>> {
    match mode {
        #[cfg(feature = "embedded-broker")]
        MqttMode::Embedded { addr } => {
            let gate = mqtt::gate::bind(*addr).await?;
            let broker = mqtt::broker::start(max_packet_bytes)?;
            Ok(Some(EmbeddedBroker { gate, broker }))
        }
        #[cfg(not(feature = "embedded-broker"))]
        MqttMode::Embedded { .. } => {
            let _ = max_packet_bytes;
            anyhow::bail!(
                "this build has no embedded MQTT broker: set MQTT_URL=mqtt://host:1883, or MQTT_URL=none"
            )
        }
        MqttMode::External { .. } | MqttMode::Disabled => Ok(None),
    }
}

async fn start_ingestion(
    settings: &ServeSettings,
    mode: &MqttMode,
    broker: Option<InternalBroker>,
    db: &DatabaseConnection,
    bus: &SharedBus,
) -> anyhow::Result<Option<Arc<MqttHandle>>> {
    let credentials = match (mode, &broker) {
        (MqttMode::External { url }, _) => url_credentials(url),
        (_, Some(broker)) => Some(broker.credentials.clone()),
        _ => None,
    };
    let (host, port) = match (mode, &broker) {
        (MqttMode::Disabled, _) => {
            tracing::info!("MQTT disabled (MQTT_URL=none)");
            return Ok(None);
        }
        (MqttMode::External { url }, _) => (
            url.host_str().unwrap_or("127.0.0.1").to_owned(),
            url.port().unwrap_or(1883),
        ),
        (MqttMode::Embedded { .. }, Some(broker)) => (
            broker.server_addr.ip().to_string(),
            broker.server_addr.port(),
        ),
        (MqttMode::Embedded { .. }, None) => {
            anyhow::bail!("the embedded MQTT broker is not running")
        }
    };
    let shared = broker.is_none();
    anyhow::ensure!(
        !shared
            || !settings.mqtt_takeover
            || settings.mqtt_takeover_delay_secs < settings.mqtt_session_expiry_secs,
        "VOLTGATE_MQTT_TAKEOVER_DELAY ({} s) must be shorter than VOLTGATE_MQTT_SESSION_EXPIRY ({} s): \
         a session that expires first loses its messages before another replica can take it over",
        settings.mqtt_takeover_delay_secs,
        settings.mqtt_session_expiry_secs,
    );
    let options = MqttOptions {
        host,
        port,
        client_id: settings
            .mqtt_client_id
            .clone()
            .unwrap_or_else(default_client_id),
        session_expiry_secs: settings.mqtt_session_expiry_secs,
        topic_root: settings.mqtt_topic_root.clone(),
        workers: settings.mqtt_workers,
        shared,
        takeover_delay_secs: settings
            .mqtt_takeover
            .then_some(settings.mqtt_takeover_delay_secs),
        credentials,
        max_packet_bytes: settings.mqtt_max_packet_bytes,
        receive_maximum: settings.mqtt_receive_maximum,
        max_payload_bytes: settings.mqtt_max_payload_bytes,
        clock_skew: crate::devices::reports::ClockSkew(chrono::TimeDelta::seconds(i64::from(
            settings.mqtt_max_clock_skew_secs,
        ))),
        batch_limits: crate::realtime::batcher::BatchLimits {
            max_items: settings.ingest_batch_max.max(1),
            linger: Duration::from_micros(settings.ingest_batch_linger_us),
        },
        alert_thresholds: crate::supervision::rules::Thresholds {
            max_temperature_c: settings.alert_max_temperature_c,
            temperature_hysteresis_c: settings.alert_temperature_hysteresis_c,
            smoke_threshold: settings.alert_smoke_threshold,
            max_current_a: settings.supervision.alert_max_current_a,
            min_voltage_v: settings.supervision.alert_min_voltage_v,
            max_voltage_v: settings.supervision.alert_max_voltage_v,
        },
        cache_ttl: Duration::from_millis(settings.ingest_cache_ms),
    };
    Ok(Some(Arc::new(
        mqtt::ingest::start(options, db.clone(), bus.clone()).await?,
    )))
}

/// The login an `mqtt://user:pass@host` URL carries, if any.
pub fn url_credentials(url: &url::Url) -> Option<mqtt::ingest::Credentials> {
    (!url.username().is_empty()).then(|| mqtt::ingest::Credentials {
        username: percent_decoded(url.username()),
        password: percent_decoded(url.password().unwrap_or_default()),
    })
}

/// URL user names and passwords are percent-encoded; the broker wants them plain.
fn percent_decoded(part: &str) -> String {
    percent_encoding::percent_decode_str(part)
        .decode_utf8_lossy()
        .into_owned()
}

/// The schema's limits from the settings, refusing settings that would make every
/// request fail or a batch wait for room it can never get.
fn graphql_limits(settings: &GraphqlLimits) -> anyhow::Result<Limits> {
    let limits = Limits {
        depth: settings.max_query_depth,
        complexity: settings.max_query_complexity,
        document: DocumentLimits {
            tokens: settings.max_query_tokens,
            fields: settings.max_query_fields,
            fragments: settings.max_query_fragments,
            aliases: settings.max_query_aliases,
            directives: settings.max_query_directives,
            nesting: settings.max_query_nesting,
        },
    };
    if [
        limits.depth,
        limits.complexity,
        limits.document.tokens,
        limits.document.fields,
        limits.document.nesting,
        settings.max_batch_operations,
    ]
    .contains(&0)
    {
        anyhow::bail!(
            "GraphQL limits must be positive (VOLTGATE_MAX_QUERY_DEPTH, _COMPLEXITY, _TOKENS, \
             _FIELDS, _NESTING, VOLTGATE_MAX_BATCH_OPERATIONS)"
        );
    }
    if settings.max_concurrent_operations < settings.max_batch_operations {
        anyhow::bail!(
            "VOLTGATE_MAX_CONCURRENT_OPERATIONS ({}) must be at least VOLTGATE_MAX_BATCH_OPERATIONS ({}): \
             a full batch could never run",
            settings.max_concurrent_operations,
            settings.max_batch_operations
        );
    }
    Ok(limits)
}

fn token_keys(settings: &ServeSettings) -> anyhow::Result<TokenKeys> {
    let access_ttl = chrono::TimeDelta::seconds(settings.access_token_ttl_secs.clamp(30, 86_400));
    let refresh_ttl = chrono::TimeDelta::days(settings.refresh_token_ttl_days.clamp(1, 365));
    match &settings.jwt_secret {
        Some(secret) => {
            let previous: Vec<Vec<u8>> = settings
                .jwt_previous_secrets
                .iter()
                .map(|s| s.as_bytes().to_vec())
                .collect();
            TokenKeys::new(secret.as_bytes(), &previous, access_ttl, refresh_ttl)
        }
        None => {
            tracing::warn!(
                "VOLTGATE_JWT_SECRET is not set: tokens are signed with a key that dies with this process"
            );
            TokenKeys::ephemeral(access_ttl, refresh_ttl)
        }
    }
}

/// A client id that stays the same across restarts of one host's replica.
fn default_client_id() -> String {
    let host = std::env::var("HOSTNAME")
        .ok()
        .filter(|h| !h.is_empty())
        .or_else(|| {
            std::fs::read_to_string("/etc/hostname")
                .ok()
                .map(|h| h.trim().to_owned())
        })
        .unwrap_or_else(|| "local".to_owned());
    format!("voltgate-{host}")
}

/// Resolves when the process is asked to stop (Ctrl-C or SIGTERM).
pub async fn shutdown_signal() {
    let ctrl_c = async {
        if tokio::signal::ctrl_c().await.is_err() {
            std::future::pending::<()>().await;
        }
    };
    #[cfg(unix)]
    let terminate = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut signal) => {
                signal.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    #[cfg(not(unix))]
    let terminate = std::future::pending::<()>();
    tokio::select! {
        () = ctrl_c => {},
        () = terminate => {},
    }
    tracing::info!("shutdown requested");
}
