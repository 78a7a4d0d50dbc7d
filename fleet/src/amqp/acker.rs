//! Acknowledging a delivered job: ack, delayed retry, or park.
//!
//! Retry and park first publish the follow-up message and wait for its confirm, and only
//! then ack the original: a crash in between leaves both copies (the job runs twice, which
//! is harmless: copies are idempotent) but never neither.

use std::sync::Arc;

use async_trait::async_trait;
use lapin::options::BasicAckOptions;
use lapin::{Acker, BasicProperties};

use super::error::{broker, other};
use super::message::{job_headers, json_properties, parked_properties};
use super::publish::Publisher;
use super::QueueError;
use mirror_common::job::Job;
use mirror_common::queue::Acknowledger;

/// What it takes to settle one delivery.
pub(super) struct AmqpAck {
    pub(super) acker: Acker,
    /// The original body and properties, parked as they are.
    pub(super) body: Vec<u8>,
    pub(super) properties: BasicProperties,
    pub(super) publisher: Arc<Publisher>,
    pub(super) jobs_queue: String,
    /// Retry queue names, shortest delay first.
    pub(super) retry_queues: Arc<[String]>,
    pub(super) parked_queue: String,
    /// Keeps the delivery's channel open until the job is settled (lapin closes a channel
    /// when its last handle goes, and an ack needs the channel it was delivered on).
    pub(super) _channel: lapin::Channel,
}

impl AmqpAck {
    async fn ack_original(&self) -> Result<(), QueueError> {
        match self.acker.ack(BasicAckOptions::default()).await {
            Ok(true) => Ok(()),
            // The channel is gone: the broker has already put the message back (it will
            // be delivered again, to us after a reconnect or to another worker).
            Ok(false) => Err(other(
                "cannot acknowledge the job: its channel is closed (the broker redelivers it)",
            )),
            Err(e) => Err(broker("acknowledging the job", e)),
        }
    }

    /// The retry queue for a job that failed on attempt `attempt` (counted from 0): delay
    /// n for the n-th failure, the last delay again past the end. `None` when no delays
    /// are configured.
    fn retry_queue(&self, attempt: u32) -> Option<&str> {
        let last = self.retry_queues.len().checked_sub(1)?;
        let n = usize::try_from(attempt).unwrap_or(usize::MAX).min(last);
        Some(&self.retry_queues[n])
    }
}

#[async_trait]
impl Acknowledger for AmqpAck {
    async fn ack(self: Box<Self>) -> Result<(), QueueError> {
        self.ack_original().await
    }

    /// Publishes the job with `attempt + 1` to retry queue `job.attempt` (clamped to the
    /// last one), waits for the confirm, then acks the original.
    ///
    /// The delay is the retry queue's message TTL (`retry_delays[n]` of the configuration):
    /// per-message delays would need the delayed-message plugin, and per-message TTLs in one
    /// queue only expire at its head. With no retry delays configured the job goes straight
    /// back to the jobs queue.
    async fn retry(self: Box<Self>, job: &Job) -> Result<(), QueueError> {
        let mut again = job.clone();
        again.attempt = again.attempt.saturating_add(1);
        let body = serde_json::to_vec(&again)
            .map_err(|e| other(format!("encoding job {}: {e}", job.id)))?;
        let queue = self.retry_queue(job.attempt).unwrap_or(&self.jobs_queue);
        let properties = json_properties(&again.id.to_string(), job_headers(again.attempt));
        self.publisher.publish("", queue, &body, properties).await?;
        self.ack_original().await
    }

    /// Publishes the original message, unchanged but for the `x-park-reason` and
    /// `x-parked-at` headers, to the parked queue; waits for the confirm; acks.
    async fn park(self: Box<Self>, reason: &str) -> Result<(), QueueError> {
        let properties = parked_properties(&self.properties, reason);
        self.publisher
            .publish("", &self.parked_queue, &self.body, properties)
            .await?;
        self.ack_original().await
    }
}
