//! The distributed mode's publishing: the planned jobs go to RabbitMQ (each publish
//! confirmed by the broker), minus the tags an earlier run's jobs still hold (see
//! [`pending`](super::pending)), then a `RunStarted` names the run's size and tags, so that
//! `status` knows them and the next run can tell which tags still have a job in flight.
//!
//! The announcement goes out only after every job of the run is confirmed: a scheduler
//! killed while publishing announces nothing, so the next run publishes every tag again.

use std::collections::HashMap;
use std::time::{SystemTime, UNIX_EPOCH};

use mirror_common::job::{Job, JobResult, RunStarted, JOB_VERSION};
use mirror_common::plan::Plan;
use mirror_common::queue::QueueError;
use mirror_common::reference::ImageRef;
use mirror_common::report::{CopyReport, TagResult};
use uuid::Uuid;

use super::pending::{unfinished_tags, PENDING_FOR};
use crate::broker::Broker;

/// What was published.
pub(crate) struct Published {
    pub(crate) jobs: usize,
    pub(crate) tags: usize,
    /// Destination tags left out because an earlier run's job for them has not reported,
    /// each with the job it would have been in and that earlier run.
    pub(crate) skipped: Vec<(ImageRef, Job, Uuid)>,
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
    let skipped = leave_out_pending(broker, plan, started_at).await?;
    let mut destinations: Vec<String> = plan
        .jobs
        .iter()
        .flat_map(|j| j.destinations.iter().map(|d| d.to_string()))
        .collect();
    let tags = destinations.len();
    broker.publish_jobs(&plan.jobs).await?;
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

/// Takes out of the plan the destination tags an earlier run still has jobs for (as the
/// history of the last [`PENDING_FOR`] says at `started_at`), and returns them, each with
/// the job it would have been in and that earlier run.
async fn leave_out_pending(
    broker: &mut Broker,
    plan: &mut Plan,
    started_at: u64,
) -> Result<Vec<(ImageRef, Job, Uuid)>, QueueError> {
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
    Ok(skipped)
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

fn now_secs() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0)
}
