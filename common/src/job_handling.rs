//! Handling one job, the same in the embedded mode and in a fleet: copy it, report the
//! result, settle the delivery. What to do with a finished copy is one pure decision
//! ([`decide`]): a job whose every failure may pass (network, throttling, server errors)
//! goes back to the queue for a delayed retry until the queue's attempts run out; then it is
//! reported as failed and parked (dead-lettered) for an operator. A permanent failure (not
//! found, denied, corrupted content) is reported as failed and acknowledged at once.

use std::sync::Arc;

use tracing::Instrument;

use crate::credential_engines::Engines;
use crate::failure::FailureKind;
use crate::job::{Job, JobResult, JOB_VERSION};
use crate::queue::{Delivery, JobQueue, QueueError};
use crate::report::{CopyReport, TagResult, TagStatus};

/// A log line about a job: every one carries the job id, run id, image, destinations and
/// error, so that an operator can find the job's other lines and its parked message.
macro_rules! job_line {
    ($level:expr, $job:expr, $error:expr, $($rest:tt)+) => {
        tracing::event!(
            $level,
            job_id = %$job.id,
            run_id = %$job.run_id,
            image = %$job.source,
            destination = %destinations($job),
            error = %$error,
            $($rest)+
        )
    };
}

/// What becomes of a delivery once its copy is done.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Disposition {
    /// Report the result and remove the job (it succeeded, or failed for good).
    Ack,
    /// Hand the job back for a delayed retry; no result yet.
    Retry,
    /// Report the result and park the job with this reason (retries ran out).
    Park(String),
}

/// The retry-or-park decision for `job`, given what its copy reported and how many
/// deliveries the queue allows. Reads failure kinds only, never error texts.
pub fn decide(job: &Job, report: &CopyReport, max_attempts: u32) -> Disposition {
    let Some(first) = report.first_failure() else {
        return Disposition::Ack;
    };
    let retryable = report
        .tags
        .iter()
        .filter(|t| t.status == TagStatus::Failed)
        .all(TagResult::retryable);
    if !retryable || max_attempts <= 1 {
        return Disposition::Ack;
    }
    if job.attempt + 1 < max_attempts {
        return Disposition::Retry;
    }
    Disposition::Park(format!(
        "gave up after {} attempts: {}",
        job.attempt + 1,
        first.error.as_deref().unwrap_or_default()
    ))
}

/// Handles one delivery to the end (copy, result, acknowledgement). Returns the result it
/// published, if it published one (not when the job went back for a retry), so that a
/// fleet worker can update its shared caches and counters.
pub async fn handle(
    queue: &dyn JobQueue,
    engines: &Engines,
    delivery: Delivery,
) -> Result<Option<JobResult>, QueueError> {
    let Delivery { job, acker } = delivery;
    if job.version != JOB_VERSION {
        let reason = format!(
            "job {} has message version {}, this worker reads version {JOB_VERSION}",
            job.id, job.version
        );
        job_line!(
            tracing::Level::ERROR,
            &job,
            reason,
            "job parked: it cannot be read"
        );
        let result = JobResult::failed(&job, FailureKind::BadJob, &reason);
        queue.publish_result(&result).await?;
        acker.park(&reason).await?;
        return Ok(Some(result));
    }
    let report = copy(engines, &job).await;
    let disposition = decide(&job, &report, queue.max_attempts());
    if disposition == Disposition::Retry {
        job_line!(
            tracing::Level::WARN,
            &job,
            first_error(&report),
            attempt = job.attempt + 1,
            max_attempts = queue.max_attempts(),
            "job failed with a retryable error; retrying later"
        );
        acker.retry(&job).await?;
        return Ok(None);
    }
    let result = JobResult::new(&job, report);
    queue.publish_result(&result).await?;
    match disposition {
        Disposition::Park(reason) => {
            job_line!(tracing::Level::ERROR, &job, reason, "job parked");
            acker.park(&reason).await?;
        }
        _ => acker.ack().await?,
    }
    Ok(Some(result))
}

