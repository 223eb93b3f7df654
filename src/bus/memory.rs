//! The in-process bus: publishing delivers straight to local subscribers and
//! keeps the event in a ring per topic for subscribers that resume.

use std::sync::{Arc, Mutex, PoisonError};

use async_trait::async_trait;

use super::history::{REPLAY_PAGE, Retention, Rings};
use super::revisions::Latest;
use super::{Cursor, DomainEvent, Envelope, EventBus, Fanout, FollowError, Stamped};
use crate::telemetry::names;

pub struct MemoryBus {
    fanout: Fanout,
    retention: Retention,
    /// The history, and the newest revision published of each row. Also
    /// orders publishing: an event is admitted, stamped, kept and delivered
    /// under this lock, so every subscriber sees positions in increasing order.
    published: Mutex<(Rings, Latest)>,
}

impl MemoryBus {
    pub fn new(retention: Retention) -> Self {
        // A new process starts a new history: cursors of an earlier one expire.
        let epoch = uuid::Uuid::new_v4().simple().to_string()[..12].to_owned();
        Self {
            fanout: Fanout::default(),
            retention,
            published: Mutex::new((Rings::new(epoch.into(), retention), Latest::default())),
        }
    }
}

impl Default for MemoryBus {
    fn default() -> Self {
        Self::new(Retention::default())
    }
}

/// Milliseconds since the Unix epoch by this machine's clock.
pub fn now_ms() -> u64 {
    u64::try_from(chrono::Utc::now().timestamp_millis()).unwrap_or_default()
}

#[async_trait]
impl EventBus for MemoryBus {
    async fn publish(&self, event: DomainEvent) -> anyhow::Result<()> {
        self.publish_all(vec![event]).await
    }

    async fn publish_all(&self, events: Vec<DomainEvent>) -> anyhow::Result<()> {
        let now = now_ms();
        let mut guard = self
            .published
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        let (rings, latest) = &mut *guard;
        for event in events {
            metrics::counter!(names::BUS_PUBLISHED, "type" => event.name()).increment(1);
            if !latest.admit(&event, now) {
                metrics::counter!(names::BUS_SUPERSEDED).increment(1);
                continue;
            }
            let position = rings.next_position(now);
            let epoch = Arc::clone(rings.epoch());
            let stamped = Arc::new(Stamped::at(Envelope::new(event), epoch, |_| position));
            rings.append(&stamped, now);
            self.fanout.deliver(&stamped);
        }
        Ok(())
    }

    async fn replay(&self, after: &Cursor) -> Result<Vec<Arc<Stamped>>, FollowError> {
        let guard = self
            .published
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        Ok(guard.0.replay(after, now_ms(), REPLAY_PAGE)?)
    }

    fn fanout(&self) -> &Fanout {
        &self.fanout
    }

    fn retention(&self) -> Retention {
        self.retention
    }

    async fn is_ready(&self) -> bool {
        true
    }

    fn kind(&self) -> &'static str {
        "memory"
    }
}
