//! The run report, built as results arrive, the same in both modes: one entry per
//! destination tag (failures with their kind and reason), the rejected files and
//! superseded mappings, the totals; the summary lines said at the end of a run from it,
//! and the same as JSON (`--report FILE`). The lines said while the run goes are
//! `output.rs`'s.
//!
//! The tag entries are not kept in memory (770,000 of them at 100x the real set): with
//! `--report` each goes, as one line of JSON, to an unnamed temporary file as it arrives,
//! and the report is written from it at the end (the same JSON document as when it was
//! built whole); without `--report` only the totals are kept.

use std::io::{BufRead, BufReader, BufWriter, Seek, Write};
use std::path::Path;

use mirror_cli::{blob_line, plural};
use mirror_common::failure::FailureKind;
use mirror_common::job::JobResult;
use mirror_common::mapping::{MappingError, MappingSet};
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
    /// With `--listen-events`: tags the run pushed that no event had announced (what the
    /// schedule, the safety net, caught). Absent without a listener, and for a run that
    /// got no result (one that only publishes, or had nothing to publish).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub repaired: Option<usize>,
    #[serde(flatten)]
    pub blobs: CopyStats,
    pub seconds: f64,
}

/// Everything a run reports, built as results arrive.
#[derive(Debug, Serialize)]
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
    /// Where the tag entries go (with `--report`), one JSON line each.
    #[serde(skip)]
    spool: Option<Spool>,
    /// The entries of the last [`Self::add`], for the lines said about them.
    #[serde(skip)]
    last: Vec<TagEntry>,
    /// With `--listen-events`: the tags events published (see [`Self::count_repaired`]).
    #[serde(skip)]
    ledger: Option<&'static crate::events::ledger::Ledger>,
}

