//! The live path: device reports applied in batches, and GraphQL over WebSocket.
//!
//! `batcher` applies many small writes (device reports, samples) in few
//! transactions;
//! `protocol` holds the subprotocols' messages and rules (pure); `connection`
//! serves one socket with them: timers, operations, a bounded outgoing queue;
//! `groups` runs identical subscriptions of one audience once for all of them;
//! `follow` is how subscription resolvers read a topic, resumable by cursor.

pub mod batcher;
pub mod connection;
pub mod follow;
pub mod groups;
pub mod protocol;
