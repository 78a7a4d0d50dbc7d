//! The blob index of a fleet: which repositories of a destination registry hold a blob
//! (a set per blob, refreshed on every write and expiring after the configured TTL), and
//! the upload leases (see [`super::lease`]).

use std::sync::Arc;

use async_trait::async_trait;

use super::conn::{millis, Shared};
use super::lease;
use mirror_common::index::{BlobIndex, UploadLock};

/// [`BlobIndex`] backed by Redis; answers "unknown" and locks per process while Redis is down.
#[derive(Clone)]
pub struct RedisIndex {
    shared: Arc<Shared>,
}

impl RedisIndex {
    pub(crate) fn new(shared: Arc<Shared>) -> Self {
        RedisIndex { shared }
    }

    /// True while Redis is unusable and this index works per process.
    pub fn is_degraded(&self) -> bool {
        self.shared.is_degraded()
    }
}

#[async_trait]
impl BlobIndex for RedisIndex {
    async fn repositories(&self, registry: &str, digest: &str) -> Vec<String> {
        let key = self.shared.keys.blob(registry, digest);
        let mut repos: Vec<String> = self
            .shared
            .call("SMEMBERS", |mut c| async move {
                redis::cmd("SMEMBERS").arg(&key).query_async(&mut c).await
            })
            .await
            .unwrap_or_default();
        // Sorted like the in-memory index, so the mount candidates are stable.
        repos.sort();
        repos
    }

    async fn record(&self, registry: &str, repository: &str, digest: &str) {
        let key = self.shared.keys.blob(registry, digest);
        let ttl = millis(self.shared.config.ttl);
        // MULTI: the set never exists without its expiry, even if we die between the two.
        let mut pipe = redis::pipe();
        pipe.atomic()
            .cmd("SADD")
            .arg(&key)
            .arg(repository)
            .ignore()
            .cmd("PEXPIRE")
            .arg(&key)
            .arg(ttl)
            .ignore();
        let _: Option<()> = self
            .shared
            .call(
                "SADD",
                |mut c| async move { pipe.query_async(&mut c).await },
            )
            .await;
    }

    async fn forget(&self, registry: &str, repository: &str, digest: &str) {
        let key = self.shared.keys.blob(registry, digest);
        let _: Option<i64> = self
            .shared
            .call("SREM", |mut c| async move {
                redis::cmd("SREM")
                    .arg(&key)
                    .arg(repository)
                    .query_async(&mut c)
                    .await
            })
            .await;
    }

    async fn lock_upload(&self, registry: &str, digest: &str) -> UploadLock {
        lease::lock(&self.shared, registry, digest).await
    }
}