/// The tag entries written so far, and the first error writing them.
#[derive(Debug)]
struct Spool {
    file: BufWriter<std::fs::File>,
    error: Option<std::io::Error>,
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
            spool: None,
            last: Vec::new(),
            ledger: None,
        }
        .counting_repairs(crate::events::ledger::active().filter(|_| !dry_run))
    }

    /// Counts the tags pushed that no event of `ledger` announced (nothing without one).
    fn counting_repairs(mut self, ledger: Option<&'static crate::events::ledger::Ledger>) -> Self {
        self.ledger = ledger;
        self
    }

    /// Keeps every tag entry for [`Self::write_json`] (in an unnamed temporary file).
    pub(crate) fn keep_tags(&mut self) -> anyhow::Result<()> {
        let file = tempfile::tempfile()
            .map_err(|e| anyhow::anyhow!("creating a temporary file for the report: {e}"))?;
        self.spool = Some(Spool {
            file: BufWriter::new(file),
            error: None,
        });
        Ok(())
    }

    fn push(&mut self, entry: &TagEntry) {
        let Some(spool) = &mut self.spool else { return };
        if spool.error.is_some() {
            return;
        }
        let written = serde_json::to_writer(&mut spool.file, &entry)
            .map_err(std::io::Error::from)
            .and_then(|()| spool.file.write_all(b"\n"));
        if let Err(e) = written {
            spool.error = Some(e);
        }
    }

    /// Adds one job's result; returns the entries it added.
    pub(crate) fn add(&mut self, result: &JobResult) -> &[TagEntry] {
        self.totals.jobs += 1;
        self.totals.blobs.add(&result.report.stats);
        let mut last = std::mem::take(&mut self.last);
        last.clear();
        for t in &result.report.tags {
            self.count(t.status);
            self.count_repaired(t.status, &t.destination, t.digest.as_deref());
            last.push(TagEntry {
                destination: t.destination.clone(),
                source: result.report.source.clone(),
                digest: t.digest.clone(),
                status: t.status,
                error: t.error.clone(),
                failure: t.failure,
                origins: result.origins.clone(),
            });
        }
        for entry in &last {
            self.push(entry);
        }
        self.last = last;
        &self.last
    }

    /// Adds files rejected while planning, after the report was started (they changed
    /// between the planner's two reads).
    pub(crate) fn add_rejected(&mut self, rejected: &[(std::path::PathBuf, Vec<MappingError>)]) {
        for (f, errors) in rejected {
            self.rejected_files.push(RejectedFile {
                file: f.display().to_string(),
                errors: errors.iter().map(|e| e.to_string()).collect(),
            });
        }
        self.totals.files_rejected = self.rejected_files.len();
    }

    /// Adds a job whose result never came (`run --wait` gave up on the broker): its `tags`
    /// count as failed, under one entry naming the job (the scheduler keeps job ids, not
    /// their tags: the tags are in the job's message and the worker's log).
    pub(crate) fn add_unreported(&mut self, job_id: Uuid, tags: u32, reason: &str) {
        for _ in 0..tags.max(1) {
            self.count(TagStatus::Failed);
        }
        self.push(&TagEntry {
            destination: format!("job {job_id} ({})", plural(tags as usize, "tag")),
            source: String::new(),
            digest: None,
            status: TagStatus::Failed,
            error: Some(reason.to_string()),
            failure: Some(FailureKind::Unreported),
            origins: Vec::new(),
        });
    }

    /// Adds a tag that failed before any job ran (its source could not be resolved).
    pub(crate) fn add_unjobbed(&mut self, entry: TagEntry) {
        self.count(entry.status);
        self.push(&entry);
    }

    /// A tag's result, with a listener: its event's note is taken off, and a push no event
    /// announced is a repair (see [`crate::events::ledger`]). The count starts with the
    /// first result, so a run that only publishes (no `--wait`) reports none rather than 0.
    fn count_repaired(&mut self, status: TagStatus, destination: &str, digest: Option<&str>) {
        let Some(ledger) = self.ledger else { return };
        if !matches!(status, TagStatus::Pushed | TagStatus::UpToDate) {
            return;
        }
        let announced = ledger.take(destination, digest);
        let n = self.totals.repaired.get_or_insert(0);
        if status == TagStatus::Pushed && !announced {
            *n += 1;
        }
    }

    /// A followed run with a listener that got no result to count (every tag up to date
    /// by the tag cache, say) repaired nothing: 0, not "not counted".
    pub(crate) fn followed_to_the_end(&mut self) {
        if self.ledger.is_some() && self.totals.repaired.is_none() {
            self.totals.repaired = Some(0);
        }
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
            let repaired = match t.repaired {
                Some(n) => format!(" ({n} repaired: no event had announced them)"),
                None => String::new(),
            };
            format!(
                "run {}: {} copied{repaired}, {} already up to date, {} failed{skipped}, {rejected} rejected",
                self.run_id,
                plural(t.tags.pushed, "tag"),
                t.tags.up_to_date,
                t.tags.failed,
            )
        };
        format!("{tags}\n{}", blob_line(&t.blobs, t.seconds, self.dry_run))
    }

    /// Writes the report as JSON: the run's fields, then `tags`, copied line by line from
    /// the spool (see the module doc).
    pub(crate) fn write_json(&mut self, path: &Path) -> anyhow::Result<()> {
        let cannot =
            |e: &dyn std::fmt::Display| anyhow::anyhow!("writing report {}: {e}", path.display());
        let head = serde_json::to_string_pretty(&*self)?;
        let head = head.strip_suffix('}').unwrap_or(&head).trim_end();
        let out = std::fs::File::create(path).map_err(|e| cannot(&e))?;
        let mut out = BufWriter::new(out);
        let mut write = || -> std::io::Result<()> {
            out.write_all(head.as_bytes())?;
            out.write_all(b",\n  \"tags\": [")?;
            if let Some(spool) = &mut self.spool {
                if let Some(e) = spool.error.take() {
                    return Err(e);
                }
                spool.file.flush()?;
                let file = spool.file.get_mut();
                file.rewind()?;
                for (i, line) in BufReader::new(&*file).lines().enumerate() {
                    out.write_all(if i == 0 { b"\n    " } else { b",\n    " })?;
                    out.write_all(line?.as_bytes())?;
                }
                file.seek(std::io::SeekFrom::End(0))?;
            }
            out.write_all(b"\n  ]\n}\n")?;
            out.flush()
        };
        write().map_err(|e| cannot(&e))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn entry(destination: &str, status: TagStatus) -> TagEntry {
        TagEntry {
            destination: destination.into(),
            source: "src.io/a/app:1".into(),
            digest: None,
            status,
            error: None,
            failure: None,
            origins: vec!["mapping_a:1".into()],
        }
    }

    fn result(tags: &[(&str, TagStatus)]) -> JobResult {
        JobResult {
            version: mirror_common::job::JOB_VERSION,
            job_id: Uuid::new_v4(),
            run_id: Uuid::nil(),
            report: mirror_common::report::CopyReport {
                source: "src.io/a/app:1".into(),
                digest: None,
                tags: tags
                    .iter()
                    .map(|(d, status)| mirror_common::report::TagResult {
                        status: *status,
                        ..mirror_common::report::TagResult::failed(
                            mirror_common::reference::ImageRef::parse(d).unwrap(),
                            FailureKind::Unreported,
                            "x",
                        )
                    })
                    .collect(),
                stats: Default::default(),
                seconds: 0.0,
            },
            origins: vec![],
        }
    }

    #[test]
    fn a_run_counts_the_tags_it_pushed_that_no_event_announced() {
        let ledger: &'static crate::events::ledger::Ledger = Box::leak(Box::default());
        ledger.note("dst.io/a/app:1", "sha256:a");
        ledger.note("dst.io/a/app:2", "sha256:a");
        let mut report = RunReport::new(Uuid::nil(), false, &MappingSet::default())
            .counting_repairs(Some(ledger));
        report.add(&result(&[
            // An event's job did it first: up to date, covered.
            ("dst.io/a/app:1", TagStatus::UpToDate),
            // An event's job failed, the run pushed it: covered (the event announced it).
            ("dst.io/a/app:2", TagStatus::Pushed),
            // No event: repaired.
            ("dst.io/a/app:3", TagStatus::Pushed),
            ("dst.io/a/app:4", TagStatus::Failed),
        ]));
        assert_eq!(report.totals.repaired, Some(1));
        assert!(
            report
                .summary()
                .contains("2 tags copied (1 repaired: no event had announced them)"),
            "{}",
            report.summary()
        );
        // The notes were taken: the next run repairs what changes without an event.
        report.add(&result(&[("dst.io/a/app:1", TagStatus::Pushed)]));
        assert_eq!(report.totals.repaired, Some(2));
        let mut plain = RunReport::new(Uuid::nil(), false, &MappingSet::default());
        plain.add(&result(&[("dst.io/a/app:9", TagStatus::Pushed)]));
        assert_eq!(plain.totals.repaired, None, "no listener, no count");
        assert!(!plain.summary().contains("repaired"));
        let published_only = RunReport::new(Uuid::nil(), false, &MappingSet::default())
            .counting_repairs(Some(ledger));
        assert_eq!(published_only.totals.repaired, None, "no result, no count");
        let mut all_cached = RunReport::new(Uuid::nil(), false, &MappingSet::default())
            .counting_repairs(Some(ledger));
        all_cached.followed_to_the_end();
        assert_eq!(
            all_cached.totals.repaired,
            Some(0),
            "a run followed to its end with nothing to push repaired nothing"
        );
    }

    #[test]
    fn spooled_tags_come_back_in_the_written_report_in_order_and_kept_nowhere_else() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("report.json");
        let mut report = RunReport::new(Uuid::nil(), false, &MappingSet::default());
        report.keep_tags().unwrap();
        report.add_unjobbed(entry("dst.io/a/app:1", TagStatus::UpToDate));
        report.add_unjobbed(entry("dst.io/a/app:2", TagStatus::Failed));
        report.write_json(&path).unwrap();
        let written: serde_json::Value =
            serde_json::from_slice(&std::fs::read(&path).unwrap()).unwrap();
        let tags: Vec<&str> = written["tags"]
            .as_array()
            .unwrap()
            .iter()
            .map(|t| t["destination"].as_str().unwrap())
            .collect();
        assert_eq!(tags, ["dst.io/a/app:1", "dst.io/a/app:2"]);
        assert_eq!(written["totals"]["tags_failed"], 1);
        assert!(!report.succeeded());

        let mut bare = RunReport::new(Uuid::nil(), false, &MappingSet::default());
        bare.add_unjobbed(entry("dst.io/a/app:1", TagStatus::UpToDate));
        bare.write_json(&path).unwrap();
        let written: serde_json::Value =
            serde_json::from_slice(&std::fs::read(&path).unwrap()).unwrap();
        assert_eq!(
            written["tags"],
            serde_json::json!([]),
            "not kept without keep_tags"
        );
        assert_eq!(written["totals"]["tags_up_to_date"], 1);
    }
}
