//! Domain events and the bus that carries them to subscribers on every replica.
//!
//! Services publish [`DomainEvent`]s after their transaction commits. GraphQL
//! subscriptions read only from the bus, never from the database, so a change made
//! on any replica reaches subscribers on all of them. Two implementations share one
//! interface: [`memory::MemoryBus`] for a single process, and [`redis::RedisBus`],
//! which relays through Redis pub/sub. Both deliver locally through a [`Fanout`],
//! keyed by topic so a subscriber only wakes for events it asked for.
//!
//! Every delivered event is [`Stamped`] with its position in each of its
//! topics, and both buses retain recent events per topic ([`history`]), so a
//! subscriber that comes back with a [`Cursor`] is [`follow`]ed from there: the
//! events it missed first, then live, with no gap and no duplicate.

pub mod backlog;
pub mod cursor;
pub mod events;
pub mod fanout;
pub mod history;
pub mod memory;
pub mod redis;
pub mod revisions;

use std::sync::Arc;

use async_trait::async_trait;
use futures_util::stream::BoxStream;
use futures_util::{StreamExt as _, stream};

use crate::telemetry::names;

pub use cursor::{Cursor, CursorError, Position};
pub use events::{
    AlertChange, AlertChanged, AssignmentChanged, BayStatusChanged, ChargeStateChanged,
    DomainEvent, Envelope, KioskAccessChanged, KioskPairingChanged,
};
pub use fanout::{Fanout, Topic};
pub use history::Retention;

/// Publishes events and hands out subscriptions.
#[async_trait]
pub trait EventBus: Send + Sync + 'static {
    /// Publishes one event to every replica.
    ///
    /// # Errors
    /// When the event cannot be handed to the transport (e.g. Redis is down after retries).
    async fn publish(&self, event: DomainEvent) -> anyhow::Result<()>;

    /// Publishes events in this order, as cheaply as the transport allows
    /// (one round trip to Redis for all of them).
    ///
    /// # Errors
    /// As [`EventBus::publish`]; none or all of them were published.
    async fn publish_all(&self, events: Vec<DomainEvent>) -> anyhow::Result<()>;

    /// Up to [`history::REPLAY_PAGE`] retained events of the cursor's topic
    /// that came after it, oldest first.
    ///
    /// # Errors
    /// [`FollowError::Expired`] when events after the cursor may be lost,
    /// [`FollowError::Unavailable`] when the history cannot be read.
    async fn replay(&self, after: &Cursor) -> Result<Vec<Arc<Stamped>>, FollowError>;

    /// The local fan-out this replica's subscribers read from.
    fn fanout(&self) -> &Fanout;

    /// How much history each topic keeps.
    fn retention(&self) -> Retention;

    /// Whether the transport is usable right now (for `/readyz`).
    async fn is_ready(&self) -> bool;

    /// A short name for logs and readiness output.
    fn kind(&self) -> &'static str;
}

pub type SharedBus = Arc<dyn EventBus>;

/// An event as delivered: its envelope and its place in each of its topics.
#[derive(Debug)]
pub struct Stamped {
    pub envelope: Envelope,
    pub epoch: Arc<str>,
    /// One entry per topic the event was delivered under.
    pub positions: Vec<(Topic, Position)>,
}

impl Stamped {
    /// Stamps `envelope` under each of its topics with `position_of(topic)`.
    pub fn at(
        envelope: Envelope,
        epoch: Arc<str>,
        position_of: impl Fn(Topic) -> Position,
    ) -> Self {
        let positions = envelope
            .event
            .topics()
            .into_iter()
            .map(|topic| (topic, position_of(topic)))
            .collect();
        Self {
            envelope,
            epoch,
            positions,
        }
    }

    pub fn position(&self, topic: Topic) -> Option<Position> {
        self.positions
            .iter()
            .find(|(t, _)| *t == topic)
            .map(|(_, position)| *position)
    }

    /// The cursor a subscriber of `topic` resumes after this event from.
    pub fn cursor(&self, topic: Topic) -> Option<Cursor> {
        self.position(topic).map(|position| Cursor {
            epoch: self.epoch.to_string(),
            topic,
            position,
        })
    }
}

/// Why a subscription cannot start from the cursor it gave.
#[derive(Debug)]
pub enum FollowError {
    /// Events after the cursor may be lost: refetch, then follow live.
    Expired,
    /// The retained history could not be read.
    Unavailable(anyhow::Error),
}

impl From<CursorError> for FollowError {
    fn from(_: CursorError) -> Self {
        Self::Expired
    }
}

