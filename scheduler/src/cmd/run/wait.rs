//! `run --wait`: follow a run's results to its end, across broker loss.
//!
//! Results reach the scheduler through a private queue bound before the jobs went out. When
//! the connection is lost (a broker restart, a network blip), the workers go on; the
//! scheduler connects again with backoff, binds a new subscription, and then reads the
//! run's results published meanwhile from the history stream (results are counted once per
//! job, so overlap does no harm). When the broker stays away longer than [`GIVE_UP_AFTER`],
//! the jobs not heard of are reported as failed with that reason: the summary and report
//! are always written, and the exit status says what is known.

use std::collections::{HashMap, HashSet};
use std::time::{Duration, Instant};

use mirror_common::job::{JobResult, RunEvent};
use mirror_common::queue::QueueError;
use mirror_fleet::amqp::{AmqpConfig, AmqpQueue, RunSubscription};

use super::no_consumer::NoConsumerWarning;
use crate::output::record_result;
use crate::progress::Progress;
use crate::report::RunReport;

/// How long the broker may stay unreachable before the waiter gives up on the results.
const GIVE_UP_AFTER: Duration = Duration::from_secs(600);

/// Consumes the run's results until every job of `ours` (job id: its tag count) is
/// accounted for. Only the results of these jobs count: the run's record also holds results
/// for the tags that failed while planning, which the report has already.
pub(crate) async fn wait(
    config: &AmqpConfig,
    subscription: RunSubscription,
    ours: &HashMap<uuid::Uuid, u32>,
    started: Instant,
    report: &mut RunReport,
) {
    let mut progress = Progress::new(ours.len());
    let mut seen = HashSet::new();
    let mut no_consumer = NoConsumerWarning::new(config);
    let run_id = subscription.run_id();
    let mut subscription = subscription;
    // The connection a resumed subscription lives on (the first one is the run's own).
    let mut connection: Option<AmqpQueue> = None;
    while seen.len() < ours.len() {
        let next = tokio::select! {
            next = subscription.next() => next,
            () = no_consumer.check(&progress) => continue,
        };
        match next {
            Ok(RunEvent::Result(result)) if ours.contains_key(&result.job_id) => {
                add(&mut progress, report, &mut seen, &result)
            }
            Ok(RunEvent::Result(_)) => {}
            Ok(RunEvent::Started(_)) => {}
            Err(e) => {
                progress.eprintln(&format!(
                    "warning: lost the run's results ({e}); connecting again"
                ));
                match resume(config, run_id, started).await {
                    Ok((queue, resumed, missed)) => {
                        for result in missed.iter().filter(|r| ours.contains_key(&r.job_id)) {
                            add(&mut progress, report, &mut seen, result);
                        }
                        subscription = resumed;
                        if let Some(old) = connection.replace(queue) {
                            old.close().await;
                        }
                    }
                    Err(e) => {
                        give_up(&mut progress, report, ours, &seen, &e);
                        break;
                    }
                }
            }
        }
    }
    if let Some(q) = connection {
        q.close().await;
    }
    no_consumer.close().await;
    progress.finish();
}

/// Counts a result once per job: a job redelivered after a worker died, or read both live
/// and from the history, reports more than once.
fn add(
    progress: &mut Progress,
    report: &mut RunReport,
    seen: &mut HashSet<uuid::Uuid>,
    result: &JobResult,
) {
    if seen.insert(result.job_id) {
        let failed = record_result(progress, report, result);
        progress.job_done(failed);
    }
}

/// Connects again (backing off, for at most [`GIVE_UP_AFTER`]), subscribes to the run, and
/// returns the run's results the history holds: those published while we were away.
async fn resume(
    config: &AmqpConfig,
    run_id: uuid::Uuid,
    started: Instant,
) -> Result<(AmqpQueue, RunSubscription, Vec<JobResult>), QueueError> {
    let deadline = Instant::now() + GIVE_UP_AFTER;
    let mut backoff = Duration::from_millis(250);
    loop {
        let attempt = async {
            let queue = AmqpQueue::connect(config.clone()).await?;
            let subscription = queue.subscribe_run(run_id).await?;
            // The run started before `started`'s instant; a minute of margin for clocks.
            let since = started.elapsed() + Duration::from_secs(60);
            // Only this run's results are kept of what the stream holds since.
            let mut missed = Vec::new();
            queue
                .read_history_each(since, |e| match e {
                    RunEvent::Result(r) if r.run_id == run_id => missed.push(r),
                    _ => {}
                })
                .await?;
            Ok::<_, QueueError>((queue, subscription, missed))
        };
        match attempt.await {
            Ok(resumed) => return Ok(resumed),
            Err(e) if Instant::now() + backoff >= deadline => return Err(e),
            Err(e) => {
                tracing::warn!(error = %e, retry_in_ms = backoff.as_millis() as u64, "cannot follow the run yet");
                tokio::time::sleep(backoff).await;
                backoff = (backoff * 2).min(Duration::from_secs(10));
            }
        }
    }
}

/// The jobs not heard of fail their tags, so the report is complete and the run fails.
fn give_up(
    progress: &mut Progress,
    report: &mut RunReport,
    jobs: &HashMap<uuid::Uuid, u32>,
    seen: &HashSet<uuid::Uuid>,
    error: &QueueError,
) {
    let reason =
        format!("the job's result was not received: the broker stayed unreachable ({error})");
    for (id, tags) in jobs.iter().filter(|(id, _)| !seen.contains(*id)) {
        progress.eprintln(&format!("error: job {id}: {reason}"));
        report.add_unreported(*id, *tags, &reason);
        progress.job_done(true);
    }
}
