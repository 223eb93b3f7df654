//! One GraphQL WebSocket connection: the protocol's rules ([`Session`]) applied
//! to a socket, with timers and a bounded outgoing queue.
//!
//! A reader loop owns the session and the running operations; a writer task
//! owns the socket's sending half and drains a bounded queue of frames, so a
//! client that stops reading fills its own queue and nothing else. Frames are
//! written in bursts and flushed once per burst.
//!
//! Results take only the queue's first `queue_frames` places. A result that
//! finds them full ends its subscription with `SUBSCRIBER_LAGGING` and the
//! last cursor queued for it, sent in the places kept back for such endings
//! and other control messages (one per possible operation, and a few); only
//! a client that exhausts those too is disconnected (1013). A closing
//! connection writes what it owes within [`ConnectionLimits::close_timeout`];
//! a client that reads nothing at all is then dropped without its close frame.

use std::collections::HashMap;
use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use async_graphql::{Data, Request, ServerError};
use axum::extract::ws::{CloseFrame, Message, Utf8Bytes, WebSocket};
use futures_util::stream::{BoxStream, SplitSink};
use futures_util::{SinkExt as _, StreamExt as _};
use tokio::sync::{mpsc, watch};
use tokio_stream::StreamMap;

use super::groups::{Delivery, Groups};
use super::protocol::{
    Action, CloseCode, ServerMessage, Session, Subprotocol, close_reason, encode,
};
use crate::error::{LAGGING_MESSAGE, Reason};
use crate::graphql::document_limits::{self, DocumentLimits, Refusal};
use crate::graphql::request_guard::{DocumentChecked, limit_error};
use crate::telemetry::names;

/// Limits and timers of a connection.
#[derive(Debug, Clone, Copy)]
pub struct ConnectionLimits {
    /// Time allowed between the upgrade and `connection_init`.
    pub init_timeout: Duration,
    /// Interval of server pings (`ka` on the legacy protocol).
    pub keep_alive: Duration,
    /// Time a closing connection has to write what is queued and its close
    /// frame; past it the socket is dropped unwritten.
    pub close_timeout: Duration,
    /// Operations one connection may run at once.
    pub max_operations: usize,
    /// Frames waiting to be written before the connection is a slow consumer.
    pub queue_frames: usize,
    /// What a subscribed document may cost, checked before it is parsed.
    pub document: DocumentLimits,
}

impl Default for ConnectionLimits {
    fn default() -> Self {
        Self {
            init_timeout: Duration::from_secs(10),
            keep_alive: Duration::from_secs(15),
            close_timeout: Duration::from_secs(5),
            max_operations: 100,
            queue_frames: 256,
            document: DocumentLimits::default(),
        }
    }
}

/// Something to write.
enum Outgoing {
    Text(String),
    Close(u16, String),
}

