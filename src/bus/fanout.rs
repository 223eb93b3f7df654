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

use super::Stamped;
use crate::telemetry::names;

/// Events a slow subscriber may fall behind by before it skips ahead.
const CHANNEL_CAPACITY: usize = 1024;

/// What a subscriber listens to.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Topic {
    AllBays,
    StationBays(i32),
    Bay(i32),
    /// Every alert change.
    Alerts,
    /// Every scan at one event's doors.
    Checkin(i32),
    /// Every charging session's changes.
    ChargeSessions,
    /// One charging session's changes.
    ChargeSession(i32),
    /// The changes of the charging sessions at one bay.
    ChargeBay(i32),
    /// The quotas of one ticketing event.
    Availability(i32),
    /// One kiosk pairing's changes.
    KioskPairing(i32),
    /// Changes of kiosk credentials and cabinets, for replicas' caches.
    KioskAccess,
}

impl Topic {
    /// The topic's name in cursors and Redis keys.
    pub fn key(self) -> String {
        match self {
            Self::AllBays => "all".to_owned(),
            Self::Alerts => "alerts".to_owned(),
            Self::ChargeSessions => "sessions".to_owned(),
            Self::KioskAccess => "kiosks".to_owned(),
            Self::ChargeSession(id) => format!("c{id}"),
            Self::ChargeBay(id) => format!("k{id}"),
            Self::StationBays(id) => format!("s{id}"),
            Self::Bay(id) => format!("b{id}"),
            Self::Checkin(id) => format!("d{id}"),
            Self::Availability(id) => format!("q{id}"),
            Self::KioskPairing(id) => format!("p{id}"),
        }
    }

    pub fn from_key(key: &str) -> Option<Self> {
        match key {
            "all" => return Some(Self::AllBays),
            "alerts" => return Some(Self::Alerts),
            "sessions" => return Some(Self::ChargeSessions),
            "kiosks" => return Some(Self::KioskAccess),
            _ => {}
        }
        let id = |digits: &str| digits.parse::<i32>().ok().filter(|id| *id > 0);
        match key.split_at_checked(1)? {
            ("s", digits) => id(digits).map(Self::StationBays),
            ("b", digits) => id(digits).map(Self::Bay),
            ("d", digits) => id(digits).map(Self::Checkin),
            ("c", digits) => id(digits).map(Self::ChargeSession),
            ("k", digits) => id(digits).map(Self::ChargeBay),
            ("q", digits) => id(digits).map(Self::Availability),
            ("p", digits) => id(digits).map(Self::KioskPairing),
            _ => None,
        }
    }
}

/// A subscriber may have missed events: it fell more than the channel's
/// capacity behind, or the transport lost some ([`Fanout::interrupt`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Lagged;

/// What a topic's channel carries.
#[derive(Debug, Clone)]
enum Delivery {
    Event(Arc<Stamped>),
    /// Events may have been lost before this point.
    Gap,
}

#[derive(Default)]
pub struct Fanout {
    channels: Mutex<HashMap<Topic, broadcast::Sender<Delivery>>>,
}

impl Fanout {
    /// Delivers an event to the local subscribers of each of its topics.
    pub fn deliver(&self, event: &Arc<Stamped>) {
        metrics::counter!(names::BUS_RECEIVED, "type" => event.envelope.event.name()).increment(1);
        let mut channels = self.channels.lock().unwrap_or_else(PoisonError::into_inner);
        for (topic, _) in &event.positions {
            if let Some(sender) = channels.get(topic)
                && sender.send(Delivery::Event(Arc::clone(event))).is_err()
            {
                // Nobody listens any more: forget the channel.
                channels.remove(topic);
            }
        }
    }

    /// Subscribes to one topic. A subscriber that falls more than the channel's
    /// capacity behind is told ([`Lagged`], counted) rather than slowing others.
    pub fn subscribe(
        &self,
        topic: Topic,
    ) -> impl Stream<Item = Result<Arc<Stamped>, Lagged>> + Send + use<> {
        let receiver = {
            let mut channels = self.channels.lock().unwrap_or_else(PoisonError::into_inner);
            channels
                .entry(topic)
                .or_insert_with(|| broadcast::channel(CHANNEL_CAPACITY).0)
                .subscribe()
        };
        BroadcastStream::new(receiver).map(|item| match item {
            Ok(Delivery::Event(event)) => Ok(event),
            Ok(Delivery::Gap) => Err(Lagged),
            Err(BroadcastStreamRecvError::Lagged(missed)) => {
                metrics::counter!(names::BUS_LAGGED).increment(missed);
                Err(Lagged)
            }
        })
    }

