//! Check-in at the door (seed 003 pretix `CheckinList`/`Checkin`, seed 004
//! django-program `CheckIn`, seed 000 the olympic ticket's key): lists of
//! what a door admits, scanner devices, and redeeming tickets.
//!
//! - `lists`: check-in lists (CRUD by the check-in permission), their status
//!   and history;
//! - `scanners`: scanner devices issued per event and gate, their credential
//!   exchanged for short-lived scanner access tokens;
//! - `access`: who works the doors (scanners of the event, teams with the
//!   check-in permission);
//! - `redeem`: one scan, judged, its questions asked, and its answer;
//! - `lane`: the event's door lane (`crate::lanes`), deciding and recording
//!   a batch of scans set-wise, a fixed number of statements per batch;
//! - `questions`: what a door asks before it admits (the event's questions
//!   asked at check-in, the list's free-text ones);
//! - `cache`: lists and scanner devices kept briefly in memory, so a scan
//!   reads only its ticket;
//! - `live`: the bus event every recorded scan publishes, and the counters
//!   behind the figures;
//! - `settings`: token lifetime, scan rate limit, cache time;
//! - `graphql`: the API.
//!
//! Invariants:
//! - An entry changes a ticket's `checkin_states` row only in the door lane,
//!   which first takes the row (created if missing, locked on PostgreSQL)
//!   and decides the batch's scans of it in order against the list's
//!   re-entry rule, in the transaction that records the scans: two scanners
//!   scanning one ticket at once admit it once, on SQLite and PostgreSQL.
//! - `checkin_counts` changes in the same transaction as the states it
//!   counts, by what the lane decided: the figures are exact.
//! - Every scan that reaches a list is recorded, rejected ones too; a scan
//!   that needs answers records nothing until answered.
//! - Answers given at the door are stored on the position by the
//!   transaction that admits the entry, and by no other.
//! - A nonce is unique per scanner (`checkins (nonce_scope, nonce)`): a repeat
//!   records nothing and gets the first answer.
//! - Scanner credentials are stored as SHA-256 only and shown once; a revoked
//!   device is refused on its next call.
//! - Scans are published after their commit, never before.

pub mod access;
pub mod cache;
pub mod demo;
pub mod graphql;
pub mod lane;
pub mod lists;
pub mod live;
pub mod offline;
pub mod questions;
pub mod redeem;
pub mod scanners;
pub mod settings;
