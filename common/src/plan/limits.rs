//! How many requests the planner has in flight: at most a number to any one registry
//! ([`PER_REGISTRY`] unless told) and four times that over all of them, so a set whose
//! sources live on several registries resolves them side by side instead of sharing one
//! number.

use std::collections::HashMap;
use std::sync::Arc;

use parking_lot::Mutex;
use tokio::sync::{OwnedSemaphorePermit, Semaphore};

/// Requests to one registry at the same time, by default. A warm hourly run is mostly one
/// source HEAD per source image, latency-bound: at 40 ms a round trip, 4,100 HEADs take
/// 5.1 s 32 at a time and 1.3 s 128 at a time (bench/scale.sh measures it); at 10x the
/// real set, 41,000 HEADs take 16.2 s 128 at a time (12.8 s of it the floor) and
/// 256 at a time stays under 10 s. Registries take this many from one client (HTTP/1.1:
/// as many connections, kept for the run).
pub const PER_REGISTRY: usize = 256;

/// One semaphore per registry, made on first use.
pub(super) struct RegistryLimits {
    registries: Mutex<HashMap<String, Arc<Semaphore>>>,
    per_registry: usize,
}

impl RegistryLimits {
    /// At most `per_registry` requests to each registry.
    pub(super) fn new(per_registry: usize) -> Self {
        RegistryLimits {
            registries: Mutex::new(HashMap::new()),
            per_registry: per_registry.max(1),
        }
    }

    /// Requests over all registries at the same time.
    pub(super) fn in_all(&self) -> usize {
        4 * self.per_registry
    }

    /// Waits for a place among `registry`'s requests; held until the permit drops.
    pub(super) async fn acquire(&self, registry: &str) -> OwnedSemaphorePermit {
        let semaphore = self
            .registries
            .lock()
            .entry(registry.to_ascii_lowercase())
            .or_insert_with(|| Arc::new(Semaphore::new(self.per_registry)))
            .clone();
        // Never closed: acquiring cannot fail.
        semaphore
            .acquire_owned()
            .await
            .expect("the planner never closes a registry's semaphore")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn each_registry_has_its_own_places() {
        let limits = RegistryLimits::new(8);
        let mut held = Vec::new();
        for _ in 0..8 {
            held.push(limits.acquire("a.io").await);
        }
        let other = tokio::time::timeout(std::time::Duration::from_secs(1), limits.acquire("B.io"));
        assert!(other.await.is_ok(), "another registry is not blocked");
        let full =
            tokio::time::timeout(std::time::Duration::from_millis(50), limits.acquire("A.IO"));
        assert!(
            full.await.is_err(),
            "a full registry waits (names compare case-insensitively)"
        );
        held.pop();
        assert!(
            tokio::time::timeout(std::time::Duration::from_secs(1), limits.acquire("a.io"))
                .await
                .is_ok()
        );
    }
}
