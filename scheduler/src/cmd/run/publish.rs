//! The distributed mode's publishing, batch by batch: a batch's tags are marked pending
//! (see [`pending`](super::pending)) and its jobs go to RabbitMQ (each publish confirmed by
//! the broker); the tags that failed while planning go into the history as results of the
//! run; once every batch is out, a `RunStarted` gives the run's size, so that `status`
//! knows it and `--wait` knows when the run is complete.
//!
//! Every message is bounded: a job is one source image, a planning result holds at most
//! [`RESULT_TAGS`] tags, and the announcement counts tags instead of listing them.

use mirror_common::job::{Job, JobResult, RunStarted};
use mirror_common::queue::QueueError;
use mirror_common::report::{CopyReport, TagResult};
use mirror_fleet::store::Redis;
use uuid::Uuid;

use super::pending;
use crate::broker::Broker;

/// Tags per planning-failure result (~150 bytes each with its error: ~150 KB at most).
const RESULT_TAGS: usize = 1000;

/// Publishes a batch's jobs, their tags marked as held by `run_id` first (a worker may
/// report before the broker confirms); the marks are taken back when the batch cannot go
/// out. Survives a lost connection ([`Broker::publish_jobs`]).
pub(crate) async fn publish_batch(
    broker: &mut Broker,
    redis: &Redis,
    run_id: Uuid,
    jobs: &[Job],
) -> Result<(), QueueError> {
    if jobs.is_empty() {
        return Ok(());
    }
    pending::hold(redis, run_id, jobs).await;
    if let Err(e) = broker.publish_jobs(jobs).await {
        pending::release(redis, jobs).await;
        return Err(e);
    }
    Ok(())
}

/// Announces the run, once every job of it is confirmed: a scheduler killed while
/// publishing announces nothing (its tags' marks expire, or the next run checks them).
pub(crate) async fn announce(broker: &mut Broker, run: &RunStarted) -> Result<(), QueueError> {
    broker
        .call("announcing the run", |q| async move {
            q.publish_run_started(run).await
        })
        .await
}

/// Records the tags that failed while planning (a source tag missing, a listing refused)
/// in the history as results of the run, each with a job id of its own: no job carries
/// them, yet the run's record must say they failed and why.
pub(crate) async fn record_planning_failures(
    broker: &mut Broker,
    run_id: Uuid,
    tags: Vec<TagResult>,
) -> Result<(), QueueError> {
    for chunk in tags.chunks(RESULT_TAGS) {
        let result = planning_result(run_id, chunk.to_vec());
        broker
            .call("recording the planning failures", |q| {
                let result = &result;
                async move { mirror_common::queue::JobQueue::publish_result(&q, result).await }
            })
            .await?;
    }
    Ok(())
}

fn planning_result(run_id: Uuid, tags: Vec<TagResult>) -> JobResult {
    JobResult {
        version: mirror_common::job::JOB_VERSION,
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
