//! The embedded mode: the planner's jobs go through the in-process queue to N in-process
//! workers running the same worker loop as the fleet, and results come back the same way.
//! Nothing to install: no broker, no Redis. What a fleet keeps in Redis (blob index,
//! quirks, tag cache) comes from the run's state file when it has one, through the same
//! [`StateStore`] trait, and each in-process worker records its results there as a fleet
//! worker does in Redis.

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

use mirror_cli::plural;
use mirror_common::credential_engines::Engines;
use mirror_common::failure::FailureKind;
use mirror_common::job::JobResult;
use mirror_common::job_handling::handle;
use mirror_common::plan::Plan;
use mirror_common::queue::{publish_all, JobQueue, MemoryQueue, QueueError};
use mirror_common::reference::ImageRef;
use mirror_common::state::StateStore;
use uuid::Uuid;

use super::args::Args;
use super::settings::RunSettings;
use crate::output::record_result;
use crate::progress::Progress;
use crate::report::RunReport;

/// Why a job was not tried: an earlier one failed and the run stops at the first failure.
const NOT_ATTEMPTED: &str = "not attempted: the run stopped after the first failure (use --continue-on-error to keep going)";

/// The embedded mode of one run: says the plan's size, then runs its jobs with engines of
/// the run's registry flags over the state file's blob index and quirks (an in-memory
/// index without one), recording results in it.
pub(crate) async fn run_embedded(
    args: &Args,
    settings: &RunSettings,
    plan: Plan,
    report: &mut RunReport,
    store: Option<Arc<dyn StateStore>>,
) -> anyhow::Result<()> {
    say_planned(&plan, report.totals.tags.up_to_date);
    let (index, hooks) = super::state::engine_parts(store.as_ref());
    let engines = Arc::new(
        args.registry
            .engines(&args.named_credentials, hooks, index, settings.copy.clone())?
            .limit_copies(args.workers),
    );
    let local = Local {
        in_flight: args.in_flight.unwrap_or(args.workers * 8),
        continue_on_error: settings.continue_on_error,
        tries: settings.tries,
        store,
    };
    execute(plan, engines, &local, report).await?;
    Ok(())
}

/// The embedded mode's line before its jobs run: files, jobs and tags of the plan, and the
/// tags that need no job (`known`: up to date by the state file's tag cache).
fn say_planned(plan: &Plan, known: u64) {
    let tags: usize = plan.jobs.iter().map(|j| j.destinations.len()).sum();
    let known = match known {
        0 => String::new(),
        n => format!(
            " ({} up to date by the state file)",
            plural(n as usize, "more tag")
        ),
    };
    eprintln!(
        "run {}: {} ({} rejected), {} for {}{known}",
        plan.run_id,
        plural(plan.set.files.len(), "file"),
        plan.set.rejected.len(),
        plural(plan.jobs.len(), "job"),
        plural(tags, "tag")
    );
}

/// How the embedded mode runs its jobs.
struct Local {
    /// Jobs handled at once (their copies limited by the engines' slots).
    in_flight: usize,
    /// Keep taking jobs after a failed one.
    continue_on_error: bool,
    /// Deliveries of each job: a job that failed in a way that may pass is tried again,
    /// a second later, until this many.
    tries: u32,
    /// Where results are recorded (the state file), if anywhere.
    store: Option<Arc<dyn StateStore>>,
}

/// Runs every job of `plan` with `in_flight` in-process workers (at most `--workers` of
/// them copying, by the engines' slots), adding results to `report` (and the store) as
/// they arrive.
/// Without `continue_on_error` the run stops taking new jobs after the first failed one
/// (as oc does); jobs not tried are reported as failed with that reason.
async fn execute(
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
    // Results are recorded here, as they arrive, rather than by the worker tasks: those
    // are stopped once the last result is in, and must not take a record with them.
    let destinations: HashMap<Uuid, &[ImageRef]> = plan
        .jobs
        .iter()
        .map(|j| (j.id, j.destinations.as_slice()))
        .collect();
    let mut progress = Progress::new(total);
    for _ in 0..total {
        let result = queue.receive_result().await?;
        if let (Some(store), Some(d)) = (&local.store, destinations.get(&result.job_id)) {
            store.record_result(d, &result).await;
        }
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
