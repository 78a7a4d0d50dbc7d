//! Tags an earlier run's jobs still hold: a destination tag whose job from an earlier run
//! has not reported gets no new job (two jobs racing to move one tag would be wasted work
//! at best). The scheduler marks each tag in Redis just before publishing its job, and the
//! worker frees it once the result is out (`mirror_fleet::store::PendingTags`); a mark
//! counts for [`PENDING_FOR`] at most (nothing a run leaves behind blocks the next one for
//! long). A tag skipped as pending is checked with a HEAD: unless it is already at its
//! source digest, it fails the run.

use std::time::Duration;

use futures::StreamExt;
use mirror_common::failure::FailureKind;
use mirror_common::job::Job;
use mirror_common::reference::ImageRef;
use mirror_common::registry::Registries;
use mirror_common::report::TagStatus;
use mirror_fleet::store::Redis;
use uuid::Uuid;

use crate::report::TagEntry;

/// How long a tag marked by a run counts as pending without a result: past this, its job
/// is presumed lost (a purged queue, a broker restored from backup) and the next run
/// publishes the tag again.
pub(crate) const PENDING_FOR: Duration = Duration::from_secs(6 * 3600);

/// HEADs of skipped tags in flight at once.
const CHECK_CONCURRENCY: usize = 32;

/// A destination tag left out, with the job it would have been in and the run holding it.
pub(crate) type Skipped = (ImageRef, Job, Uuid);

/// The (registry, repository, tag) of every destination of `jobs`, in order.
fn tags_of(jobs: &[Job]) -> Vec<(&str, &str, &str)> {
    jobs.iter().flat_map(Job::destination_keys).collect()
}

/// Takes out of a batch's `jobs` the destination tags that another run's job still holds,
/// and returns them.
pub(crate) async fn leave_out_pending(
    redis: &Redis,
    run_id: Uuid,
    jobs: &mut Vec<Job>,
) -> Vec<Skipped> {
    let holders = redis.pending().holders(&tags_of(jobs)).await;
    super::batch::take_tags(jobs, holders, |job, d, holder| match holder {
        // The job as it is when the tag is taken out: its checks need its digest, source
        // and origins, not its other tags.
        Some(run) if run != run_id => Some((d.clone(), job.clone(), run)),
        _ => None,
    })
}

/// Marks the destination tags of a batch's `jobs` as held by `run_id`, before the jobs go
/// out (a worker may report before the broker confirms the publish).
pub(crate) async fn hold(redis: &Redis, run_id: Uuid, jobs: &[Job]) {
    redis
        .pending()
        .hold(run_id, &tags_of(jobs), PENDING_FOR)
        .await;
}

/// Frees the tags of jobs that could not be published.
pub(crate) async fn release(redis: &Redis, jobs: &[Job]) {
    redis.pending().release(&tags_of(jobs)).await;
}

/// Report entries for the tags skipped as pending: up to date when a HEAD finds the tag
/// at its source digest already, else failed (the run must not pass while they are not).
pub(crate) async fn check_skipped(client: &dyn Registries, skipped: &[Skipped]) -> Vec<TagEntry> {
    futures::stream::iter(skipped)
        .map(|(d, job, run)| async move {
            let head = client
                .head_manifest(&d.repository(), &d.reference(), false)
                .await;
            let (status, digest, error, failure) = match head {
                Ok(Some(at)) if at == job.digest => (TagStatus::UpToDate, Some(at), None, None),
                Ok(_) => (
                    TagStatus::Failed,
                    None,
                    Some(format!(
                        "not at {} yet: the job of run {run} for this tag has not reported",
                        job.digest
                    )),
                    Some(FailureKind::Pending),
                ),
                Err(e) => (
                    TagStatus::Failed,
                    None,
                    Some(e.to_string()),
                    Some(FailureKind::of(&e)),
                ),
            };
            TagEntry {
                destination: d.to_string(),
                source: job.source.to_string(),
                digest,
                status,
                error,
                failure,
                origins: job.origins.clone(),
            }
        })
        .buffered(CHECK_CONCURRENCY)
        .collect()
        .await
}
