//! Admission of GraphQL work over HTTP: how many operations run at once, and
//! how many WebSocket connections one client holds.
//!
//! Without a bound, a flood of batched requests queues on the database pool until
//! its acquire timeout and fails as `INTERNAL` after seconds, holding every
//! request's memory meanwhile. With one, a request waits at most a short,
//! configured time for its turn and is otherwise refused at once with 503 and
//! `Retry-After`, so overload costs the server nothing and the client knows what
//! to do.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use tokio::sync::{OwnedSemaphorePermit, Semaphore};

use crate::auth::rate_limit::ip_key;

/// Bounds the operations executing at once on this replica.
#[derive(Debug, Clone)]
pub struct Admission {
    permits: Arc<Semaphore>,
    capacity: usize,
    queue_timeout: Duration,
}

/// No turn came within the queue timeout.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Overloaded;

impl Admission {
    pub fn new(max_concurrent_operations: usize, queue_timeout: Duration) -> Self {
        let capacity = max_concurrent_operations.max(1);
        Self {
            permits: Arc::new(Semaphore::new(capacity)),
            capacity,
            queue_timeout,
        }
    }

    /// Waits for room for `operations` operations, at most the queue timeout.
    /// The permit releases the room when dropped.
    ///
    /// # Errors
    /// [`Overloaded`] when no room came in time.
    pub async fn admit(&self, operations: usize) -> Result<OwnedSemaphorePermit, Overloaded> {
        // A batch is never larger than the capacity (checked at start); clamp anyway
        // so a misconfiguration cannot make a request wait forever.
        let wanted = u32::try_from(operations.clamp(1, self.capacity)).map_err(|_| Overloaded)?;
        let acquire = Arc::clone(&self.permits).acquire_many_owned(wanted);
        match tokio::time::timeout(self.queue_timeout, acquire).await {
            Ok(Ok(permit)) => Ok(permit),
            // Timed out, or the semaphore was closed (never, here).
            _ => Err(Overloaded),
        }
    }
}

/// Bounds the WebSocket connections one client (an IPv4 address, an IPv6 /64)
/// holds on this replica. Without it one host could take every connection
/// the replica serves and leave everyone else with 503; an idle subscriber
/// costs the attacker a socket and the server only its few KiB, so the
/// replica-wide bound alone is cheap to exhaust.
#[derive(Debug)]
pub struct ClientConnections {
    limit: usize,
    open: Mutex<HashMap<String, usize>>,
}

/// One admitted connection; its client's count goes down when it is dropped.
#[derive(Debug)]
pub struct ClientSlot {
    owner: Arc<ClientConnections>,
    key: String,
}

impl ClientConnections {
    pub fn new(limit: usize) -> Arc<Self> {
        Arc::new(Self {
            limit: limit.max(1),
            open: Mutex::new(HashMap::new()),
        })
    }

    /// A slot for one more connection of the client at `ip`, unless it holds
    /// the limit already.
    pub fn try_admit(self: &Arc<Self>, ip: Option<&str>) -> Option<ClientSlot> {
        let key = ip_key(ip);
        let mut open = self.lock();
        let held = open.entry(key.clone()).or_insert(0);
        if *held >= self.limit {
            return None;
        }
        *held += 1;
        Some(ClientSlot {
            owner: Arc::clone(self),
            key,
        })
    }

    /// Clients holding at least one connection.
    pub fn clients(&self) -> usize {
        self.lock().len()
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<String, usize>> {
        self.open.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

impl Drop for ClientSlot {
    fn drop(&mut self) {
        let mut open = self.owner.lock();
        if let Some(held) = open.get_mut(&self.key) {
            *held -= 1;
            // Forgotten at zero: the map holds only clients connected now.
            if *held == 0 {
                open.remove(&self.key);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_client_holds_at_most_its_limit_and_gets_room_back_as_it_closes() {
        let clients = ClientConnections::new(2);
        let first = clients.try_admit(Some("192.0.2.7")).expect("room");
        let second = clients.try_admit(Some("192.0.2.7")).expect("room");
        assert!(
            clients.try_admit(Some("192.0.2.7")).is_none(),
            "at its limit"
        );
        assert!(
            clients.try_admit(Some("192.0.2.8")).is_some(),
            "another client is not affected"
        );
        drop(first);
        let third = clients
            .try_admit(Some("192.0.2.7"))
            .expect("room came back");
        drop((second, third));
        assert_eq!(clients.clients(), 0, "nothing kept for clients gone");
    }

    #[test]
    fn an_ipv6_client_is_its_64_network() {
        let clients = ClientConnections::new(1);
        let _held = clients.try_admit(Some("2001:db8:1:2::1")).expect("room");
        assert!(
            clients.try_admit(Some("2001:db8:1:2:ffff::9")).is_none(),
            "another address of the same /64"
        );
        assert!(clients.try_admit(Some("2001:db8:1:3::1")).is_some());
    }

    #[tokio::test]
    async fn requests_beyond_the_capacity_are_refused_after_the_queue_timeout() {
        let admission = Admission::new(3, Duration::from_millis(20));
        let held = admission.admit(2).await.expect("room for two");
        assert!(admission.admit(1).await.is_ok(), "one more fits");
        assert_eq!(admission.admit(2).await.err(), Some(Overloaded));
        drop(held);
        assert!(admission.admit(2).await.is_ok(), "room comes back");
    }

    #[tokio::test]
    async fn a_waiting_request_gets_its_turn_when_room_frees_up() {
        let admission = Admission::new(1, Duration::from_secs(5));
        let held = admission.admit(1).await.expect("room");
        let waiter = tokio::spawn({
            let admission = admission.clone();
            async move { admission.admit(1).await.is_ok() }
        });
        tokio::task::yield_now().await;
        drop(held);
        assert!(waiter.await.expect("joins"));
    }
}
