//! The blob index: which repositories of a destination registry hold which blob, and a
//! lock per (registry, digest) so a blob crosses the wire once per registry.
//!
//! It is an accelerator, never the truth: a stale answer costs a declined mount or an extra
//! HEAD, never a wrong copy. That is why no method returns an error: an implementation whose
//! backing store is down answers "unknown" and the copy engine falls back to asking the
//! registry. In-memory (embedded mode, one process; here) and Redis (a fleet; in
//! `mirror-fleet`) implement it.

mod memory;

use std::any::Any;

use async_trait::async_trait;

pub use memory::MemoryIndex;

/// Held while uploading a blob; dropping it lets the next waiter in.
pub struct UploadLock {
    _guard: Box<dyn Any + Send>,
    /// True when another holder had the lock first: it has probably uploaded the blob, so
    /// the caller should look again (mount) before uploading.
    pub waited: bool,
}

impl UploadLock {
    /// Wraps whatever keeps the lock held until dropped.
    pub fn new(guard: impl Any + Send, waited: bool) -> Self {
        UploadLock {
            _guard: Box::new(guard),
            waited,
        }
    }
}

/// Knowledge about blobs at destination registries, shared by every copy.
#[async_trait]
pub trait BlobIndex: Send + Sync {
    /// Repositories of `registry` known to hold `digest`.
    async fn repositories(&self, registry: &str, digest: &str) -> Vec<String>;
    /// Learnt that `repository` holds `digest` (after a HEAD, upload or mount).
    async fn record(&self, registry: &str, repository: &str, digest: &str);
    /// Learnt that `repository` does not hold `digest` (a declined mount, a 404).
    async fn forget(&self, registry: &str, repository: &str, digest: &str);
    /// Waits until no one else uploads `digest` to `registry`, then holds that right.
    async fn lock_upload(&self, registry: &str, digest: &str) -> UploadLock;
}
