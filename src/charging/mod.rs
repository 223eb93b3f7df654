//! The charging network: stations, their cabinets and numbered bays, and
//! reservations of bays.
//!
//! Services (no GraphQL): `stations` (reading), `network` (staff
//! administration, maintenance), `catalog` (nearest stations, availability),
//! `reservations` (create without double booking, list, cancel, access),
//! `bay_status` (a bay's status from its maintenance and reservations, and
//! the job that keeps it current), `outbox` (the notification outbox and its
//! delivery job), `kiosks` (cabinet kiosk credentials and the kiosk's sign-in),
//! `settings` (reservation and kiosk rules from configuration), `badge_links`
//! (linking a scanned badge to an account with a one-use code), `pairing`
//! (mobile pairing of a customer's phone with a kiosk), `offline` (the signed
//! offline cache of a cabinet's reservations and the reconciliation of events
//! a kiosk uploads), `demo` (demo reservations and a session).
//! GraphQL: `graphql` (charging's parts of `Station` and `Bay`, `Cabinet`),
//! `admin_graphql` (staff mutations), `reservations_graphql` (catalog and
//! reservations), `kiosks_graphql` (kiosk credentials, `kioskSignIn`, `terminal`),
//! `badge_links_graphql`, `pairing_graphql`, `offline_graphql`; `loaders` batches the relations.
//!
//! Invariants: a bay's `station_id` always equals its cabinet's; two holding
//! reservations of one bay never overlap; bay status changes are published
//! after their transaction commits.

pub mod admin_graphql;
pub mod badge_links;
pub mod badge_links_graphql;
pub mod bay_status;
pub mod catalog;
pub mod demo;
pub mod graphql;
pub mod kiosks;
pub mod kiosks_graphql;
pub mod loaders;
pub mod maintenance_windows;
pub mod network;
pub mod no_show;
pub mod offline;
pub mod offline_graphql;
pub mod outbox;
pub mod overview;
pub mod overview_graphql;
pub mod pairing;
pub mod pairing_graphql;
pub mod reservations;
pub mod reservations_graphql;
pub mod session_state;
pub mod sessions;
pub mod sessions_graphql;
pub mod settings;
pub mod stations;