/// Copies the job with the engine of its credentials and its options; a job whose
/// credentials or options cannot be used fails every tag with why.
async fn copy(engines: &Engines, job: &Job) -> CopyReport {
    let span =
        tracing::info_span!("job", run_id = %job.run_id, job_id = %job.id, image = %job.source);
    let engine = engines
        .for_job(job.credentials.as_deref())
        .map_err(|e| (FailureKind::Credentials, e.to_string()))
        .and_then(|engine| match &job.options {
            None => Ok(engine),
            Some(o) => o
                .apply(engine.options())
                .map(|opts| Arc::new(engine.with_options(opts)))
                .map_err(|why| (FailureKind::BadJob, format!("the job's options: {why}"))),
        });
    match engine {
        Ok(engine) => {
            engine
                .in_run(job.run_id)
                .copy_in_slot(
                    &job.pinned_source(),
                    &job.destinations,
                    engines.copy_slots(),
                )
                .instrument(span)
                .await
        }
        Err((kind, reason)) => JobResult::failed(job, kind, &reason).report,
    }
}

/// The job's destinations for a log line (comma-separated): which tags a line is about.
pub fn destinations(job: &Job) -> String {
    job.destinations
        .iter()
        .map(ToString::to_string)
        .collect::<Vec<_>>()
        .join(",")
}

/// The first failed tag's error for a log line (empty when nothing failed).
pub fn first_error(report: &CopyReport) -> String {
    report
        .first_failure()
        .and_then(|t| t.error.clone())
        .unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::reference::ImageRef;

    fn job(attempt: u32) -> Job {
        let mut j = Job::new(
            uuid::Uuid::new_v4(),
            ImageRef::parse("q.io/a/b:1").unwrap(),
            "sha256:0".into(),
            vec![ImageRef::parse("r.io/a/b:1").unwrap()],
            vec![],
        );
        j.attempt = attempt;
        j
    }

    fn report(tags: Vec<TagResult>) -> CopyReport {
        CopyReport {
            source: "q.io/a/b:1".into(),
            digest: None,
            tags,
            stats: Default::default(),
            seconds: 0.0,
        }
    }

    fn failed(kind: FailureKind) -> TagResult {
        TagResult::failed("r.io/a/b:1", kind, format!("it was {kind}"))
    }

    #[test]
    fn a_job_whose_tags_made_it_is_acknowledged() {
        let r = report(vec![TagResult::ok(
            "r.io/a/b:1",
            TagStatus::Pushed,
            "sha256:0",
        )]);
        assert_eq!(decide(&job(0), &r, 4), Disposition::Ack);
    }

    #[test]
    fn a_retryable_failure_is_retried_until_the_last_attempt_then_parked_with_its_reason() {
        let r = report(vec![failed(FailureKind::ServerError)]);
        assert_eq!(decide(&job(0), &r, 3), Disposition::Retry);
        assert_eq!(decide(&job(1), &r, 3), Disposition::Retry);
        assert_eq!(
            decide(&job(2), &r, 3),
            Disposition::Park("gave up after 3 attempts: it was server_error".into())
        );
    }

    #[test]
    fn a_permanent_failure_is_acknowledged_at_once() {
        for kind in [
            FailureKind::NotFound,
            FailureKind::Denied,
            FailureKind::DigestMismatch,
        ] {
            assert_eq!(
                decide(&job(0), &report(vec![failed(kind)]), 4),
                Disposition::Ack
            );
        }
    }

    #[test]
    fn one_permanent_failure_among_retryable_ones_is_not_retried() {
        let r = report(vec![
            failed(FailureKind::Network),
            failed(FailureKind::NotFound),
        ]);
        assert_eq!(decide(&job(0), &r, 4), Disposition::Ack);
    }

    #[test]
    fn without_retries_a_retryable_failure_is_acknowledged_not_parked() {
        let r = report(vec![failed(FailureKind::Throttled)]);
        assert_eq!(decide(&job(0), &r, 1), Disposition::Ack);
    }

    #[test]
    fn a_failed_tag_without_a_kind_is_not_retried() {
        let mut t = failed(FailureKind::Network);
        t.failure = None;
        let r = report(vec![t, failed(FailureKind::Network)]);
        assert_eq!(decide(&job(0), &r, 4), Disposition::Ack);
    }
}
