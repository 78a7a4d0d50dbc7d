//! The in-process blob index of the embedded mode.

use parking_lot::Mutex;
use std::collections::{HashMap, HashSet};
use std::sync::Arc;

use async_trait::async_trait;

use super::{BlobIndex, UploadLock};

type Key = (String, String);

/// Blob locations and upload locks in this process's memory.
#[derive(Default)]
pub struct MemoryIndex {
    holders: Mutex<HashMap<Key, HashSet<String>>>,
    uploads: Mutex<HashMap<Key, Arc<tokio::sync::Mutex<()>>>>,
}

impl MemoryIndex {
    /// An empty index.
    pub fn new() -> Self {
        Self::default()
    }

    fn key(registry: &str, digest: &str) -> Key {
        (registry.to_string(), digest.to_string())
    }
}

#[async_trait]
impl BlobIndex for MemoryIndex {
    async fn repositories(&self, registry: &str, digest: &str) -> Vec<String> {
        let map = self.holders.lock();
        let mut repos: Vec<String> = map
            .get(&Self::key(registry, digest))
            .map(|s| s.iter().cloned().collect())
            .unwrap_or_default();
        repos.sort();
        repos
    }

    async fn record(&self, registry: &str, repository: &str, digest: &str) {
        let mut map = self.holders.lock();
        map.entry(Self::key(registry, digest))
            .or_default()
            .insert(repository.to_string());
    }

    async fn forget(&self, registry: &str, repository: &str, digest: &str) {
        let mut map = self.holders.lock();
        if let Some(set) = map.get_mut(&Self::key(registry, digest)) {
            set.remove(repository);
        }
    }

    async fn lock_upload(&self, registry: &str, digest: &str) -> UploadLock {
        let lock = {
            let mut map = self.uploads.lock();
            map.entry(Self::key(registry, digest)).or_default().clone()
        };
        match lock.clone().try_lock_owned() {
            Ok(guard) => UploadLock::new(guard, false),
            Err(_) => UploadLock::new(lock.lock_owned().await, true),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[tokio::test]
    async fn recorded_repositories_are_returned_per_registry_until_forgotten() {
        let idx = MemoryIndex::new();
        idx.record("r1", "a/b", "sha256:1").await;
        idx.record("r1", "c/d", "sha256:1").await;
        idx.record("r2", "x/y", "sha256:1").await;
        assert_eq!(idx.repositories("r1", "sha256:1").await, ["a/b", "c/d"]);
        idx.forget("r1", "a/b", "sha256:1").await;
        assert_eq!(idx.repositories("r1", "sha256:1").await, ["c/d"]);
        assert!(idx.repositories("r1", "sha256:2").await.is_empty());
    }

    #[tokio::test]
    async fn second_uploader_waits_for_the_first_and_is_told_it_waited() {
        let idx = Arc::new(MemoryIndex::new());
        let first = idx.lock_upload("r", "sha256:1").await;
        assert!(!first.waited);
        let idx2 = idx.clone();
        let waiter = tokio::spawn(async move { idx2.lock_upload("r", "sha256:1").await.waited });
        tokio::time::sleep(Duration::from_millis(50)).await;
        assert!(
            !waiter.is_finished(),
            "the second lock must wait while the first is held"
        );
        drop(first);
        assert!(waiter.await.unwrap());
        assert!(
            !idx.lock_upload("r", "sha256:2").await.waited,
            "other digests are independent"
        );
    }
}
