//! Run events: announcements and job results go to the `{p}.events` topic exchange under
//! `run.<run id>.started` / `run.<run id>.result`. The history stream keeps every one of
//! them (bound `run.#`), and a scheduler waiting for its run binds a private queue to
//! `run.<run id>.*` before publishing the run's jobs.

use std::time::Duration;

use futures::StreamExt;
use lapin::options::{
    BasicAckOptions, BasicCancelOptions, BasicConsumeOptions, BasicQosOptions, QueueBindOptions,
};
use lapin::types::{AMQPValue, FieldTable, ShortString};
use lapin::{Channel, Consumer};
use uuid::Uuid;

use super::error::{broker, other};
use super::message::{json_properties, now_secs};
use super::shared::Shared;
use super::QueueError;
use mirror_common::job::RunEvent;

/// Unacknowledged events one reader holds at most (streams require a prefetch).
const PREFETCH: u16 = 500;

/// The history reader stops when the stream delivered nothing for this long: a stream has
/// no end, and the broker does not say where its tail is. Events published while the
/// reader runs may or may not be included.
pub const HISTORY_IDLE: Duration = Duration::from_millis(300);

/// Routing key of a run's announcement.
fn started_key(run_id: Uuid) -> String {
    format!("run.{run_id}.started")
}

/// Routing key of a job result of the run.
fn result_key(run_id: Uuid) -> String {
    format!("run.{run_id}.result")
}

/// Publishes an event (persistent, confirmed).
pub(super) async fn publish(shared: &Shared, event: &RunEvent) -> Result<(), QueueError> {
    let (key, id) = match event {
        RunEvent::Started(run) => (started_key(run.run_id), run.run_id),
        RunEvent::Result(result) => (result_key(result.run_id), result.job_id),
    };
    let body = serde_json::to_vec(event).map_err(|e| other(format!("encoding {key}: {e}")))?;
    let properties = json_properties(&id.to_string(), FieldTable::default());
    shared
        .publisher
        .publish(&shared.names.events, &key, &body, properties)
        .await
}

/// The events of one run, from a private queue (exclusive: gone with our connection;
/// auto-delete: gone when the subscription is dropped).
pub struct RunSubscription {
    run_id: Uuid,
    consumer: Consumer,
    /// Closing this channel (when the subscription is dropped) deletes the queue.
    _channel: Channel,
}

impl RunSubscription {
    /// The run this subscription follows.
    pub fn run_id(&self) -> Uuid {
        self.run_id
    }

    /// The run's next event, in publishing order. A message that does not decode is
    /// logged and skipped. `Closed` when the connection was closed by us; `Broker` when
    /// it was lost (the run's events are still in the history).
    pub async fn next(&mut self) -> Result<RunEvent, QueueError> {
        loop {
            let message = match self.consumer.next().await {
                Some(Ok(message)) => message,
                Some(Err(e)) => return Err(broker("lost the run subscription", e)),
                None => return Err(QueueError::Closed),
            };
            message
                .acker
                .ack(BasicAckOptions::default())
                .await
                .map_err(|e| broker("acknowledging a run event", e))?;
            match serde_json::from_slice::<RunEvent>(&message.data) {
                Ok(event) => return Ok(event),
                Err(e) => {
                    tracing::warn!(run_id = %self.run_id, error = %e, "skipping an undecodable run event")
                }
            }
        }
    }
}

/// Binds a fresh private queue to the run's events.
pub(super) async fn subscribe(
    shared: &Shared,
    run_id: Uuid,
) -> Result<RunSubscription, QueueError> {
    let what = |step: &str| format!("subscribing to run {run_id}: {step}");
    let channel = shared
        .connection
        .create_channel()
        .await
        .map_err(|e| broker(what("opening a channel"), e))?;
    channel
        .basic_qos(PREFETCH, BasicQosOptions::default())
        .await
        .map_err(|e| broker(what("setting the prefetch"), e))?;
    let queue = super::topology::private_queue(&channel, &what("declaring the queue")).await?;
    channel
        .queue_bind(
            queue.name().clone(),
            ShortString::from(shared.names.events.as_str()),
            ShortString::from(format!("run.{run_id}.*")),
            QueueBindOptions::default(),
            FieldTable::default(),
        )
        .await
        .map_err(|e| broker(what("binding the queue"), e))?;
    let consumer = channel
        .basic_consume(
            queue.name().clone(),
            ShortString::from(""),
            BasicConsumeOptions::default(),
            FieldTable::default(),
        )
        .await
        .map_err(|e| broker(what("consuming"), e))?;
    Ok(RunSubscription {
        run_id,
        consumer,
        _channel: channel,
    })
}

/// Every event of the last `since`, oldest first, without consuming anything: the stream
/// is read from the timestamp `now - since` until it is idle for [`HISTORY_IDLE`].
///
/// The broker starts a timestamp read at the chunk holding that time, so slightly older
/// events come too; they are dropped by their `timestamp` property (whole seconds).
pub(super) async fn read(shared: &Shared, since: Duration) -> Result<Vec<RunEvent>, QueueError> {
    let mut events = Vec::new();
    read_each(shared, since, |e| events.push(e)).await?;
    Ok(events)
}

/// [`read`], handing each event to `take` as it arrives instead of keeping them: a reader
/// that folds the history (`status`) holds what it folds, not hours of results.
pub(super) async fn read_each(
    shared: &Shared,
    since: Duration,
    mut take: impl FnMut(RunEvent),
) -> Result<(), QueueError> {
    let name = &shared.names.history;
    let channel = shared
        .connection
        .create_channel()
        .await
        .map_err(|e| broker("opening a channel to read the history", e))?;
    channel
        .basic_qos(PREFETCH, BasicQosOptions::default())
        .await
        .map_err(|e| broker("setting the history prefetch", e))?;
    let from = now_secs().saturating_sub(since.as_secs());
    let mut arguments = FieldTable::default();
    arguments.insert("x-stream-offset".into(), AMQPValue::Timestamp(from));
    let mut consumer = channel
        .basic_consume(
            ShortString::from(name.as_str()),
            ShortString::from(""),
            BasicConsumeOptions::default(),
            arguments,
        )
        .await
        .map_err(|e| broker(format!("reading {name}"), e))?;
    let mut unacked = 0;
    loop {
        let message = match tokio::time::timeout(HISTORY_IDLE, consumer.next()).await {
            Err(_idle) => break,
            Ok(Some(Ok(message))) => message,
            Ok(Some(Err(e))) => return Err(broker(format!("reading {name}"), e)),
            Ok(None) => return Err(other(format!("the broker ended the read of {name}"))),
        };
        // Streams hand out more only as earlier messages are acknowledged; one ack with
        // `multiple` for every half prefetch keeps them coming.
        unacked += 1;
        if unacked >= PREFETCH / 2 {
            unacked = 0;
            let all = BasicAckOptions { multiple: true };
            message
                .acker
                .ack(all)
                .await
                .map_err(|e| broker(format!("acknowledging {name}"), e))?;
        }
        if message.properties.timestamp().is_some_and(|t| t < from) {
            continue;
        }
        match serde_json::from_slice::<RunEvent>(&message.data) {
            Ok(event) => take(event),
            Err(e) => {
                tracing::warn!(stream = %name, error = %e, "skipping an undecodable run event")
            }
        }
    }
    // Best effort: dropping the channel closes it anyway.
    let _ = channel
        .basic_cancel(consumer.tag(), BasicCancelOptions::default())
        .await;
    let _ = channel.close(200, ShortString::from("history read")).await;
    Ok(())
}
