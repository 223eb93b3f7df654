//! Domain events and the bus that carries them to subscribers on every replica.
//!
//! Services publish [`DomainEvent`]s after their transaction commits. GraphQL
//! subscriptions read only from the bus, never from the database, so a change made
//! on any replica reaches subscribers on all of them. Two implementations share one
//! interface: [`memory::MemoryBus`] for a single process, and [`redis::RedisBus`],
//! which relays through Redis pub/sub. Both deliver locally through a [`Fanout`],
//! keyed by topic so a subscriber only wakes for events it asked for.

pub mod events;
pub mod fanout;
pub mod memory;
pub mod redis;

use std::sync::Arc;

use async_trait::async_trait;

pub use events::{BayStatusChanged, DomainEvent, Envelope};
pub use fanout::{Fanout, Topic};

/// Publishes events and hands out subscriptions.
#[async_trait]
pub trait EventBus: Send + Sync + 'static {
    /// Publishes one event to every replica.
    ///
    /// # Errors
    /// When the event cannot be handed to the transport (e.g. Redis is down after retries).
    async fn publish(&self, event: DomainEvent) -> anyhow::Result<()>;

    /// The local fan-out this replica's subscribers read from.
    fn fanout(&self) -> &Fanout;

    /// Whether the transport is usable right now (for `/readyz`).
    async fn is_ready(&self) -> bool;

    /// A short name for logs and readiness output.
    fn kind(&self) -> &'static str;
}

pub type SharedBus = Arc<dyn EventBus>;
