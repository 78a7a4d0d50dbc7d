//! Consuming on one connection: each delivery handled in a task of its own (at most the
//! prefetch held), its result published before it is acknowledged, and the fleet told what
//! it learnt (metrics, the job line, the tag cache and run counters in Redis). On shutdown
//! the tasks get the grace period to finish; on a lost connection they are dropped (the
//! broker redelivers their jobs).

use std::sync::Arc;
use std::time::Duration;

use mirror_common::credential_engines::Engines;
use mirror_common::job_handling::handle;
use mirror_common::queue::{Delivery, JobQueue, QueueError};
use mirror_fleet::amqp::AmqpQueue;
use mirror_fleet::observe::metrics;
use mirror_fleet::store::Redis;
use tokio::task::JoinSet;
use tokio_util::sync::CancellationToken;
use tracing::Instrument;

/// What every connection's consuming shares: the engines, the fleet store, and the grace
/// period after a shutdown.
pub(crate) struct Consumer {
    pub engines: Arc<Engines>,
    pub redis: Redis,
    pub grace: Duration,
    /// Digest requests answered at once (0: none).
    pub digest_requests: u16,
}

type Tasks = JoinSet<Result<(), QueueError>>;

impl Consumer {
    /// Takes deliveries and handles each in its own task until shutdown (then drains) or
    /// until the connection is lost (then in-flight tasks are dropped: their jobs come back).
    pub(crate) async fn consume(
        &self,
        queue: Arc<AmqpQueue>,
        shutdown: &CancellationToken,
    ) -> Result<(), QueueError> {
        let mut tasks: Tasks = JoinSet::new();
        let lost = loop {
            tokio::select! {
                _ = shutdown.cancelled() => break None,
                delivery = queue.receive() => match delivery {
                    Ok(d) => self.spawn(&mut tasks, &queue, d),
                    Err(QueueError::Closed) => break None,
                    Err(e) => break Some(e),
                },
                Some(done) = tasks.join_next(), if !tasks.is_empty() => report_task(done),
            }
        };
        if let Some(e) = lost {
            tasks.abort_all();
            return Err(e);
        }
        let _ = queue.stop_consuming().await;
        self.drain(tasks).await;
        Ok(())
    }

    /// Starts answering digest requests on `queue`'s connection (unless told not to), until
    /// the returned token is cancelled.
    pub(crate) fn answer_digests(&self, queue: &Arc<AmqpQueue>) -> CancellationToken {
        let stop = CancellationToken::new();
        if self.digest_requests > 0 {
            let registries = match self.engines.for_job(None) {
                Ok(engine) => engine.registries(),
                Err(e) => {
                    tracing::warn!(error = %e, "cannot answer digest requests");
                    return stop;
                }
            };
            tokio::spawn(mirror_fleet::digest_service::serve(
                queue.clone(),
                registries,
                self.digest_requests,
                stop.clone(),
            ));
        }
        stop
    }

    /// Handles one delivery in a task of `tasks`. Every line logged while handling the job,
    /// the acknowledgement and the retry or park decision included, carries the job's
    /// identity.
    fn spawn(&self, tasks: &mut Tasks, queue: &Arc<AmqpQueue>, d: Delivery) {
        let (queue, engines, redis) = (queue.clone(), self.engines.clone(), self.redis.clone());
        let span = tracing::info_span!("job", run_id = %d.job.run_id, job_id = %d.job.id, image = %d.job.source);
        tasks.spawn(async move { handle_one(&queue, &engines, &redis, d).await }.instrument(span));
    }

    /// Gives the tasks left the grace period, then hands the unfinished ones back.
    async fn drain(&self, mut tasks: Tasks) {
        tracing::info!(
            in_flight = tasks.len(),
            grace_s = self.grace.as_secs(),
            "draining"
        );
        let drained = tokio::time::timeout(self.grace, async {
            while let Some(done) = tasks.join_next().await {
                report_task(done);
            }
        })
        .await;
        if drained.is_err() {
            tracing::warn!(
                unfinished = tasks.len(),
                "grace period over; handing unfinished jobs back to the broker"
            );
            tasks.abort_all();
        }
    }
}

/// One job: handled (copied, result published, acknowledged), then counted in the metrics,
/// logged in one line, and recorded in Redis (tag cache, run counters).
async fn handle_one(
    queue: &Arc<AmqpQueue>,
    engines: &Engines,
    redis: &Redis,
    d: Delivery,
) -> Result<(), QueueError> {
    let destinations = d.job.destinations.clone();
    let job_line = (
        d.job.id,
        d.job.run_id,
        d.job.source.to_string(),
        mirror_common::job_handling::destinations(&d.job),
    );
    let group = d.job.group.clone();
    let _in_flight = InFlight::start();
    if let Some(result) = handle(queue.as_ref() as &dyn JobQueue, engines, d).await? {
        let (r, m) = (&result.report, metrics::global());
        m.job_finished(r);
        m.group_job(group.as_deref(), r);
        let (job_id, run_id, image, destination) = &job_line;
        tracing::info!(
            %job_id,
            %run_id,
            %image,
            %destination,
            error = %mirror_common::job_handling::first_error(r),
            failed = ?metrics::failure_reason(r),
            tags = r.tags.len(),
            blobs_uploaded = r.stats.blobs_uploaded,
            blobs_mounted = r.stats.blobs_mounted,
            blobs_skipped = r.stats.blobs_skipped,
            referrers_pushed = r.stats.referrers_pushed,
            seconds = r.seconds,
            "job finished"
        );
        redis.record_result(&destinations, &result).await;
    }
    Ok(())
}

/// Counts a job in `mirror_jobs_in_flight` while it lives; a guard so that a task aborted
/// on a lost connection or at the end of the grace period is uncounted too.
struct InFlight;

impl InFlight {
    fn start() -> Self {
        metrics::global().jobs_in_flight.inc();
        InFlight
    }
}

impl Drop for InFlight {
    fn drop(&mut self) {
        metrics::global().jobs_in_flight.dec();
    }
}

/// Logs how a job's task ended when it did not end well.
fn report_task(done: Result<Result<(), QueueError>, tokio::task::JoinError>) {
    match done {
        Ok(Ok(())) => {}
        Ok(Err(e)) => {
            tracing::error!(error = %e, "could not report or acknowledge a job; the broker will redeliver it")
        }
        Err(e) if e.is_cancelled() => {}
        Err(e) => tracing::error!(error = %e, "job task failed"),
    }
}
