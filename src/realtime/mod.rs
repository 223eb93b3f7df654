//! The live path to clients: GraphQL over WebSocket.
//!
//! `protocol` holds the subprotocols' messages and rules (pure); `connection`
//! serves one socket with them: timers, operations, a bounded outgoing queue;
//! `groups` runs identical subscriptions of one audience once for all of them.

pub mod connection;
pub mod groups;
pub mod protocol;
