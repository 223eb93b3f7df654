//! Integration tests: each test starts a real server on a free port with its own
//! database, and talks to it as clients do (GraphQL over HTTP and WebSocket,
//! devices over MQTT). With `DATABASE_URL`, `REDIS_URL` and `MQTT_URL` pointing at
//! real services the same tests run against them.

mod client;
mod helpers;

mod accounts;
mod administration;
mod alert_notifications;
mod alert_rules;
mod authorization;
mod badge_linking;
mod bus_recovery;
mod charging_sessions;
mod charging_staff;
mod checkin;
mod checkin_questions;
mod device_commands;
mod device_security;
mod errors;
mod firmware;
mod fleet;
mod health;
mod hostile_http;
mod ingest;
mod jobs;
mod kiosk_offline;
mod kiosks;
mod live;
mod migrations;
mod mqtt_resilience;
mod pairing;
mod principals;
mod reservations;
mod resume;
mod roles;
mod scale_out;
mod schema;
mod self_service;
mod startup;
mod stations;
mod subscription_groups;
mod supervision;
mod technicians;
mod telemetry;
mod ticketing;
mod ticketing_addons;
mod ticketing_catalog;
mod ticketing_dates;
mod ticketing_exchange_rates;
mod ticketing_invoices;
mod ticketing_meta;
mod ticketing_money;
mod ticketing_payments;
mod ticketing_permissions;
mod ticketing_providers;
mod ticketing_questions;
mod ticketing_variation_quotas;
mod ticketing_voucher_blocks;
mod ticketing_vouchers;
mod websocket_protocol;
