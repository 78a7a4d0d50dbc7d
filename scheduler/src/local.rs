//! The embedded mode: the planner's jobs go through the in-process queue to N in-process
//! workers running the same worker loop as the fleet, and results come back the same way.
//! Nothing to install: no broker, no Redis.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

use mirror_common::engines::Engines;
use mirror_common::failure::FailureKind;
use mirror_common::job::JobResult;
use mirror_common::queue::{publish_all, JobQueue, MemoryQueue, QueueError};
use mirror_common::worker::handle;

use crate::output::record_result;
use crate::progress::Progress;
use crate::summary::RunReport;
use mirror_common::plan::Plan;

/// Why a job was not tried: an earlier one failed and the run stops at the first failure.
const NOT_ATTEMPTED: &str = "not attempted: the run stopped after the first failure (use --continue-on-error to keep going)";

/// Runs every job of `plan` with `in_flight` in-process workers (at most `--workers` of
/// them copying, by the engines' slots), adding results to `report` as they arrive. Without `continue_on_error` the run stops taking new jobs after the first
/// failed one (as oc does); jobs not tried are reported as failed with that reason.
/// How the embedded mode runs its jobs.
pub(crate) struct Local {
    /// Jobs handled at once (their copies limited by the engines' slots).
    pub in_flight: usize,
    /// Keep taking jobs after a failed one.
    pub continue_on_error: bool,
    /// Deliveries of each job: a job that failed in a way that may pass is tried again,
    /// a second later, until this many.
    pub tries: u32,
}

pub(crate) async fn execute(
    plan: Plan,
    engines: Arc<Engines>,
    local: &Local,
    report: &mut RunReport,
) -> Result<(), QueueError> {
    let (in_flight, continue_on_error) = (local.in_flight, local.continue_on_error);
    let retries = local.tries.saturating_sub(1) as usize;
    let queue = Arc::new(MemoryQueue::with_retry_delays(vec![
        std::time::Duration::from_secs(1);
        retries
    ]));
    let total = plan.jobs.len();
    publish_all(queue.as_ref(), &plan.jobs).await?;
    let stop = Arc::new(AtomicBool::new(false));
    let mut tasks = Vec::new();
    for _ in 0..in_flight.max(1) {
        let (queue, engines, stop) = (queue.clone(), engines.clone(), stop.clone());
        tasks.push(tokio::spawn(async move {
            worker_loop(&queue, &engines, &stop).await
        }));
    }
    let mut progress = Progress::new(total);
    for _ in 0..total {
        let result = queue.receive_result().await?;
        let failed = record_result(&progress, report, &result);
        progress.job_done(failed);
        if failed && !continue_on_error {
            stop.store(true, Ordering::Relaxed);
        }
    }
    progress.finish();
    for t in tasks {
        t.abort();
    }
    Ok(())
}

/// One in-process worker: the fleet's job handling, plus the stop-at-first-failure rule.
async fn worker_loop(
    queue: &Arc<MemoryQueue>,
    engines: &Engines,
    stop: &AtomicBool,
) -> Result<(), QueueError> {
    loop {
        let delivery = queue.receive().await?;
        if stop.load(Ordering::Relaxed) {
            queue
                .publish_result(&JobResult::failed(
                    &delivery.job,
                    FailureKind::NotAttempted,
                    NOT_ATTEMPTED,
                ))
                .await?;
            delivery.acker.ack().await?;
            continue;
        }
        handle(queue.as_ref(), engines, delivery).await?;
    }
}
