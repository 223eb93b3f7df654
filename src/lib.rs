//! voltgate: ticketing and EV-charging operations behind one GraphQL API.
//!
//! Read `ARCHITECTURE.md` first. Domains (`accounts`, `charging`, `devices`)
//! own their services, GraphQL parts and loaders; the edges (`http`, `graphql`,
//! `bus`, `mqtt`, `config`, `cli`) sit beside them; `services` is the one
//! context resolvers and `jobs` read, and `app` wires everything together.

#![forbid(unsafe_code)]
// The merged GraphQL roots nest one future per part.
#![recursion_limit = "256"]

pub mod accounts;
pub mod aging;
pub mod app;
pub mod auth;
pub mod bus;
pub mod charging;
pub mod checkin;
pub mod cli;
pub mod config;
pub mod db;
pub mod devices;
pub mod entities;
pub mod error;
pub mod graphql;
pub mod http;
pub mod jobs;
pub mod lanes;
pub mod mqtt;
pub mod pagination;
pub mod qr;
pub mod realtime;
pub mod seed;
pub mod services;
pub mod signing;
pub mod simulate;
pub mod supervision;
pub mod telemetry;
pub mod ticketing;

pub use app::App;
pub use config::ServeSettings;
