//! What a copy reports: oc's per-tag line, per-tag status (with a typed failure kind), and
//! counts of blob work. Below everything that counts or prints results (run reports, the
//! fleet's counters, metrics), so each of them reads one shape.

use std::sync::atomic::{AtomicU64, Ordering};

use serde::{Deserialize, Serialize};

use crate::failure::FailureKind;

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
    /// The source does not exist and `--skip-missing` said to pass over it: the tag was
    /// left as it was, and the run is not failed for it.
    Skipped,
}

/// The outcome for one destination tag.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct TagResult {
    /// `registry/repository:tag`.
    pub destination: String,
    /// What happened to the tag.
    pub status: TagStatus,
    /// The digest the tag points at (or would point at) when it did not fail.
    pub digest: Option<String>,
    /// Why it failed, for a person.
    pub error: Option<String>,
    /// Why it failed, for a decision (retry, park, metric label). Absent in results of
    /// workers older than this field, which are then read as not retryable.
    #[serde(default)]
    pub failure: Option<FailureKind>,
    /// Referrers (signatures, attestations, SBOMs) that travel with the image this tag
    /// points at: found at the source and present at the destination (or, in a dry run,
    /// found). Zero is left out of the JSON.
    #[serde(default, skip_serializing_if = "is_zero")]
    pub referrers: u64,
}

fn is_zero(n: &u64) -> bool {
    *n == 0
}

impl TagResult {
    /// A tag that made it (or, in a dry run, would) with `status`.
    pub fn ok(destination: impl ToString, status: TagStatus, digest: &str) -> Self {
        TagResult {
            destination: destination.to_string(),
            status,
            digest: Some(digest.to_string()),
            error: None,
            failure: None,
            referrers: 0,
        }
    }

    /// A tag that failed, left as it was at the destination.
    pub fn failed(
        destination: impl ToString,
        kind: FailureKind,
        reason: impl Into<String>,
    ) -> Self {
        TagResult {
            destination: destination.to_string(),
            status: TagStatus::Failed,
            digest: None,
            error: Some(reason.into()),
            failure: Some(kind),
            referrers: 0,
        }
    }

    /// A tag passed over because its source does not exist (`--skip-missing`).
    pub fn skipped(destination: impl ToString, reason: impl Into<String>) -> Self {
        TagResult {
            destination: destination.to_string(),
            status: TagStatus::Skipped,
            digest: None,
            error: Some(reason.into()),
            failure: None,
            referrers: 0,
        }
    }

    /// Whether trying again later can help (network, throttling, server errors).
    pub fn retryable(&self) -> bool {
        self.failure.is_some_and(FailureKind::is_retryable)
    }

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
    /// Blobs uploaded to the destination.
    pub blobs_uploaded: u64,
    /// Blobs mounted from another repository of the destination registry instead of uploaded.
    pub blobs_mounted: u64,
    /// Blobs that were already at the destination.
    pub blobs_skipped: u64,
    /// Bytes of the uploaded blobs.
    pub bytes_uploaded: u64,
    /// Bytes that did not cross the wire thanks to a mount.
    pub bytes_mounted: u64,
    /// Manifests written: child manifests of an index, and the top manifest once per tag,
    /// referrers and the referrers indexes kept for them.
    pub manifests_pushed: u64,
    /// Referrers (signatures, attestations, SBOMs) pushed, or in a dry run that would be.
    #[serde(default)]
    pub referrers_pushed: u64,
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
        self.referrers_pushed += o.referrers_pushed;
    }
}

/// Everything one copy (one source image to its destination tags) did.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct CopyReport {
    /// The source image reference the copy read from (`registry/repository:tag`).
    pub source: String,
    /// The digest of what was (or would be) pushed, once the source was resolved.
    pub digest: Option<String>,
    /// One result per destination tag.
    pub tags: Vec<TagResult>,
    /// Counts of blob and manifest work.
    pub stats: CopyStats,
    /// Wall-clock time the copy took, in seconds.
    pub seconds: f64,
}

