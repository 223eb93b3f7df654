//! `/graphql`: queries over POST, subscriptions over WebSocket, GraphiQL on a plain GET.
//!
//! Both transports attach the request's [`Principal`]: from the `Authorization`
//! header on HTTP, from the `connection_init` payload on WebSocket.

use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;

use async_graphql::{BatchResponse, Data, Pos, Result as GqlResult};
use async_graphql_axum::{GraphQLProtocol, GraphQLResponse, GraphQLWebSocket};
use axum::body::Bytes;
use axum::extract::rejection::BytesRejection;
use axum::extract::ws::{
    CloseFrame, Message, WebSocketUpgrade, rejection::WebSocketUpgradeRejection,
};
use axum::extract::{ConnectInfo, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use futures_util::future::join_all;

use super::AppState;
use crate::accounts::RequestMeta;
use crate::accounts::graphql::REFRESH_COOKIE;
use crate::auth::principal::{self, Principal};
use crate::config::WsEngine;
use crate::error::{AppError, ErrorCode};
use crate::graphql::Limits;
use crate::graphql::document_limits::{self, Limit, LimitExceeded, Refusal};
use crate::graphql::live_session::WebSocketSession;
use crate::graphql::request_guard::{BatchBudget, DocumentChecked};
use crate::realtime::connection;
use crate::realtime::protocol::Subprotocol;
use crate::telemetry::names;

/// Per-connection read buffer, held by every idle subscriber: room for a typical
/// subscribe, ping or complete message; larger ones still arrive, in several
/// reads (tested).
const WS_READ_BUFFER_BYTES: usize = 1024;

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
        // Stamped from the context clock where services read it.
        at: None,
    }
}

/// The principal of a bearer token or a team API token (`Token …`); an invalid or revoked token makes the request anonymous,
/// so resolvers that need a user answer `UNAUTHENTICATED`.
async fn principal_of(state: &AppState, authorization: Option<&str>) -> Principal {
    if let Some(token) = authorization.and_then(principal::team_token) {
        return crate::auth::team_tokens::authenticate(&state.db, token)
            .await
            .unwrap_or_default();
    }
    match authorization.and_then(principal::bearer) {
        Some(token) => principal::authenticate_with(
            &state.db,
            &state.keys,
            token,
            &state.services.kiosk_access,
        )
        .await
        .unwrap_or_default(),
        None => Principal::Anonymous,
    }
}

/// Media types a GraphQL POST may declare. Anything else is refused with 415: a
/// cross-site HTML form can send `text/plain`, `application/x-www-form-urlencoded`
/// or `multipart/form-data` without a CORS preflight, and must not run operations.
const ACCEPTED_MEDIA_TYPES: [&str; 2] = ["application/json", "application/graphql-response+json"];

fn accepted_media_type(headers: &HeaderMap) -> bool {
    headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.split(';').next())
        .map(str::trim)
        .is_some_and(|essence| {
            ACCEPTED_MEDIA_TYPES
                .iter()
                .any(|accepted| essence.eq_ignore_ascii_case(accepted))
        })
}

/// A request refused before any of it runs: an HTTP status and a GraphQL error body.
struct Refused {
    status: StatusCode,
    reason: &'static str,
    code: ErrorCode,
    message: String,
    limit: Option<&'static str>,
}

impl Refused {
    fn bad_request(reason: &'static str, message: String) -> Self {
        Self {
            status: StatusCode::BAD_REQUEST,
            reason,
            code: ErrorCode::BadUserInput,
            message,
            limit: None,
        }
    }

    fn over_limit(exceeded: &LimitExceeded) -> Self {
        Self {
            limit: Some(exceeded.limit.setting()),
            ..Self::bad_request("limit", exceeded.message())
        }
    }
}

impl IntoResponse for Refused {
    fn into_response(self) -> Response {
        metrics::counter!(names::GRAPHQL_REFUSED, "reason" => self.reason).increment(1);
        let mut extensions = serde_json::json!({ "code": self.code.as_str() });
        if let Some(limit) = self.limit {
            extensions["limit"] = limit.into();
        }
        let body = serde_json::json!({
            "errors": [{ "message": self.message, "extensions": extensions }]
        });
        let mut response = (self.status, axum::Json(body)).into_response();
        if self.status == StatusCode::SERVICE_UNAVAILABLE {
            response
                .headers_mut()
                .insert(header::RETRY_AFTER, header::HeaderValue::from_static("1"));
        }
        response
    }
}

