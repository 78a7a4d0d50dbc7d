//! The distributed mode of `run`: the planned jobs go to RabbitMQ (each publish confirmed by
//! the broker), then a `RunStarted` names the run's size and tags, so that `status` knows
//! them and the next run can tell which tags still have a job in flight: a destination tag
//! whose job from an earlier run has not reported gets no new job (two jobs racing to move
//! one tag would be wasted work at best).
//!
//! Nothing a run leaves behind can block the next one for long: the announcement goes out
//! only after every job of the run is confirmed (a scheduler killed while publishing
//! announces nothing, so the next run publishes every tag again), and an announced tag
//! counts as pending for [`PENDING_FOR`] at most. A tag skipped as pending is checked with a
//! HEAD: unless it is already at its source digest, it fails the run.

use std::collections::{HashMap, HashSet};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use futures::StreamExt;
use mirror_common::failure::FailureKind;
use mirror_common::job::Job;
use mirror_common::reference::ImageRef;
use mirror_common::registry::Registries;
use uuid::Uuid;

use mirror_common::job::JobResult;
use mirror_common::job::{RunEvent, RunStarted, JOB_VERSION};
use mirror_common::queue::QueueError;
use mirror_common::report::TagStatus;
use mirror_common::report::{CopyReport, TagResult};
use mirror_fleet::store::Redis;

use crate::broker::Broker;
use crate::summary::TagEntry;
use mirror_common::plan::Plan;

/// How long a tag announced by a run counts as pending without a result: past this, its
/// job is presumed lost (a purged queue, a broker restored from backup) and the next run
/// publishes the tag again.
pub(crate) const PENDING_FOR: Duration = Duration::from_secs(6 * 3600);

/// HEADs of skipped tags in flight at once.
const CHECK_CONCURRENCY: usize = 32;

/// What was published.
pub(crate) struct Published {
    pub(crate) jobs: usize,
    pub(crate) tags: usize,
    /// Destination tags left out because an earlier run's job for them has not reported,
    /// each with the job it would have been in and that earlier run.
    pub(crate) skipped: Vec<(ImageRef, Job, Uuid)>,
}

/// Destination tags announced by runs in `history` that started less than `pending_for`
/// before `now` (seconds since the epoch) and whose results have not come back, each with
/// its run. Events may come in any order: a run is announced after its jobs are published,
/// so fast workers report before the announcement.
pub(crate) fn unfinished_tags(
    history: &[RunEvent],
    now: u64,
    pending_for: Duration,
) -> HashMap<String, Uuid> {
    let oldest = now.saturating_sub(pending_for.as_secs());
    let mut announced: HashMap<Uuid, &[String]> = HashMap::new();
    let mut reported: HashSet<(Uuid, &str)> = HashSet::new();
    for event in history {
        match event {
            RunEvent::Started(run) if run.started_at >= oldest => {
                announced.insert(run.run_id, &run.destinations);
            }
            RunEvent::Started(_) => {}
            RunEvent::Result(result) => {
                for t in &result.report.tags {
                    reported.insert((result.run_id, t.destination.as_str()));
                }
            }
        }
    }
    let mut pending = HashMap::new();
    for (run, destinations) in announced {
        for d in destinations {
            if !reported.contains(&(run, d.as_str())) {
                pending.insert(d.clone(), run);
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

/// Publishes the plan's jobs (minus tags with unfinished jobs), then announces the run
/// (with `up_to_date`, the tags the tag cache answered for), and records the tags that
/// failed while planning (`planning_failures`) in the history as a result of the run, so
/// that `status` counts them as failed like any other. Each step survives a lost
/// connection ([`Broker::call`]).
pub(crate) async fn publish(
    broker: &mut Broker,
    plan: &mut Plan,
    up_to_date: usize,
    group: Option<&str>,
    planning_failures: Vec<TagResult>,
) -> Result<Published, QueueError> {
    let started_at = now_secs();
    // Which tags an earlier run still has jobs for matters only to a run with jobs: a run
    // the tag cache answered whole (the usual hourly run) reads no history.
    let unfinished = match plan.jobs.is_empty() {
        true => HashMap::new(),
        false => {
            let history = broker
                .call("reading the run history", |q| async move {
                    q.read_history(PENDING_FOR).await
                })
                .await?;
            unfinished_tags(&history, started_at, PENDING_FOR)
        }
    };
    let mut skipped = Vec::new();
    for job in &mut plan.jobs {
        let (keep, left): (Vec<ImageRef>, Vec<ImageRef>) = job
            .destinations
            .drain(..)
            .partition(|d| !unfinished.contains_key(&d.to_string()));
        job.destinations = keep;
        for d in left {
            let run = unfinished[&d.to_string()];
            skipped.push((d, job.clone(), run));
        }
    }
    plan.jobs.retain(|j| !j.destinations.is_empty());
    let destinations: Vec<String> = plan
        .jobs
        .iter()
        .flat_map(|j| j.destinations.iter().map(|d| d.to_string()))
        .collect();
    let tags = destinations.len();
    broker.publish_jobs(&plan.jobs).await?;
    let mut destinations = destinations;
    destinations.extend(planning_failures.iter().map(|t| t.destination.clone()));
    let run = RunStarted {
        version: JOB_VERSION,
        run_id: plan.run_id,
        started_at,
        jobs: plan.jobs.len(),
        destinations,
        up_to_date,
        group: group.map(str::to_string),
    };
    broker
        .call("announcing the run", |q| {
            let run = &run;
            async move { q.publish_run_started(run).await }
        })
        .await?;
    if !planning_failures.is_empty() {
        let result = planning_result(plan.run_id, planning_failures);
        broker
            .call("recording the planning failures", |q| {
                let result = &result;
                async move { mirror_common::queue::JobQueue::publish_result(&q, result).await }
            })
            .await?;
    }
    Ok(Published {
        jobs: plan.jobs.len(),
        tags,
        skipped,
    })
}

/// The tags that failed while planning (a source tag missing, a listing refused), as a
/// result of the run with a job id of its own: no job carries them, yet the run's record
/// must say they failed and why.
fn planning_result(run_id: Uuid, tags: Vec<TagResult>) -> JobResult {
    JobResult {
        version: JOB_VERSION,
        job_id: Uuid::new_v4(),
        run_id,
        report: CopyReport {
            source: String::new(),
            digest: None,
            tags,
            stats: Default::default(),
            seconds: 0.0,
        },
        origins: vec![],
    }
}

/// Report entries for the tags skipped as pending: up to date when a HEAD finds the tag
/// at its source digest already, else failed (the run must not pass while they are not).
pub(crate) async fn check_skipped(
    client: &dyn Registries,
    skipped: &[(ImageRef, Job, Uuid)],
) -> Vec<TagEntry> {
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

fn now_secs() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0)
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
            up_to_date: 0,
            group: None,
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
        let pending = unfinished_tags(&[done.clone(), started.clone()], 100, PENDING_FOR);
        assert_eq!(
            pending.into_keys().collect::<Vec<_>>(),
            ["r/b:1"],
            "a result before its run's announcement still counts"
        );
        let later = PENDING_FOR.as_secs() + 1;
        assert!(
            unfinished_tags(&[started, done], later, PENDING_FOR).is_empty(),
            "an announcement older than PENDING_FOR blocks nothing"
        );
    }
}