impl CopyReport {
    /// True when every tag made it (or is up to date, or would in a dry run).
    pub fn succeeded(&self) -> bool {
        self.tags.iter().all(|t| t.status != TagStatus::Failed)
    }

    /// The first failed tag, whose reason and kind speak for the job.
    pub fn first_failure(&self) -> Option<&TagResult> {
        self.tags.iter().find(|t| t.status == TagStatus::Failed)
    }

    /// The tags by status.
    pub fn counts(&self) -> TagCounts {
        TagCounts::of(self.tags.iter().map(|t| t.status))
    }
}

/// Tags counted by status: the one place a status is put in its column. Serialized with
/// the names run reports use (`tags_pushed`, ...).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct TagCounts {
    /// Tags moved to the source digest.
    #[serde(rename = "tags_pushed")]
    pub pushed: u64,
    /// Tags already at the source digest.
    #[serde(rename = "tags_up_to_date")]
    pub up_to_date: u64,
    /// Dry run: tags that would be created.
    #[serde(rename = "tags_would_create")]
    pub would_create: u64,
    /// Dry run: tags that would be moved.
    #[serde(rename = "tags_would_update")]
    pub would_update: u64,
    /// Tags that failed.
    #[serde(rename = "tags_failed")]
    pub failed: u64,
    /// Tags whose source does not exist, passed over (`--skip-missing`).
    #[serde(rename = "tags_skipped", default)]
    pub skipped: u64,
}

impl TagCounts {
    /// Counts `statuses`.
    pub fn of(statuses: impl IntoIterator<Item = TagStatus>) -> Self {
        let mut c = TagCounts::default();
        for s in statuses {
            c.add(s);
        }
        c
    }

    /// Counts one more tag.
    pub fn add(&mut self, status: TagStatus) {
        match status {
            TagStatus::Pushed => self.pushed += 1,
            TagStatus::UpToDate => self.up_to_date += 1,
            TagStatus::WouldCreate => self.would_create += 1,
            TagStatus::WouldUpdate => self.would_update += 1,
            TagStatus::Failed => self.failed += 1,
            TagStatus::Skipped => self.skipped += 1,
        }
    }

    /// Tags written, or that would be in a dry run: what progress calls "done".
    pub fn done(&self) -> u64 {
        self.pushed + self.would_create + self.would_update
    }

    /// Every tag counted.
    pub fn total(&self) -> u64 {
        self.done() + self.up_to_date + self.failed + self.skipped
    }
}

/// Lock-free counters that concurrent blob copies add to.
#[derive(Default)]
pub(crate) struct Counters {
    pub(crate) uploaded: AtomicU64,
    pub(crate) mounted: AtomicU64,
    pub(crate) skipped: AtomicU64,
    pub(crate) bytes_uploaded: AtomicU64,
    pub(crate) bytes_mounted: AtomicU64,
    pub(crate) manifests: AtomicU64,
    pub(crate) referrers: AtomicU64,
}

impl Counters {
    pub(crate) fn snapshot(&self) -> CopyStats {
        CopyStats {
            blobs_uploaded: self.uploaded.load(Ordering::Relaxed),
            blobs_mounted: self.mounted.load(Ordering::Relaxed),
            blobs_skipped: self.skipped.load(Ordering::Relaxed),
            bytes_uploaded: self.bytes_uploaded.load(Ordering::Relaxed),
            bytes_mounted: self.bytes_mounted.load(Ordering::Relaxed),
            manifests_pushed: self.manifests.load(Ordering::Relaxed),
            referrers_pushed: self.referrers.load(Ordering::Relaxed),
        }
    }

    pub(crate) fn bump(counter: &AtomicU64, by: u64) {
        counter.fetch_add(by, Ordering::Relaxed);
    }
}
