//! `/graphql`: queries over POST, subscriptions over WebSocket, GraphiQL on a plain GET.

use async_graphql::http::ALL_WEBSOCKET_PROTOCOLS;
use async_graphql_axum::{GraphQLBatchRequest, GraphQLProtocol, GraphQLResponse, GraphQLWebSocket};
use axum::extract::State;
use axum::extract::ws::{WebSocketUpgrade, rejection::WebSocketUpgradeRejection};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};

use super::AppState;
use crate::telemetry::names;

pub async fn post(State(state): State<AppState>, request: GraphQLBatchRequest) -> GraphQLResponse {
    state
        .schema
        .execute_batch(request.into_inner())
        .await
        .into()
}

/// A WebSocket upgrade speaks GraphQL (`graphql-transport-ws` or legacy `graphql-ws`);
/// any other GET gets GraphiQL.
pub async fn get(
    State(state): State<AppState>,
    protocol: Result<GraphQLProtocol, StatusCode>,
    upgrade: Result<WebSocketUpgrade, WebSocketUpgradeRejection>,
) -> Response {
    let (Ok(protocol), Ok(upgrade)) = (protocol, upgrade) else {
        return super::graphiql::page().into_response();
    };
    let Ok(permit) = state.ws_permits.clone().try_acquire_owned() else {
        metrics::counter!(names::WS_REJECTED).increment(1);
        return (
            StatusCode::SERVICE_UNAVAILABLE,
            "too many WebSocket connections",
        )
            .into_response();
    };
    let schema = state.schema.clone();
    upgrade
        .protocols(ALL_WEBSOCKET_PROTOCOLS)
        .on_upgrade(move |socket| async move {
            metrics::gauge!(names::WS_CONNECTIONS).increment(1.0);
            GraphQLWebSocket::new(socket, schema, protocol)
                .serve()
                .await;
            metrics::gauge!(names::WS_CONNECTIONS).decrement(1.0);
            drop(permit);
        })
        .into_response()
}
