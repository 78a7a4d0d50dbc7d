//! The job queue on RabbitMQ (stock 3.10+, no plugins), for a fleet of workers.
//!
//! Jobs wait in a quorum queue; a job that failed in a way that may pass waits out its
//! delay in a TTL'd retry queue that dead-letters back into the jobs queue; a job that
//! cannot be done is parked with its reason. Results and run announcements go to a topic
//! exchange, kept by a history stream and seen live by the scheduler waiting for its run.
//!
//! ```text
//! {p}.jobs       quorum queue            the work; workers consume it
//! {p}.retry.{ms}ms classic queue         x-message-ttl = that delay,
//!                                        dead-lettered to "" / {p}.jobs on expiry
//! {p}.parked     quorum queue            jobs that cannot be done (x-park-reason)
//! {p}.events     topic exchange          run.<run id>.started / run.<run id>.result
//! {p}.history    stream, bound run.#     every event, kept history_max_age / history_max_bytes
//! {p}.digests    classic queue, 60 s TTL source digests the scheduler asks the workers for;
//!                                        replies to the asker's private queue (reply_to)
//! ```
//!
//! Nothing is lost when a process dies: every publish waits for the broker's confirm, and
//! a job is acknowledged only after its follow-up (result, retry, parked copy) is
//! confirmed. An unacknowledged job returns to the queue when its connection closes.
//!
//! RabbitMQ closes a channel whose delivery stays unacknowledged longer than its
//! `consumer_timeout` (30 minutes by default); a job that can take longer needs that
//! setting raised on the broker.
//!
//! One connection per [`AmqpQueue`], not recovered by lapin: when it is lost, calls fail
//! with [`QueueError::Broker`] and the caller connects again (the worker loop does).

mod acker;
mod config;
mod consume;
mod counts;
mod digest_asker;
mod digest_requests;
mod error;
mod history;
mod message;
mod parked;
mod publish;
mod shared;
mod slot;
mod topology;

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use lapin::types::{LongString, ShortString};
use lapin::{Connection, ConnectionProperties};
use tokio::sync::Mutex;
use uuid::Uuid;

use error::{broker, other, scrub};
use message::{job_headers, json_properties};
use mirror_common::job::{Job, JobResult, RunEvent, RunStarted};
use mirror_common::queue::{Delivery, JobQueue, QueueError};
use publish::Publisher;
use shared::{ConsumerState, Shared};

pub use config::{AmqpConfig, QueueNames};
pub use counts::QueueCount;
pub use digest_asker::{DigestAsker, REPLY_SILENCE};
pub use digest_requests::{AskedDigests, DigestRequests};
pub use history::{RunSubscription, HISTORY_IDLE};
pub use parked::{ParkedMessage, ParkedSelection, Settled};
pub use slot::ConnectionSlot;

/// A connection to the broker with the topology declared. Cheap to clone (clones share
/// the connection); the connection closes with [`AmqpQueue::close`] or when the last
/// clone is dropped.
#[derive(Clone)]
pub struct AmqpQueue {
    shared: Arc<Shared>,
}

impl AmqpQueue {
    /// Connects and declares the topology (idempotent: whichever process starts first
    /// creates it, the others find it as declared).
    pub async fn connect(config: AmqpConfig) -> Result<AmqpQueue, QueueError> {
        Self::open(config, true).await
    }

    /// Connects to an installation that must exist already, declaring nothing: for
    /// operators' commands (`status`, `dead-letters`), so that a mistyped prefix is an error
    /// ("no installation") instead of a new, empty installation.
    pub async fn connect_existing(config: AmqpConfig) -> Result<AmqpQueue, QueueError> {
        Self::open(config, false).await
    }

