//! `mirror-worker run`: consume copy jobs from RabbitMQ until told to stop.
//!
//! At most `--in-flight` jobs are held (the consumer's prefetch), of which `--concurrency`
//! copy: the others check their destinations, most of them finding nothing to do. A job is
//! acknowledged only after its result is published, so a worker killed at any moment loses
//! nothing: the broker redelivers what was unacknowledged, and the copy is idempotent. On
//! SIGTERM the worker stops taking jobs, gives in-flight ones `--grace` (30s), closes the
//! connection (the broker requeues whatever did not finish) and exits 0. A lost broker
//! connection is re-established with backoff.
//!
//! What the fleet learns is shared through Redis: the blob index and upload leases (each
//! blob crosses the wire once per registry), the pause after a 429 and `--rate` limits, the
//! digest each destination tag now has and the run's counters. Redis only speeds things up:
//! when it is down the worker goes on without it.
//!
//! With `--listen ADDR` the worker serves `/metrics` (the job queues' depth among them),
//! `/healthz` and `/readyz` (ready while connected to the broker): see
//! `mirror_fleet::observe`.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use mirror_cli::{
    parse_rates, BrokerArgs, CredentialsDirArgs, FleetHooks, HowToCopyArgs, JobCarriedFlags,
    RedisArgs, RedisTtlArgs, RegistryArgs,
};
use mirror_common::engines::Engines;
use mirror_common::queue::{JobQueue, QueueError};
use mirror_common::registry::{Gate, SharedQuirks};
use mirror_common::worker::handle;
use mirror_fleet::amqp::{AmqpQueue, ConnectionSlot};
use mirror_fleet::gate::FleetGate;
use mirror_fleet::observe::{metrics, server};
use mirror_fleet::store::Redis;
use tokio::task::JoinSet;
use tokio_util::sync::CancellationToken;
use tracing::Instrument;

/// The exit status of a command line the worker will not run (as clap's own usage errors).
const USAGE: i32 = 2;

/// Flags of `run`.
#[derive(clap::Args)]
pub(crate) struct Args {
    #[command(flatten)]
    pub broker: BrokerArgs,
    /// Jobs copied at the same time (reading sources, moving blobs, pushing).
    #[arg(long, default_value_t = 4, value_name = "N")]
    pub concurrency: u16,
    /// Jobs held at once (the consumer's prefetch): checking their destinations (a round
    /// trip or two, mostly "already there") while at most --concurrency of them copy.
    /// Default: 4 x --concurrency. A held job waits for a copy slot unacknowledged, so keep
    /// (in-flight / concurrency) x the longest copy under the broker's consumer_timeout.
    #[arg(long, value_name = "N")]
    pub in_flight: Option<u16>,
    /// Time in-flight jobs get to finish after SIGTERM before they are handed back (a bare
    /// number, the old spelling, is seconds).
    #[arg(
        long,
        default_value = "30s",
        value_parser = mirror_cli::duration_or_seconds("--grace"),
        value_name = "DURATION"
    )]
    pub grace: Duration,
    #[command(flatten)]
    pub redis: RedisArgs,
    #[command(flatten)]
    pub redis_ttl: RedisTtlArgs,
    /// Requests per second to a registry, shared by the whole fleet (REGISTRY=N/s; repeatable).
    #[arg(long = "rate", value_name = "REGISTRY=N/s")]
    pub rates: Vec<String>,
    #[command(flatten)]
    pub registry: RegistryArgs,
    #[command(flatten)]
    pub named_credentials: CredentialsDirArgs,
    #[command(flatten)]
    pub copy: HowToCopyArgs,
    /// What to copy: refused here (each job carries the run's choice).
    #[command(flatten)]
    pub carried: JobCarriedFlags,
    /// Serve /metrics, /healthz and /readyz on this address (e.g. 0.0.0.0:9100); none by
    /// default.
    #[arg(long, value_name = "ADDR")]
    pub listen: Option<SocketAddr>,
}

