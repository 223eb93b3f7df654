//! The charging network's topology: stations, their cabinets and numbered bays.
//!
//! `stations` holds the queries (plain async, no GraphQL types); `graphql`
//! exposes them as charging's parts of `Station` and `Bay`; `loaders` batches
//! the relations. Invariant: a bay's `station_id` always equals its cabinet's.

pub mod graphql;
pub mod loaders;
pub mod stations;
