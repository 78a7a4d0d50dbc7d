//! The embedded mode: the planner's jobs go through the in-process queue to N in-process
//! workers running the same worker loop as the fleet, and results come back the same way.
//! Nothing to install: no broker, no Redis.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

use mirror_common::copy::{CopyEngine, TagStatus};
use mirror_common::job::JobResult;
use mirror_common::queue::{JobQueue, MemoryQueue, QueueError};
use mirror_common::worker::{handle, JobRetry};

use crate::plan::Plan;
use crate::progress::Progress;
use crate::summary::{RunReport, TagEntry};

/// Why a job was not tried: an earlier one failed and the run stops at the first failure.
const NOT_ATTEMPTED: &str = "not attempted: the run stopped after the first failure (use --continue-on-error to keep going)";

/// Runs every job of `plan` with `workers` in-process workers, adding results to `report`
/// as they arrive. Without `continue_on_error` the run stops taking new jobs after the first
/// failed one (as oc does); jobs not tried are reported as failed with that reason.
pub async fn execute(
    plan: Plan,
    engine: Arc<CopyEngine>,
    workers: usize,
    continue_on_error: bool,
    report: &mut RunReport,
) -> Result<(), QueueError> {
    for (tag, origin) in &plan.unresolved {
        report.add_unjobbed(TagEntry {
            destination: tag.destination.clone(),
            source: String::new(),
            digest: None,
            status: TagStatus::Failed,
            error: tag.error.clone(),
            origins: vec![origin.clone()],
        });
        eprintln!(
            "error: {}: {} ({origin})",
            tag.destination,
            tag.error.as_deref().unwrap_or("failed")
        );
    }
    let queue = Arc::new(MemoryQueue::new());
    let total = plan.jobs.len();
    for job in &plan.jobs {
        queue.publish(job).await?;
    }
    let stop = Arc::new(AtomicBool::new(false));
    let mut tasks = Vec::new();
    for _ in 0..workers.max(1) {
        let (queue, engine, stop) = (queue.clone(), engine.clone(), stop.clone());
        tasks.push(tokio::spawn(async move {
            worker_loop(&queue, &engine, &stop).await
        }));
    }
    let mut progress = Progress::new(total);
    for _ in 0..total {
        let result = queue.receive_result().await?;
        let failed = !result.report.succeeded();
        for entry in report.add(&result) {
            match entry.status {
                TagStatus::Pushed => {
                    if let Some(d) = &entry.digest {
                        progress.println(&format!("{d} {}", entry.destination));
                    }
                }
                TagStatus::Failed => progress.eprintln(&format!(
                    "error: {}: {}",
                    entry.destination,
                    entry.error.as_deref().unwrap_or("failed")
                )),
                _ => {}
            }
        }
        if report.dry_run {
            print_dry_run(&progress, &result);
        }
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
    engine: &CopyEngine,
    stop: &AtomicBool,
) -> Result<(), QueueError> {
    loop {
        let delivery = queue.receive().await?;
        if stop.load(Ordering::Relaxed) {
            queue
                .publish_result(&JobResult::failed(&delivery.job, NOT_ATTEMPTED, false))
                .await?;
            delivery.acker.ack().await?;
            continue;
        }
        handle(queue.as_ref(), engine, &JobRetry::default(), delivery).await?;
    }
}

/// Dry run: per tag, new / changed / up to date, with the blob work of its job.
fn print_dry_run(progress: &Progress, result: &JobResult) {
    let s = &result.report.stats;
    for t in &result.report.tags {
        let what = match t.status {
            TagStatus::WouldCreate => "new",
            TagStatus::WouldUpdate => "changed",
            TagStatus::UpToDate => "up-to-date",
            _ => continue,
        };
        let blobs = if t.status == TagStatus::UpToDate {
            String::new()
        } else {
            format!(
                "  blobs: {} to upload ({}), {} to mount, {} already there",
                s.blobs_uploaded,
                crate::summary::human_bytes(s.bytes_uploaded),
                s.blobs_mounted,
                s.blobs_skipped
            )
        };
        progress.println(&format!(
            "{what:<10} {} {}{blobs}",
            t.digest.as_deref().unwrap_or("-"),
            t.destination
        ));
    }
}
