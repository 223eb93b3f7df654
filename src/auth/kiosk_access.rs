//! Whether a kiosk's token still stands, read on every kiosk request: its
//! credential is not revoked and its cabinet is not out of service. A replica
//! keeps the answer for a short time (`VOLTGATE_KIOSK_CACHE_MS`, 1 s by
//! default) instead of reading two rows per request.
//!
//! Revoking or issuing a credential, or changing, moving or deleting a
//! cabinet or station, forgets the cabinet's entry on this replica at once
//! and publishes `KioskAccessChanged`, which every replica's listener turns
//! into the same forgetting ([`listen`]). Were that message lost, the entry
//! still ages out: a revoked credential stops working on every replica within
//! the cache time. An answer read while a change was made is not kept, so a
//! read racing a revocation cannot keep the old answer alive.

use std::sync::{Mutex, PoisonError};
use std::time::{Duration, Instant};

use futures_util::StreamExt;
use sea_orm::ConnectionTrait;

use crate::aging::Aging;
use crate::bus::{DomainEvent, KioskAccessChanged, SharedBus, Topic};
use crate::error::AppError;

/// Which kiosks a change concerns.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Changed {
    Cabinet(i32),
    /// Every cabinet (a station deleted, a message missed).
    All,
}

/// One replica's memory of which kiosk tokens stand.
#[derive(Debug)]
pub struct KioskAccess {
    /// (cabinet, credential) → the cabinet's station, when its kiosk may act.
    stations: Aging<(i32, Option<i32>), Option<i32>>,
    /// Bumped by every change; an answer read across a change is not kept.
    generation: Mutex<u64>,
}

impl Default for KioskAccess {
    fn default() -> Self {
        Self::new(Duration::from_secs(1))
    }
}

impl KioskAccess {
    pub fn new(ttl: Duration) -> Self {
        Self {
            stations: Aging::new(ttl),
            generation: Mutex::new(0),
        }
    }

    /// Reads the database every time.
    pub fn uncached() -> Self {
        Self::new(Duration::ZERO)
    }

    /// The station of `cabinet_id` when a kiosk token of `credential_id` may act.
    ///
    /// # Errors
    /// On database errors.
    pub async fn station(
        &self,
        db: &impl ConnectionTrait,
        cabinet_id: i32,
        credential_id: Option<i32>,
    ) -> Result<Option<i32>, AppError> {
        let key = (cabinet_id, credential_id);
        if let Some(station) = self.stations.get(&key) {
            return Ok(station);
        }
        let generation = self.generation();
        let read_at = Instant::now();
        let station = super::principal::kiosk_station(db, cabinet_id, credential_id).await?;
        let current = self
            .generation
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        if *current == generation {
            self.stations.put_read_at(key, station, read_at);
        }
        Ok(station)
    }

    fn generation(&self) -> u64 {
        *self
            .generation
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
    }

    /// Forgets what `changed` concerns, on this replica.
    pub fn forget(&self, changed: Changed) {
        let mut generation = self
            .generation
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        *generation += 1;
        match changed {
            Changed::Cabinet(id) => self.stations.forget_where(|(cabinet, _)| *cabinet == id),
            Changed::All => self.stations.forget_where(|_| true),
        }
    }

    /// Forgets what `changed` concerns here at once, and on the other
    /// replicas through the bus. Call it after the change is committed.
    pub async fn changed(&self, bus: &SharedBus, changed: Changed) {
        self.forget(changed);
        let event = DomainEvent::KioskAccessChanged(KioskAccessChanged {
            cabinet_id: match changed {
                Changed::Cabinet(id) => Some(id),
                Changed::All => None,
            },
        });
        if let Err(err) = bus.publish(event).await {
            // Other replicas forget when their entries age out.
            tracing::warn!(
                error = format!("{err:#}"),
                "kiosk access change not published"
            );
        }
    }
}

/// Forgets, on this replica, what changes made on any replica concern; a
/// listener that fell behind forgets everything. Subscribes at once; the
/// future runs until the bus goes away.
pub fn listen(
    bus: &SharedBus,
    access: std::sync::Arc<KioskAccess>,
) -> impl std::future::Future<Output = ()> + Send + 'static {
    let mut changes = bus.fanout().subscribe(Topic::KioskAccess);
    async move {
        while let Some(item) = changes.next().await {
            match item {
                Ok(stamped) => {
                    if let DomainEvent::KioskAccessChanged(change) = &stamped.envelope.event {
                        access.forget(change.cabinet_id.map_or(Changed::All, Changed::Cabinet));
                    }
                }
                Err(_lagged) => access.forget(Changed::All),
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_change_forgets_its_cabinet_only() {
        let access = KioskAccess::new(Duration::from_secs(60));
        access.stations.put((1, Some(10)), Some(100));
        access.stations.put((2, Some(20)), Some(200));
        access.forget(Changed::Cabinet(1));
        assert_eq!(access.stations.get(&(1, Some(10))), None);
        assert_eq!(access.stations.get(&(2, Some(20))), Some(Some(200)));
        access.forget(Changed::All);
        assert_eq!(access.stations.get(&(2, Some(20))), None);
    }
}