    /// Tells every current subscriber that events may have been lost (the
    /// transport's connection dropped), as if each had fallen behind: a
    /// subscription ends with the last cursor it was given, to resume from the
    /// history, and a cache forgets what it kept. Subscribers that come later
    /// are not told.
    pub fn interrupt(&self) {
        let channels = self.channels.lock().unwrap_or_else(PoisonError::into_inner);
        for sender in channels.values() {
            // A channel whose subscribers are gone is dropped at the next delivery.
            let _ = sender.send(Delivery::Gap);
        }
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
    use crate::bus::events::fixtures::bay_change;
    use crate::bus::{DomainEvent, Envelope, Position};

    fn bay_event(station_id: i32, bay_id: i32) -> Arc<Stamped> {
        let envelope = Envelope::new(bay_change(station_id, bay_id, 1));
        Arc::new(Stamped::at(envelope, "e".into(), |_| Position::new(1, 0)))
    }

    #[tokio::test]
    async fn subscribers_receive_only_their_topic() {
        let fanout = Fanout::default();
        let mut station_one = Box::pin(fanout.subscribe(Topic::StationBays(1)));
        let mut all = Box::pin(fanout.subscribe(Topic::AllBays));
        fanout.deliver(&bay_event(2, 20));
        fanout.deliver(&bay_event(1, 10));
        let seen = station_one
            .next()
            .await
            .and_then(Result::ok)
            .map(|e| e.envelope.event.clone());
        assert!(matches!(seen, Some(DomainEvent::BayStatusChanged(e)) if e.bay.id == 10));
        let both: Vec<_> = [all.next().await, all.next().await]
            .into_iter()
            .flatten()
            .filter_map(Result::ok)
            .collect();
        assert_eq!(both.len(), 2);
    }

    /// One topic of each kind. The match makes a new kind fail to compile
    /// here until it is listed, so the round trip below covers every key
    /// prefix: two kinds sharing one would map one of them to the other.
    fn one_of_each_kind() -> Vec<Topic> {
        let all = vec![
            Topic::AllBays,
            Topic::StationBays(3),
            Topic::Bay(12),
            Topic::Alerts,
            Topic::Checkin(4),
            Topic::ChargeSessions,
            Topic::ChargeSession(7),
            Topic::ChargeBay(12),
            Topic::Availability(5),
            Topic::KioskPairing(5),
            Topic::KioskAccess,
        ];
        for topic in &all {
            match topic {
                Topic::AllBays
                | Topic::StationBays(_)
                | Topic::Bay(_)
                | Topic::Alerts
                | Topic::Checkin(_)
                | Topic::ChargeSessions
                | Topic::ChargeSession(_)
                | Topic::ChargeBay(_)
                | Topic::Availability(_)
                | Topic::KioskPairing(_)
                | Topic::KioskAccess => {}
            }
        }
        all
    }

    #[test]
    fn every_kind_of_topic_has_its_own_key_prefix() {
        let topics = one_of_each_kind();
        let prefixes: std::collections::HashSet<String> = topics
            .iter()
            .map(|t| {
                t.key()
                    .trim_end_matches(|c: char| c.is_ascii_digit())
                    .to_owned()
            })
            .collect();
        assert_eq!(prefixes.len(), topics.len());
    }

    #[test]
    fn topics_round_trip_through_their_keys() {
        for topic in one_of_each_kind() {
            assert_eq!(Topic::from_key(&topic.key()), Some(topic));
        }
        for key in [
            "",
            "s",
            "s0",
            "s-1",
            "x1",
            "b1x",
            "s99999999999",
            "c",
            "k0",
            "cb1",
        ] {
            assert_eq!(Topic::from_key(key), None, "{key:?}");
        }
    }

    #[tokio::test]
    async fn an_interruption_tells_every_subscriber_after_what_it_had() {
        let fanout = Fanout::default();
        let mut bay = Box::pin(fanout.subscribe(Topic::Bay(10)));
        let mut station = Box::pin(fanout.subscribe(Topic::StationBays(2)));
        fanout.deliver(&bay_event(1, 10));
        fanout.interrupt();
        fanout.deliver(&bay_event(1, 10));
        assert!(matches!(bay.next().await, Some(Ok(_))));
        assert_eq!(bay.next().await.map(|item| item.err()), Some(Some(Lagged)));
        assert!(
            matches!(bay.next().await, Some(Ok(_))),
            "the channel goes on"
        );
        assert_eq!(
            station.next().await.map(|item| item.err()),
            Some(Some(Lagged))
        );
        // A subscriber that comes later is not told of the earlier gap.
        let mut later = Box::pin(fanout.subscribe(Topic::Bay(10)));
        fanout.deliver(&bay_event(1, 10));
        assert!(matches!(later.next().await, Some(Ok(_))));
    }

    #[tokio::test]
    async fn channels_without_subscribers_are_dropped() {
        let fanout = Fanout::default();
        let stream = fanout.subscribe(Topic::Bay(5));
        assert_eq!(fanout.topic_count(), 1);
        drop(stream);
        fanout.deliver(&bay_event(1, 5));
        assert_eq!(fanout.topic_count(), 0);
    }
}
