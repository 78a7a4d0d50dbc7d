//! What the client learnt about each registry while talking to it: that it refuses large
//! request bodies (a 413: blobs then go up in chunks), whether it completes an upload in a
//! single `POST ?digest=`, and that it never mounts across repositories (ECR; quay.io across
//! organisations). Learnt once, then used for every later request of the process, and shared
//! through a [`QuirksStore`] (the fleet's Redis) so one worker's lesson spares the others.
//!
//! Like the blob index, it is an accelerator: a wrong or lost entry costs a request (one
//! refused upload, one declined mount), never a wrong copy.

use parking_lot::Mutex;
use std::collections::HashMap;
use std::sync::Arc;

use async_trait::async_trait;
use serde::{Deserialize, Serialize};

/// What a registry was found to need or refuse.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Quirks {
    /// Blobs go up in chunks of at most this many bytes (`--chunk-size`, or learnt from a
    /// 413 on a whole-blob PUT).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub chunk_size: Option<u64>,
    /// Whether a `POST ?digest=` carrying a small blob completes the upload in one request
    /// (`None`: not tried yet). distribution 2.8 answers it with an upload session instead.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub single_post: Option<bool>,
    /// Mounts declined in a row with none ever accepted; at [`Quirks::NEVER_MOUNTS_AFTER`]
    /// the registry is taken not to mount at all and is not asked again.
    #[serde(default)]
    pub mounts_declined: u32,
    /// A mount was accepted once: declines are then about the blob, not the registry.
    #[serde(default)]
    pub mounts_work: bool,
}

impl Quirks {
    /// Declined mounts in a row, with none accepted, after which a registry is not asked to
    /// mount again.
    pub const NEVER_MOUNTS_AFTER: u32 = 3;
    /// The chunk size used after a 413 when none was configured: under the 100 MB bodies
    /// Cloudflare-fronted registries accept, and what a chunk costs in memory per upload.
    pub const DEFAULT_CHUNK: u64 = 16 * 1024 * 1024;
    /// The smallest chunk sent when halving after 413s: below this, a limit is not a body
    /// limit but a refusal, and the error says so.
    pub const MIN_CHUNK: u64 = 256 * 1024;

    /// The chunk size to use after a whole blob of `size` bytes was refused: under that
    /// size (half of it), within the default and the minimum, and never above what was
    /// already known.
    pub fn chunk_after_413(&self, size: u64) -> u64 {
        let guess = (size / 2).clamp(Self::MIN_CHUNK, Self::DEFAULT_CHUNK);
        self.chunk_size.map_or(guess, |c| c.min(guess))
    }

    /// Whether to ask this registry for cross-repository mounts at all.
    pub fn mounts(&self) -> bool {
        self.mounts_work || self.mounts_declined < Self::NEVER_MOUNTS_AFTER
    }
}

/// Where learnt quirks are shared between processes (the fleet's Redis).
#[async_trait]
pub trait QuirksStore: Send + Sync {
    /// What was learnt about `registry`, if anything.
    async fn load(&self, registry: &str) -> Option<Quirks>;
    /// Keeps what was learnt about `registry`.
    async fn save(&self, registry: &str, quirks: &Quirks);
}

/// A shareable store in the client options (`Debug` for the options' sake).
#[derive(Clone)]
pub struct SharedQuirks(pub Arc<dyn QuirksStore>);

impl std::fmt::Debug for SharedQuirks {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("SharedQuirks")
    }
}

/// The process's quirks, by registry, loaded from the store once per registry.
#[derive(Default)]
pub(crate) struct QuirksMemory {
    known: Mutex<HashMap<String, Quirks>>,
}

impl QuirksMemory {
    /// The quirks of `registry`: configured chunk sizes over what was learnt.
    pub(crate) async fn get(
        &self,
        registry: &str,
        store: Option<&SharedQuirks>,
        configured_chunk: Option<u64>,
    ) -> Quirks {
        if let Some(q) = self.known.lock().get(registry) {
            return q.clone();
        }
        let mut q = match store {
            Some(s) => s.0.load(registry).await.unwrap_or_default(),
            None => Quirks::default(),
        };
        if configured_chunk.is_some() {
            q.chunk_size = configured_chunk;
        }
        self.known
            .lock()
            .entry(registry.to_string())
            .or_insert(q)
            .clone()
    }

    /// Changes what is known of `registry` and shares it when the change is news.
    pub(crate) async fn learn(
        &self,
        registry: &str,
        store: Option<&SharedQuirks>,
        change: impl FnOnce(&mut Quirks),
    ) {
        let updated = {
            let mut map = self.known.lock();
            let q = map.entry(registry.to_string()).or_default();
            let before = q.clone();
            change(q);
            (*q != before).then(|| q.clone())
        };
        if let (Some(q), Some(s)) = (updated, store) {
            s.0.save(registry, &q).await;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_chunk_after_a_413_is_under_the_refused_size_within_bounds() {
        let q = Quirks::default();
        assert_eq!(q.chunk_after_413(3 * 1024 * 1024), 1536 * 1024);
        assert_eq!(q.chunk_after_413(1 << 40), Quirks::DEFAULT_CHUNK);
        assert_eq!(q.chunk_after_413(1000), Quirks::MIN_CHUNK);
    }

    #[test]
    fn a_registry_is_taken_not_to_mount_only_after_declines_with_no_success() {
        let mut q = Quirks::default();
        for _ in 0..Quirks::NEVER_MOUNTS_AFTER - 1 {
            q.mounts_declined += 1;
        }
        assert!(q.mounts());
        q.mounts_declined += 1;
        assert!(!q.mounts());
        q.mounts_work = true;
        assert!(
            q.mounts(),
            "one accepted mount means declines are about blobs"
        );
    }
}
