//! The job queue between the scheduler and the workers: jobs one way, results the other.
//! How results are read back depends on the mode (a channel in process; a per-run
//! subscription on the broker), so only their publishing is part of the trait.
//!
//! Two implementations share this trait: an in-process one (the embedded mode, no
//! broker) and RabbitMQ (the fleet). Code above it, the planner and the worker loop, does
//! not know which one it talks to.

pub mod amqp;
mod memory;

use std::time::Duration;

use async_trait::async_trait;
use thiserror::Error;

use crate::job::{Job, JobResult};

pub use amqp::{AmqpConfig, AmqpQueue};
pub use memory::MemoryQueue;

/// The queue could not do what was asked.
#[derive(Debug, Error)]
pub enum QueueError {
    #[error("job queue closed")]
    Closed,
    #[error("job queue: {0}")]
    Broker(String),
}

/// What a consumer does with a job it was handed, once it is done with it.
#[async_trait]
pub trait Acknowledger: Send {
    /// Done (succeeded or failed for good): remove it from the queue.
    async fn ack(self: Box<Self>) -> Result<(), QueueError>;
    /// Failed in a way that may pass later: deliver `job` (its attempt count raised)
    /// again after `delay`.
    async fn retry(self: Box<Self>, job: &Job, delay: Duration) -> Result<(), QueueError>;
    /// Cannot be done: move it to the parking (dead-letter) queue with the reason.
    async fn park(self: Box<Self>, reason: &str) -> Result<(), QueueError>;
}

/// A job handed to a consumer, to be acknowledged exactly once.
pub struct Delivery {
    pub job: Job,
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
