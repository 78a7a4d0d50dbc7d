//! What every batch of the planner goes through before either mode runs or publishes it.

use mirror_common::job::Job;
use mirror_common::plan::Batch;
use mirror_common::reference::ImageRef;

use super::settings::RunSettings;
use crate::output::{print_rejected_files, record_unresolved};
use crate::report::RunReport;

/// What every batch goes through in both modes: its jobs get the run's digest tags,
/// credentials name, options and group; its unresolved tags and the files rejected late go
/// into the report (and are said).
pub(super) fn take_batch(batch: &mut Batch, settings: &RunSettings, report: &mut RunReport) {
    settings.stamp().apply(&mut batch.jobs);
    print_rejected_files(&batch.rejected);
    report.add_rejected(&batch.rejected);
    record_unresolved(&batch.unresolved, report, settings.copy.skip_missing);
}

/// Takes destination tags out of a batch's `jobs`: `answers` holds one answer per tag, in
/// the order of [`Job::destination_keys`] over the jobs (what Redis said of it); a tag for
/// which `take` makes something is taken out and that is returned. Jobs left without tags
/// are dropped. The tag cache and the pending marks both sort a batch this way.
pub(super) fn take_tags<A, T>(
    jobs: &mut Vec<Job>,
    answers: impl IntoIterator<Item = A>,
    mut take: impl FnMut(&Job, &ImageRef, A) -> Option<T>,
) -> Vec<T> {
    let mut answers = answers.into_iter();
    let mut taken = Vec::new();
    for job in jobs.iter_mut() {
        let mut keep = Vec::new();
        for d in std::mem::take(&mut job.destinations) {
            let Some(answer) = answers.next() else {
                keep.push(d);
                continue;
            };
            match take(job, &d, answer) {
                Some(t) => taken.push(t),
                None => keep.push(d),
            }
        }
        job.destinations = keep;
    }
    jobs.retain(|j| !j.destinations.is_empty());
    taken
}
