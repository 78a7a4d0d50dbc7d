//! The job queue between the scheduler and the workers: jobs one way, results the other.
//! How results are read back depends on the mode (a channel in process; a per-run
//! subscription on the broker), so only their publishing is part of the trait.
//!
//! Two implementations share this trait: an in-process one (the embedded mode, no
//! broker; here) and RabbitMQ (the fleet; in `mirror-fleet`). Code above it, the planner
//! and the worker loop, does not know which one it talks to.
//!
//! The queue owns the retry schedule: how often a job is delivered at most
//! ([`JobQueue::max_attempts`]) and how long it waits before each redelivery (the queue's
//! configuration), so the worker decides only *whether* to retry.

mod memory;

use std::time::Duration;

use async_trait::async_trait;
use thiserror::Error;

use crate::job::{Job, JobResult};

pub use memory::MemoryQueue;

/// The queue could not do what was asked.
#[derive(Debug, Error)]
pub enum QueueError {
    /// The queue was closed (consuming stopped, or the process shuts down).
    #[error("job queue closed")]
    Closed,
    /// The broker failed or refused.
    #[error("job queue: {0}")]
    Broker(String),
}

/// What a consumer does with a job it was handed, once it is done with it.
#[async_trait]
pub trait Acknowledger: Send {
    /// Done (succeeded or failed for good): remove it from the queue.
    async fn ack(self: Box<Self>) -> Result<(), QueueError>;
    /// Failed in a way that may pass later: deliver `job` (its attempt count raised) again
    /// after the queue's delay for that attempt.
    async fn retry(self: Box<Self>, job: &Job) -> Result<(), QueueError>;
    /// Cannot be done: move it to the parking (dead-letter) queue with the reason.
    async fn park(self: Box<Self>, reason: &str) -> Result<(), QueueError>;
}

/// A job handed to a consumer, to be acknowledged exactly once.
pub struct Delivery {
    /// The job.
    pub job: Job,
    /// Settles it.
    pub acker: Box<dyn Acknowledger>,
}

/// Jobs to workers, results back.
#[async_trait]
pub trait JobQueue: Send + Sync {
    /// Enqueues a job; returns once the queue holds it (for a broker: confirmed).
    async fn publish(&self, job: &Job) -> Result<(), QueueError>;
    /// Waits for the next job.
    async fn receive(&self) -> Result<Delivery, QueueError>;
    /// Sends a job's result to whoever waits for the run (and to the run history).
    async fn publish_result(&self, result: &JobResult) -> Result<(), QueueError>;
    /// Deliveries of one job at most, the first included: one more than the retry delays.
    fn max_attempts(&self) -> u32;
}

/// Deliveries of a job given its retry delays: the first plus one per delay.
pub fn attempts(retry_delays: &[Duration]) -> u32 {
    u32::try_from(retry_delays.len())
        .unwrap_or(u32::MAX)
        .saturating_add(1)
}

/// Publishes at the same time, each waiting for its confirm: confirms are what make a
/// publish slow, and they pipeline well.
const PUBLISH_CONCURRENCY: usize = 256;

/// Publishes every job, many at a time; returns once the queue holds them all.
pub async fn publish_all(queue: &dyn JobQueue, jobs: &[Job]) -> Result<(), QueueError> {
    use futures::{StreamExt, TryStreamExt};
    futures::stream::iter(jobs.iter().map(|job| queue.publish(job)))
        .buffer_unordered(PUBLISH_CONCURRENCY)
        .try_collect::<Vec<()>>()
        .await
        .map(|_| ())
}
