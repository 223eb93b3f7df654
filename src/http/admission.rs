//! Admission of GraphQL work over HTTP: how many operations run at once.
//!
//! Without a bound, a flood of batched requests queues on the database pool until
//! its acquire timeout and fails as `INTERNAL` after seconds, holding every
//! request's memory meanwhile. With one, a request waits at most a short,
//! configured time for its turn and is otherwise refused at once with 503 and
//! `Retry-After`, so overload costs the server nothing and the client knows what
//! to do.

use std::sync::Arc;
use std::time::Duration;

use tokio::sync::{OwnedSemaphorePermit, Semaphore};

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

#[cfg(test)]
mod tests {
    use super::*;

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
