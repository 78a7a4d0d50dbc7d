//! What every batch of the planner goes through before either mode runs or publishes it.

use mirror_common::job_options::JobOptions;
use mirror_common::plan::Batch;

use super::settings::RunSettings;
use crate::output::{print_rejected_files, record_unresolved};
use crate::report::RunReport;

/// What every batch goes through in both modes: its jobs get the run's digest tags,
/// credentials name, options and group; its unresolved tags and the files rejected late go
/// into the report (and are said).
pub(super) fn take_batch(batch: &mut Batch, settings: &RunSettings, report: &mut RunReport) {
    if settings.digest_tag {
        mirror_common::plan::add_digest_tags(&mut batch.jobs);
    }
    for job in &mut batch.jobs {
        job.credentials.clone_from(&settings.credentials);
        job.options = Some(JobOptions::of(&settings.copy));
        job.group.clone_from(&settings.group);
    }
    print_rejected_files(&batch.rejected);
    report.add_rejected(&batch.rejected);
    record_unresolved(&batch.unresolved, report, settings.copy.skip_missing);
}
