//! The GraphQL-over-WebSocket subprotocols, as data: decoding client messages,
//! encoding server messages, and the rules a connection follows.
//!
//! `graphql-transport-ws` (the `graphql-ws` library's protocol, `PROTOCOL.md`)
//! is followed to the letter, close codes included; the legacy `graphql-ws`
//! subprotocol (Apollo's `subscriptions-transport-ws`) is kept for older
//! clients. Pure: no sockets, no clocks; [`Session`] decides, the connection
//! loop acts.

use std::collections::HashSet;

use serde::Deserialize;
use serde_json::Value;

/// The subprotocols, by their `Sec-WebSocket-Protocol` names.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Subprotocol {
    /// `graphql-transport-ws`.
    TransportWs,
    /// `graphql-ws`, the legacy `subscriptions-transport-ws` protocol.
    Legacy,
}

impl Subprotocol {
    pub const ALL: [&'static str; 2] = ["graphql-transport-ws", "graphql-ws"];

    pub fn from_name(name: &str) -> Option<Self> {
        match name.trim() {
            "graphql-transport-ws" => Some(Self::TransportWs),
            "graphql-ws" => Some(Self::Legacy),
            _ => None,
        }
    }

    pub const fn name(self) -> &'static str {
        match self {
            Self::TransportWs => "graphql-transport-ws",
            Self::Legacy => "graphql-ws",
        }
    }
}

/// Close codes of `graphql-transport-ws`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CloseCode {
    /// A message that is not valid JSON, or not a message of the protocol.
    BadRequest,
    /// `subscribe` before the connection was acknowledged.
    Unauthorized,
    /// `connection_init` refused (e.g. a bad token).
    Forbidden,
    /// No `connection_init` within the allowed time.
    InitTimeout,
    /// `subscribe` with an id that is already running.
    DuplicateId,
    /// A second `connection_init`.
    TooManyInits,
}

impl CloseCode {
    pub const fn code(self) -> u16 {
        match self {
            Self::BadRequest => 4400,
            Self::Unauthorized => 4401,
            Self::Forbidden => 4403,
            Self::InitTimeout => 4408,
            Self::DuplicateId => 4409,
            Self::TooManyInits => 4429,
        }
    }
}

/// What a client sent, whatever its subprotocol.
#[derive(Debug, Clone, PartialEq)]
pub enum ClientMessage {
    ConnectionInit {
        payload: Value,
    },
    /// `subscribe` (legacy `start`): run an operation under `id`.
    Subscribe {
        id: String,
        payload: Value,
    },
    /// `complete` (legacy `stop`): the client is no longer interested in `id`.
    Complete {
        id: String,
    },
    Ping {
        payload: Option<Value>,
    },
    Pong,
    /// Legacy `connection_terminate`.
    Terminate,
}

#[derive(Deserialize)]
struct Envelope {
    #[serde(rename = "type")]
    kind: String,
    id: Option<String>,
    payload: Option<Value>,
}

/// Longest operation id accepted: ids are the client's labels, not storage.
pub const MAX_ID_LEN: usize = 128;

/// Decodes one text frame.
///
/// # Errors
/// A message saying why it is not a message of `protocol`; the connection closes
/// with [`CloseCode::BadRequest`] and that reason.
pub fn decode(protocol: Subprotocol, text: &str) -> Result<ClientMessage, String> {
    let envelope: Envelope =
        serde_json::from_str(text).map_err(|err| format!("invalid message: {err}"))?;
    let id = || match &envelope.id {
        Some(id) if !id.is_empty() && id.len() <= MAX_ID_LEN => Ok(id.clone()),
        Some(_) => Err(format!(
            "`{}` needs an id of 1 to {MAX_ID_LEN} characters",
            envelope.kind
        )),
        None => Err(format!("`{}` needs an id", envelope.kind)),
    };
    let object_payload = || match &envelope.payload {
        Some(payload @ Value::Object(_)) => Ok(payload.clone()),
        _ => Err(format!("`{}` needs an object payload", envelope.kind)),
    };
    match (protocol, envelope.kind.as_str()) {
        (_, "connection_init") => match &envelope.payload {
            None | Some(Value::Null) => Ok(ClientMessage::ConnectionInit {
                payload: Value::Object(Default::default()),
            }),
            Some(payload @ Value::Object(_)) => Ok(ClientMessage::ConnectionInit {
                payload: payload.clone(),
            }),
            Some(_) => Err("`connection_init` payload must be an object".to_owned()),
        },
        (Subprotocol::TransportWs, "subscribe") | (Subprotocol::Legacy, "start") => {
            Ok(ClientMessage::Subscribe {
                id: id()?,
                payload: object_payload()?,
            })
        }
        (Subprotocol::TransportWs, "complete") | (Subprotocol::Legacy, "stop") => {
            Ok(ClientMessage::Complete { id: id()? })
        }
        (Subprotocol::TransportWs, "ping") => Ok(ClientMessage::Ping {
            payload: envelope.payload.clone(),
        }),
        (Subprotocol::TransportWs, "pong") => Ok(ClientMessage::Pong),
        (Subprotocol::Legacy, "connection_terminate") => Ok(ClientMessage::Terminate),
        (_, other) => Err(format!(
            "unknown message type `{}` for {}",
            other.chars().take(32).collect::<String>(),
            protocol.name()
        )),
    }
}