/// A POST's requests, and whether they came as a batch (a JSON array, even of
/// one), which is answered with an array.
struct Posted {
    requests: Vec<async_graphql::Request>,
    batch: bool,
}

/// Reads a POST into GraphQL requests, each with its document parsed and measured;
/// a batch shares the fields limit.
fn read_batch(
    headers: &HeaderMap,
    body: Result<Bytes, BytesRejection>,
    limits: &Limits,
    max_batch_operations: usize,
) -> Result<Posted, Refused> {
    if !accepted_media_type(headers) {
        return Err(Refused {
            status: StatusCode::UNSUPPORTED_MEDIA_TYPE,
            ..Refused::bad_request(
                "media_type",
                "a GraphQL POST must have Content-Type: application/json".to_owned(),
            )
        });
    }
    let body = body.map_err(|rejection| {
        if rejection.status() == StatusCode::PAYLOAD_TOO_LARGE {
            Refused {
                status: StatusCode::PAYLOAD_TOO_LARGE,
                limit: Some("VOLTGATE_MAX_BODY_BYTES"),
                ..Refused::bad_request(
                    "too_large",
                    "the request body is larger than the limit (VOLTGATE_MAX_BODY_BYTES)"
                        .to_owned(),
                )
            }
        } else {
            Refused::bad_request("malformed", "the request body could not be read".to_owned())
        }
    })?;
    // serde_json's messages name what was expected and where, never the input.
    let malformed = |err: serde_json::Error| {
        Refused::bad_request(
            "malformed",
            format!("the body is not a GraphQL request: {err}"),
        )
    };
    // An array is a batch. Decided here rather than by an untagged enum, which
    // would read `[]` as a request with every field defaulted.
    let is_batch = body.iter().find(|b| !b.is_ascii_whitespace()) == Some(&b'[');
    let requests: Vec<async_graphql::Request> = if is_batch {
        serde_json::from_slice(&body).map_err(malformed)?
    } else {
        vec![serde_json::from_slice(&body).map_err(malformed)?]
    };
    if requests.is_empty() {
        return Err(Refused::bad_request(
            "malformed",
            "an empty batch has nothing to run".to_owned(),
        ));
    }
    if requests.len() > max_batch_operations {
        return Err(Refused {
            reason: "batch_size",
            ..Refused::over_limit(&LimitExceeded {
                limit: Limit::BatchOperations,
                max: max_batch_operations,
            })
        });
    }
    let mut fields = 0_usize;
    let requests = requests
        .into_iter()
        .map(|mut request| {
            match document_limits::check(&request.query, &limits.document) {
                Ok((document, cost)) => {
                    fields += cost.fields;
                    if fields > limits.document.fields {
                        return Err(Refused::over_limit(&LimitExceeded {
                            limit: Limit::Fields,
                            max: limits.document.fields,
                        }));
                    }
                    request.set_parsed_query(document);
                }
                Err(Refusal::Limit(exceeded)) => return Err(Refused::over_limit(&exceeded)),
                // Left to async-graphql, which reports it with its position, as usual.
                Err(Refusal::Syntax(_)) => {}
            }
            Ok(request.data(DocumentChecked))
        })
        .collect::<Result<_, _>>()?;
    Ok(Posted {
        requests,
        batch: is_batch,
    })
}

pub async fn post(
    State(state): State<AppState>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    headers: HeaderMap,
    body: Result<Bytes, BytesRejection>,
) -> Response {
    let Posted { requests, batch } =
        match read_batch(&headers, body, &state.limits, state.max_batch_operations) {
            Ok(posted) => posted,
            Err(refused) => return refused.into_response(),
        };
    let Ok(_permit) = state.admission.admit(requests.len()).await else {
        return Refused {
            status: StatusCode::SERVICE_UNAVAILABLE,
            reason: "overload",
            code: ErrorCode::RateLimited,
            message: "the server is busy; retry after a second".to_owned(),
            limit: None,
        }
        .into_response();
    };
    let authorization = headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok());
    let principal = principal_of(&state, authorization).await;
    let meta = request_meta(&headers, peer, state.trusted_proxy_hops);
    let budget = BatchBudget::new(requests.len(), state.limits.complexity);
    let mut requests = requests.into_iter().map(|request| {
        let request = request.data(principal.clone()).data(meta.clone());
        // A batch's operations share one complexity budget.
        if batch {
            request.data(Arc::clone(&budget))
        } else {
            request
        }
    });
    let response = match (batch, requests.next()) {
        (false, Some(single)) => BatchResponse::Single(state.schema.execute(single).await),
        (_, first) => BatchResponse::Batch(
            join_all(
                first
                    .into_iter()
                    .chain(requests)
                    .map(|r| state.schema.execute(r)),
            )
            .await,
        ),
    };
    GraphQLResponse::from(response).into_response()
}

