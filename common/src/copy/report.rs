//! What a copy reports: oc's per-tag line, per-tag status, and counts of blob work.

use std::sync::atomic::{AtomicU64, Ordering};

use serde::{Deserialize, Serialize};

/// What happened to one destination tag.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum TagStatus {
    /// The tag now points at the source digest (it did not before).
    Pushed,
    /// The tag already pointed at the source digest: nothing was written.
    UpToDate,
    /// Dry run: the tag does not exist yet and would be created.
    WouldCreate,
    /// Dry run: the tag exists with another digest and would be moved.
    WouldUpdate,
    /// The copy failed; the tag was left as it was.
    Failed,
}

/// The outcome for one destination tag.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct TagResult {
    /// `registry/repository:tag`.
    pub destination: String,
    pub status: TagStatus,
    /// The digest the tag points at (or would point at) when it did not fail.
    pub digest: Option<String>,
    /// Why it failed.
    pub error: Option<String>,
    /// Whether trying again later can help (network, throttling, server errors).
    pub retryable: bool,
}

impl TagResult {
    /// oc's output line: `<digest> <registry/repository:tag>`.
    pub fn oc_line(&self) -> Option<String> {
        self.digest
            .as_ref()
            .map(|d| format!("{d} {}", self.destination))
    }
}

/// Counts of blob and manifest work, summed over tags and jobs.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct CopyStats {
    pub blobs_uploaded: u64,
    pub blobs_mounted: u64,
    /// Blobs that were already at the destination.
    pub blobs_skipped: u64,
    pub bytes_uploaded: u64,
    /// Bytes that did not cross the wire thanks to a mount.
    pub bytes_mounted: u64,
    pub manifests_pushed: u64,
}

impl CopyStats {
    /// Adds another set of counts to this one.
    pub fn add(&mut self, o: &CopyStats) {
        self.blobs_uploaded += o.blobs_uploaded;
        self.blobs_mounted += o.blobs_mounted;
        self.blobs_skipped += o.blobs_skipped;
        self.bytes_uploaded += o.bytes_uploaded;
        self.bytes_mounted += o.bytes_mounted;
        self.manifests_pushed += o.manifests_pushed;
    }
}

/// Everything one copy (one source image to its destination tags) did.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct CopyReport {
    pub source: String,
    /// The digest of what was (or would be) pushed, once the source was resolved.
    pub digest: Option<String>,
    pub tags: Vec<TagResult>,
    pub stats: CopyStats,
    pub seconds: f64,
}

impl CopyReport {
    /// True when every tag made it (or is up to date, or would in a dry run).
    pub fn succeeded(&self) -> bool {
        self.tags.iter().all(|t| t.status != TagStatus::Failed)
    }
}

/// Lock-free counters that concurrent blob copies add to.
#[derive(Default)]
pub(crate) struct Counters {
    pub uploaded: AtomicU64,
    pub mounted: AtomicU64,
    pub skipped: AtomicU64,
    pub bytes_uploaded: AtomicU64,
    pub bytes_mounted: AtomicU64,
    pub manifests: AtomicU64,
}

impl Counters {
    pub fn snapshot(&self) -> CopyStats {
        CopyStats {
            blobs_uploaded: self.uploaded.load(Ordering::Relaxed),
            blobs_mounted: self.mounted.load(Ordering::Relaxed),
            blobs_skipped: self.skipped.load(Ordering::Relaxed),
            bytes_uploaded: self.bytes_uploaded.load(Ordering::Relaxed),
            bytes_mounted: self.bytes_mounted.load(Ordering::Relaxed),
            manifests_pushed: self.manifests.load(Ordering::Relaxed),
        }
    }

    pub fn bump(counter: &AtomicU64, by: u64) {
        counter.fetch_add(by, Ordering::Relaxed);
    }
}
