//! One typed context for everything a resolver or a job needs: the database, the
//! event bus, the device command link, token keys, the rate limiter, the clock
//! and the notification outbox.
//!
//! `App::build` makes one [`ServiceContext`]; the schema carries it (resolvers
//! read it with [`services`]) and the job runner holds it, so no domain grows a
//! helper of its own to fetch its dependencies.

use std::sync::{Arc, Mutex};

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use sea_orm::DatabaseConnection;

use crate::auth::rate_limit::RateLimiter;
use crate::auth::tokens::TokenKeys;
use crate::bus::SharedBus;
use crate::devices::commands::{DeviceCommands, Unavailable};

#[derive(Clone)]
pub struct ServiceContext {
    pub db: DatabaseConnection,
    pub bus: SharedBus,
    /// Commands to bay devices (MQTT in production).
    pub devices: Arc<dyn DeviceCommands>,
    pub keys: Arc<TokenKeys>,
    pub limiter: Arc<RateLimiter>,
    pub clock: Arc<dyn Clock>,
    pub outbox: Arc<dyn Outbox>,
    pub reservations: crate::charging::settings::ReservationSettings,
    pub checkin: crate::checkin::settings::CheckinSettings,
    pub supervision: crate::supervision::settings::SupervisionSettings,
    pub commands: crate::devices::commands_log::CommandSettings,
    pub firmware: crate::devices::firmware::FirmwareSettings,
    pub kiosks: crate::charging::settings::KioskSettings,
    pub signer: Arc<crate::signing::SignerCell>,
    /// Publishes events' availability, each event's in the order it was read.
    pub availability: Arc<crate::ticketing::live::Announcements>,
    /// Ticketing's per-event lanes that batch holds and checkouts.
    pub ticketing_lanes: Arc<crate::lanes::Lanes<crate::ticketing::rush::Rush>>,
    /// Check-in's per-event lanes that batch the scans' writes.
    pub checkin_lanes: Arc<crate::lanes::Lanes<crate::checkin::lane::Doors>>,
    /// What every scan reads and rarely changes: lists, scanner devices.
    pub doors: Arc<crate::checkin::cache::DoorCache>,
    /// Whether kiosk tokens stand, read on every kiosk request.
    pub kiosk_access: Arc<crate::auth::kiosk_access::KioskAccess>,
    /// Where hot read paths read: read-only connections beside the one
    /// writer of a SQLite file (`db::connect_readers`), the same pool as
    /// `db` on PostgreSQL.
    pub reader: DatabaseConnection,
    /// Where the write lanes commit: connections of their own on PostgreSQL
    /// (`db::connect_lanes`), so a batch never waits behind requests' reads
    /// for a pooled connection; the one writer on SQLite.
    pub lanes_db: DatabaseConnection,
    /// The most positions one cart holds.
    pub cart_max_positions: usize,
    pub badge_keys: Arc<crate::accounts::badges::BadgeKeys>,
    /// The payment providers offered, and their settings.
    pub payments: Arc<crate::ticketing::providers::Providers>,
}

impl ServiceContext {
    /// A context with the system clock, a logging outbox and no device link;
    /// `App::build` replaces what it has.
    pub fn new(
        db: DatabaseConnection,
        bus: SharedBus,
        keys: Arc<TokenKeys>,
        limiter: Arc<RateLimiter>,
    ) -> Self {
        let availability = Arc::new(crate::ticketing::live::Announcements::new(
            db.clone(),
            bus.clone(),
        ));
        let ticketing_lanes = Arc::new(crate::lanes::Lanes::new(
            crate::ticketing::rush::Rush::new(Arc::clone(&availability)),
        ));
        let checkin_lanes = Arc::new(crate::lanes::Lanes::new(crate::checkin::lane::Doors::new(
            bus.clone(),
        )));
        Self {
            reader: db.clone(),
            lanes_db: db.clone(),
            cart_max_positions: crate::ticketing::carts::DEFAULT_CART_MAX_POSITIONS,
            db,
            bus,
            devices: Arc::new(Unavailable),
            keys,
            limiter,
            clock: Arc::new(SystemClock),
            outbox: Arc::new(LogOutbox),
            reservations: crate::charging::settings::ReservationSettings::default(),
            checkin: crate::checkin::settings::CheckinSettings::default(),
            supervision: crate::supervision::settings::SupervisionSettings::default(),
            commands: crate::devices::commands_log::CommandSettings::default(),
            firmware: crate::devices::firmware::FirmwareSettings::default(),
            kiosks: crate::charging::settings::KioskSettings::default(),
            signer: Arc::default(),
            availability,
            ticketing_lanes,
            checkin_lanes,
            doors: Arc::default(),
            kiosk_access: Arc::default(),
            badge_keys: Arc::default(),
            payments: Arc::default(),
        }
    }

    pub fn now(&self) -> DateTime<Utc> {
        self.clock.now()
    }
}

/// The schema's service context, for resolvers.
///
/// # Errors
/// When the schema was built without one (never in `build_schema`).
pub fn services<'a>(
    ctx: &'a async_graphql::Context<'_>,
) -> async_graphql::Result<&'a ServiceContext> {
    ctx.data::<ServiceContext>()
}

/// What time it is; jobs and expiries read it here so tests can move it.
pub trait Clock: Send + Sync + 'static {
    fn now(&self) -> DateTime<Utc>;
}

pub struct SystemClock;

impl Clock for SystemClock {
    fn now(&self) -> DateTime<Utc> {
        Utc::now()
    }
}

/// A clock that stands still until moved (tests).
pub struct ManualClock(Mutex<DateTime<Utc>>);

impl ManualClock {
    pub fn at(now: DateTime<Utc>) -> Self {
        Self(Mutex::new(now))
    }

    pub fn advance(&self, by: chrono::TimeDelta) {
        if let Ok(mut now) = self.0.lock() {
            *now += by;
        }
    }
}

impl Clock for ManualClock {
    fn now(&self) -> DateTime<Utc> {
        self.0.lock().map_or_else(|_| Utc::now(), |now| *now)
    }
}

/// A message for a person (email, push), queued after the change it reports
/// is stored.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Notification {
    pub user_id: i32,
    /// A stable template name, e.g. `reservation_expired`.
    pub template: &'static str,
    pub data: serde_json::Value,
}

/// Where notifications go; delivery is the outbox's business, not the service's.
#[async_trait]
pub trait Outbox: Send + Sync + 'static {
    async fn enqueue(&self, notification: Notification);
}

/// Logs notifications; the default until a delivery channel is configured.
pub struct LogOutbox;

#[async_trait]
impl Outbox for LogOutbox {
    async fn enqueue(&self, notification: Notification) {
        tracing::info!(
            user_id = notification.user_id,
            template = notification.template,
            "notification queued"
        );
    }
}

/// Keeps notifications in memory (tests).
#[derive(Default)]
pub struct MemoryOutbox(Mutex<Vec<Notification>>);

impl MemoryOutbox {
    pub fn sent(&self) -> Vec<Notification> {
        self.0.lock().map(|n| n.clone()).unwrap_or_default()
    }
}

#[async_trait]
impl Outbox for MemoryOutbox {
    async fn enqueue(&self, notification: Notification) {
        if let Ok(mut queued) = self.0.lock() {
            queued.push(notification);
        }
    }
}
