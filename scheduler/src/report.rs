//! The run report, built as results arrive, the same in both modes: one entry per
//! destination tag (failures with their kind and reason), the rejected files and
//! superseded mappings, the totals; the summary lines said at the end of a run from it,
//! and the same as JSON (`--report FILE`). The lines said while the run goes are
//! `output.rs`'s.

use std::path::Path;

use mirror_cli::{blob_line, plural};
use mirror_common::failure::FailureKind;
use mirror_common::job::JobResult;
use mirror_common::mapping::MappingSet;
use mirror_common::report::{CopyStats, TagCounts, TagStatus};
use serde::Serialize;
use uuid::Uuid;

/// One destination tag in the report.
#[derive(Debug, Clone, Serialize)]
pub(crate) struct TagEntry {
    pub destination: String,
    pub source: String,
    pub digest: Option<String>,
    pub status: TagStatus,
    pub error: Option<String>,
    /// The kind of failure, for filtering a report (`not_found`, `denied`, ...).
    pub failure: Option<FailureKind>,
    /// `file:line` of the mapping(s) that asked for it.
    pub origins: Vec<String>,
}

/// A rejected mapping file and why.
#[derive(Debug, Clone, Serialize)]
pub(crate) struct RejectedFile {
    pub file: String,
    pub errors: Vec<String>,
}

/// Totals of a run.
#[derive(Debug, Clone, Default, Serialize)]
pub(crate) struct Totals {
    pub jobs: usize,
    #[serde(flatten)]
    pub tags: TagCounts,
    pub files_rejected: usize,
    #[serde(flatten)]
    pub blobs: CopyStats,
    pub seconds: f64,
}

/// Everything a run reports, built as results arrive.
#[derive(Debug, Clone, Serialize)]
pub(crate) struct RunReport {
    pub run_id: Uuid,
    /// The group run (`run --groups`), if any.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub group: Option<String>,
    pub dry_run: bool,
    pub files: Vec<String>,
    pub rejected_files: Vec<RejectedFile>,
    /// Mappings whose destination tag a later file gives again (the later file wins).
    pub superseded: Vec<SupersededMapping>,
    pub totals: Totals,
    pub tags: Vec<TagEntry>,
}

/// A mapping superseded for one destination tag, in the report.
#[derive(Debug, Clone, Serialize)]
pub(crate) struct SupersededMapping {
    /// The destination tag.
    pub destination: String,
    /// `file:line` of the mapping that no longer writes it.
    pub mapping: String,
    /// `file:line` of the later mapping that does.
    pub by: String,
}

impl RunReport {
    /// An empty report for a run over `set`.
    pub(crate) fn new(run_id: Uuid, dry_run: bool, set: &MappingSet) -> Self {
        let rejected_files: Vec<RejectedFile> = set
            .rejected
            .iter()
            .map(|(f, errors)| RejectedFile {
                file: f.display().to_string(),
                errors: errors.iter().map(|e| e.to_string()).collect(),
            })
            .collect();
        let totals = Totals {
            files_rejected: rejected_files.len(),
            ..Totals::default()
        };
        let superseded = set
            .superseded
            .iter()
            .map(|w| SupersededMapping {
                destination: w.destination.clone(),
                mapping: w.mapping.to_string(),
                by: w.by.to_string(),
            })
            .collect();
        RunReport {
            run_id,
            group: None,
            dry_run,
            files: set.files.iter().map(|f| f.display().to_string()).collect(),
            rejected_files,
            superseded,
            totals,
            tags: Vec::new(),
        }
    }

    /// Adds one job's result; returns the entries it added.
    pub(crate) fn add(&mut self, result: &JobResult) -> &[TagEntry] {
        let start = self.tags.len();
        self.totals.jobs += 1;
        self.totals.blobs.add(&result.report.stats);
        for t in &result.report.tags {
            self.count(t.status);
            self.tags.push(TagEntry {
                destination: t.destination.clone(),
                source: result.report.source.clone(),
                digest: t.digest.clone(),
                status: t.status,
                error: t.error.clone(),
                failure: t.failure,
                origins: result.origins.clone(),
            });
        }
        &self.tags[start..]
    }

    /// Adds a tag that failed before any job ran (its source could not be resolved).
    pub(crate) fn add_unjobbed(&mut self, entry: TagEntry) {
        self.count(entry.status);
        self.tags.push(entry);
    }

    fn count(&mut self, status: TagStatus) {
        self.totals.tags.add(status);
    }

    /// True when every tag made it and no file was rejected.
    pub(crate) fn succeeded(&self) -> bool {
        self.totals.tags.failed == 0 && self.rejected_files.is_empty()
    }

    /// The summary lines printed at the end of a run.
    pub(crate) fn summary(&self) -> String {
        let t = &self.totals;
        let skipped = match t.tags.skipped {
            0 => String::new(),
            n => format!(", {n} skipped (source missing)"),
        };
        let rejected = plural(t.files_rejected, "file");
        let tags = if self.dry_run {
            format!(
                "dry run {}: {} would be created, {} updated, {} up to date, {} failed{skipped}, {rejected} rejected",
                self.run_id,
                plural(t.tags.would_create, "tag"),
                t.tags.would_update,
                t.tags.up_to_date,
                t.tags.failed,
            )
        } else {
            format!(
                "run {}: {} copied, {} already up to date, {} failed{skipped}, {rejected} rejected",
                self.run_id,
                plural(t.tags.pushed, "tag"),
                t.tags.up_to_date,
                t.tags.failed,
            )
        };
        format!("{tags}\n{}", blob_line(&t.blobs, t.seconds, self.dry_run))
    }

    /// Writes the report as JSON.
    pub(crate) fn write_json(&self, path: &Path) -> anyhow::Result<()> {
        let text = serde_json::to_vec_pretty(self)?;
        std::fs::write(path, text)
            .map_err(|e| anyhow::anyhow!("writing report {}: {e}", path.display()))
    }
}
