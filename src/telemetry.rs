//! Logging and metrics setup.
//!
//! Logs go through `tracing` (text or JSON). Metrics use the `metrics` facade with a
//! Prometheus recorder installed once per process; `/metrics` renders it.

use std::sync::OnceLock;

use metrics_exporter_prometheus::{PrometheusBuilder, PrometheusHandle};
use tracing_subscriber::{EnvFilter, fmt, prelude::*};

use crate::config::LogFormat;

/// Default filter: our own info logs, and quiet brokers/drivers that log ordinary
/// disconnects as errors.
/// (`sea_orm_migration` reports `migrate status` at info level.)
const DEFAULT_FILTER: &str =
    "info,rumqttd=off,rumqttc=warn,sqlx=warn,sea_orm=warn,sea_orm_migration=info";

/// Installs the global `tracing` subscriber; later calls do nothing.
pub fn init_logging(format: LogFormat) {
    let filter =
        EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new(DEFAULT_FILTER));
    let registry = tracing_subscriber::registry().with(filter);
    let _ = match format {
        // Logs go to stderr so that stdout carries only a command's output
        // (`voltgate schema > schema.graphql`).
        LogFormat::Text => registry
            .with(fmt::layer().with_target(true).with_writer(std::io::stderr))
            .try_init(),
        LogFormat::Json => registry
            .with(
                fmt::layer()
                    .json()
                    .flatten_event(true)
                    .with_writer(std::io::stderr),
            )
            .try_init(),
    };
}

static PROMETHEUS: OnceLock<PrometheusHandle> = OnceLock::new();

/// Installs the Prometheus recorder once per process and returns its handle.
pub fn metrics_handle() -> PrometheusHandle {
    PROMETHEUS
        .get_or_init(|| {
            let recorder = PrometheusBuilder::new()
                .set_buckets(&[
                    0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5,
                ])
                .map(PrometheusBuilder::build_recorder)
                .unwrap_or_else(|_| PrometheusBuilder::new().build_recorder());
            let handle = recorder.handle();
            // Another recorder may already be installed (e.g. by an embedding program);
            // the handle still renders what this recorder saw.
            let _ = metrics::set_global_recorder(recorder);
            handle
        })
        .clone()
}

