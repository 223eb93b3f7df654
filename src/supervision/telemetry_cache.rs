//! What telemetry ingestion needs for every sample and that rarely changes,
//! kept in a replica's memory so that a batch of samples costs no lookups:
//! the bay and device at an MQTT place (sensor readings use these too), the
//! sessions of a bay, and the over-current and voltage alerts open on a
//! device.
//!
//! Everything is forgotten together every `VOLTGATE_INGEST_CACHE_MS` (1 s), so
//! a worker reads again what its next batch needs in one query per kind,
//! whatever the number of bays; 0 keeps nothing and every batch reads.
//!
//! Nothing stored rests on the memory alone:
//! - **places**: a device registered, replaced or retired, or a cabinet's
//!   prefix changed, is seen within the cache time (a retired device's
//!   connection is ended at once, so nothing new comes from it);
//! - **sessions** are hints: the batch's one `UPDATE` of its sessions reads
//!   each picked session back and stores a sample against it only if that
//!   session was still open at the sample's time; otherwise, or when no
//!   remembered session fits, the sample's session is read from the
//!   database. A session opened or ended on any replica is announced on the
//!   bus (`chargeStateChanged`), which forgets its bay here;
//! - **open alerts** are kept current by every alert event of the bus (this
//!   replica's included, after their commit), ordered by alert id so a late
//!   event never undoes a newer one; a device's alerts read from the database
//!   while an alert changed are not kept. A replica that falls behind on the
//!   bus forgets everything.

use std::collections::{HashMap, HashSet};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant};

use futures_util::StreamExt as _;
use sea_orm::QuerySelect as _;
use sea_orm::{ColumnTrait as _, ConnectionTrait, DbErr, EntityTrait as _, QueryFilter as _};

use crate::bus::{DomainEvent, SharedBus, Topic};
use crate::entities::{AlertKind, AlertStatus, alert, bay, charging_session, device};

/// Entries kept between two forgettings at most: a flood of made-up keys
/// cannot grow the memory without bound.
const MAX_ENTRIES: usize = 10_000;

/// A map forgotten whole every `ttl`, with a count of the changes it was told
/// of, so that a read racing a change is not kept.
#[derive(Debug)]
struct Expiring<K, V> {
    ttl: Duration,
    inner: Mutex<Inner<K, V>>,
}

#[derive(Debug)]
struct Inner<K, V> {
    since: Instant,
    generation: u64,
    entries: HashMap<K, V>,
}

