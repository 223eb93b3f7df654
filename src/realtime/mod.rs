//! The live path to clients: GraphQL over WebSocket.
//!
//! `protocol` holds the subprotocols' messages and rules (pure); `connection`
//! serves one socket with them: timers, operations, a bounded outgoing queue.

pub mod connection;
pub mod protocol;
