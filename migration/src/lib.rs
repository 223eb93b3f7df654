//! Schema migrations for voltgate, applied by `voltgate migrate` and on start.
//!
//! One migration per file, named `mYYYYMMDD_HHMMSS_<what>.rs`: sea-orm derives the
//! migration's name from the file stem, so the stem is the migration's identity.

pub use sea_orm_migration::prelude::*;

mod columns;
pub mod keys;
mod m20261122_000001_charging_topology;
mod m20261122_000002_accounts;
mod m20261202_000001_device_credentials;
mod m20261202_040000_station_assignments;
mod m20261202_040001_scheduled_jobs;
mod m20261202_080000_reservations;
mod m20261202_080000_sensors_and_alerts;
mod m20261202_100000_ticketing_organizers;
mod m20261202_100001_ticketing_sales;
mod m20261203_010000_device_commands;
mod m20261203_010001_kiosk_credentials;
mod m20261203_010002_charging_sessions;
mod m20261203_020000_device_inventory;
mod m20261203_020001_technicians;
mod m20261203_020002_maintenances;
mod m20261203_030000_vouchers;
mod m20261203_030001_payments;
mod m20261203_040000_checkin;
mod m20261203_050000_order_transactions;
mod m20261203_050000_session_telemetry;
mod m20261203_050001_refunds_and_credits;
mod m20261203_060100_ticket_blocks;
mod m20261204_060000_badge_links;
mod m20261204_060001_kiosk_pairings;
mod m20261205_010000_kiosk_offline_events;
mod m20261205_070000_invoices;
mod m20261206_010000_checkin_counts;
mod m20261207_010000_payment_providers;
mod m20261208_010000_event_meta;
mod m20261209_010000_questions_addons;
mod m20261209_020000_dates_blocks_rates;
mod m20261209_030000_catalog_editing;
mod m20261209_040000_payment_fees;
mod m20261210_010000_answer_changes;
mod m20261210_050000_quota_variations;
mod m20261211_010000_telemetry_keys;
mod m20261212_010000_alert_notified_count;
mod m20261213_010000_attempts_by_reservation;
mod m20261214_010000_revisions;
mod m20261215_010000_telemetry_one_index;

pub struct Migrator;

#[async_trait::async_trait]
impl MigratorTrait for Migrator {
    fn migrations() -> Vec<Box<dyn MigrationTrait>> {
        vec![
            Box::new(m20261122_000001_charging_topology::Migration),
            Box::new(m20261122_000002_accounts::Migration),
            Box::new(m20261202_000001_device_credentials::Migration),
            Box::new(m20261202_040000_station_assignments::Migration),
            Box::new(m20261202_040001_scheduled_jobs::Migration),
            Box::new(m20261202_080000_reservations::Migration),
            Box::new(m20261202_080000_sensors_and_alerts::Migration),
            Box::new(m20261202_100000_ticketing_organizers::Migration),
            Box::new(m20261202_100001_ticketing_sales::Migration),
            Box::new(m20261203_010000_device_commands::Migration),
            Box::new(m20261203_010001_kiosk_credentials::Migration),
            Box::new(m20261203_010002_charging_sessions::Migration),
            Box::new(m20261203_020000_device_inventory::Migration),
            Box::new(m20261203_020001_technicians::Migration),
            Box::new(m20261203_020002_maintenances::Migration),
            Box::new(m20261203_030000_vouchers::Migration),
            Box::new(m20261203_030001_payments::Migration),
            Box::new(m20261203_040000_checkin::Migration),
            Box::new(m20261203_050000_order_transactions::Migration),
            Box::new(m20261203_050000_session_telemetry::Migration),
            Box::new(m20261203_050001_refunds_and_credits::Migration),
            Box::new(m20261203_060100_ticket_blocks::Migration),
            Box::new(m20261204_060000_badge_links::Migration),
            Box::new(m20261204_060001_kiosk_pairings::Migration),
            Box::new(m20261205_010000_kiosk_offline_events::Migration),
            Box::new(m20261205_070000_invoices::Migration),
            Box::new(m20261206_010000_checkin_counts::Migration),
            Box::new(m20261207_010000_payment_providers::Migration),
            Box::new(m20261208_010000_event_meta::Migration),
            Box::new(m20261209_010000_questions_addons::Migration),
            Box::new(m20261209_020000_dates_blocks_rates::Migration),
            Box::new(m20261209_030000_catalog_editing::Migration),
            Box::new(m20261209_040000_payment_fees::Migration),
            Box::new(m20261210_010000_answer_changes::Migration),
            Box::new(m20261210_050000_quota_variations::Migration),
            Box::new(m20261211_010000_telemetry_keys::Migration),
            Box::new(m20261212_010000_alert_notified_count::Migration),
            Box::new(m20261213_010000_attempts_by_reservation::Migration),
            Box::new(m20261214_010000_revisions::Migration),
            Box::new(m20261215_010000_telemetry_one_index::Migration),
        ]
    }
}