/// Serves one connection until either side ends it or `shutting_down` turns true.
/// `authenticate` turns the `connection_init` payload into the operations' data,
/// or refuses it.
pub async fn serve<A, F>(
    socket: WebSocket,
    protocol: Subprotocol,
    groups: Arc<Groups>,
    limits: ConnectionLimits,
    mut shutting_down: watch::Receiver<bool>,
    authenticate: A,
) where
    A: FnOnce(serde_json::Value) -> F,
    F: Future<Output = Result<Data, ServerError>>,
{
    let (sink, mut stream) = socket.split();
    let reserved = limits.max_operations + CONTROL_FRAMES;
    let (queue, frames) = mpsc::channel(limits.queue_frames.max(1) + reserved);
    let mut writer = tokio::spawn(write(sink, frames));
    let mut session = Session::new(protocol, limits.max_operations);
    // This future lives as long as the connection; what is used only until
    // `connection_init` (the callback, then its future: a database lookup) is
    // boxed, so an idle subscriber does not keep room for it.
    let mut authenticate = Some(Box::new(authenticate));
    let mut data: Option<Arc<Data>> = None;
    let mut operations: StreamMap<String, BoxStream<'static, Option<Delivery>>> = StreamMap::new();
    // The last cursor queued per operation, for the lag notice.
    let mut cursors: HashMap<String, Arc<str>> = HashMap::new();
    let init_deadline = tokio::time::sleep(limits.init_timeout);
    tokio::pin!(init_deadline);
    let shutdown = async move {
        let _ = shutting_down.wait_for(|down| *down).await;
    };
    tokio::pin!(shutdown);
    let mut keep_alive = tokio::time::interval(limits.keep_alive);
    keep_alive.reset();

    let send = |message: &ServerMessage<'_>| {
        let text = encode(protocol, message);
        // A full queue means the client is not reading: it is closed below.
        queue.try_send(Outgoing::Text(text)).is_ok()
    };
    // Results and pings leave the reserved places free.
    let has_room = |queue: &mpsc::Sender<Outgoing>| queue.capacity() > reserved;
    let ending: Option<(u16, String)> = loop {
        tokio::select! {
            biased;
            () = &mut shutdown => {
                break Some((1001, "server shutting down".to_owned()));
            }
            () = &mut init_deadline, if data.is_none() => {
                break Some((CloseCode::InitTimeout.code(), "Connection initialisation timeout".to_owned()));
            }
            frame = stream.next() => {
                let text = match frame {
                    Some(Ok(Message::Text(text))) => text,
                    Some(Ok(Message::Binary(_))) => {
                        break Some((CloseCode::BadRequest.code(), "binary messages are not part of the protocol".to_owned()));
                    }
                    Some(Ok(Message::Close(_))) | None | Some(Err(_)) => break None,
                    // Pings are answered by the WebSocket layer.
                    Some(Ok(_)) => continue,
                };
                // A control message that finds even the kept places full: the
                // client reads nothing, as with a result below.
                let answered = match session.on_text(text.as_str()) {
                    Action::Init { payload } => {
                        let Some(authenticate) = authenticate.take() else { continue };
                        match tokio::time::timeout_at(init_deadline.deadline(), Box::pin(authenticate(payload))).await {
                            Ok(Ok(accepted)) => {
                                data = Some(Arc::new(accepted));
                                session.initialized();
                                send(&ServerMessage::ConnectionAck)
                            }
                            Ok(Err(refused)) => {
                                if protocol == Subprotocol::Legacy {
                                    send(&ServerMessage::ConnectionError { message: &refused.message });
                                }
                                // The reason says why (e.g. "authentication required").
                                break Some((CloseCode::Forbidden.code(), close_reason(&refused.message)));
                            }
                            Err(_) => break Some((CloseCode::InitTimeout.code(), "Connection initialisation timeout".to_owned())),
                        }
                    }
                    Action::Start { id, payload } => {
                        let Some(data) = data.clone() else { continue };
                        match serde_json::from_value::<async_graphql::Request>(payload)
                            .map(|request| checked(request, &limits.document))
                        {
                            Ok(Err(refused)) => {
                                // Answered as an execution would answer it: one
                                // result carrying the error, then the end.
                                session.finished(&id);
                                send(&ServerMessage::Next { id: &id, payload_json: &refused })
                                    && send(&ServerMessage::Complete { id: &id })
                            }
                            Ok(Ok(request)) => {
                                let results = groups
                                    .run(request, data)
                                    .map(Some)
                                    .chain(futures_util::stream::once(async { None }))
                                    .boxed();
                                operations.insert(id, results);
                                true
                            }
                            Err(err) => {
                                session.finished(&id);
                                let errors = errors_json(&format!("not a GraphQL request: {err}"));
                                send(&ServerMessage::Error { id: &id, errors_json: &errors })
                            }
                        }
                    }
                    Action::Stop { id } => {
                        operations.remove(&id);
                        cursors.remove(&id);
                        protocol != Subprotocol::Legacy || send(&ServerMessage::Complete { id: &id })
                    }
                    Action::Refuse { id, message } => {
                        let errors = errors_json(&message);
                        send(&ServerMessage::Error { id: &id, errors_json: &errors })
                    }
                    Action::Pong { payload } => send(&ServerMessage::Pong { payload: payload.as_ref() }),
                    Action::Close { code, reason } => break Some((code, reason)),
                    Action::Nothing => true,
                };
                if !answered {
                    break Some(not_reading());
                }
            }
            Some((id, result)) = operations.next(), if !operations.is_empty() => {
                let delivered = match result {
                    Some(Delivery::Payload(frame)) if has_room(&queue) => {
                        if let Some(cursor) = &frame.cursor {
                            cursors.insert(id.clone(), Arc::clone(cursor));
                        }
                        send(&ServerMessage::Next { id: &id, payload_json: &frame.json })
                    }
                    Some(Delivery::Payload(_)) => {
                        // The client is not reading: this subscription ends here,
                        // after what was queued, which the cursor points at.
                        let cursor = cursors.get(&id).cloned();
                        end_lagging(&id, cursor, &mut operations, &mut cursors, &mut session, &send)
                    }
                    Some(Delivery::Lagged { cursor }) => {
                        end_lagging(&id, cursor, &mut operations, &mut cursors, &mut session, &send)
                    }
                    None => {
                        session.finished(&id);
                        cursors.remove(&id);
                        send(&ServerMessage::Complete { id: &id })
                    }
                };
                if !delivered {
                    break Some(not_reading());
                }
            }
            _ = keep_alive.tick() => {
                let ping = if protocol == Subprotocol::Legacy { ServerMessage::KeepAlive } else { ServerMessage::Ping };
                // Only when there is room: a client that reads nothing gets no pings either.
                if has_room(&queue) {
                    send(&ping);
                }
            }
        }
    };
    drop(operations);
    let written = async {
        if let Some((code, reason)) = ending {
            // The writer writes it after what is queued, then stops; it may
            // wait for room, which the close timeout bounds.
            let _ = queue.send(Outgoing::Close(code, reason)).await;
        }
        drop(queue);
        let _ = (&mut writer).await;
    };
    let finished = tokio::time::timeout(limits.close_timeout, written)
        .await
        .is_ok();
    if !finished {
        // The client reads nothing, not even the close: waiting for room in
        // its socket would keep the connection (and its slot) forever.
        metrics::counter!(names::WS_CUT_OFF).increment(1);
        writer.abort();
    }
}

