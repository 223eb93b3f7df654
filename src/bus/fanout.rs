//! Local delivery of events to this replica's subscribers, by topic.
//!
//! One broadcast channel per topic that has subscribers: publishing to a station
//! wakes only that station's subscribers, not every open subscription. Channels are
//! created on first subscribe and dropped once the last subscriber has gone.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, PoisonError};

use futures_util::{Stream, StreamExt};
use tokio::sync::broadcast;
use tokio_stream::wrappers::BroadcastStream;
use tokio_stream::wrappers::errors::BroadcastStreamRecvError;

use super::Envelope;
use crate::telemetry::names;

/// Events a slow subscriber may fall behind by before it skips ahead.
const CHANNEL_CAPACITY: usize = 1024;

/// What a subscriber listens to.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Topic {
    AllBays,
    StationBays(i32),
    Bay(i32),
}

#[derive(Default)]
pub struct Fanout {
    channels: Mutex<HashMap<Topic, broadcast::Sender<Arc<Envelope>>>>,
}

impl Fanout {
    /// Delivers an envelope to the local subscribers of each of its topics.
    pub fn deliver(&self, envelope: Envelope) {
        metrics::counter!(names::BUS_RECEIVED, "type" => envelope.event.name()).increment(1);
        let topics = envelope.event.topics();
        let envelope = Arc::new(envelope);
        let mut channels = self.channels.lock().unwrap_or_else(PoisonError::into_inner);
        for topic in topics {
            if let Some(sender) = channels.get(&topic)
                && sender.send(Arc::clone(&envelope)).is_err()
            {
                // Nobody listens any more: forget the channel.
                channels.remove(&topic);
            }
        }
    }

    /// Subscribes to one topic. Subscribers that fall more than the channel's
    /// capacity behind skip the missed events (counted) rather than slowing others.
    pub fn subscribe(&self, topic: Topic) -> impl Stream<Item = Arc<Envelope>> + Send + use<> {
        let receiver = {
            let mut channels = self.channels.lock().unwrap_or_else(PoisonError::into_inner);
            channels
                .entry(topic)
                .or_insert_with(|| broadcast::channel(CHANNEL_CAPACITY).0)
                .subscribe()
        };
        BroadcastStream::new(receiver).filter_map(|item| async move {
            match item {
                Ok(envelope) => Some(envelope),
                Err(BroadcastStreamRecvError::Lagged(missed)) => {
                    metrics::counter!(names::BUS_LAGGED).increment(missed);
                    None
                }
            }
        })
    }

    /// Number of topics with live channels (for tests and diagnostics).
    pub fn topic_count(&self) -> usize {
        self.channels
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::bus::{BayStatusChanged, DomainEvent};
    use crate::entities::{BayStatus, LockState, bay};

    fn bay_event(station_id: i32, bay_id: i32) -> Envelope {
        Envelope::new(DomainEvent::BayStatusChanged(BayStatusChanged {
            bay: bay::Model {
                id: bay_id,
                station_id,
                cabinet_id: 1,
                number: 1,
                status: BayStatus::Available,
                lock_state: LockState::Locked,
            },
            device_status: None,
            changed_at: chrono::Utc::now(),
        }))
    }

    #[tokio::test]
    async fn subscribers_receive_only_their_topic() {
        let fanout = Fanout::default();
        let mut station_one = Box::pin(fanout.subscribe(Topic::StationBays(1)));
        let mut all = Box::pin(fanout.subscribe(Topic::AllBays));
        fanout.deliver(bay_event(2, 20));
        fanout.deliver(bay_event(1, 10));
        let seen = station_one.next().await.map(|e| e.event.clone());
        assert!(matches!(seen, Some(DomainEvent::BayStatusChanged(e)) if e.bay.id == 10));
        let both: Vec<_> = [all.next().await, all.next().await]
            .into_iter()
            .flatten()
            .collect();
        assert_eq!(both.len(), 2);
    }

    #[tokio::test]
    async fn channels_without_subscribers_are_dropped() {
        let fanout = Fanout::default();
        let stream = fanout.subscribe(Topic::Bay(5));
        assert_eq!(fanout.topic_count(), 1);
        drop(stream);
        fanout.deliver(bay_event(1, 5));
        assert_eq!(fanout.topic_count(), 0);
    }
}
