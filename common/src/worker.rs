//! Handling one job, the same in the embedded mode and in a fleet: copy it, report the
//! result, acknowledge. A job whose failure may pass (network, throttling, server errors)
//! is handed back for a delayed retry until its attempts run out; then it is reported as
//! failed and parked (dead-lettered) for an operator. A permanent failure (not found,
//! denied, corrupted content) is reported as failed and acknowledged at once.

use std::time::Duration;

use tracing::Instrument;

use crate::copy::CopyEngine;
use crate::job::{JobResult, JOB_VERSION};
use crate::queue::{Delivery, JobQueue, QueueError};

/// Job-level retry settings (on top of the per-request retries of the registry client).
#[derive(Clone, Debug)]
pub struct JobRetry {
    /// Deliveries of one job at most, the first included.
    pub max_attempts: u32,
    /// Delay before the first redelivery; doubled for each further one.
    pub base_delay: Duration,
}

impl Default for JobRetry {
    fn default() -> Self {
        JobRetry {
            max_attempts: 1,
            base_delay: Duration::from_secs(10),
        }
    }
}

/// Handles one delivery to the end (copy, result, acknowledgement). Returns the result it
/// published, if it published one (not when the job went back for a retry), so that a
/// fleet worker can update its shared caches and counters.
pub async fn handle(
    queue: &dyn JobQueue,
    engine: &CopyEngine,
    retry: &JobRetry,
    delivery: Delivery,
) -> Result<Option<JobResult>, QueueError> {
    let Delivery { job, acker } = delivery;
    if job.version != JOB_VERSION {
        let reason = format!(
            "job {} has message version {}, this worker reads version {JOB_VERSION}",
            job.id, job.version
        );
        tracing::error!(job_id = %job.id, "{reason}");
        let result = JobResult::failed(&job, &reason, false);
        queue.publish_result(&result).await?;
        acker.park(&reason).await?;
        return Ok(Some(result));
    }
    let span =
        tracing::info_span!("job", run_id = %job.run_id, job_id = %job.id, image = %job.source);
    let report = engine
        .copy(&job.pinned_source(), &job.destinations)
        .instrument(span)
        .await;
    let retryable =
        !report.succeeded() && report.tags.iter().all(|t| t.retryable || t.error.is_none());
    if retryable && job.attempt + 1 < retry.max_attempts {
        let delay = retry.base_delay.saturating_mul(1 << job.attempt.min(10));
        tracing::warn!(
            attempt = job.attempt + 1,
            delay_s = delay.as_secs(),
            "job failed with a retryable error; retrying later"
        );
        acker.retry(&job, delay).await?;
        return Ok(None);
    }
    let first_error = report
        .tags
        .iter()
        .find_map(|t| t.error.clone())
        .unwrap_or_default();
    let result = JobResult::new(&job, report);
    queue.publish_result(&result).await?;
    if retryable && retry.max_attempts > 1 {
        let reason = format!("gave up after {} attempts: {first_error}", job.attempt + 1);
        tracing::error!(job_id = %job.id, "{reason}");
        acker.park(&reason).await?;
    } else {
        acker.ack().await?;
    }
    Ok(Some(result))
}
