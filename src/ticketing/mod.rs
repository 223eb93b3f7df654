//! Ticketing: organizers sell tickets for events (seed 003 pretix, seed 001
//! django-program registration, seed 000 the olympic ticket, unified as
//! DESIGN §2 asks: one product, one order, one position/ticket model).
//!
//! - `organizers`: organizers, events, dates, teams, members, API tokens;
//!   `organizer_edits`: changing and deleting dates and teams;
//! - `catalog`: categories, products, variations, quotas and availability;
//!   `catalog_edits`: changing and deleting them;
//! - `dates`: a date's own prices, switches and sale windows of products
//!   and variations, and the price rule every purchase uses;
//! - `carts`, `quotas`, `orders`: buying without overselling; checkout
//!   retried with an idempotency key places one order;
//! - `vouchers`: vouchers, the prices they make, their redemption;
//! - `payments`: payments and their fees; enough confirmed payment marks an
//!   order paid;
//! - `providers`: payment providers (a built-in test provider, a
//!   Stripe-compatible one), their customers and signed webhook events;
//! - `tickets`: blocking a ticket, reissuing its secret, its QR code;
//! - `refunds`, `credits`: refunds (by hand or as store credit, optionally
//!   canceling the order) and store credits spent on later orders;
//! - `invoices`: invoices and cancellation invoices, numbered without gaps
//!   per organizer and prefix; invoice addresses and settings;
//! - `exchange_rates`: the rates invoices show their taxes in another
//!   currency with;
//! - `access`: pretix's team permissions for the event at hand;
//! - `audit`: the audit log, written in each change's transaction;
//! - `ledger`: the transaction ledger and the sales reports summed from it;
//! - `money`: exact amounts (minor units, decimal strings);
//! - `demo`: demo data for `seed --demo`, made through the services;
//! - `jobs`: expiry of cart holds and unpaid orders;
//! - `live`: quota counters announced to storefronts after each change;
//! - `graphql`, `loaders`: the API.
//!
//! Invariants:
//! - Quota units are taken only under the quota rows' locks, against what is
//!   left (`carts::hold_all` reads them `FOR UPDATE`; `quotas::block`, for
//!   vouchers that block quota, is a conditional `UPDATE`),
//!   in the transaction that stores the positions (or vouchers) holding
//!   them; every later move or release happens in the transaction
//!   that removes or changes those positions, by the statement that did so.
//!   A quota is therefore never oversold, on SQLite or PostgreSQL, with any
//!   number of replicas.
//! - A voucher is redeemed only by a conditional `UPDATE` that checks its
//!   usages left, in the checkout's transaction (`vouchers::check_redemption`).
//! - Every change to events, dates, teams, tokens, products, quotas, vouchers
//!   and orders goes through `audit::Audited`, which writes its audit log
//!   entry in the change's own transaction.
//! - Every change to an order's positions or fees appends its difference to
//!   the transaction ledger (`ledger::sync`) in the change's own transaction;
//!   ledger rows are never updated or deleted.
//! - Team API tokens are stored as SHA-256 only and shown once.

pub mod access;
pub mod addons;
pub mod audit;
pub mod carts;
pub mod catalog;
pub mod catalog_edits;
pub mod credits;
pub mod dates;
pub mod demo;
pub mod exchange_rates;
pub mod graphql;
pub mod invoice_html;
pub mod invoices;
pub mod jobs;
pub mod ledger;
pub mod live;
pub mod loaders;
pub mod meta;
pub mod money;
pub mod orders;
pub mod organizer_edits;
pub mod organizers;
pub mod payments;
pub mod providers;
pub mod questions;
pub mod quotas;
pub mod refunds;
pub mod rush;
pub mod tickets;
pub mod vouchers;
