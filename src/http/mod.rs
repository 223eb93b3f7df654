//! The HTTP edge: routes, limits and CORS. Handlers stay thin; GraphQL does the work.

pub mod admission;
mod graphiql;
mod graphql;
mod health;
mod webhooks;

use std::sync::Arc;

use axum::Router;
use axum::http::{HeaderValue, Method, header};
use axum::routing::{get, post};
use metrics_exporter_prometheus::PrometheusHandle;
use sea_orm::DatabaseConnection;
use tokio::sync::Semaphore;
use tower_http::cors::{AllowOrigin, Any, CorsLayer};
use tower_http::limit::RequestBodyLimitLayer;

use crate::auth::tokens::TokenKeys;
use crate::bus::SharedBus;
use crate::config::WsEngine;
use crate::graphql::{AppSchema, Limits};
use crate::mqtt::MqttHandle;
use crate::realtime::connection::ConnectionLimits;
use crate::realtime::groups::Groups;
use admission::Admission;

/// What handlers share.
#[derive(Clone)]
pub struct AppState {
    pub schema: AppSchema,
    /// What the routes beside GraphQL (payment webhooks) call services with.
    pub services: crate::services::ServiceContext,
    pub db: DatabaseConnection,
    pub bus: SharedBus,
    pub mqtt: Option<Arc<MqttHandle>>,
    pub ws_permits: Arc<Semaphore>,
    /// Bounds the WebSocket connections of each client.
    pub ws_clients: Arc<admission::ClientConnections>,
    /// Turns true when the server begins to shut down: WebSockets then close.
    pub shutting_down: tokio::sync::watch::Receiver<bool>,
    pub max_ws_message_bytes: usize,
    /// Proxies whose `X-Forwarded-For` entries are trusted (see `ServeSettings`).
    pub trusted_proxy_hops: usize,
    pub metrics: PrometheusHandle,
    pub keys: Arc<TokenKeys>,
    /// What one request may cost; the HTTP edge measures documents before execution.
    pub limits: Limits,
    pub max_batch_operations: usize,
    /// Bounds the operations executing at once.
    pub admission: Admission,
    /// Timers and limits of each WebSocket connection.
    pub ws_limits: ConnectionLimits,
    /// Identical subscriptions of one audience, executed once.
    pub subscription_groups: Arc<Groups>,
    /// What serves WebSockets (the stock handler only for comparison benchmarks).
    pub ws_engine: WsEngine,
}

/// Builds the router.
pub fn router(state: AppState, max_body_bytes: usize, cors_origins: &[String]) -> Router {
    let webhook_max_bytes = state.services.payments.settings.payment_webhook_max_bytes;
    let router = Router::new()
        .route("/graphql", get(graphql::get).post(graphql::post))
        .route("/graphiql", get(|| async { graphiql::page() }))
        .merge(graphiql::router())
        .route("/healthz", get(health::healthz))
        .route("/readyz", get(health::readyz))
        .route("/metrics", get(health::metrics))
        .route(
            "/webhooks/{provider}",
            post(webhooks::receive).layer(axum::extract::DefaultBodyLimit::max(webhook_max_bytes)),
        )
        .layer(RequestBodyLimitLayer::new(max_body_bytes))
        .with_state(state);
    match cors(cors_origins) {
        Some(cors) => router.layer(cors),
        None => router,
    }
}

/// CORS for browser dashboards on other origins; none unless configured.
fn cors(origins: &[String]) -> Option<CorsLayer> {
    let origins: Vec<&str> = origins
        .iter()
        .map(|o| o.trim())
        .filter(|o| !o.is_empty())
        .collect();
    if origins.is_empty() {
        return None;
    }
    let allow_origin = if origins.contains(&"*") {
        AllowOrigin::from(Any)
    } else {
        AllowOrigin::list(origins.iter().filter_map(|o| HeaderValue::from_str(o).ok()))
    };
    Some(
        CorsLayer::new()
            .allow_origin(allow_origin)
            .allow_methods([Method::GET, Method::POST, Method::OPTIONS])
            .allow_headers([header::CONTENT_TYPE, header::AUTHORIZATION])
            .allow_credentials(!origins.contains(&"*")),
    )
}
