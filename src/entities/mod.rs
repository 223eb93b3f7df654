//! SeaORM entities, one module per table.
//!
//! Entities live together because foreign keys cross domains. They carry storage
//! concerns only: no GraphQL derives. Beside SeaORM's derives they hold the
//! queries every domain needs the same way: stored names (`RoleName`) and
//! scoped queries (`visible_to(&principal)`), which apply a principal's scope
//! to the entity once, for every resolver that reads it.
//! Stored enum values are English and lowercase; `docs/model-map.tsv` maps them to
//! the documented (French) values.

pub mod alert;
pub mod auth_method;
pub mod auth_type;
pub mod bay;
pub mod bay_maintenance;
pub mod cabinet;
pub mod cart_position;
pub mod charging_auth_attempt;
pub mod charging_session;
pub mod checkin;
pub mod checkin_count;
pub mod checkin_list;
pub mod checkin_list_product;
pub mod checkin_state;
pub mod consent;
pub mod device;
pub mod device_command;
pub mod enums;
pub mod event;
pub mod event_meta_property;
pub mod event_meta_value;
pub mod exchange_rate;
pub mod kiosk_credential;
pub mod maintenance;
pub mod notification_outbox;
pub mod order;
pub mod order_position;
pub mod organizer;
pub mod product;
pub mod product_addon_rule;
pub mod product_category;
pub mod product_variation;
pub mod profile;
pub mod question;
pub mod question_answer;
pub mod question_product;
pub mod quota;
pub mod quota_product;
pub mod quota_variation;
pub mod refresh_token;
pub mod reservation;
pub mod role;
pub mod scanner_device;
pub mod scheduled_job;
pub mod security_log;
pub mod sensor;
pub mod sensor_reading;
pub mod server_secret;
pub mod station;
pub mod station_assignment;
pub mod sub_event;
pub mod sub_event_meta_value;
pub mod sub_event_product_setting;
pub mod team;
pub mod team_api_token;
pub mod team_event;
pub mod team_member;
pub mod technician;
pub mod ticketing_log;
pub mod user;
pub mod user_role;

pub use enums::*;
pub use role::RoleName;
pub mod badge_link_code;
pub mod badge_link_failure;
pub mod checkout_key;
pub mod invoice;
pub mod invoice_address;
pub mod invoice_line;
pub mod invoice_number;
pub mod invoice_settings;
pub mod kiosk_offline_event;
pub mod kiosk_pairing;
pub mod order_fee;
pub mod order_payment;
pub mod order_refund;
pub mod order_transaction;
pub mod payment_provider_customer;
pub mod payment_provider_fee;
pub mod payment_webhook_event;
pub mod payment_webhook_failure;
pub mod revoked_ticket_secret;
pub mod session_telemetry;
pub mod store_credit;
pub mod ticket_block;
pub mod voucher;
pub mod voucher_product;
