//! The fleet's tag cache in Redis, read before publishing: a destination tag the workers
//! last pushed or saw at its job's digest gets no job, so a run where nothing changed
//! publishes none at all (`--verify` does without it).

use mirror_common::job::Job;
use mirror_common::report::TagStatus;
use mirror_fleet::store::Redis;

use crate::report::TagEntry;

/// Takes out of a batch's `jobs` the destination tags that the fleet's tag cache says
/// already point at their job's digest (what the workers last pushed or saw there), and
/// returns them as up-to-date report entries: a run where nothing changed publishes no job.
pub(crate) async fn skip_cached(redis: &Redis, jobs: &mut Vec<Job>) -> Vec<TagEntry> {
    let keys: Vec<(&str, &str, &str)> = jobs.iter().flat_map(Job::destination_keys).collect();
    let cached = redis.tags().dest_digests(&keys).await;
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
