//! Retained events, for subscribers that resume from a cursor.
//!
//! Each topic keeps its recent events within a [`Retention`] window (an age and
//! a count). The Redis bus keeps them in one capped stream per topic; the
//! in-process bus in a [`Rings`] buffer per topic. Both answer a resume the same
//! way, decided by [`decide`] from the same facts, so the two behave alike:
//!
//! - the history the cursor belongs to is gone (another epoch): expired;
//! - the cursor's own event is still retained: everything after it is too
//!   (histories are trimmed from the oldest end only), so it is replayed;
//! - nothing is retained for the topic and the cursor is younger than the
//!   window: nothing happened since (an event after it would still be held);
//! - otherwise events after the cursor may have been trimmed: expired.

use std::collections::{HashMap, VecDeque};
use std::sync::Arc;
use std::time::Duration;

use super::cursor::{Cursor, CursorError, Position};
use super::{Stamped, Topic};

/// How much history each topic keeps.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Retention {
    /// Events older than this are dropped.
    pub max_age: Duration,
    /// At most this many events per topic.
    pub max_events: usize,
}

impl Default for Retention {
    fn default() -> Self {
        Self {
            max_age: Duration::from_secs(120),
            max_events: 10_000,
        }
    }
}

impl Retention {
    pub fn max_age_ms(&self) -> u64 {
        u64::try_from(self.max_age.as_millis()).unwrap_or(u64::MAX)
    }
}

/// What a history knows about a cursor, gathered in one atomic look.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Facts {
    /// The history's epoch is the cursor's.
    pub same_epoch: bool,
    /// The cursor's own event is still retained.
    pub holds_cursor: bool,
    /// The topic retains no events at all.
    pub empty: bool,
    /// The history's clock, in ms.
    pub now_ms: u64,
}

/// Whether a resume from `cursor` can be served without a gap.
///
/// # Errors
/// [`CursorError::Expired`] when events after the cursor may be lost.
pub fn decide(cursor: &Cursor, facts: Facts, retention: Retention) -> Result<(), CursorError> {
    if !facts.same_epoch {
        return Err(CursorError::Expired);
    }
    if facts.holds_cursor {
        return Ok(());
    }
    let young = cursor.position.ms.saturating_add(retention.max_age_ms()) >= facts.now_ms;
    if facts.empty && young {
        return Ok(());
    }
    Err(CursorError::Expired)
}

/// Events replayed per round trip to the history.
pub const REPLAY_PAGE: usize = 512;

/// The in-process bus's history: a ring of recent events per topic.
pub struct Rings {
    epoch: Arc<str>,
    retention: Retention,
    last: Position,
    topics: HashMap<Topic, VecDeque<(Position, Arc<Stamped>)>>,
    appends_since_sweep: usize,
}

/// Appends between sweeps of topics that no longer receive events.
const SWEEP_EVERY: usize = 1024;

impl Rings {
    pub fn new(epoch: Arc<str>, retention: Retention) -> Self {
        Self {
            epoch,
            retention,
            last: Position::default(),
            topics: HashMap::new(),
            appends_since_sweep: 0,
        }
    }

    pub fn epoch(&self) -> &Arc<str> {
        &self.epoch
    }

    /// The position the next event takes (the same in each of its topics).
    pub fn next_position(&mut self, now_ms: u64) -> Position {
        self.last = self.last.next_at(now_ms);
        self.last
    }

    /// Retains `event` under its topics, trimming what falls out of the window.
    pub fn append(&mut self, event: &Arc<Stamped>, now_ms: u64) {
        let oldest_kept = now_ms.saturating_sub(self.retention.max_age_ms());
        for &(topic, position) in &event.positions {
            let ring = self.topics.entry(topic).or_default();
            ring.push_back((position, Arc::clone(event)));
            trim(ring, self.retention.max_events, oldest_kept);
        }
        self.appends_since_sweep += 1;
        if self.appends_since_sweep >= SWEEP_EVERY {
            self.appends_since_sweep = 0;
            self.topics.retain(|_, ring| {
                trim(ring, usize::MAX, oldest_kept);
                !ring.is_empty()
            });
        }
    }

