//! The newest revision published of each row whose events carry its whole
//! state ([`DomainEvent::revision`]: bays, alerts, charging sessions).
//!
//! A change is published after its transaction commits, so two changes of
//! one row committed one after the other (a bay's by two requests, by a
//! request and the ingester, by two replicas; an alert taken in charge as a
//! device reports it again; a session stopped as its last sample is stored)
//! can reach the bus in the other order, and the older state would be the
//! last every subscriber sees. Revisions are raised under the row's lock,
//! so they order the writes; the bus drops an event older than what it
//! already published for the row. Redis keeps the same record in the publish
//! script, for every replica at once.
//!
//! A row's record is kept for [`KEPT_FOR_MS`] after its last event: an
//! event reaches the bus within its publish's retries of its commit, or,
//! through a longer Redis outage, from the backlog that keeps it for less
//! than that ([`super::backlog::MAX_AGE`]), so an older one can only trail a
//! newer one by less than the record lasts, and the record stays bounded by
//! the rows changed lately, not every alert and session there ever was.

use std::collections::HashMap;

use super::DomainEvent;
use super::events::Row;

/// How long a row's last revision is remembered after its last event.
pub const KEPT_FOR_MS: u64 = 600_000;

/// Admissions between sweeps of the rows not heard of for [`KEPT_FOR_MS`].
const SWEEP_EVERY: usize = 1024;

#[derive(Debug, Default)]
pub struct Latest {
    /// Per row, its last revision published and when (ms).
    rows: HashMap<Row, (i64, u64)>,
    admitted_since_sweep: usize,
}

impl Latest {
    /// Whether `event`, published at `now_ms`, is still news: it carries no
    /// revision, or one not older than the last published of its row (which
    /// it then becomes). Equal revisions pass, but for a state announced
    /// again ([`DomainEvent::is_repeat`]), which must be newer.
    pub fn admit(&mut self, event: &DomainEvent, now_ms: u64) -> bool {
        let Some((row, revision)) = event.revision() else {
            return true;
        };
        self.admitted_since_sweep += 1;
        if self.admitted_since_sweep >= SWEEP_EVERY {
            self.admitted_since_sweep = 0;
            self.rows
                .retain(|_, (_, at)| at.saturating_add(KEPT_FOR_MS) >= now_ms);
        }
        match self.rows.get_mut(&row) {
            Some((last, _)) if *last > revision || (*last == revision && event.is_repeat()) => {
                false
            }
            Some(kept) => {
                *kept = (revision, now_ms);
                true
            }
            None => {
                self.rows.insert(row, (revision, now_ms));
                true
            }
        }
    }

    /// Rows remembered.
    #[cfg(test)]
    fn remembered(&self) -> usize {
        self.rows.len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::bus::events::fixtures::bay_change;

    fn at(bay: i32, revision: i64) -> DomainEvent {
        let mut event = bay_change(1, bay, 1);
        if let DomainEvent::BayStatusChanged(change) = &mut event {
            change.bay.revision = revision;
        }
        event
    }

    #[test]
    fn an_older_revision_of_a_row_is_dropped_after_a_newer_one() {
        let mut latest = Latest::default();
        assert!(latest.admit(&at(7, 2), 0));
        assert!(!latest.admit(&at(7, 1), 1), "older than what was published");
        assert!(latest.admit(&at(7, 2), 2), "the same revision again");
        assert!(latest.admit(&at(8, 1), 3), "another bay is its own row");
        assert!(latest.admit(&at(7, 3), 4));
        assert!(!latest.admit(&at(7, 2), 5));
    }

    #[test]
    fn a_state_announced_again_passes_only_if_the_bus_has_not_published_it() {
        let again = |bay, revision| {
            let mut event = at(bay, revision);
            if let DomainEvent::BayStatusChanged(change) = &mut event {
                change.repeat = true;
            }
            event
        };
        let mut latest = Latest::default();
        assert!(latest.admit(&at(7, 2), 0));
        assert!(!latest.admit(&again(7, 2), 1), "published already");
        assert!(!latest.admit(&again(7, 1), 2), "older");
        assert!(latest.admit(&again(7, 3), 3), "its announcement never came");
        assert!(latest.admit(&again(8, 1), 4), "nothing published of bay 8");
    }

    #[test]
    fn rows_not_heard_of_for_a_while_are_forgotten() {
        let mut latest = Latest::default();
        for bay in 0..2_000 {
            assert!(latest.admit(&at(bay, 5), 0));
        }
        assert_eq!(latest.remembered(), 2_000);
        // Within the window, bay 1 is still remembered.
        assert!(!latest.admit(&at(1, 4), KEPT_FOR_MS));
        let later = KEPT_FOR_MS + 1;
        for bay in 10_000..10_000 + SWEEP_EVERY as i32 {
            latest.admit(&at(bay, 1), later);
        }
        assert!(
            latest.remembered() <= SWEEP_EVERY + 1,
            "the quiet rows are swept: {}",
            latest.remembered()
        );
    }
}
