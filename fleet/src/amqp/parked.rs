//! The parked queue, for operators: list, requeue, purge; every parked message or those of
//! chosen jobs and runs ([`ParkedSelection`]), the others staying parked in their order.
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
    header_str, header_u64, job_headers, json_properties, ATTEMPT, PARKED_AT, PARK_REASON,
};
use super::shared::Shared;
use super::QueueError;
use mirror_common::job::Job;
use uuid::Uuid;

/// Characters of an undecodable body kept in [`ParkedMessage::raw`].
const RAW_LIMIT: usize = 2000;

/// One parked message.
#[derive(Clone, Debug, PartialEq)]
pub struct ParkedMessage {
    /// The job, when the body decodes as one.
    pub job: Option<Job>,
    /// The body as text when it does not decode, control characters escaped (`\\u{1b}`,
    /// `\\n`) and truncated to 2000 characters with the size of the whole; empty otherwise.
    pub raw: String,
    /// Why it was parked (`x-park-reason`).
    pub reason: String,
    /// When it was parked, in seconds since the Unix epoch (`x-parked-at`; 0 if unknown).
    pub parked_at: u64,
    /// How many times it was tried before it was parked, counted from 1: the attempt it was
    /// parked on included (the number a "gave up after N attempts" reason says). The body's
    /// `attempt` counts the tries before the last one, from 0.
    pub attempts: u32,
}

/// Which parked messages an operator acts on: those whose job id is one of `jobs` or whose
/// run id is one of `runs`; every one when both are empty. Undecodable messages have
/// neither id, so only "every one" can reach them.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ParkedSelection {
    /// Job ids (`dead-letters ... --job ID`).
    pub jobs: Vec<Uuid>,
    /// Run ids (`dead-letters ... --run ID`).
    pub runs: Vec<Uuid>,
}

impl ParkedSelection {
    /// Every parked message.
    pub fn all() -> Self {
        ParkedSelection::default()
    }

    /// True when no job or run was named: every parked message is meant.
    pub fn is_all(&self) -> bool {
        self.jobs.is_empty() && self.runs.is_empty()
    }

    fn selects(&self, job: &Job) -> bool {
        self.is_all() || self.jobs.contains(&job.id) || self.runs.contains(&job.run_id)
    }
}

/// What a requeue or purge of selected parked messages did.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Settled {
    /// (job id, run id) of each message requeued or purged, oldest first.
    pub jobs: Vec<(Uuid, Uuid)>,
    /// Messages left parked.
    pub kept: usize,
}

impl ParkedMessage {
    fn from_message(message: &BasicGetMessage) -> ParkedMessage {
        let data = &message.delivery.data;
        let props = &message.delivery.properties;
        let job = serde_json::from_slice::<Job>(data).ok();
        let raw = match job {
            Some(_) => String::new(),
            None => {
                let lossy = String::from_utf8_lossy(data);
                let text: String = mirror_common::printable::printable(&lossy)
                    .chars()
                    .take(RAW_LIMIT)
                    .collect();
                match text.len() < RAW_LIMIT {
                    true => text,
                    false => format!("{text}... ({} bytes)", data.len()),
                }
            }
        };
        // Tries before the last one: the body's count, else the header's (an undecodable
        // body was delivered once, on the attempt the header says, and parked then).
        let before = match &job {
            Some(job) => job.attempt,
            None => header_u64(props, ATTEMPT)
                .and_then(|a| u32::try_from(a).ok())
                .unwrap_or(0),
        };
        ParkedMessage {
            job,
            raw,
            reason: header_str(props, PARK_REASON).unwrap_or_default(),
            parked_at: header_u64(props, PARKED_AT).unwrap_or(0),
            attempts: before.saturating_add(1),
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
    wait_until_back(shared, held.len()).await;
    Ok(listed)
}

/// Returns once the parked queue shows at least `n` messages ready again (or after a few
/// seconds). A quorum queue applies a requeue through its log, so for a moment after the
/// nack the listed messages still count as taken; a caller that counts the queue right
/// after listing must see them back, not `0 ready, 1 consumer`.
async fn wait_until_back(shared: &Shared, n: usize) {
    if n == 0 {
        return;
    }
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(5);
    while std::time::Instant::now() < deadline {
        match counts(shared).await {
            Some((ready, 0)) if ready as usize >= n => return,
            Some(_) => tokio::time::sleep(std::time::Duration::from_millis(20)).await,
            None => return,
        }
    }
}

/// Ready messages and consumers of the parked queue; `None` when they cannot be read.
async fn counts(shared: &Shared) -> Option<(u32, u32)> {
    let channel = open(shared).await.ok()?;
    let declared = channel
        .queue_declare(
            ShortString::from(shared.names.parked.as_str()),
            lapin::options::QueueDeclareOptions::default().passive(),
            lapin::types::FieldTable::default(),
        )
        .await;
    let _ = channel
        .close(200, ShortString::from("parked counted"))
        .await;
    declared
        .ok()
        .map(|q| (q.message_count(), q.consumer_count()))
}

/// What becomes of a selected parked job.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum Settle {
    /// Back to the jobs queue, its attempt count reset to 0.
    Requeue,
    /// Deleted.
    Purge,
}

/// Requeues or purges the parked jobs `selection` selects; each requeued job is published
/// (confirmed) before it is removed from the parked queue. The other messages (and those
/// that do not decode as a job) stay parked, in their order: every message is held until
/// the selected ones are settled, then the rest are handed back in the order they came.
/// Only the messages parked when the call starts are looked at: a job that fails again and
/// is parked anew while this runs stays parked (and is not counted twice).
pub(super) async fn settle(
    shared: &Shared,
    selection: &ParkedSelection,
    what: Settle,
) -> Result<Settled, QueueError> {
    let Some((present, _)) = counts(shared).await else {
        return Err(other(format!("cannot count {}", shared.names.parked)));
    };
    let channel = open(shared).await?;
    let mut kept = Vec::new();
    let mut settled = Settled::default();
    for _ in 0..present {
        let Some(message) = take(shared, &channel).await? else {
            break;
        };
        let job = match serde_json::from_slice::<Job>(&message.delivery.data) {
            Ok(job) if selection.selects(&job) => job,
            _ => {
                kept.push(message);
                continue;
            }
        };
        settled.jobs.push((job.id, job.run_id));
        if what == Settle::Requeue {
            let mut job = job;
            job.attempt = 0;
            let body = serde_json::to_vec(&job)
                .map_err(|e| other(format!("encoding job {}: {e}", job.id)))?;
            let properties = json_properties(&job.id.to_string(), job_headers(0));
            shared
                .publisher
                .publish("", &shared.names.jobs, &body, properties)
                .await?;
        }
        message
            .delivery
            .acker
            .ack(BasicAckOptions::default())
            .await
            .map_err(|e| broker("removing a settled job from the parked queue", e))?;
    }
    settled.kept = kept.len();
    for message in kept {
        message
            .delivery
            .acker
            .nack(requeue())
            .await
            .map_err(|e| broker("returning a parked message left parked", e))?;
    }
    let _ = channel
        .close(200, ShortString::from("parked settled"))
        .await;
    wait_until_back(shared, settled.kept).await;
    Ok(settled)
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
