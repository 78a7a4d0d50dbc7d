//! The broker connection of one run, connected again whenever it is lost, in every phase
//! (before planning, while the connection idles through planning, reading the history,
//! subscribing, publishing, announcing).
//!
//! Why here and not in lapin or `AmqpQueue`: a lost AMQP connection loses its channels and
//! consumers with it, so only the caller knows what to redo (a subscription to bind again,
//! the jobs not yet confirmed to publish again). A step is redone only when the connection
//! is gone (`AmqpQueue::is_connected`, a state, not a message); a broker that answers and
//! refuses (a wrong prefix, inequivalent arguments) is an error at once. When the broker
//! stays away longer than [`STAY_AWAY_LIMIT`], the step fails naming what it was doing.

use parking_lot::Mutex;
use std::collections::HashSet;
use std::time::{Duration, Instant};

use futures::StreamExt;
use mirror_common::job::Job;
use mirror_common::queue::{JobQueue, QueueError};
use mirror_fleet::amqp::{AmqpConfig, AmqpQueue};
use uuid::Uuid;

/// How long one step waits for the broker to come back before the run gives up on it.
pub(crate) const STAY_AWAY_LIMIT: Duration = Duration::from_secs(120);

/// Jobs published at the same time, each waiting for its confirm (confirms pipeline well).
const PUBLISH_CONCURRENCY: usize = 256;

/// A run's connection: the current one, and how to make the next.
pub(crate) struct Broker {
    config: AmqpConfig,
    queue: AmqpQueue,
}

impl Broker {
    /// Connects (declaring the topology). Once: a broker unreachable or refusing at the
    /// start is an error at once (a wrong URL, prefix or password must not take minutes to
    /// be told); the connections after a loss are retried.
    pub(crate) async fn connect(config: AmqpConfig) -> Result<Broker, QueueError> {
        let queue = AmqpQueue::connect(config.clone()).await?;
        Ok(Broker { config, queue })
    }

    /// The configuration connections are made with.
    pub(crate) fn config(&self) -> &AmqpConfig {
        &self.config
    }

    /// Runs `step` on the connection; when the connection is lost (before or during the
    /// step), connects again and runs the step again, until [`STAY_AWAY_LIMIT`].
    pub(crate) async fn call<T, F, Fut>(&mut self, what: &str, mut step: F) -> Result<T, QueueError>
    where
        F: FnMut(AmqpQueue) -> Fut,
        Fut: std::future::Future<Output = Result<T, QueueError>>,
    {
        let deadline = Instant::now() + STAY_AWAY_LIMIT;
        loop {
            if !self.queue.is_connected() {
                eprintln!(
                    "warning: the broker connection was lost before {what}; connecting again"
                );
                self.replace(what, deadline).await?;
            }
            match step(self.queue.clone()).await {
                Ok(value) => return Ok(value),
                Err(e) if self.queue.is_connected() => return Err(e),
                Err(e) => {
                    eprintln!("warning: lost the broker while {what} ({e}); connecting again");
                    self.replace(what, deadline).await?;
                }
            }
        }
    }

    /// Publishes every job (confirmed); after a lost connection, publishes again only the
    /// jobs whose confirm had not come (a job confirmed just before the loss whose confirm
    /// was lost goes out twice: the second copy is a no-op where the first was done, and
    /// results count once per job id).
    pub(crate) async fn publish_jobs(&mut self, jobs: &[Job]) -> Result<(), QueueError> {
        let confirmed: Mutex<HashSet<Uuid>> = Mutex::new(HashSet::new());
        let confirmed = &confirmed;
        self.call("publishing the run's jobs", |queue| {
            let done = confirmed.lock().clone();
            let left: Vec<&Job> = jobs.iter().filter(|j| !done.contains(&j.id)).collect();
            async move {
                let mut results = futures::stream::iter(left.into_iter().map(|job| {
                    let queue = queue.clone();
                    async move { (job.id, queue.publish(job).await) }
                }))
                .buffer_unordered(PUBLISH_CONCURRENCY);
                let mut first_error = None;
                while let Some((id, result)) = results.next().await {
                    match result {
                        Ok(()) => {
                            confirmed.lock().insert(id);
                        }
                        Err(e) => {
                            first_error.get_or_insert(e);
                        }
                    }
                }
                first_error.map_or(Ok(()), Err)
            }
        })
        .await
    }

    /// Closes the connection.
    pub(crate) async fn close(&self) {
        self.queue.close().await;
    }

    async fn replace(&mut self, what: &str, deadline: Instant) -> Result<(), QueueError> {
        let fresh = reconnect(&self.config, what, deadline).await?;
        let old = std::mem::replace(&mut self.queue, fresh);
        old.close().await;
        Ok(())
    }
}

/// Connects with backoff until `deadline`; the error names the broker (without
/// credentials), the step and the last reason.
async fn reconnect(
    config: &AmqpConfig,
    what: &str,
    deadline: Instant,
) -> Result<AmqpQueue, QueueError> {
    let started = Instant::now();
    let mut backoff = Duration::from_millis(250);
    loop {
        match AmqpQueue::connect(config.clone()).await {
            Ok(queue) => return Ok(queue),
            Err(e) if Instant::now() + backoff >= deadline => {
                return Err(QueueError::Broker(format!(
                    "the broker at {} stayed unreachable for {}s while {what}: {e}",
                    config.redacted_url(),
                    started.elapsed().as_secs()
                )))
            }
            Err(e) => {
                tracing::warn!(error = %e, retry_in_ms = backoff.as_millis() as u64, "cannot reach the broker yet");
                tokio::time::sleep(backoff).await;
                backoff = (backoff * 2).min(Duration::from_secs(10));
            }
        }
    }
}