/// The first subprotocol the client offers that voltgate speaks.
fn offered_subprotocol(headers: &HeaderMap) -> Option<Subprotocol> {
    headers
        .get_all(header::SEC_WEBSOCKET_PROTOCOL)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .find_map(Subprotocol::from_name)
}

/// A WebSocket upgrade speaks GraphQL (`graphql-transport-ws` or legacy `graphql-ws`);
/// any other GET gets GraphiQL.
pub async fn get(
    State(state): State<AppState>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    headers: HeaderMap,
    stock_protocol: Result<GraphQLProtocol, StatusCode>,
    upgrade: Result<WebSocketUpgrade, WebSocketUpgradeRejection>,
) -> Response {
    let Ok(upgrade) = upgrade else {
        return super::graphiql::page().into_response();
    };
    let meta = request_meta(&headers, peer, state.trusted_proxy_hops);
    let Some(client_slot) = state.ws_clients.try_admit(meta.ip.as_deref()) else {
        metrics::counter!(names::WS_REJECTED, "reason" => "client_limit").increment(1);
        return (
            StatusCode::TOO_MANY_REQUESTS,
            [(header::RETRY_AFTER, "1")],
            "too many WebSocket connections from this client",
        )
            .into_response();
    };
    let Ok(permit) = state.ws_permits.clone().try_acquire_owned() else {
        metrics::counter!(names::WS_REJECTED, "reason" => "replica_limit").increment(1);
        return (
            StatusCode::SERVICE_UNAVAILABLE,
            "too many WebSocket connections",
        )
            .into_response();
    };
    let protocol = offered_subprotocol(&headers);
    // Only with VOLTGATE_WS_ENGINE=stock, for comparison benchmarks.
    let stock = (state.ws_engine == WsEngine::Stock)
        .then_some(stock_protocol.ok())
        .flatten();
    // The connection's task lives as long as the socket: it holds the state
    // behind one pointer rather than a copy of every handle in it.
    let state = Arc::new(state);
    upgrade
        .protocols(Subprotocol::ALL)
        // GraphQL clients send small messages; tungstenite's 128 KiB default would be
        // allocated and zeroed per connection for nothing.
        .read_buffer_size(WS_READ_BUFFER_BYTES)
        // Frames are flushed in bursts by the connection's writer: no need for
        // tungstenite's 128 KiB write buffer on every idle socket.
        .write_buffer_size(0)
        .max_message_size(state.max_ws_message_bytes)
        .on_upgrade(move |mut socket| async move {
            metrics::gauge!(names::WS_CONNECTIONS).increment(1.0);
            match (protocol, stock) {
                (Some(_), Some(stock)) => {
                    let schema = state.schema.clone();
                    GraphQLWebSocket::new(socket, schema, stock)
                        .on_connection_init(move |payload| async move {
                            connection_init(&state, meta, payload).await
                        })
                        .serve()
                        .await;
                }
                (Some(protocol), None) => {
                    let groups = Arc::clone(&state.subscription_groups);
                    let limits = state.ws_limits;
                    let shutting_down = state.shutting_down.clone();
                    connection::serve(
                        socket,
                        protocol,
                        groups,
                        limits,
                        shutting_down,
                        |payload| async move {
                            connection_init(&state, meta, payload)
                                .await
                                .map_err(|err| err.into_server_error(Pos::default()))
                        },
                    )
                    .await;
                }
                (None, _) => {
                    let frame = CloseFrame {
                        code: 4406,
                        reason: "Subprotocol not acceptable".into(),
                    };
                    let _ = socket.send(Message::Close(Some(frame))).await;
                }
            }
            metrics::gauge!(names::WS_CONNECTIONS).decrement(1.0);
            drop((permit, client_slot));
        })
        .into_response()
}

/// Reads `{"authorization": "Bearer …"}` from `connection_init`. A token that does not
/// authenticate refuses the connection rather than silently downgrading it.
async fn connection_init(
    state: &AppState,
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
            principal::authenticate_with(
                &state.db,
                &state.keys,
                token,
                &state.services.kiosk_access,
            )
            .await?
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
