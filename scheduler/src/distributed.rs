//! The distributed mode of `run`: the planned jobs go to RabbitMQ (each publish confirmed by
//! the broker), announced by a `RunStarted` so that `--wait` and `status` know the run's
//! size; a destination tag that still has an unfinished job from an earlier run gets no new
//! job (two jobs racing to move one tag would be wasted work at best).

use std::collections::HashSet;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use mirror_common::job::{RunEvent, RunStarted, JOB_VERSION};
use mirror_common::queue::{publish_all, QueueError};
use mirror_common::report::TagStatus;
use mirror_fleet::amqp::{AmqpQueue, RunSubscription};
use mirror_fleet::store::Redis;

use crate::output::record_result;
use crate::progress::Progress;
use crate::summary::{RunReport, TagEntry};
use mirror_common::plan::Plan;

/// How far back the run history is read to find unfinished jobs of earlier runs.
pub(crate) const UNFINISHED_WINDOW: Duration = Duration::from_secs(24 * 3600);

/// What was published.
pub(crate) struct Published {
    pub jobs: usize,
    pub tags: usize,
    /// Destination tags left out because an earlier run's job for them is unfinished.
    pub skipped_unfinished: usize,
}

/// Destination tags announced by runs in `history` whose results have not all come back.
pub(crate) fn unfinished_tags(history: &[RunEvent]) -> HashSet<String> {
    let mut pending: HashSet<String> = HashSet::new();
    for event in history {
        match event {
            RunEvent::Started(run) => pending.extend(run.destinations.iter().cloned()),
            RunEvent::Result(result) => {
                for t in &result.report.tags {
                    pending.remove(&t.destination);
                }
            }
        }
    }
    pending
}

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

/// Publishes the plan's jobs (minus tags with unfinished jobs), announced by a RunStarted.
pub(crate) async fn publish(queue: &AmqpQueue, plan: &mut Plan) -> Result<Published, QueueError> {
    let history = queue.read_history(UNFINISHED_WINDOW).await?;
    let unfinished = unfinished_tags(&history);
    let mut skipped = 0;
    for job in &mut plan.jobs {
        let before = job.destinations.len();
        job.destinations
            .retain(|d| !unfinished.contains(&d.to_string()));
        skipped += before - job.destinations.len();
    }
    plan.jobs.retain(|j| !j.destinations.is_empty());
    let destinations: Vec<String> = plan
        .jobs
        .iter()
        .flat_map(|j| j.destinations.iter().map(|d| d.to_string()))
        .collect();
    let started_at = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0);
    let tags = destinations.len();
    let run = RunStarted {
        version: JOB_VERSION,
        run_id: plan.run_id,
        started_at,
        jobs: plan.jobs.len(),
        destinations,
    };
    queue.publish_run_started(&run).await?;
    publish_all(queue, &plan.jobs).await?;
    Ok(Published {
        jobs: plan.jobs.len(),
        tags,
        skipped_unfinished: skipped,
    })
}

/// Consumes the run's results until every job is accounted for.
pub(crate) async fn wait(
    mut subscription: RunSubscription,
    jobs: usize,
    report: &mut RunReport,
) -> Result<(), QueueError> {
    let mut progress = Progress::new(jobs);
    let mut seen = HashSet::new();
    while seen.len() < jobs {
        if let RunEvent::Result(result) = subscription.next().await? {
            // A job redelivered after a worker died may report twice; count it once.
            if seen.insert(result.job_id) {
                let failed = record_result(&progress, report, &result);
                progress.job_done(failed);
            }
        }
    }
    progress.finish();
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use mirror_common::job::JobResult;
    use mirror_common::report::{CopyReport, TagResult, TagStatus};
    use uuid::Uuid;

    #[test]
    fn tags_of_announced_runs_without_results_are_unfinished() {
        let run_id = Uuid::new_v4();
        let started = RunEvent::Started(RunStarted {
            version: 1,
            run_id,
            started_at: 0,
            jobs: 2,
            destinations: vec!["r/a:1".into(), "r/b:1".into()],
        });
        let tag = TagResult::ok("r/a:1", TagStatus::Pushed, "sha256:0");
        let report = CopyReport {
            source: "s".into(),
            digest: None,
            tags: vec![tag],
            stats: Default::default(),
            seconds: 0.0,
        };
        let done = RunEvent::Result(JobResult {
            version: 1,
            job_id: Uuid::new_v4(),
            run_id,
            report,
            origins: vec![],
        });
        let pending = unfinished_tags(&[started, done]);
        assert_eq!(pending.into_iter().collect::<Vec<_>>(), ["r/b:1"]);
    }
}
