//! `POST /webhooks/{provider}`: payment providers' signed events. The body is
//! read raw (the signature covers its exact bytes) and limited in size; the
//! answers are what providers expect: 2xx for recorded and duplicate events,
//! 400 for refused ones (a provider that sent them would retry in vain), 404
//! for a provider that takes no webhooks here, 500 when the event could not
//! be stored (the provider delivers it again).

use axum::Json;
use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::IntoResponse;
use serde_json::json;

use super::AppState;
use crate::ticketing::providers::webhooks::{self, Received, Refusal};

pub async fn receive(
    State(state): State<AppState>,
    Path(provider): Path<String>,
    headers: HeaderMap,
    body: Bytes,
) -> impl IntoResponse {
    let signature = headers
        .get("stripe-signature")
        .and_then(|v| v.to_str().ok());
    match webhooks::receive(&state.services, &provider, signature, &body).await {
        Ok(Ok(Received::Recorded { processed })) => (
            StatusCode::OK,
            Json(json!({ "received": true, "processed": processed })),
        ),
        Ok(Ok(Received::Duplicate)) => (
            StatusCode::OK,
            Json(json!({ "received": true, "duplicate": true })),
        ),
        Ok(Err(Refusal::UnknownProvider)) => (
            StatusCode::NOT_FOUND,
            Json(json!({ "error": "no webhooks for this provider" })),
        ),
        Ok(Err(Refusal::BadSignature(why) | Refusal::Malformed(why))) => {
            tracing::warn!(provider, why, "payment webhook refused");
            (StatusCode::BAD_REQUEST, Json(json!({ "error": why })))
        }
        Err(error) => {
            if let crate::error::AppError::Internal(cause) = &error {
                tracing::error!(
                    error = format!("{cause:#}"),
                    "cannot record a payment webhook"
                );
            }
            (
                StatusCode::INTERNAL_SERVER_ERROR,
                Json(json!({ "error": "internal error" })),
            )
        }
    }
}
