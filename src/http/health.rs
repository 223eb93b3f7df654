//! Liveness, readiness and metrics.

use std::time::Duration;

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
    let (database, bus) = tokio::join!(
        within_deadline(async { state.db.ping().await.is_ok() }),
        within_deadline(state.bus.is_ready()),
    );
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

/// A dependency that is reconnecting answers late; a probe needs a prompt "no".
async fn within_deadline(check: impl Future<Output = bool>) -> bool {
    const CHECK_TIMEOUT: Duration = Duration::from_secs(2);
    tokio::time::timeout(CHECK_TIMEOUT, check)
        .await
        .unwrap_or(false)
}

/// Prometheus text exposition.
pub async fn metrics(State(state): State<AppState>) -> impl IntoResponse {
    (
        [(header::CONTENT_TYPE, "text/plain; version=0.0.4")],
        state.metrics.render(),
    )
}