/// Metric names, kept together so dashboards and code agree.
pub mod names {
    pub const GRAPHQL_REQUESTS: &str = "voltgate_graphql_requests_total";
    pub const GRAPHQL_DURATION: &str = "voltgate_graphql_request_duration_seconds";
    /// HTTP requests refused before execution, by reason (`overload`, `batch_size`, `limit`, `media_type`, `malformed`, `too_large`).
    pub const GRAPHQL_REFUSED: &str = "voltgate_graphql_requests_refused_total";
    pub const WS_CONNECTIONS: &str = "voltgate_websocket_connections";
    /// WebSocket upgrades refused, by reason (`replica_limit`, `client_limit`).
    pub const WS_REJECTED: &str = "voltgate_websocket_rejected_total";
    /// WebSockets dropped without their close frame: the client read nothing
    /// within `VOLTGATE_WS_CLOSE_TIMEOUT_SECS`.
    pub const WS_CUT_OFF: &str = "voltgate_websocket_cut_off_total";
    /// Subscription executions started (one per group of identical subscriptions).
    pub const SUBSCRIPTION_EXECUTIONS: &str = "voltgate_subscription_executions_total";
    /// Results produced by group executions (each resolved and serialized once).
    pub const SUBSCRIPTION_RESULTS: &str = "voltgate_subscription_results_total";
    /// Results handed to group members (one per member per result).
    pub const SUBSCRIPTION_DELIVERIES: &str = "voltgate_subscription_deliveries_total";
    /// Groups running now.
    pub const SUBSCRIPTION_GROUPS: &str = "voltgate_subscription_groups";
    /// Subscriptions ended with `SUBSCRIBER_LAGGING`: behind their group, the
    /// bus fan-out, or their connection's queue.
    pub const SUBSCRIPTION_LAGGING: &str = "voltgate_subscription_lagging_total";
    /// Connections closed because their client stopped reading even control messages.
    pub const WS_SLOW_CONSUMERS: &str = "voltgate_websocket_slow_consumers_total";
    pub const MQTT_IN: &str = "voltgate_mqtt_messages_received_total";
    pub const MQTT_OUT: &str = "voltgate_mqtt_messages_published_total";
    pub const MQTT_DROPPED: &str = "voltgate_mqtt_messages_dropped_total";
    pub const MQTT_STALE: &str = "voltgate_mqtt_state_stale_total";
    /// Messages handled again after a database error.
    pub const MQTT_RETRIED: &str = "voltgate_mqtt_messages_retried_total";
    pub const MQTT_CONNECTED: &str = "voltgate_mqtt_connected";
    /// Sessions of dead replicas taken over, by outcome (`drained`, `empty`, `failed`).
    pub const MQTT_TAKEOVERS: &str = "voltgate_mqtt_session_takeovers_total";
    /// Device messages ingested from dead replicas' sessions.
    pub const MQTT_TAKEN_OVER: &str = "voltgate_mqtt_taken_over_messages_total";
    /// Device connections the embedded broker's gate refused or cut, by reason.
    pub const MQTT_GATE_REFUSED: &str = "voltgate_mqtt_gate_refused_total";
    pub const BUS_PUBLISHED: &str = "voltgate_bus_events_published_total";
    /// Events Redis did not take within the publish's patience, kept in the
    /// backlog until it answers.
    pub const BUS_DEFERRED: &str = "voltgate_bus_events_deferred_total";
    /// Events waiting in the backlog.
    pub const BUS_BACKLOG: &str = "voltgate_bus_backlog_events";
    /// Events stored but never published: dropped from a full backlog, or
    /// after waiting in it too long.
    pub const BUS_LOST: &str = "voltgate_bus_events_lost_total";
    pub const BUS_RECEIVED: &str = "voltgate_bus_events_received_total";
    pub const BUS_LAGGED: &str = "voltgate_bus_events_lagged_total";
    /// Times the bus told every local subscriber it may have missed events
    /// (its Redis connection dropped, or came back).
    pub const BUS_INTERRUPTIONS: &str = "voltgate_bus_interruptions_total";
    /// Events not published because a newer one of the same row already was.
    pub const BUS_SUPERSEDED: &str = "voltgate_bus_events_superseded_total";
    /// Items per batch transaction (device reports, samples).
    pub const BATCH_SIZE: &str = "voltgate_batch_items";
    /// Seconds a batch's transaction took, commit included.
    pub const BATCH_DURATION: &str = "voltgate_batch_duration_seconds";
    /// Seconds a device message waited, from its receipt until its batch began.
    pub const INGEST_QUEUED: &str = "voltgate_ingest_queued_seconds";
    /// Seconds publishing a batch's events to the bus took.
    pub const BUS_PUBLISH_DURATION: &str = "voltgate_bus_publish_duration_seconds";
    /// Batches that hit a database error and were applied item by item.
    pub const BATCH_FAILED: &str = "voltgate_batch_failures_total";
    /// Subscriptions resumed from a cursor, and events replayed to them.
    pub const SUBSCRIPTION_RESUMES: &str = "voltgate_subscription_resumes_total";
    pub const SUBSCRIPTION_REPLAYED: &str = "voltgate_subscription_replayed_events_total";
    /// Resumes refused because the cursor was older than the retained events.
    pub const SUBSCRIPTION_CURSOR_EXPIRED: &str = "voltgate_subscription_cursor_expired_total";
    pub const JOB_RUNS: &str = "voltgate_job_runs_total";
    pub const JOB_FAILURES: &str = "voltgate_job_failures_total";
    /// Device commands by outcome (`sent`, `unsent`, `done`, `failed`, `rejected`, `timed_out`).
    pub const DEVICE_COMMANDS: &str = "voltgate_device_commands_total";
}
