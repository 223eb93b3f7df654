//! `/graphql`: queries over POST, subscriptions over WebSocket, GraphiQL on a plain GET.
//!
//! Both transports attach the request's [`Principal`]: from the `Authorization`
//! header on HTTP, from the `connection_init` payload on WebSocket.

use std::net::{IpAddr, SocketAddr};

use async_graphql::http::ALL_WEBSOCKET_PROTOCOLS;
use async_graphql::{Data, Result as GqlResult};
use async_graphql_axum::{GraphQLBatchRequest, GraphQLProtocol, GraphQLResponse, GraphQLWebSocket};
use axum::extract::ws::{
    CloseFrame, Message, WebSocketUpgrade, close_code, rejection::WebSocketUpgradeRejection,
};
use axum::extract::{ConnectInfo, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use futures_util::{SinkExt as _, StreamExt as _};

use super::AppState;
use crate::accounts::RequestMeta;
use crate::accounts::graphql::REFRESH_COOKIE;
use crate::auth::principal::{self, Principal};
use crate::error::AppError;
use crate::graphql::live_session::WebSocketSession;
use crate::telemetry::names;

/// Per-connection read buffer: room for typical GraphQL messages; larger ones still
/// arrive, in several reads.
const WS_READ_BUFFER_BYTES: usize = 4096;

/// The client's address: the peer's, or, behind `hops` trusted proxies that each
/// append to `X-Forwarded-For`, the entry that many hops from the right. Entries
/// further left are the client's own word and are ignored.
fn client_ip(headers: &HeaderMap, peer: IpAddr, hops: usize) -> IpAddr {
    if hops == 0 {
        return peer;
    }
    let forwarded: Vec<&str> = headers
        .get_all("x-forwarded-for")
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .map(str::trim)
        .collect();
    // The peer is the nearest proxy; each proxy before it appended one entry.
    // Fewer entries than proxies: the request did not come through them all, so
    // none of it is trusted.
    forwarded
        .len()
        .checked_sub(hops)
        .and_then(|i| forwarded.get(i))
        .and_then(|entry| entry.parse().ok())
        .unwrap_or(peer)
}

fn request_meta(headers: &HeaderMap, peer: SocketAddr, trusted_proxy_hops: usize) -> RequestMeta {
    let refresh_cookie = headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(|pair| pair.trim().split_once('='))
        .find(|(name, _)| *name == REFRESH_COOKIE)
        .map(|(_, value)| value.to_owned())
        .filter(|v| !v.is_empty());
    RequestMeta {
        ip: Some(client_ip(headers, peer.ip(), trusted_proxy_hops).to_string()),
        user_agent: headers
            .get(header::USER_AGENT)
            .and_then(|v| v.to_str().ok())
            .map(str::to_owned),
        refresh_cookie,
    }
}

/// The principal of a bearer token; an invalid or revoked token makes the request anonymous,
/// so resolvers that need a user answer `UNAUTHENTICATED`.
async fn principal_of(state: &AppState, authorization: Option<&str>) -> Principal {
    match authorization.and_then(principal::bearer) {
        Some(token) => principal::authenticate(&state.db, &state.keys, token)
            .await
            .unwrap_or_default(),
        None => Principal::Anonymous,
    }
}

pub async fn post(
    State(state): State<AppState>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    headers: HeaderMap,
    request: GraphQLBatchRequest,
) -> GraphQLResponse {
    let authorization = headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok());
    let principal = principal_of(&state, authorization).await;
    let meta = request_meta(&headers, peer, state.trusted_proxy_hops);
    let request = request.into_inner().data(principal).data(meta);
    state.schema.execute_batch(request).await.into()
}

/// A WebSocket upgrade speaks GraphQL (`graphql-transport-ws` or legacy `graphql-ws`);
/// any other GET gets GraphiQL.
pub async fn get(
    State(state): State<AppState>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    headers: HeaderMap,
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
    let meta = request_meta(&headers, peer, state.trusted_proxy_hops);
    let schema = state.schema.clone();
    upgrade
        .protocols(ALL_WEBSOCKET_PROTOCOLS)
        // GraphQL clients send small messages; tungstenite's 128 KiB default would be
        // allocated and zeroed per connection for nothing.
        .read_buffer_size(WS_READ_BUFFER_BYTES)
        .max_message_size(state.max_ws_message_bytes)
        .on_upgrade(move |socket| async move {
            metrics::gauge!(names::WS_CONNECTIONS).increment(1.0);
            let mut shutting_down = state.shutting_down.clone();
            let (mut sink, stream) = socket.split();
            // At shutdown the client's side of the conversation ends, which ends
            // the GraphQL session; the socket is then closed as "going away", so
            // clients reconnect (to another replica) at once.
            let stream = stream.take_until(async move {
                let _ = shutting_down.wait_for(|down| *down).await;
            });
            let closing = state.shutting_down.clone();
            GraphQLWebSocket::new_with_pair(&mut sink, stream, schema, protocol)
                .on_connection_init(move |payload| connection_init(state, meta, payload))
                .serve()
                .await;
            if *closing.borrow() {
                let frame = CloseFrame {
                    code: close_code::AWAY,
                    reason: "server shutting down".into(),
                };
                let _ = sink.send(Message::Close(Some(frame))).await;
            }
            metrics::gauge!(names::WS_CONNECTIONS).decrement(1.0);
            drop(permit);
        })
        .into_response()
}

/// Reads `{"authorization": "Bearer …"}` from `connection_init`. A token that does not
/// authenticate refuses the connection rather than silently downgrading it.
async fn connection_init(
    state: AppState,
    meta: RequestMeta,
    payload: serde_json::Value,
) -> GqlResult<Data> {
    let authorization = payload
        .get("authorization")
        .or_else(|| payload.get("Authorization"))
        .and_then(serde_json::Value::as_str);
    let principal = match authorization {
        Some(value) => {
            let token = principal::bearer(value).ok_or(AppError::Unauthenticated)?;
            principal::authenticate(&state.db, &state.keys, token).await?
        }
        None => Principal::Anonymous,
    };
    let mut data = Data::default();
    data.insert(principal);
    data.insert(meta);
    data.insert(WebSocketSession);
    Ok(data)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn forwarded(value: &str) -> HeaderMap {
        let mut headers = HeaderMap::new();
        headers.insert("x-forwarded-for", value.parse().expect("header"));
        headers
    }

    #[test]
    fn the_client_ip_is_read_only_as_far_as_proxies_are_trusted() {
        let peer: IpAddr = "10.0.0.2".parse().expect("ip");
        let headers = forwarded("6.6.6.6, 203.0.113.7");
        assert_eq!(client_ip(&headers, peer, 0), peer, "no proxy trusted");
        assert_eq!(
            client_ip(&headers, peer, 1).to_string(),
            "203.0.113.7",
            "the load balancer's entry, not the client's forged one"
        );
        assert_eq!(client_ip(&headers, peer, 2).to_string(), "6.6.6.6");
        assert_eq!(
            client_ip(&headers, peer, 3),
            peer,
            "fewer entries than proxies: not through them all"
        );
        assert_eq!(
            client_ip(&HeaderMap::new(), peer, 1),
            peer,
            "no header: the peer"
        );
        assert_eq!(client_ip(&forwarded("not-an-ip"), peer, 1), peer);
    }
}
