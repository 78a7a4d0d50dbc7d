//! The parked queue, for operators: list, requeue, purge.
//!
//! Listing takes every message with `basic.get` (manual ack) and puts them all back with a
//! requeueing nack, so nothing is removed. On a quorum queue each listing counts as a
//! delivery in `x-delivery-count`; no delivery limit is set on the queue, so that is
//! harmless (a `x-delivery-limit` policy on it would eventually drop listed messages).

use lapin::message::BasicGetMessage;
use lapin::options::{BasicAckOptions, BasicGetOptions, BasicNackOptions, QueuePurgeOptions};
use lapin::types::ShortString;
use lapin::Channel;

use super::error::{broker, other};
use super::message::{
    header_str, header_u64, job_headers, json_properties, PARKED_AT, PARK_REASON,
};
use super::{QueueError, Shared};
use mirror_common::job::Job;

/// Characters of an undecodable body kept in [`ParkedMessage::raw`].
const RAW_LIMIT: usize = 2000;

/// One parked message.
#[derive(Clone, Debug, PartialEq)]
pub struct ParkedMessage {
    /// The job, when the body decodes as one.
    pub job: Option<Job>,
    /// The body as text (lossy, truncated to 2000 characters) when it does not decode;
    /// empty otherwise.
    pub raw: String,
    /// Why it was parked (`x-park-reason`).
    pub reason: String,
    /// When it was parked, in seconds since the Unix epoch (`x-parked-at`; 0 if unknown).
    pub parked_at: u64,
}

impl ParkedMessage {
    fn from_message(message: &BasicGetMessage) -> ParkedMessage {
        let data = &message.delivery.data;
        let props = &message.delivery.properties;
        let job = serde_json::from_slice::<Job>(data).ok();
        let raw = match job {
            Some(_) => String::new(),
            None => String::from_utf8_lossy(data)
                .chars()
                .take(RAW_LIMIT)
                .collect(),
        };
        ParkedMessage {
            job,
            raw,
            reason: header_str(props, PARK_REASON).unwrap_or_default(),
            parked_at: header_u64(props, PARKED_AT).unwrap_or(0),
        }
    }
}

/// A channel of its own: what is taken with `basic.get` goes back when it closes, whatever
/// happens to the caller.
async fn open(shared: &Shared) -> Result<Channel, QueueError> {
    shared
        .connection
        .create_channel()
        .await
        .map_err(|e| broker("opening a channel for the parked queue", e))
}

/// The next parked message, held (unacknowledged) by `channel`.
async fn take(shared: &Shared, channel: &Channel) -> Result<Option<BasicGetMessage>, QueueError> {
    let name = &shared.names.parked;
    channel
        .basic_get(
            ShortString::from(name.as_str()),
            BasicGetOptions { no_ack: false },
        )
        .await
        .map_err(|e| broker(format!("reading {name}"), e))
}

fn requeue() -> BasicNackOptions {
    BasicNackOptions {
        multiple: false,
        requeue: true,
    }
}

/// Every parked message, oldest first, left in place.
pub(super) async fn list(shared: &Shared) -> Result<Vec<ParkedMessage>, QueueError> {
    let channel = open(shared).await?;
    let mut held = Vec::new();
    while let Some(message) = take(shared, &channel).await? {
        held.push(message);
    }
    let listed = held.iter().map(ParkedMessage::from_message).collect();
    if let Some(last) = held.last() {
        let all = BasicNackOptions {
            multiple: true,
            requeue: true,
        };
        last.delivery
            .acker
            .nack(all)
            .await
            .map_err(|e| broker("returning the listed parked messages", e))?;
    }
    let _ = channel.close(200, ShortString::from("parked listed")).await;
    Ok(listed)
}

/// Moves every parked job back to the jobs queue with its attempt count reset to 0; each
/// is published (confirmed) before it is removed from the parked queue. Messages that do
/// not decode as a job stay parked.
pub(super) async fn requeue_all(shared: &Shared) -> Result<usize, QueueError> {
    let channel = open(shared).await?;
    let mut kept = Vec::new();
    let mut moved = 0;
    while let Some(message) = take(shared, &channel).await? {
        let Ok(mut job) = serde_json::from_slice::<Job>(&message.delivery.data) else {
            kept.push(message);
            continue;
        };
        job.attempt = 0;
        let body =
            serde_json::to_vec(&job).map_err(|e| other(format!("encoding job {}: {e}", job.id)))?;
        let properties = json_properties(&job.id.to_string(), job_headers(0));
        shared
            .publisher
            .publish("", &shared.names.jobs, &body, properties)
            .await?;
        message
            .delivery
            .acker
            .ack(BasicAckOptions::default())
            .await
            .map_err(|e| broker("removing a requeued job from the parked queue", e))?;
        moved += 1;
    }
    for message in kept {
        message
            .delivery
            .acker
            .nack(requeue())
            .await
            .map_err(|e| broker("returning an undecodable parked message", e))?;
    }
    let _ = channel
        .close(200, ShortString::from("parked requeued"))
        .await;
    Ok(moved)
}

/// Deletes every parked message; returns how many there were.
pub(super) async fn purge(shared: &Shared) -> Result<usize, QueueError> {
    let channel = open(shared).await?;
    let name = &shared.names.parked;
    let purged = channel
        .queue_purge(
            ShortString::from(name.as_str()),
            QueuePurgeOptions::default(),
        )
        .await
        .map_err(|e| broker(format!("purging {name}"), e))?;
    let _ = channel.close(200, ShortString::from("parked purged")).await;
    Ok(usize::try_from(purged).unwrap_or(usize::MAX))
}
