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
//!
//! The worker also answers the scheduler's source-digest requests on the same connection
//! (`mirror_fleet::digest_service`), so that a warm run's source HEADs spread over the fleet.
//!
//! Here: the flags, the engines and the connect loop; [`consume`]: consuming on one
//! connection (a task per job, the drain); [`shutdown`]: the signal that starts the drain.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use mirror_cli::{
    parse_rates, BrokerArgs, CredentialsDirArgs, FleetHooks, HowToCopyArgs, JobCarriedFlags,
    RedisArgs, RedisTtlArgs, RegistryArgs,
};
use mirror_common::credential_engines::Engines;
use mirror_common::registry::{Gate, SharedQuirks};
use mirror_fleet::amqp::{AmqpConfig, AmqpQueue, ConnectionSlot};
use mirror_fleet::gate::FleetGate;
use mirror_fleet::observe::server;
use mirror_fleet::store::Redis;
use tokio_util::sync::CancellationToken;

mod consume;
mod shutdown;

use consume::Consumer;

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
    /// Source-digest requests of the scheduler answered at once (each up to 256 source
    /// HEADs, 64 at a time): a warm run's resolution spreads over the workers. 0: this
    /// worker answers none.
    #[arg(long, default_value_t = 4, value_name = "N")]
    pub digest_requests: u16,
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
    let shutdown = shutdown::on_signal();
    let rates = parse_rates(&args.rates).map_err(anyhow::Error::msg)?;
    let redis = Redis::connect_checked(args.redis.config_with(&args.redis_ttl)).await?;
    let engines = engines(&args, &redis, rates)?;
    let in_flight = args
        .in_flight
        .unwrap_or_else(|| args.concurrency.saturating_mul(4));
    let config = args.broker.config(in_flight.max(1));
    // A bad URL or prefix is a mistake to report now, not an outage to retry for ever.
    config.validate().map_err(anyhow::Error::new)?;
    let current = ConnectionSlot::default();
    if let Some(addr) = args.listen {
        listen(addr, &current).await?;
    }
    let consumer = Consumer {
        engines,
        redis,
        grace: args.grace,
        digest_requests: args.digest_requests,
    };
    consume_until_stopped(&config, &current, &consumer, &shutdown, args.concurrency).await;
    Ok(0)
}

/// The engines jobs are copied with: the fleet's gate (pauses, `--rate`) and quirks, the
/// blob index in Redis, at most `--concurrency` copies at once.
fn engines(
    args: &Args,
    redis: &Redis,
    rates: HashMap<String, f64>,
) -> anyhow::Result<Arc<Engines>> {
    let opts = args.copy.options();
    let gate = Gate(Arc::new(FleetGate::new(redis, rates)));
    let fleet = FleetHooks {
        gate: Some(gate),
        quirks: Some(SharedQuirks(Arc::new(redis.quirks()))),
    };
    Ok(Arc::new(
        args.registry
            .engines(
                &args.named_credentials,
                fleet,
                Arc::new(redis.index()),
                opts,
            )?
            .limit_copies(args.concurrency.max(1).into()),
    ))
}

/// `--listen`: /metrics, /healthz and /readyz (ready while `current` holds a connection),
/// and the job queues' depth counted on that connection.
async fn listen(addr: SocketAddr, current: &ConnectionSlot) -> anyhow::Result<()> {
    let c = current.clone();
    let ready: server::Readiness = Arc::new(move || c.is_ready());
    server::serve(addr, ready)
        .await
        .map_err(|e| anyhow::anyhow!("--listen {addr}: {e}"))?;
    // The workers are what always runs and is scraped (the scheduler is often a CronJob):
    // they export the job queues' depth, through the connection they consume on.
    mirror_fleet::observe::queue_depth::keep_counting(current.clone());
    Ok(())
}

/// Connects and consumes until shutdown; a lost or unreachable broker is connected to
/// again with backoff. The connection consumed on is kept in `current`.
async fn consume_until_stopped(
    config: &AmqpConfig,
    current: &ConnectionSlot,
    consumer: &Consumer,
    shutdown: &CancellationToken,
    concurrency: u16,
) {
    let mut backoff = Duration::from_millis(500);
    loop {
        let queue = tokio::select! {
            _ = shutdown.cancelled() => return,
            q = AmqpQueue::connect(config.clone()) => q,
        };
        match queue {
            Ok(queue) => {
                backoff = Duration::from_millis(500);
                tracing::info!(prefix = %config.prefix, in_flight = config.prefetch, concurrency, "consuming jobs");
                let queue = Arc::new(queue);
                current.set(Some(queue.clone()));
                let answering = consumer.answer_digests(&queue);
                let outcome = consumer.consume(queue.clone(), shutdown).await;
                answering.cancel();
                current.set(None);
                queue.close().await;
                match outcome {
                    Ok(()) => return,
                    Err(e) => tracing::warn!(error = %e, "lost the broker; reconnecting"),
                }
            }
            Err(e) => {
                tracing::warn!(error = %e, retry_in_ms = backoff.as_millis() as u64, "cannot reach the broker")
            }
        }
        tokio::select! {
            _ = shutdown.cancelled() => return,
            _ = tokio::time::sleep(backoff) => {}
        }
        backoff = (backoff * 2).min(Duration::from_secs(30));
    }
}
