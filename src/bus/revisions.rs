//! The newest revision published of each row whose events carry its whole
//! state ([`DomainEvent::revision`]: bays, alerts, charging sessions).
//!
//! A change is published after its transaction commits, so two changes of
//! one row committed one after the other (a bay's by two requests, by a
//! request and the ingester, by two replicas; an alert taken in charge as a
//! device reports it again; a session stopped as its last sample is stored)
//! can reach the bus in the other order, and the older state would be the
//! last every subscriber sees. Revisions are
//! raised under the row's lock, so they order the writes; the bus drops an
//! event older than what it already published for the row. Redis keeps the
//! same record in the publish script, for every replica at once.

use std::collections::HashMap;

use super::DomainEvent;

#[derive(Debug, Default)]
pub struct Latest(HashMap<String, i64>);

impl Latest {
    /// Whether `event` is still news: it carries no revision, or one not
    /// older than the last published of its row (which it then becomes).
    /// Equal revisions pass: a row written without raising its revision
    /// keeps being announced.
    pub fn admit(&mut self, event: &DomainEvent) -> bool {
        let Some((row, revision)) = event.revision() else {
            return true;
        };
        match self.0.get_mut(&row) {
            Some(last) if *last > revision => false,
            Some(last) => {
                *last = revision;
                true
            }
            None => {
                self.0.insert(row, revision);
                true
            }
        }
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
        assert!(latest.admit(&at(7, 2)));
        assert!(!latest.admit(&at(7, 1)), "older than what was published");
        assert!(latest.admit(&at(7, 2)), "the same revision again");
        assert!(latest.admit(&at(8, 1)), "another bay is its own row");
        assert!(latest.admit(&at(7, 3)));
        assert!(!latest.admit(&at(7, 2)));
    }
}