    async fn open(config: AmqpConfig, declare: bool) -> Result<AmqpQueue, QueueError> {
        config.validate()?;
        let names = config.names();
        let properties = ConnectionProperties::default()
            .with_connection_name(LongString::from(format!("image-mirror {}", config.prefix)));
        let connection = Connection::connect(&config.url, properties)
            .await
            .map_err(|e| {
                other(format!(
                    "cannot connect to RabbitMQ at {}: {}",
                    config.redacted_url(),
                    scrub(&e.to_string(), &config.url)
                ))
            })?;
        let setup = connection
            .create_channel()
            .await
            .map_err(|e| broker("opening a channel", e))?;
        if declare {
            topology::declare(&setup, &config, &names).await?;
        } else {
            topology::expect(&setup, &config, &names).await?;
        }
        let _ = setup.close(200, ShortString::from("declared")).await;
        let publisher = Arc::new(Publisher::open(&connection).await?);
        tracing::debug!(broker = %config.redacted_url(), prefix = %config.prefix, "connected to RabbitMQ");
        Ok(AmqpQueue {
            shared: Arc::new(Shared {
                config,
                names,
                connection,
                publisher,
                consumer: Mutex::new(ConsumerState::Idle),
                stopped: AtomicBool::new(false),
                closing: AtomicBool::new(false),
            }),
        })
    }

    /// The configuration this queue was connected with.
    pub fn config(&self) -> &AmqpConfig {
        &self.shared.config
    }

    /// The queue and exchange names.
    pub fn queue_names(&self) -> QueueNames {
        self.shared.names.clone()
    }

    /// Announces a run (before its jobs), persistent and confirmed.
    pub async fn publish_run_started(&self, run: &RunStarted) -> Result<(), QueueError> {
        history::publish(&self.shared, &RunEvent::Started(run.clone())).await
    }

    /// Follows one run's events. Call it before publishing the run's jobs: the private
    /// queue only gets the events published after it is bound.
    pub async fn subscribe_run(&self, run_id: Uuid) -> Result<RunSubscription, QueueError> {
        history::subscribe(&self.shared, run_id).await
    }

    /// Asks the workers for source digests (the scheduler's planner; see
    /// `digest_asker.rs`), on a private reply queue of this connection.
    pub async fn digest_asker(&self) -> Result<DigestAsker, QueueError> {
        DigestAsker::open(self.shared.clone()).await
    }

    /// Takes the scheduler's digest requests (a worker), at most `prefetch` at once.
    pub async fn digest_requests(&self, prefetch: u16) -> Result<DigestRequests, QueueError> {
        DigestRequests::open(self.shared.clone(), prefetch).await
    }

    /// Every run announcement and job result of the last `since`, oldest first, read
    /// from the history stream without removing anything. Returns once the stream was
    /// idle for [`HISTORY_IDLE`] (300 ms), so it takes at least that long.
    pub async fn read_history(&self, since: Duration) -> Result<Vec<RunEvent>, QueueError> {
        history::read(&self.shared, since).await
    }

    /// [`Self::read_history`], each event handed to `take` as it arrives (nothing kept).
    pub async fn read_history_each(
        &self,
        since: Duration,
        take: impl FnMut(RunEvent),
    ) -> Result<(), QueueError> {
        history::read_each(&self.shared, since, take).await
    }

    /// Publishes `body` as it is to the jobs queue (persistent, confirmed), for tests and
    /// tools: a body that does not decode as a job is parked by the consumer that gets it.
    pub async fn publish_raw_job(&self, body: &[u8]) -> Result<(), QueueError> {
        let properties = json_properties(&Uuid::new_v4().to_string(), job_headers(0));
        self.shared
            .publisher
            .publish("", &self.shared.names.jobs, body, properties)
            .await
    }

    /// Ready messages and consumers of every queue of the topology.
    pub async fn counts(&self) -> Result<Vec<QueueCount>, QueueError> {
        counts::counts(&self.shared).await
    }

    /// The parked messages, left where they are.
    pub async fn parked(&self) -> Result<Vec<ParkedMessage>, QueueError> {
        parked::list(&self.shared).await
    }

    /// Moves every parked job back to the jobs queue (attempt reset to 0); undecodable
    /// messages stay parked. Returns how many moved.
    pub async fn requeue_parked(&self) -> Result<usize, QueueError> {
        let settled = self
            .requeue_parked_selected(&ParkedSelection::all())
            .await?;
        Ok(settled.jobs.len())
    }