impl<K: Eq + std::hash::Hash, V> Expiring<K, V> {
    fn new(ttl: Duration) -> Self {
        Self {
            ttl,
            inner: Mutex::new(Inner {
                since: Instant::now(),
                generation: 0,
                entries: HashMap::new(),
            }),
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Inner<K, V>> {
        let mut inner = self.inner.lock().unwrap_or_else(PoisonError::into_inner);
        if inner.since.elapsed() >= self.ttl {
            inner.entries.clear();
            inner.since = Instant::now();
            // A read begun before the forgetting is older than promised.
            inner.generation += 1;
        }
        inner
    }

    fn read<R>(&self, f: impl FnOnce(&HashMap<K, V>) -> R) -> R {
        f(&self.lock().entries)
    }

    fn generation(&self) -> u64 {
        self.lock().generation
    }

    /// Keeps what `f` adds, unless a change came since `generation` was taken.
    fn fill(&self, generation: Option<u64>, f: impl FnOnce(&mut HashMap<K, V>)) {
        if self.ttl.is_zero() {
            return;
        }
        let mut inner = self.lock();
        if generation.is_some_and(|g| g != inner.generation) {
            return;
        }
        if inner.entries.len() >= MAX_ENTRIES {
            inner.entries.clear();
        }
        f(&mut inner.entries);
    }

    /// Applies a change; reads in progress are not kept.
    fn change(&self, f: impl FnOnce(&mut HashMap<K, V>)) {
        let mut inner = self.lock();
        inner.generation += 1;
        f(&mut inner.entries);
    }
}

/// A bay with its device in service.
pub type Place = (bay::Model, device::Model);

/// The telemetry alert kinds a sample raises and ends.
const KINDS: [AlertKind; 2] = [AlertKind::OverCurrent, AlertKind::VoltageOutOfRange];

/// A device's telemetry alerts: per kind, the newest alert known and whether
/// it is open.
type DeviceAlerts = [Option<(i32, bool)>; 2];

fn kind_index(kind: AlertKind) -> Option<usize> {
    KINDS.iter().position(|k| *k == kind)
}

/// One replica's memory for telemetry ingestion.
#[derive(Debug)]
pub struct TelemetryCache {
    /// MQTT prefix → bay number → the bay and its device.
    places: Expiring<String, HashMap<i32, Arc<Place>>>,
    /// Bay → its sessions that may take samples, newest first.
    sessions: Expiring<i32, Arc<[charging_session::Model]>>,
    /// Device → its telemetry alerts.
    alerts: Expiring<i32, DeviceAlerts>,
}

impl TelemetryCache {
    pub fn new(ttl: Duration) -> Self {
        Self {
            places: Expiring::new(ttl),
            sessions: Expiring::new(ttl),
            alerts: Expiring::new(ttl),
        }
    }

    /// Remembers nothing: every batch reads the database.
    pub fn uncached() -> Self {
        Self::new(Duration::ZERO)
    }

    /// The remembered bay and device at `prefix` and bay `number`.
    pub fn place(&self, prefix: &str, number: i32) -> Option<Arc<Place>> {
        self.places.read(|places| {
            places
                .get(prefix)
                .and_then(|bays| bays.get(&number).cloned())
        })
    }

    pub fn keep_place(&self, prefix: &str, number: i32, place: Arc<Place>) {
        self.places.fill(None, |places| {
            places
                .entry(prefix.to_owned())
                .or_default()
                .insert(number, place);
        });
    }

    /// The remembered sessions of `bay_id`, newest first.
    pub fn sessions(&self, bay_id: i32) -> Option<Arc<[charging_session::Model]>> {
        self.sessions
            .read(|sessions| sessions.get(&bay_id).cloned())
    }

    pub fn keep_sessions(&self, bay_id: i32, sessions: Arc<[charging_session::Model]>) {
        self.sessions.fill(None, |kept| {
            kept.insert(bay_id, sessions);
        });
    }

    pub fn forget_sessions(&self, bay_id: i32) {
        self.sessions.change(|sessions| {
            sessions.remove(&bay_id);
        });
    }

    /// Forgets the bay's sessions unless the change is one it knows
    /// already (the session, in that state): samples announce their session
    /// without changing it.
    pub fn session_changed(
        &self,
        bay_id: i32,
        session_id: i32,
        state: charging_session::SessionState,
    ) {
        let known = self.sessions.read(|sessions| {
            sessions
                .get(&bay_id)
                .is_some_and(|list| list.iter().any(|s| s.id == session_id && s.state == state))
        });
        if !known {
            self.sessions.change(|sessions| {
                sessions.remove(&bay_id);
            });
        }
    }

    /// For each of `devices`, the kinds of its open telemetry alerts; `None`
    /// for a device not remembered.
    fn open_alerts(&self, devices: &[i32]) -> Vec<Option<DeviceAlerts>> {
        self.alerts
            .read(|alerts| devices.iter().map(|d| alerts.get(d).copied()).collect())
    }

    /// Applies a committed change of an alert: a newer alert replaces what
    /// is known; the known one may only close.
    pub fn alert_changed(&self, alert: &alert::Model) {
        let (Some(device_id), Some(index)) = (alert.device_id, kind_index(alert.kind)) else {
            return;
        };
        let open = matches!(
            alert.status,
            AlertStatus::New | AlertStatus::Active | AlertStatus::InProgress
        );
        self.alerts.change(|alerts| {
            if let Some(known) = alerts.get_mut(&device_id) {
                let slot = &mut known[index];
                match *slot {
                    Some((id, _)) if id > alert.id => {}
                    Some((id, _)) if id == alert.id && !open => *slot = Some((id, false)),
                    Some((id, _)) if id == alert.id => {}
                    _ => *slot = Some((alert.id, open)),
                }
            }
        });
    }

    /// Forgets everything (the bus fell behind).
    pub fn forget_all(&self) {
        self.places.change(HashMap::clear);
        self.sessions.change(HashMap::clear);
        self.alerts.change(HashMap::clear);
    }

    /// Which of `devices` (with a kind each) have that kind's alert open:
    /// from memory, reading the devices not remembered in one query.
    ///
    /// # Errors
    /// Database failures.
    pub async fn open_among(
        &self,
        db: &impl ConnectionTrait,
        wanted: &[(i32, AlertKind)],
    ) -> Result<HashSet<(i32, AlertKind)>, DbErr> {
        let devices: Vec<i32> = {
            let mut devices: Vec<i32> = wanted.iter().map(|(d, _)| *d).collect();
            devices.sort_unstable();
            devices.dedup();
            devices
        };
        let known = self.open_alerts(&devices);
        let missing: Vec<i32> = devices
            .iter()
            .zip(&known)
            .filter(|(_, known)| known.is_none())
            .map(|(d, _)| *d)
            .collect();
        let mut alerts: HashMap<i32, DeviceAlerts> = devices
            .iter()
            .zip(known)
            .filter_map(|(d, known)| Some((*d, known?)))
            .collect();
        if !missing.is_empty() {
            let generation = self.alerts.generation();
            let read = read_open_alerts(db, &missing).await?;
            self.alerts.fill(Some(generation), |kept| {
                for (device, found) in &read {
                    kept.insert(*device, *found);
                }
            });
            alerts.extend(read);
        }
        Ok(wanted
            .iter()
            .filter(|(device, kind)| {
                kind_index(*kind).is_some_and(|index| {
                    alerts
                        .get(device)
                        .and_then(|a| a[index])
                        .is_some_and(|(_, open)| open)
                })
            })
            .copied()
            .collect())
    }
}

/// The open telemetry alerts of `devices`, in one query; every device has
/// an entry (none open: empty).
async fn read_open_alerts(
    db: &impl ConnectionTrait,
    devices: &[i32],
) -> Result<HashMap<i32, DeviceAlerts>, DbErr> {
    // By their open conditions: the unique index of open alerts answers.
    let keys = devices.iter().flat_map(|&device_id| {
        KINDS.iter().map(move |&kind| {
            super::alerts::Condition {
                kind,
                severity: crate::entities::AlertSeverity::Low,
                message: String::new(),
                station_id: 0,
                bay_id: None,
                device_id: Some(device_id),
                reading_id: None,
                session_id: None,
            }
            .open_key()
        })
    });
    let rows: Vec<(i32, Option<i32>, AlertKind)> = alert::Entity::find()
        .select_only()
        .column(alert::Column::Id)
        .column(alert::Column::DeviceId)
        .column(alert::Column::Kind)
        .filter(alert::Column::OpenKey.is_in(keys))
        .into_tuple()
        .all(db)
        .await?;
    let mut found: HashMap<i32, DeviceAlerts> =
        devices.iter().map(|d| (*d, [None, None])).collect();
    for (id, device, kind) in rows {
        if let (Some(device), Some(index)) = (device, kind_index(kind))
            && let Some(alerts) = found.get_mut(&device)
        {
            alerts[index] = Some((id, true));
        }
    }
    Ok(found)
}

/// Keeps `cache` current with the sessions and alerts changed on any
/// replica; a listener that fell behind forgets everything. Subscribes at
/// once; the future runs until the bus goes away.
pub fn listen(
    bus: &SharedBus,
    cache: Arc<TelemetryCache>,
) -> impl std::future::Future<Output = ()> + Send + 'static {
    let fanout = bus.fanout();
    let sessions = fanout.subscribe(Topic::ChargeSessions);
    let alerts = fanout.subscribe(Topic::Alerts);
    let mut changes = futures_util::stream::select(Box::pin(sessions), Box::pin(alerts));
    async move {
        while let Some(item) = changes.next().await {
            match item {
                Ok(stamped) => match &stamped.envelope.event {
                    DomainEvent::ChargeStateChanged(change) => {
                        cache.session_changed(change.bay_id, change.session_id, change.state);
                    }
                    DomainEvent::AlertChanged(change) => cache.alert_changed(&change.alert),
                    _ => {}
                },
                Err(_lagged) => cache.forget_all(),
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn alert(id: i32, device: i32, status: AlertStatus) -> alert::Model {
        let now = chrono::Utc::now();
        alert::Model {
            id,
            kind: AlertKind::OverCurrent,
            severity: crate::entities::AlertSeverity::High,
            status,
            message: String::new(),
            station_id: 1,
            bay_id: Some(1),
            device_id: Some(device),
            reading_id: None,
            session_id: None,
            raised_at: now,
            first_seen: now,
            last_seen: now,
            notified_at: None,
            notification_count: 1,
            notified_count: 0,
            assigned_technician_id: None,
            acknowledged_by_id: None,
            acknowledged_at: None,
            resolved_by_id: None,
            resolved_at: None,
            resolution_note: None,
            open_key: None,
            revision: 0,
        }
    }

    fn open_kinds(cache: &TelemetryCache, device: i32) -> Option<DeviceAlerts> {
        cache.open_alerts(&[device])[0]
    }

    #[test]
    fn a_late_event_of_an_older_alert_never_undoes_a_newer_one() {
        let cache = TelemetryCache::new(Duration::from_secs(60));
        cache.alerts.fill(None, |alerts| {
            alerts.insert(7, [None, None]);
        });
        cache.alert_changed(&alert(2, 7, AlertStatus::New));
        // Alert 1's resolution arrives after alert 2 was raised.
        cache.alert_changed(&alert(1, 7, AlertStatus::Resolved));
        assert_eq!(open_kinds(&cache, 7), Some([Some((2, true)), None]));
        // A repeat of alert 2's raising after its end keeps it ended.
        cache.alert_changed(&alert(2, 7, AlertStatus::Resolved));
        cache.alert_changed(&alert(2, 7, AlertStatus::Active));
        assert_eq!(open_kinds(&cache, 7), Some([Some((2, false)), None]));
        // A device not remembered stays unknown: it is read when needed.
        cache.alert_changed(&alert(3, 8, AlertStatus::New));
        assert_eq!(open_kinds(&cache, 8), None);
    }

    #[test]
    fn a_read_racing_an_alert_change_is_not_kept() {
        let cache = TelemetryCache::new(Duration::from_secs(60));
        let generation = cache.alerts.generation();
        cache.alert_changed(&alert(5, 9, AlertStatus::New));
        cache.alerts.fill(Some(generation), |alerts| {
            alerts.insert(9, [None, None]);
        });
        assert_eq!(open_kinds(&cache, 9), None);
    }

    #[test]
    fn everything_is_forgotten_after_the_cache_time_and_nothing_kept_without_one() {
        let cache = TelemetryCache::new(Duration::from_millis(30));
        cache.keep_sessions(1, Arc::from(Vec::new()));
        assert!(cache.sessions(1).is_some());
        std::thread::sleep(Duration::from_millis(40));
        assert!(cache.sessions(1).is_none());

        let none = TelemetryCache::uncached();
        none.keep_sessions(1, Arc::from(Vec::new()));
        assert!(none.sessions(1).is_none());
    }
}