/// Runs until SIGTERM/SIGINT; the exit status is 0 after a clean drain.
pub(crate) async fn run(args: Args) -> anyhow::Result<i32> {
    if let Some(why) = args.carried.refusal("mirror-worker run") {
        mirror_cli::fatal(&format!("error: {why}"));
        return Ok(USAGE);
    }
    let shutdown = crate::shutdown::on_signal();
    let opts = args.copy.options();
    let rates = parse_rates(&args.rates).map_err(anyhow::Error::msg)?;
    let redis = Redis::connect_checked(args.redis.config_with(&args.redis_ttl)).await?;
    let gate = Gate(Arc::new(FleetGate::new(&redis, rates)));
    let fleet = FleetHooks {
        gate: Some(gate),
        quirks: Some(SharedQuirks(Arc::new(redis.quirks()))),
    };
    let engines = Arc::new(
        args.registry
            .engines(
                &args.named_credentials,
                fleet,
                Arc::new(redis.index()),
                opts,
            )?
            .limit_copies(args.concurrency.max(1).into()),
    );
    let in_flight = args
        .in_flight
        .unwrap_or_else(|| args.concurrency.saturating_mul(4));
    let config = args.broker.config(in_flight.max(1));
    // A bad URL or prefix is a mistake to report now, not an outage to retry for ever.
    config.validate().map_err(anyhow::Error::new)?;
    let grace = args.grace;
    let current = ConnectionSlot::default();
    if let Some(addr) = args.listen {
        let c = current.clone();
        let ready: server::Readiness = Arc::new(move || c.is_ready());
        server::serve(addr, ready)
            .await
            .map_err(|e| anyhow::anyhow!("--listen {addr}: {e}"))?;
        // The workers are what always runs and is scraped (the scheduler is often a CronJob):
        // they export the job queues' depth, through the connection they consume on.
        mirror_fleet::observe::queue_depth::keep_counting(current.clone());
    }
    let mut backoff = Duration::from_millis(500);
    loop {
        let queue = tokio::select! {
            _ = shutdown.cancelled() => return Ok(0),
            q = AmqpQueue::connect(config.clone()) => q,
        };
        match queue {
            Ok(queue) => {
                backoff = Duration::from_millis(500);
                tracing::info!(prefix = %config.prefix, in_flight = config.prefetch, concurrency = args.concurrency, "consuming jobs");
                let queue = Arc::new(queue);
                current.set(Some(queue.clone()));
                let outcome = consume(
                    queue.clone(),
                    engines.clone(),
                    redis.clone(),
                    &shutdown,
                    grace,
                )
                .await;
                current.set(None);
                queue.close().await;
                match outcome {
                    Ok(()) => return Ok(0),
                    Err(e) => tracing::warn!(error = %e, "lost the broker; reconnecting"),
                }
            }
            Err(e) => {
                tracing::warn!(error = %e, retry_in_ms = backoff.as_millis() as u64, "cannot reach the broker")
            }
        }
        tokio::select! {
            _ = shutdown.cancelled() => return Ok(0),
            _ = tokio::time::sleep(backoff) => {}
        }
        backoff = (backoff * 2).min(Duration::from_secs(30));
    }
}

/// Takes deliveries and handles each in its own task until shutdown (then drains) or until
/// the connection is lost (then in-flight tasks are dropped: their jobs come back).
async fn consume(
    queue: Arc<AmqpQueue>,
    engines: Arc<Engines>,
    redis: Redis,
    shutdown: &CancellationToken,
    grace: Duration,
) -> Result<(), QueueError> {
    let mut tasks: JoinSet<Result<(), QueueError>> = JoinSet::new();
    let lost = loop {
        tokio::select! {
            _ = shutdown.cancelled() => break None,
            delivery = queue.receive() => match delivery {
                Ok(d) => {
                    let (queue, engines, redis) = (queue.clone(), engines.clone(), redis.clone());
                    let destinations = d.job.destinations.clone();
                    let job_line = (d.job.id, d.job.run_id, d.job.source.to_string(), mirror_common::worker::destinations(&d.job));
                    let group = d.job.group.clone();
                    // Every line logged while handling the job, the acknowledgement and the
                    // retry or park decision included, carries the job's identity.
                    let span = tracing::info_span!("job", run_id = %d.job.run_id, job_id = %d.job.id, image = %d.job.source);
                    tasks.spawn(async move {
                        let _in_flight = InFlight::start();
                        if let Some(result) = handle(queue.as_ref() as &dyn JobQueue, &engines, d).await? {
                            let (r, m) = (&result.report, metrics::global());
                            m.job_finished(r);
                            m.group_job(group.as_deref(), r);
                            let (job_id, run_id, image, destination) = &job_line;
                            tracing::info!(
                                %job_id,
                                %run_id,
                                %image,
                                %destination,
                                error = %mirror_common::worker::first_error(r),
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
                    }.instrument(span));
                }
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
    tracing::info!(
        in_flight = tasks.len(),
        grace_s = grace.as_secs(),
        "draining"
    );
    let drained = tokio::time::timeout(grace, async {
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