/// What a follower receives.
#[derive(Debug, Clone)]
pub enum Followed {
    /// The next event of the topic, with its cursor there.
    Event(Arc<Stamped>, Cursor),
    /// The follower fell behind this replica's fan-out and its stream ends
    /// here; the cursor is the last one it was given (none if none was).
    Lagged(Option<Cursor>),
}

/// Events of `topic`: after `after` when given (replayed from the history, then
/// live), otherwise from now on. In position order, without gaps or duplicates;
/// ends with [`Followed::Lagged`] if the follower cannot keep up.
///
/// # Errors
/// When `after` cannot be served (see [`EventBus::replay`]).
pub async fn follow(
    bus: &dyn EventBus,
    topic: Topic,
    after: Option<Cursor>,
) -> Result<BoxStream<'static, Followed>, FollowError> {
    // Live first, history second: an event that lands between the two is in
    // both and skipped in the live part, but none can fall between them.
    let live = bus.fanout().subscribe(topic);
    let mut replayed: Vec<Arc<Stamped>> = Vec::new();
    let mut start = after;
    if let Some(mut from) = start.clone() {
        metrics::counter!(names::SUBSCRIPTION_RESUMES).increment(1);
        loop {
            let page = bus.replay(&from).await?;
            let full = page.len() >= history::REPLAY_PAGE;
            if let Some(end) = page.last().and_then(|e| e.cursor(topic)) {
                from = end;
            }
            replayed.extend(page);
            if !full {
                break;
            }
            if replayed.len() > bus.retention().max_events {
                // Events keep coming faster than they are read back: refetching is cheaper.
                return Err(FollowError::Expired);
            }
        }
        start = Some(from);
        metrics::counter!(names::SUBSCRIPTION_REPLAYED).increment(replayed.len() as u64);
    }
    let skip_up_to = start.as_ref().map(|c| c.position);
    let live = live.filter_map(move |item| async move {
        match item {
            Ok(event) => {
                let position = event.position(topic)?;
                (skip_up_to < Some(position)).then_some(Ok(event))
            }
            Err(lagged) => Some(Err(lagged)),
        }
    });
    let items = stream::iter(replayed.into_iter().map(Ok)).chain(live);
    // Tracks the last cursor given, for the lag notice; nothing follows the notice.
    let followed = stream::unfold(
        (items.boxed(), start, false),
        move |(mut items, mut last, ended)| async move {
            if ended {
                return None;
            }
            match items.next().await? {
                Ok(event) => {
                    let cursor = event.cursor(topic)?;
                    last = Some(cursor.clone());
                    Some((Followed::Event(event, cursor), (items, last, false)))
                }
                Err(fanout::Lagged) => {
                    metrics::counter!(names::SUBSCRIPTION_LAGGING).increment(1);
                    let notice = Followed::Lagged(last.clone());
                    Some((notice, (items, last, true)))
                }
            }
        },
    );
    Ok(followed.boxed())
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;
    use crate::bus::memory::MemoryBus;

    fn change(number: i32) -> DomainEvent {
        events::fixtures::bay_change(2, 7, number)
    }

    async fn next(followed: &mut BoxStream<'static, Followed>) -> Followed {
        tokio::time::timeout(Duration::from_secs(5), followed.next())
            .await
            .expect("in time")
            .expect("the stream goes on")
    }

    fn number(item: &Followed) -> i32 {
        match item {
            Followed::Event(event, _) => match &event.envelope.event {
                DomainEvent::BayStatusChanged(change) => change.bay.number,
                _ => panic!("a bay change"),
            },
            Followed::Lagged(_) => panic!("an event, not a lag notice"),
        }
    }

    #[tokio::test]
    async fn a_follower_from_a_cursor_gets_what_it_missed_then_live_events_once_each() {
        let bus = MemoryBus::default();
        let mut first = follow(&bus, Topic::Bay(7), None).await.expect("live");
        bus.publish(change(1)).await.expect("published");
        let Followed::Event(_, cursor) = next(&mut first).await else {
            panic!("an event");
        };
        bus.publish_all(vec![change(2), change(3)])
            .await
            .expect("published");

        let mut resumed = follow(&bus, Topic::Bay(7), Some(cursor))
            .await
            .expect("retained");
        assert_eq!(number(&next(&mut resumed).await), 2);
        assert_eq!(number(&next(&mut resumed).await), 3);
        bus.publish(change(4)).await.expect("published");
        assert_eq!(number(&next(&mut resumed).await), 4, "then live, no repeat");
    }

    #[tokio::test]
    async fn a_follower_too_far_behind_is_told_the_last_cursor_it_was_given() {
        let bus = MemoryBus::default();
        let mut slow = follow(&bus, Topic::AllBays, None).await.expect("live");
        bus.publish(change(1)).await.expect("published");
        let Followed::Event(_, given) = next(&mut slow).await else {
            panic!("an event");
        };
        let flood: Vec<_> = (2..2_000).map(change).collect();
        bus.publish_all(flood).await.expect("published");
        match next(&mut slow).await {
            Followed::Lagged(Some(cursor)) => assert_eq!(cursor, given),
            other => panic!("expected a lag notice, got {other:?}"),
        }
        assert!(slow.next().await.is_none(), "nothing follows the notice");
    }

    #[tokio::test]
    async fn a_cursor_of_a_previous_process_has_expired() {
        let before = MemoryBus::default();
        let mut followed = follow(&before, Topic::Bay(7), None).await.expect("live");
        before.publish(change(1)).await.expect("published");
        let Followed::Event(_, cursor) = next(&mut followed).await else {
            panic!("an event");
        };
        let after_restart = MemoryBus::default();
        assert!(matches!(
            follow(&after_restart, Topic::Bay(7), Some(cursor)).await,
            Err(FollowError::Expired)
        ));
    }

    /// A bay at `revision`, told apart by its number.
    fn bay_at(revision: i64) -> DomainEvent {
        let mut event = change(i32::try_from(revision).expect("small"));
        if let DomainEvent::BayStatusChanged(change) = &mut event {
            change.bay.revision = revision;
        }
        event
    }

    /// The in-process bus, and a Redis bus on a channel of its own when
    /// `REDIS_URL` names a server.
    async fn buses() -> Vec<SharedBus> {
        let mut buses: Vec<SharedBus> = vec![Arc::new(MemoryBus::default())];
        if let Some(url) = std::env::var("REDIS_URL")
            .ok()
            .filter(|url| !url.is_empty())
        {
            let url = url::Url::parse(&url).expect("REDIS_URL is a URL");
            let channel = format!("voltgate-unit-{}", uuid::Uuid::new_v4().simple());
            let bus = redis::RedisBus::connect(
                &url,
                &channel,
                Retention::default(),
                redis::Publishing::default(),
            )
            .await
            .expect("Redis");
            buses.push(Arc::new(bus));
        }
        buses
    }

    #[tokio::test]
    async fn an_older_state_of_a_bay_published_after_a_newer_one_reaches_no_one() {
        for bus in buses().await {
            let mut live = follow(bus.as_ref(), Topic::Bay(7), None)
                .await
                .expect("live");
            bus.publish(bay_at(1)).await.expect("published");
            let Followed::Event(_, cursor) = next(&mut live).await else {
                panic!("an event");
            };
            // Revision 3 was written after 2 but reaches the bus first.
            bus.publish(bay_at(3)).await.expect("published");
            bus.publish_all(vec![bay_at(2), bay_at(4)])
                .await
                .expect("published");
            assert_eq!(number(&next(&mut live).await), 3, "{}", bus.kind());
            assert_eq!(number(&next(&mut live).await), 4, "{}", bus.kind());
            // Nor is it in the history a subscriber resumes from.
            let mut resumed = follow(bus.as_ref(), Topic::Bay(7), Some(cursor))
                .await
                .expect("resumed");
            assert_eq!(number(&next(&mut resumed).await), 3, "{}", bus.kind());
            assert_eq!(number(&next(&mut resumed).await), 4, "{}", bus.kind());
        }
    }

    /// A state announced again (a redelivered report) reaches subscribers
    /// only if its first announcement never did.
    #[tokio::test]
    async fn a_state_announced_again_reaches_no_one_if_it_was_published() {
        let again = |revision| {
            let mut event = bay_at(revision);
            if let DomainEvent::BayStatusChanged(change) = &mut event {
                change.repeat = true;
            }
            event
        };
        for bus in buses().await {
            let mut live = follow(bus.as_ref(), Topic::Bay(7), None)
                .await
                .expect("live");
            bus.publish(bay_at(1)).await.expect("published");
            assert_eq!(number(&next(&mut live).await), 1, "{}", bus.kind());
            // Revision 1's again, then revision 2's, whose announcement was lost.
            bus.publish_all(vec![again(1), again(2), bay_at(3)])
                .await
                .expect("published");
            assert_eq!(number(&next(&mut live).await), 2, "{}", bus.kind());
            assert_eq!(number(&next(&mut live).await), 3, "{}", bus.kind());
        }
    }
}
