//! What every scan reads and almost nothing changes: check-in lists with
//! their products, whether a scanner device still stands, and whether an
//! event asks questions at the door. A replica keeps
//! them for a short time (`VOLTGATE_CHECKIN_CACHE_MS`) instead of reading them
//! on every scan.
//!
//! A change made on this replica (a list edited or deleted, a scanner
//! revoked, a question created, changed or deleted) drops the entry at once; another replica reads it again when its
//! entry ages out. Nothing a scan decides on its own rests on the cache alone:
//! the ticket, its order and its state are read and changed in the database
//! on every scan.

use std::sync::Arc;
use std::time::Duration;

use sea_orm::{ColumnTrait, ConnectionTrait, EntityTrait, PaginatorTrait, QueryFilter};

use super::lists;
use crate::aging::Aging;
use crate::entities::{checkin_list, event, question, scanner_device};
use crate::error::AppError;

/// A list with the products it admits (empty when it admits all).
#[derive(Debug, Clone)]
pub struct DoorList {
    pub list: checkin_list::Model,
    pub products: Vec<i32>,
}

/// One replica's cache of door facts.
#[derive(Debug)]
pub struct DoorCache {
    lists: Aging<i32, Option<Arc<DoorList>>>,
    /// A scanner device's event, when it is active.
    scanners: Aging<i32, Option<i32>>,
    /// Whether an event exists (a scanner's own event, which it never
    /// outlives unless deleted).
    events: Aging<i32, Option<Arc<event::Model>>>,
    /// Whether an event asks any question at check-in.
    door_questions: Aging<i32, bool>,
    /// The stripe of `checkin_counts` this replica adds its scans to.
    stripe: i32,
}

/// Stripes of the check-in counters: replicas picking the same one only
/// share its row lock.
pub const STRIPES: i32 = 16;

impl Default for DoorCache {
    fn default() -> Self {
        Self::new(Duration::from_secs(1))
    }
}

impl DoorCache {
    pub fn new(ttl: Duration) -> Self {
        let mut seed = [0u8; 4];
        // Any stripe is correct; a random one keeps replicas apart.
        let _ = getrandom::fill(&mut seed);
        Self {
            lists: Aging::new(ttl),
            scanners: Aging::new(ttl),
            events: Aging::new(ttl),
            door_questions: Aging::new(ttl),
            stripe: i32::from(u16::from_le_bytes([seed[0], seed[1]])) % STRIPES,
        }
    }

    pub fn stripe(&self) -> i32 {
        self.stripe
    }

    /// The list `id` with its products, if it exists.
    ///
    /// # Errors
    /// On database errors.
    pub async fn list(
        &self,
        db: &impl ConnectionTrait,
        id: i32,
    ) -> Result<Option<Arc<DoorList>>, AppError> {
        if let Some(list) = self.lists.get(&id) {
            return Ok(list);
        }
        let list = match checkin_list::Entity::find_by_id(id).one(db).await? {
            Some(list) => Some(Arc::new(DoorList {
                products: if list.all_products {
                    Vec::new()
                } else {
                    lists::products_of(db, list.id).await?
                },
                list,
            })),
            None => None,
        };
        self.lists.put(id, list.clone());
        Ok(list)
    }

    /// Whether scanner device `id` is active for `event_id`.
    ///
    /// # Errors
    /// On database errors.
    pub async fn scanner_stands(
        &self,
        db: &impl ConnectionTrait,
        id: i32,
        event_id: i32,
    ) -> Result<bool, AppError> {
        let event = match self.scanners.get(&id) {
            Some(event) => event,
            None => {
                let event = scanner_device::Entity::find_by_id(id)
                    .filter(scanner_device::Column::Active.eq(true))
                    .one(db)
                    .await?
                    .map(|d| d.event_id);
                self.scanners.put(id, event);
                event
            }
        };
        Ok(event == Some(event_id))
    }

    /// The event `id`, if it exists.
    ///
    /// # Errors
    /// On database errors.
    pub async fn event(
        &self,
        db: &impl ConnectionTrait,
        id: i32,
    ) -> Result<Option<Arc<event::Model>>, AppError> {
        if let Some(event) = self.events.get(&id) {
            return Ok(event);
        }
        let event = event::Entity::find_by_id(id).one(db).await?.map(Arc::new);
        self.events.put(id, event.clone());
        Ok(event)
    }

    /// Whether event `id` asks any question at check-in (most ask none, and
    /// their entry scans then skip the questions' reads).
    ///
    /// # Errors
    /// On database errors.
    pub async fn asks_at_door(&self, db: &impl ConnectionTrait, id: i32) -> Result<bool, AppError> {
        if let Some(asks) = self.door_questions.get(&id) {
            return Ok(asks);
        }
        let asks = question::Entity::find()
            .filter(question::Column::EventId.eq(id))
            .filter(question::Column::AskDuringCheckin.eq(true))
            .count(db)
            .await?
            > 0;
        self.door_questions.put(id, asks);
        Ok(asks)
    }

    /// An event's questions changed here.
    pub fn forget_door_questions(&self, event_id: i32) {
        self.door_questions.forget(&event_id);
    }

    /// A list changed or was deleted here.
    pub fn forget_list(&self, id: i32) {
        self.lists.forget(&id);
    }

    /// A scanner device was revoked here.
    pub fn forget_scanner(&self, id: i32) {
        self.scanners.forget(&id);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_replica_adds_to_one_of_the_stripes() {
        let stripe = DoorCache::default().stripe();
        assert!((0..STRIPES).contains(&stripe));
    }
}
