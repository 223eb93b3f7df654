//! Events a replica could not publish while Redis was away, kept in order
//! until it answers again.
//!
//! A change is committed before its event is published, so an event Redis
//! did not take within the publish's patience would otherwise be lost: its
//! subscribers, told of the outage, would resume from a history that never
//! got it, and show the older state until the row changes again. The backlog
//! keeps such events, and every event published after them, in order, for a
//! task that publishes them as soon as Redis answers.
//!
//! It is bounded twice. An event carrying its row's whole state (a revision,
//! [`DomainEvent::revision`]) replaces the one of the same row still waiting,
//! so a long outage keeps one state per bay, alert and session, not every
//! report. Past `capacity` events, the oldest are dropped; so are events
//! older than [`MAX_AGE`], since the bus's record of a row's last revision,
//! which keeps an older state from reaching subscribers after a newer one,
//! only lasts [`super::revisions::KEPT_FOR_MS`]. Both are counted as lost.

use std::collections::{BTreeMap, HashMap};
use std::time::Duration;

use tokio::time::Instant;

use super::DomainEvent;
use super::events::Row;

/// How long an event may wait in the backlog: less than the bus remembers a
/// row's last revision, by a margin for the publish's own retries.
pub const MAX_AGE: Duration =
    Duration::from_millis(super::revisions::KEPT_FOR_MS).saturating_sub(Duration::from_secs(60));

/// An event waiting for Redis, encoded already.
#[derive(Debug, Clone)]
pub struct Pending {
    pub event: DomainEvent,
    pub payload: Vec<u8>,
    /// When its publish was first tried.
    pub since: Instant,
}

#[derive(Debug)]
pub struct Backlog {
    capacity: usize,
    /// In the order they are to be published.
    pending: BTreeMap<u64, Pending>,
    /// Of each row with a state waiting, its place in `pending`.
    by_row: HashMap<Row, u64>,
    next: u64,
}

impl Backlog {
    pub fn new(capacity: usize) -> Self {
        Self {
            capacity: capacity.max(1),
            pending: BTreeMap::new(),
            by_row: HashMap::new(),
            next: 0,
        }
    }

    pub fn is_empty(&self) -> bool {
        self.pending.is_empty()
    }

    pub fn len(&self) -> usize {
        self.pending.len()
    }

    /// Queues `pending` behind the events waiting; an older state of its row
    /// still waiting is replaced. How many events were dropped to stay within
    /// the capacity.
    pub fn push(&mut self, pending: Pending) -> usize {
        let place = self.next;
        self.next += 1;
        if let Some((row, _)) = pending.event.revision()
            && let Some(older) = self.by_row.insert(row, place)
        {
            self.pending.remove(&older);
        }
        self.pending.insert(place, pending);
        let mut dropped = 0;
        while self.pending.len() > self.capacity {
            self.pop_first();
            dropped += 1;
        }
        dropped
    }

    /// The first `n` events waiting, with their places, left waiting until
    /// [`Self::published`] removes them.
    pub fn front(&self, n: usize) -> Vec<(u64, Pending)> {
        self.pending
            .iter()
            .take(n)
            .map(|(place, pending)| (*place, pending.clone()))
            .collect()
    }

    /// Removes the events published (an event replaced meanwhile is gone
    /// already; its replacement waits).
    pub fn published(&mut self, places: &[u64]) {
        for place in places {
            if let Some(pending) = self.pending.remove(place) {
                self.forget_row(&pending, *place);
            }
        }
    }

    /// Drops the events at the front that have waited since before
    /// `cutoff` (the front is the oldest, up to a publish that gave up just
    /// after events queued behind it: that one goes at the next round);
    /// how many.
    pub fn expire(&mut self, cutoff: Instant) -> usize {
        let mut dropped = 0;
        while self
            .pending
            .first_key_value()
            .is_some_and(|(_, pending)| pending.since < cutoff)
        {
            self.pop_first();
            dropped += 1;
        }
        dropped
    }

    fn pop_first(&mut self) {
        if let Some((place, pending)) = self.pending.pop_first() {
            self.forget_row(&pending, place);
        }
    }

    fn forget_row(&mut self, pending: &Pending, place: u64) {
        if let Some((row, _)) = pending.event.revision()
            && self.by_row.get(&row) == Some(&place)
        {
            self.by_row.remove(&row);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::bus::events::fixtures::bay_change;

    fn bay_at(bay: i32, revision: i64, since: Instant) -> Pending {
        let mut event = bay_change(1, bay, 1);
        if let DomainEvent::BayStatusChanged(change) = &mut event {
            change.bay.revision = revision;
        }
        Pending {
            event,
            payload: format!("{bay}@{revision}").into_bytes(),
            since,
        }
    }

    fn waiting(backlog: &Backlog) -> Vec<String> {
        backlog
            .front(usize::MAX)
            .into_iter()
            .map(|(_, p)| String::from_utf8(p.payload).expect("text"))
            .collect()
    }

    #[test]
    fn a_rows_newer_state_replaces_the_one_waiting_and_takes_its_turn_behind_the_others() {
        let now = Instant::now();
        let mut backlog = Backlog::new(10);
        backlog.push(bay_at(1, 1, now));
        backlog.push(bay_at(2, 1, now));
        backlog.push(bay_at(1, 2, now));
        assert_eq!(waiting(&backlog), ["2@1", "1@2"]);
    }

    #[test]
    fn published_events_leave_and_a_replacement_made_meanwhile_stays() {
        let now = Instant::now();
        let mut backlog = Backlog::new(10);
        backlog.push(bay_at(1, 1, now));
        backlog.push(bay_at(2, 1, now));
        let taken: Vec<u64> = backlog.front(2).into_iter().map(|(p, _)| p).collect();
        // Bay 1 changes again while the two are being published.
        backlog.push(bay_at(1, 2, now));
        backlog.published(&taken);
        assert_eq!(waiting(&backlog), ["1@2"]);
        // And its state is still the one a newer one replaces.
        backlog.push(bay_at(1, 3, now));
        assert_eq!(waiting(&backlog), ["1@3"]);
    }

    #[test]
    fn the_oldest_are_dropped_past_the_capacity_or_the_age() {
        let start = Instant::now();
        let mut backlog = Backlog::new(2);
        assert_eq!(backlog.push(bay_at(1, 1, start)), 0);
        assert_eq!(backlog.push(bay_at(2, 1, start)), 0);
        assert_eq!(
            backlog.push(bay_at(3, 1, start + Duration::from_secs(5))),
            1
        );
        assert_eq!(waiting(&backlog), ["2@1", "3@1"]);
        assert_eq!(backlog.expire(start + Duration::from_secs(1)), 1);
        assert_eq!(waiting(&backlog), ["3@1"]);
        // The dropped row's state is no longer waiting: a new one queues anew.
        backlog.push(bay_at(2, 2, start));
        assert_eq!(waiting(&backlog), ["3@1", "2@2"]);
        assert_eq!(backlog.len(), 2);
    }
}
