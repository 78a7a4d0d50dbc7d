//! The tag cache, read before jobs go out (to the fleet, or to the embedded mode's
//! in-process workers): a destination tag last pushed or seen at its job's digest gets no
//! job, so a run where nothing changed has none at all (`--verify` does without it).

use mirror_common::job::Job;
use mirror_common::report::TagStatus;
use mirror_common::state::StateStore;

use crate::report::TagEntry;

/// Takes out of a batch's `jobs` the destination tags that the store's tag cache says
/// already point at their job's digest (what was last pushed or seen there), and
/// returns them as up-to-date report entries: a run where nothing changed publishes no job.
pub(crate) async fn skip_cached(store: &dyn StateStore, jobs: &mut Vec<Job>) -> Vec<TagEntry> {
    let keys: Vec<(&str, &str, &str)> = jobs.iter().flat_map(Job::destination_keys).collect();
    let cached = store.dest_digests(&keys).await;
    drop(keys);
    super::batch::take_tags(jobs, cached, |job, d, cached| {
        (cached.as_deref() == Some(job.digest.as_str())).then(|| TagEntry {
            destination: d.to_string(),
            source: job.source.to_string(),
            digest: Some(job.digest.clone()),
            status: TagStatus::UpToDate,
            error: None,
            failure: None,
            origins: job.origins.clone(),
        })
    })
}