/// Writes queued frames in bursts, flushing once per burst, until the queue
/// ends or a close frame is written.
async fn write(mut sink: SplitSink<WebSocket, Message>, mut frames: mpsc::Receiver<Outgoing>) {
    while let Some(first) = frames.recv().await {
        let mut next = Some(first);
        while let Some(frame) = next.take() {
            let sent = match frame {
                Outgoing::Text(text) => sink.feed(Message::Text(Utf8Bytes::from(text))).await,
                Outgoing::Close(code, reason) => {
                    let frame = CloseFrame {
                        code,
                        reason: Utf8Bytes::from(reason),
                    };
                    let _ = sink.send(Message::Close(Some(frame))).await;
                    return;
                }
            };
            if sent.is_err() {
                return;
            }
            next = frames.try_recv().ok();
        }
        if sink.flush().await.is_err() {
            return;
        }
    }
    let _ = sink.close().await;
}

/// How a connection whose client reads nothing is closed (and counted).
fn not_reading() -> (u16, String) {
    metrics::counter!(names::WS_SLOW_CONSUMERS).increment(1);
    (1013, "the client does not read its messages".to_owned())
}

/// Places kept in the queue for control messages besides one ending per operation.
const CONTROL_FRAMES: usize = 8;

/// Ends a subscription that fell behind, telling the client where to resume.
/// An error ends an operation: no `complete` follows it.
fn end_lagging(
    id: &str,
    cursor: Option<Arc<str>>,
    operations: &mut StreamMap<String, BoxStream<'static, Option<Delivery>>>,
    cursors: &mut HashMap<String, Arc<str>>,
    session: &mut Session,
    send: &impl Fn(&ServerMessage<'_>) -> bool,
) -> bool {
    operations.remove(id);
    cursors.remove(id);
    session.finished(id);
    metrics::counter!(names::SUBSCRIPTION_LAGGING).increment(1);
    let errors = lagging_errors(cursor.as_deref());
    send(&ServerMessage::Error {
        id,
        errors_json: &errors,
    })
}

fn lagging_errors(cursor: Option<&str>) -> String {
    let reason = Reason::SubscriberLagging;
    serde_json::json!([{
        "message": LAGGING_MESSAGE,
        "extensions": { "code": reason.code().as_str(), "reason": reason.as_str(), "cursor": cursor }
    }])
    .to_string()
}

/// Measures a subscribed document before anything parses it, and keeps the
/// parse, so the document is read once: the group check and async-graphql's
/// execution both use it. A document over a limit is refused with the result
/// to send (no data, the limit's error); one that does not parse goes on, so
/// async-graphql reports the syntax error with its position.
fn checked(mut request: Request, limits: &DocumentLimits) -> Result<Request, String> {
    match document_limits::check(&request.query, limits) {
        Ok((document, _cost)) => {
            request.set_parsed_query(document);
            Ok(request.data(DocumentChecked))
        }
        Err(Refusal::Limit(exceeded)) => {
            let refused = async_graphql::Response::from_errors(vec![limit_error(&exceeded)]);
            Err(serde_json::to_string(&refused).unwrap_or_default())
        }
        Err(Refusal::Syntax(_)) => Ok(request),
    }
}

fn errors_json(message: &str) -> String {
    serde_json::json!([{ "message": message, "extensions": { "code": "BAD_USER_INPUT" } }])
        .to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_subscribed_document_is_measured_and_parsed_once_at_the_edge() {
        let mut request = checked(
            Request::new("subscription { bayStatusChanged { status } }"),
            &DocumentLimits::default(),
        )
        .expect("within the limits");
        let marked = request
            .data
            .get(&std::any::TypeId::of::<DocumentChecked>())
            .is_some();
        assert!(marked, "the extension is told not to measure it again");
        let document = request.parsed_query().expect("the kept parse");
        assert_eq!(document.operations.iter().count(), 1);
    }

    #[test]
    fn a_document_over_a_limit_is_answered_without_being_run() {
        let limits = DocumentLimits {
            tokens: 5,
            ..DocumentLimits::default()
        };
        let refused = checked(
            Request::new("subscription { bayStatusChanged { status lockState } }"),
            &limits,
        )
        .expect_err("over the token limit");
        let result: serde_json::Value = serde_json::from_str(&refused).expect("JSON");
        assert!(result["data"].is_null(), "{result}");
        assert_eq!(result["errors"][0]["extensions"]["code"], "BAD_USER_INPUT");
        assert_eq!(
            result["errors"][0]["extensions"]["limit"],
            "VOLTGATE_MAX_QUERY_TOKENS"
        );
    }

    #[test]
    fn a_document_that_does_not_parse_goes_on_to_report_its_syntax_error() {
        let request = checked(Request::new("subscription {"), &DocumentLimits::default())
            .expect("left to async-graphql");
        let marked = request
            .data
            .get(&std::any::TypeId::of::<DocumentChecked>())
            .is_some();
        assert!(!marked);
    }
}