    /// Moves the parked jobs `selection` selects back to the jobs queue (attempt reset to
    /// 0); the other parked messages stay, in their order.
    pub async fn requeue_parked_selected(
        &self,
        selection: &ParkedSelection,
    ) -> Result<Settled, QueueError> {
        parked::settle(&self.shared, selection, parked::Settle::Requeue).await
    }

    /// Deletes the parked jobs `selection` selects; the other parked messages stay, in their
    /// order. (Every one: [`purge_parked`](Self::purge_parked).)
    pub async fn purge_parked_selected(
        &self,
        selection: &ParkedSelection,
    ) -> Result<Settled, QueueError> {
        parked::settle(&self.shared, selection, parked::Settle::Purge).await
    }

    /// Deletes every parked message; returns how many there were.
    pub async fn purge_parked(&self) -> Result<usize, QueueError> {
        parked::purge(&self.shared).await
    }

    /// Cancels the jobs consumer: no new deliveries (`receive` returns `Closed`); jobs
    /// already handed out can still be acknowledged, until the connection closes.
    /// Deliveries the broker had already sent but `receive` had not returned go back to
    /// the queue (a quorum queue counts them ready again a moment after this returns).
    pub async fn stop_consuming(&self) -> Result<(), QueueError> {
        consume::stop(&self.shared).await
    }

    /// Deletes every queue and the exchange of this prefix, jobs and history included (an
    /// installation being removed, or a test cleaning up after itself).
    pub async fn delete_topology(&self) -> Result<(), QueueError> {
        use lapin::options::{ExchangeDeleteOptions, QueueDeleteOptions};
        let channel = self
            .shared
            .connection
            .create_channel()
            .await
            .map_err(|e| broker("opening a channel", e))?;
        for queue in self.shared.names.queues() {
            channel
                .queue_delete(queue.into(), QueueDeleteOptions::default())
                .await
                .map_err(|e| broker("deleting a queue", e))?;
        }
        channel
            .exchange_delete(
                self.shared.names.events.as_str().into(),
                ExchangeDeleteOptions::default(),
            )
            .await
            .map_err(|e| broker("deleting the events exchange", e))?;
        let _ = channel.close(200, ShortString::from("deleted")).await;
        Ok(())
    }

    /// Closes the connection. Unacknowledged jobs go back to the queue (and to other
    /// workers); pending operations fail.
    pub async fn close(&self) {
        self.shared.closing.store(true, Ordering::SeqCst);
        if self.shared.connection.status().connected() {
            if let Err(e) = self
                .shared
                .connection
                .close(200, ShortString::from("closing"))
                .await
            {
                tracing::debug!(error = %e, "closing the RabbitMQ connection");
            }
        }
    }

    /// Whether the connection is up.
    pub fn is_connected(&self) -> bool {
        self.shared.connection.status().connected()
    }
}

#[async_trait]
impl JobQueue for AmqpQueue {
    /// Publishes the job to `{p}.jobs` (persistent, `message_id` = job id, `x-attempt`
    /// header) and returns once the broker confirmed it.
    async fn publish(&self, job: &Job) -> Result<(), QueueError> {
        let body =
            serde_json::to_vec(job).map_err(|e| other(format!("encoding job {}: {e}", job.id)))?;
        let properties = json_properties(&job.id.to_string(), job_headers(job.attempt));
        self.shared
            .publisher
            .publish("", &self.shared.names.jobs, &body, properties)
            .await
    }

    /// The next job (consuming `{p}.jobs` with the configured prefetch, manual acks).
    /// Cancel-safe. `Closed` after `stop_consuming` or `close`; `Broker` when the
    /// connection was lost.
    async fn receive(&self) -> Result<Delivery, QueueError> {
        consume::receive(&self.shared).await
    }

    /// One delivery plus one per configured retry delay.
    fn max_attempts(&self) -> u32 {
        self.shared.config.attempts()
    }

    /// Publishes the result to `{p}.events` as `run.<run id>.result` (confirmed).
    async fn publish_result(&self, result: &JobResult) -> Result<(), QueueError> {
        history::publish(&self.shared, &RunEvent::Result(result.clone())).await
    }
}