/// Server messages. `Next` carries its payload already serialized, so one
/// result serialized once can be framed for any number of subscribers.
#[derive(Debug, Clone, PartialEq)]
pub enum ServerMessage<'a> {
    ConnectionAck,
    /// Legacy only: the init was refused (transport-ws closes with 4403).
    ConnectionError {
        message: &'a str,
    },
    /// Legacy keep-alive (`ka`); transport-ws uses `ping`.
    KeepAlive,
    Ping,
    Pong {
        payload: Option<&'a Value>,
    },
    Next {
        id: &'a str,
        payload_json: &'a str,
    },
    /// The operation failed before producing results; `errors_json` is a JSON array.
    Error {
        id: &'a str,
        errors_json: &'a str,
    },
    Complete {
        id: &'a str,
    },
}

/// Encodes a server message for `protocol`.
pub fn encode(protocol: Subprotocol, message: &ServerMessage<'_>) -> String {
    let legacy = protocol == Subprotocol::Legacy;
    let id = |id: &str| Value::from(id).to_string();
    match message {
        ServerMessage::ConnectionAck => r#"{"type":"connection_ack"}"#.to_owned(),
        ServerMessage::ConnectionError { message } => format!(
            r#"{{"type":"connection_error","payload":{{"message":{}}}}}"#,
            Value::from(*message)
        ),
        ServerMessage::KeepAlive => r#"{"type":"ka"}"#.to_owned(),
        ServerMessage::Ping => r#"{"type":"ping"}"#.to_owned(),
        ServerMessage::Pong { payload: None } => r#"{"type":"pong"}"#.to_owned(),
        ServerMessage::Pong {
            payload: Some(payload),
        } => format!(r#"{{"type":"pong","payload":{payload}}}"#),
        ServerMessage::Next {
            id: op,
            payload_json,
        } => format!(
            r#"{{"type":"{}","id":{},"payload":{payload_json}}}"#,
            if legacy { "data" } else { "next" },
            id(op)
        ),
        ServerMessage::Error {
            id: op,
            errors_json,
        } => format!(
            r#"{{"type":"error","id":{},"payload":{errors_json}}}"#,
            id(op)
        ),
        ServerMessage::Complete { id: op } => {
            format!(r#"{{"type":"complete","id":{}}}"#, id(op))
        }
    }
}

/// What the connection loop must do after a client message.
#[derive(Debug, Clone, PartialEq)]
pub enum Action {
    /// Authenticate `payload`; then [`Session::initialized`] or close with 4403.
    Init { payload: Value },
    /// Start the operation.
    Start { id: String, payload: Value },
    /// Stop the operation (if it still runs) and, on transport-ws, say nothing more.
    Stop { id: String },
    /// Refuse this subscribe with an error message (the connection stays open).
    Refuse { id: String, message: String },
    /// Answer a ping.
    Pong { payload: Option<Value> },
    /// Close the connection.
    Close { code: u16, reason: String },
    /// Nothing to do.
    Nothing,
}

/// The protocol's rules for one connection: init once, nothing before the
/// acknowledgement, unique ids, a bounded number of operations.
#[derive(Debug)]
pub struct Session {
    protocol: Subprotocol,
    max_operations: usize,
    init_received: bool,
    acknowledged: bool,
    running: HashSet<String>,
}

impl Session {
    pub fn new(protocol: Subprotocol, max_operations: usize) -> Self {
        Self {
            protocol,
            max_operations,
            init_received: false,
            acknowledged: false,
            running: HashSet::new(),
        }
    }

    pub fn protocol(&self) -> Subprotocol {
        self.protocol
    }

    pub fn is_acknowledged(&self) -> bool {
        self.acknowledged
    }

    /// The init was accepted: operations may start.
    pub fn initialized(&mut self) {
        self.acknowledged = true;
    }

    /// An operation ended by itself (its stream finished or failed): its id is free again.
    pub fn finished(&mut self, id: &str) {
        self.running.remove(id);
    }

    /// Operations running now.
    pub fn running(&self) -> usize {
        self.running.len()
    }

    /// Applies a text frame.
    pub fn on_text(&mut self, text: &str) -> Action {
        match decode(self.protocol, text) {
            Ok(message) => self.on_message(message),
            Err(reason) => close(CloseCode::BadRequest, &reason),
        }
    }

    fn on_message(&mut self, message: ClientMessage) -> Action {
        match message {
            ClientMessage::ConnectionInit { payload } => {
                if self.init_received {
                    return close(CloseCode::TooManyInits, "Too many initialisation requests");
                }
                self.init_received = true;
                Action::Init { payload }
            }
            ClientMessage::Subscribe { id, payload } => {
                if !self.acknowledged {
                    return close(CloseCode::Unauthorized, "Unauthorized");
                }
                if self.running.contains(&id) {
                    return close(
                        CloseCode::DuplicateId,
                        &format!("Subscriber for {id} already exists"),
                    );
                }
                if self.running.len() >= self.max_operations {
                    return Action::Refuse {
                        id,
                        message: format!(
                            "a connection may run at most {} operations at once \
                             (VOLTGATE_MAX_WS_SUBSCRIPTIONS)",
                            self.max_operations
                        ),
                    };
                }
                self.running.insert(id.clone());
                Action::Start { id, payload }
            }
            ClientMessage::Complete { id } => {
                if self.running.remove(&id) {
                    Action::Stop { id }
                } else {
                    Action::Nothing
                }
            }
            ClientMessage::Ping { payload } => Action::Pong { payload },
            ClientMessage::Pong => Action::Nothing,
            ClientMessage::Terminate => Action::Close {
                code: 1000,
                reason: String::new(),
            },
        }
    }
}

fn close(code: CloseCode, reason: &str) -> Action {
    Action::Close {
        code: code.code(),
        reason: close_reason(reason),
    }
}

/// `text` cut to fit a close frame's reason (at most 123 bytes).
pub fn close_reason(text: &str) -> String {
    let mut end = text.len().min(123);
    while !text.is_char_boundary(end) {
        end -= 1;
    }
    text[..end].to_owned()
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    fn session() -> Session {
        Session::new(Subprotocol::TransportWs, 2)
    }

    fn closes_with(action: Action) -> u16 {
        match action {
            Action::Close { code, .. } => code,
            other => panic!("expected a close, got {other:?}"),
        }
    }

    #[test]
    fn subscribing_before_the_acknowledgement_is_unauthorized() {
        let mut session = session();
        let action = session.on_text(r#"{"type":"subscribe","id":"1","payload":{"query":"{a}"}}"#);
        assert_eq!(closes_with(action), 4401);
    }

    #[test]
    fn a_second_init_closes_with_4429() {
        let mut session = session();
        assert!(matches!(
            session.on_text(r#"{"type":"connection_init"}"#),
            Action::Init { .. }
        ));
        session.initialized();
        assert_eq!(
            closes_with(session.on_text(r#"{"type":"connection_init","payload":{}}"#)),
            4429
        );
    }

    #[test]
    fn duplicate_ids_close_with_4409_and_finished_ids_are_free_again() {
        let mut session = session();
        session.on_text(r#"{"type":"connection_init"}"#);
        session.initialized();
        let subscribe = r#"{"type":"subscribe","id":"a","payload":{"query":"{a}"}}"#;
        assert!(matches!(session.on_text(subscribe), Action::Start { .. }));
        assert_eq!(closes_with(session.on_text(subscribe)), 4409);

        let mut session = self::session();
        session.on_text(r#"{"type":"connection_init"}"#);
        session.initialized();
        session.on_text(subscribe);
        session.finished("a");
        assert!(matches!(session.on_text(subscribe), Action::Start { .. }));
        assert_eq!(
            session.on_text(r#"{"type":"complete","id":"a"}"#),
            Action::Stop { id: "a".into() }
        );
        assert_eq!(
            session.on_text(r#"{"type":"complete","id":"a"}"#),
            Action::Nothing,
            "completing twice is harmless"
        );
    }

    #[test]
    fn operations_beyond_the_limit_are_refused_without_closing() {
        let mut session = session();
        session.on_text(r#"{"type":"connection_init"}"#);
        session.initialized();
        for id in ["1", "2"] {
            let text =
                format!(r#"{{"type":"subscribe","id":"{id}","payload":{{"query":"{{a}}"}}}}"#);
            assert!(matches!(session.on_text(&text), Action::Start { .. }));
        }
        let third = session.on_text(r#"{"type":"subscribe","id":"3","payload":{"query":"{a}"}}"#);
        assert!(
            matches!(third, Action::Refuse { ref id, .. } if id == "3"),
            "{third:?}"
        );
        assert_eq!(session.running(), 2);
    }

    #[test]
    fn malformed_messages_close_with_4400() {
        for text in [
            "not json",
            "[]",
            r#"{"type":"subscribe","payload":{}}"#,
            r#"{"type":"subscribe","id":"","payload":{}}"#,
            r#"{"type":"subscribe","id":"1","payload":"query"}"#,
            r#"{"type":"start","id":"1","payload":{}}"#,
            r#"{"type":"connection_init","payload":5}"#,
            r#"{"type":"whatever"}"#,
            r#"{"id":"1"}"#,
        ] {
            let mut session = session();
            assert_eq!(closes_with(session.on_text(text)), 4400, "{text}");
        }
        let long_id = format!(
            r#"{{"type":"complete","id":"{}"}}"#,
            "x".repeat(MAX_ID_LEN + 1)
        );
        assert_eq!(closes_with(session().on_text(&long_id)), 4400);
    }

    #[test]
    fn the_legacy_protocol_speaks_its_own_words() {
        let mut session = Session::new(Subprotocol::Legacy, 4);
        session.on_text(r#"{"type":"connection_init","payload":{}}"#);
        session.initialized();
        assert!(matches!(
            session.on_text(r#"{"type":"start","id":"1","payload":{"query":"{a}"}}"#),
            Action::Start { .. }
        ));
        assert_eq!(
            session.on_text(r#"{"type":"stop","id":"1"}"#),
            Action::Stop { id: "1".into() }
        );
        assert_eq!(
            closes_with(session.on_text(r#"{"type":"connection_terminate"}"#)),
            1000
        );
        assert_eq!(
            closes_with(session.on_text(r#"{"type":"ping"}"#)),
            4400,
            "no ping in the legacy protocol"
        );
    }

    #[test]
    fn server_messages_frame_preserialized_payloads() {
        let payload = r#"{"data":{"x":1}}"#;
        assert_eq!(
            encode(
                Subprotocol::TransportWs,
                &ServerMessage::Next {
                    id: "a\"b",
                    payload_json: payload
                }
            ),
            r#"{"type":"next","id":"a\"b","payload":{"data":{"x":1}}}"#
        );
        let legacy = encode(
            Subprotocol::Legacy,
            &ServerMessage::Next {
                id: "1",
                payload_json: payload,
            },
        );
        let parsed: Value = serde_json::from_str(&legacy).expect("JSON");
        assert_eq!(
            parsed,
            json!({ "type": "data", "id": "1", "payload": { "data": { "x": 1 } } })
        );
        let pong = json!({ "t": 1 });
        assert_eq!(
            encode(
                Subprotocol::TransportWs,
                &ServerMessage::Pong {
                    payload: Some(&pong)
                }
            ),
            r#"{"type":"pong","payload":{"t":1}}"#
        );
    }

    #[test]
    fn close_reasons_fit_a_close_frame() {
        let action = close(CloseCode::BadRequest, &"é".repeat(100));
        match action {
            Action::Close { reason, .. } => assert!(reason.len() <= 123, "{}", reason.len()),
            other => panic!("{other:?}"),
        }
    }
}
