//! The fleet's tag cache in Redis, read before publishing: a destination tag the workers
//! last pushed or saw at its job's digest gets no job, so a run where nothing changed
//! publishes none at all (`--verify` does without it).

use mirror_common::plan::Plan;
use mirror_common::report::TagStatus;
use mirror_fleet::store::Redis;

use crate::report::TagEntry;

/// Takes out of the plan the destination tags that the fleet's tag cache says already point
/// at their job's digest (what the workers last pushed or saw there), and returns them as
/// up-to-date report entries: a run where nothing changed publishes no job at all.
pub(crate) async fn skip_cached(redis: &Redis, plan: &mut Plan) -> Vec<TagEntry> {
    let keys: Vec<(String, String, String)> = plan
        .jobs
        .iter()
        .flat_map(|j| {
            j.destinations.iter().map(|d| {
                (
                    d.registry.clone(),
                    d.repository.clone(),
                    d.manifest_reference().to_string(),
                )
            })
        })
        .collect();
    let cached = redis.tags().dest_digests(&keys).await;
    let mut cached = cached.into_iter();
    let mut skipped = Vec::new();
    for job in &mut plan.jobs {
        let mut keep = Vec::new();
        for d in job.destinations.drain(..) {
            if cached.next().flatten().as_deref() == Some(job.digest.as_str()) {
                skipped.push(TagEntry {
                    destination: d.to_string(),
                    source: job.source.to_string(),
                    digest: Some(job.digest.clone()),
                    status: TagStatus::UpToDate,
                    error: None,
                    failure: None,
                    origins: job.origins.clone(),
                });
            } else {
                keep.push(d);
            }
        }
        job.destinations = keep;
    }
    plan.jobs.retain(|j| !j.destinations.is_empty());
    skipped
}
