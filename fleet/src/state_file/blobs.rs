//! The blob index of a state file: which repositories of a destination registry hold
//! which blob, so the next embedded run mounts instead of uploading and skips what it knows
//! is there. Upload locks stay in the process: the file's lock makes this process its one
//! writer, so no other process uploads through it.

use std::sync::Arc;

use async_trait::async_trait;
use mirror_common::index::{BlobIndex, MemoryIndex, UploadLock};
use mirror_common::state::tag_age::now_ms;
use rusqlite::params;

use super::db::Db;
use super::tags::millis;

/// The state file's [`BlobIndex`].
pub(crate) struct FileIndex {
    db: Arc<Db>,
    /// In-process upload locks (its map of locations is not used).
    locks: MemoryIndex,
}

impl FileIndex {
    pub(crate) fn new(db: Arc<Db>) -> Self {
        FileIndex {
            db,
            locks: MemoryIndex::new(),
        }
    }
}

#[async_trait]
impl BlobIndex for FileIndex {
    async fn repositories(&self, registry: &str, digest: &str) -> Vec<String> {
        let since = now_ms().saturating_sub(millis(self.db.config.index_ttl)) as i64;
        self.db
            .with("read blobs", |c| {
                let mut read = c.prepare_cached(
                    "SELECT repository FROM blobs WHERE registry = ?1 AND digest = ?2 AND seen_ms >= ?3",
                )?;
                let rows = read.query_map(params![registry, digest, since], |r| r.get(0))?;
                rows.collect()
            })
            .unwrap_or_default()
    }

    async fn record(&self, registry: &str, repository: &str, digest: &str) {
        self.db.with("record blob", |c| {
            c.prepare_cached(
                "INSERT OR REPLACE INTO blobs (registry, digest, repository, seen_ms) VALUES (?1, ?2, ?3, ?4)",
            )?
            .execute(params![registry, digest, repository, now_ms() as i64])
        });
    }

    async fn forget(&self, registry: &str, repository: &str, digest: &str) {
        self.db.with("forget blob", |c| {
            c.prepare_cached(
                "DELETE FROM blobs WHERE registry = ?1 AND digest = ?2 AND repository = ?3",
            )?
            .execute(params![registry, digest, repository])
        });
    }

    async fn lock_upload(&self, registry: &str, digest: &str) -> UploadLock {
        self.locks.lock_upload(registry, digest).await
    }
}