    /// Up to `limit` events of `cursor`'s topic after it, oldest first.
    ///
    /// # Errors
    /// [`CursorError::Expired`] when events after the cursor may be lost.
    pub fn replay(
        &self,
        cursor: &Cursor,
        now_ms: u64,
        limit: usize,
    ) -> Result<Vec<Arc<Stamped>>, CursorError> {
        let ring = self.topics.get(&cursor.topic);
        let oldest_kept = now_ms.saturating_sub(self.retention.max_age_ms());
        // Entries past their age still in the ring (not yet swept) count as gone.
        let live = |(position, _): &&(Position, Arc<Stamped>)| position.ms >= oldest_kept;
        let facts = Facts {
            same_epoch: *self.epoch == *cursor.epoch,
            holds_cursor: ring
                .is_some_and(|ring| ring.iter().filter(live).any(|(p, _)| *p == cursor.position)),
            empty: ring.is_none_or(|ring| !ring.iter().any(|e| live(&e))),
            now_ms,
        };
        decide(cursor, facts, self.retention)?;
        Ok(ring
            .into_iter()
            .flatten()
            .filter(|(position, _)| *position > cursor.position)
            .take(limit)
            .map(|(_, event)| Arc::clone(event))
            .collect())
    }
}

fn trim(ring: &mut VecDeque<(Position, Arc<Stamped>)>, max_events: usize, oldest_kept: u64) {
    while ring.len() > max_events || ring.front().is_some_and(|(p, _)| p.ms < oldest_kept) {
        ring.pop_front();
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::bus::Envelope;
    use crate::bus::events::fixtures::bay_change;

    const RETENTION: Retention = Retention {
        max_age: Duration::from_secs(60),
        max_events: 3,
    };

    fn event(rings: &mut Rings, now_ms: u64) -> Arc<Stamped> {
        let envelope = Envelope::new(bay_change(2, 7, 1));
        let position = rings.next_position(now_ms);
        let stamped = Arc::new(Stamped::at(envelope, Arc::clone(rings.epoch()), |_| {
            position
        }));
        rings.append(&stamped, now_ms);
        stamped
    }

    fn cursor_of(event: &Stamped) -> Cursor {
        event
            .cursor(Topic::Bay(7))
            .expect("a bay event has a bay cursor")
    }

    #[test]
    fn a_resume_replays_exactly_what_came_after_the_cursor() {
        let mut rings = Rings::new("e1".into(), RETENTION);
        let first = event(&mut rings, 1_000);
        let second = event(&mut rings, 1_000);
        let third = event(&mut rings, 1_001);
        let replayed = rings
            .replay(&cursor_of(&first), 1_002, 10)
            .expect("retained");
        let ids: Vec<_> = replayed.iter().map(|e| e.envelope.id).collect();
        assert_eq!(ids, vec![second.envelope.id, third.envelope.id]);
        assert_eq!(
            rings.replay(&cursor_of(&third), 1_002, 10).map(|r| r.len()),
            Ok(0),
            "up to date"
        );
        assert_eq!(
            rings.replay(&cursor_of(&first), 1_002, 1).map(|r| r.len()),
            Ok(1),
            "paged"
        );
    }

    #[test]
    fn a_cursor_whose_successors_were_trimmed_has_expired() {
        let mut rings = Rings::new("e1".into(), RETENTION);
        let first = event(&mut rings, 1_000);
        for at in 1_001..1_004 {
            event(&mut rings, at);
        }
        assert_eq!(
            rings.replay(&cursor_of(&first), 1_004, 10).err(),
            Some(CursorError::Expired),
            "three retained, the fourth event pushed out the first's successor"
        );
    }

    #[test]
    fn an_old_cursor_has_expired_and_a_young_one_on_a_quiet_topic_has_not() {
        let mut rings = Rings::new("e1".into(), RETENTION);
        let only = event(&mut rings, 1_000);
        let cursor = cursor_of(&only);
        assert_eq!(rings.replay(&cursor, 30_000, 10).map(|r| r.len()), Ok(0));
        assert_eq!(
            rings.replay(&cursor, 62_000, 10).err(),
            Some(CursorError::Expired),
            "past the window, its event is gone"
        );
        let quiet = Cursor {
            topic: Topic::Bay(99),
            ..cursor.clone()
        };
        assert_eq!(
            rings.replay(&quiet, 30_000, 10).map(|r| r.len()),
            Ok(0),
            "nothing happened on that topic within the window"
        );
    }

    #[test]
    fn a_cursor_of_another_epoch_has_expired() {
        let mut rings = Rings::new("e1".into(), RETENTION);
        let only = event(&mut rings, 1_000);
        let other = Cursor {
            epoch: "e0".into(),
            ..cursor_of(&only)
        };
        assert_eq!(
            rings.replay(&other, 1_001, 10).err(),
            Some(CursorError::Expired)
        );
    }
}
