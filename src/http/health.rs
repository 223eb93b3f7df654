//! Liveness, readiness and metrics.

use axum::Json;
use axum::extract::State;
use axum::http::{StatusCode, header};
use axum::response::IntoResponse;
use serde_json::json;

use super::AppState;

/// The process is up and serving HTTP.
pub async fn healthz() -> &'static str {
    "ok"
}

/// Every dependency this replica needs answers: database, bus and MQTT.
pub async fn readyz(State(state): State<AppState>) -> impl IntoResponse {
    let database = state.db.ping().await.is_ok();
    let bus = state.bus.is_ready().await;
    let mqtt = state.mqtt.as_ref().map(|m| m.is_connected());
    let word = |ok: bool| if ok { "ok" } else { "unavailable" };
    let ready = database && bus && mqtt.unwrap_or(true);
    let body = json!({
        "status": word(ready),
        "database": word(database),
        "bus": { "kind": state.bus.kind(), "status": word(bus) },
        "mqtt": mqtt.map_or("disabled", word),
    });
    let code = if ready {
        StatusCode::OK
    } else {
        StatusCode::SERVICE_UNAVAILABLE
    };
    (code, Json(body))
}

/// Prometheus text exposition.
pub async fn metrics(State(state): State<AppState>) -> impl IntoResponse {
    (
        [(header::CONTENT_TYPE, "text/plain; version=0.0.4")],
        state.metrics.render(),
    )
}
