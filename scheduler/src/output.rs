//! The lines a run says as it goes, the same in both modes: oc's `<digest> <destination>`
//! line per pushed tag on stdout (its one home), and on stderr the errors, rejected files
//! and superseded mappings; the dry-run lines. Each result also goes into the run report
//! ([`report`](crate::report)).

use mirror_cli::human_bytes;
use mirror_common::failure::FailureKind;
use mirror_common::job::JobResult;
use std::path::PathBuf;

use mirror_common::mapping::{MappingError, MappingSet};
use mirror_common::printable::printable;
use mirror_common::report::{TagResult, TagStatus};

use crate::progress::Progress;
use crate::report::{RunReport, TagEntry};

/// Adds the tags whose source could not be resolved (no job was made for them).
pub(crate) fn record_unresolved(
    unresolved: &[(TagResult, String)],
    report: &mut RunReport,
    skip_missing: bool,
) {
    for (unresolved, origin) in unresolved {
        let tag = unresolved_result(unresolved, skip_missing);
        let skip = tag.status == TagStatus::Skipped;
        report.add_unjobbed(TagEntry {
            destination: tag.destination.clone(),
            source: String::new(),
            digest: None,
            status: tag.status,
            error: tag.error.clone(),
            failure: tag.failure,
            origins: vec![origin.clone()],
        });
        eprintln!(
            "{}: {}: {} ({})",
            if skip {
                "skipped (--skip-missing)"
            } else {
                "error"
            },
            tag.destination,
            printable(tag.error.as_deref().unwrap_or("failed")),
            printable(origin)
        );
    }
}

/// What a tag whose source could not be resolved comes to: failed, or with
/// `--skip-missing` and a source that does not exist, skipped.
pub(crate) fn unresolved_result(tag: &TagResult, skip_missing: bool) -> TagResult {
    let skip = skip_missing && tag.failure == Some(FailureKind::NotFound);
    TagResult {
        status: if skip {
            TagStatus::Skipped
        } else {
            TagStatus::Failed
        },
        failure: if skip { None } else { tag.failure },
        ..tag.clone()
    }
}

/// Adds one job's result to the report and prints its lines; true when a tag failed.
pub(crate) fn record_result(
    progress: &Progress,
    report: &mut RunReport,
    result: &JobResult,
) -> bool {
    for entry in report.add(result) {
        match entry.status {
            TagStatus::Pushed => {
                if let Some(d) = &entry.digest {
                    progress.println(&format!("{d} {}", entry.destination));
                }
            }
            TagStatus::Failed => progress.eprintln(&format!(
                "error: {}: {}",
                entry.destination,
                printable(entry.error.as_deref().unwrap_or("failed"))
            )),
            _ => {}
        }
    }
    if report.dry_run {
        print_dry_run(progress, result);
    }
    !result.report.succeeded()
}

/// Dry run: per tag, new / changed / up to date, with the blob work of its job.
fn print_dry_run(progress: &Progress, result: &JobResult) {
    let s = &result.report.stats;
    for t in &result.report.tags {
        let what = match t.status {
            TagStatus::WouldCreate => "new",
            TagStatus::WouldUpdate => "changed",
            TagStatus::UpToDate => "up-to-date",
            _ => continue,
        };
        let referrers = match (t.referrers, s.referrers_pushed) {
            (0, _) => String::new(),
            (n, 0) => format!("  referrers: {n}, all there"),
            (n, m) => format!("  referrers: {n}, {m} to copy"),
        };
        let blobs = if t.status == TagStatus::UpToDate {
            referrers
        } else {
            format!(
                "  blobs: {} to upload ({}), {} to mount, {} already there{referrers}",
                s.blobs_uploaded,
                human_bytes(s.bytes_uploaded),
                s.blobs_mounted,
                s.blobs_skipped
            )
        };
        progress.println(&format!(
            "{what:<10} {} {}{blobs}",
            t.digest.as_deref().unwrap_or("-"),
            t.destination
        ));
    }
}

/// Prints every error of the rejected files and one line per rejected file (stderr);
/// returns the number of errors.
pub(crate) fn print_rejected(set: &MappingSet) -> usize {
    print_rejected_files(&set.rejected)
}

/// [`print_rejected`] for some files.
pub(crate) fn print_rejected_files(rejected: &[(PathBuf, Vec<MappingError>)]) -> usize {
    let mut errors = 0;
    for (file, file_errors) in rejected {
        for e in file_errors {
            eprintln!("{e}");
        }
        errors += file_errors.len();
        let s = if file_errors.len() == 1 { "" } else { "s" };
        eprintln!(
            "{}: file rejected ({} error{s}): none of its mappings would be mirrored",
            file.display(),
            file_errors.len()
        );
    }
    errors
}

/// Prints a warning per destination tag a later file supersedes; returns how many.
pub(crate) fn print_superseded(set: &MappingSet) -> usize {
    for w in &set.superseded {
        eprintln!("warning: {w}");
    }
    set.superseded.len()
}
