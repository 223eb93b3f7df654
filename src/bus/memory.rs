//! The in-process bus: publishing delivers straight to local subscribers.

use async_trait::async_trait;

use super::{DomainEvent, Envelope, EventBus, Fanout};
use crate::telemetry::names;

#[derive(Default)]
pub struct MemoryBus {
    fanout: Fanout,
}

#[async_trait]
impl EventBus for MemoryBus {
    async fn publish(&self, event: DomainEvent) -> anyhow::Result<()> {
        metrics::counter!(names::BUS_PUBLISHED, "type" => event.name()).increment(1);
        self.fanout.deliver(Envelope::new(event));
        Ok(())
    }

    fn fanout(&self) -> &Fanout {
        &self.fanout
    }

    async fn is_ready(&self) -> bool {
        true
    }

    fn kind(&self) -> &'static str {
        "memory"
    }
}
