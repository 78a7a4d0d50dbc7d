//! The jobs consumer: started by the first `receive()` (a scheduler that only publishes
//! must never hold jobs), stopped by `stop_consuming()`.
//!
//! `receive()` is cancel-safe, since workers call it in a `select!`: taking the next
//! delivery from lapin's buffer loses nothing when dropped, and the slower steps (starting
//! the consumer, parking an undecodable message) run in spawned tasks that finish even
//! if the caller stops waiting for them.

use std::sync::atomic::Ordering;
use std::sync::Arc;

use futures::{FutureExt, StreamExt};
use lapin::message::Delivery as AmqpDelivery;
use lapin::options::{BasicCancelOptions, BasicConsumeOptions, BasicNackOptions, BasicQosOptions};
use lapin::types::{FieldTable, ShortString};
use tokio::sync::Mutex;

use super::acker::AmqpAck;
use super::error::{broker, other};
use super::shared::{ConsumerState, Running, Shared};
use super::QueueError;
use mirror_common::job::Job;
use mirror_common::queue::{Acknowledger, Delivery};

/// Opens a channel with `basic.qos(prefetch)` and consumes the jobs queue with manual acks.
async fn start(shared: Arc<Shared>) -> Result<Running, QueueError> {
    let channel = shared
        .connection
        .create_channel()
        .await
        .map_err(|e| broker("opening the consumer channel", e))?;
    channel
        .basic_qos(shared.config.prefetch, BasicQosOptions::default())
        .await
        .map_err(|e| broker("setting the prefetch", e))?;
    let consumer = channel
        .basic_consume(
            ShortString::from(shared.names.jobs.as_str()),
            ShortString::from(""),
            BasicConsumeOptions::default(),
            FieldTable::default(),
        )
        .await
        .map_err(|e| broker(format!("consuming {}", shared.names.jobs), e))?;
    Ok(Running {
        channel,
        tag: consumer.tag(),
        stream: Mutex::new(consumer),
    })
}

/// The running consumer, started on first use; `Closed` once stopped.
async fn running(shared: &Arc<Shared>) -> Result<Arc<Running>, QueueError> {
    let mut state = shared.consumer.lock().await;
    match &*state {
        ConsumerState::Running(r) => return Ok(r.clone()),
        ConsumerState::Stopped { .. } => return Err(QueueError::Closed),
        ConsumerState::Idle => {}
    }
    // Spawned: if our caller gives up, the task still finishes and its consumer is dropped
    // (which cancels it and closes its channel) instead of being left half set up.
    let started = tokio::spawn(start(shared.clone()))
        .await
        .map_err(|e| other(format!("starting the consumer: {e}")))??;
    let started = Arc::new(started);
    *state = ConsumerState::Running(started.clone());
    Ok(started)
}

/// The next decodable job. Undecodable messages are parked (reason `cannot decode job:
/// <serde error>`) and skipped; only the JSON shape is checked here, the version is the
/// worker loop's business.
pub(super) async fn receive(shared: &Arc<Shared>) -> Result<Delivery, QueueError> {
    loop {
        let running = running(shared).await?;
        let next = running.stream.lock().await.next().await;
        let message = match next {
            Some(Ok(message)) => message,
            Some(Err(e)) if !ended_by_us(shared) => {
                return Err(broker("lost the jobs consumer", e));
            }
            None if !ended_by_us(shared) => {
                return Err(other(format!(
                    "the broker cancelled the consumer of {} (queue deleted?)",
                    shared.names.jobs
                )));
            }
            Some(Err(_)) | None => return Err(QueueError::Closed),
        };
        if shared.stopped.load(Ordering::SeqCst) {
            give_back(message);
            continue;
        }
        let ack = settle(shared, &running, &message);
        let data = message.data;
        match serde_json::from_slice::<Job>(&data) {
            Ok(job) => {
                return Ok(Delivery {
                    job,
                    acker: Box::new(AmqpAck { body: data, ..ack }),
                })
            }
            Err(e) => {
                let reason = format!("cannot decode job: {e}");
                tracing::warn!(queue = %shared.names.jobs, %reason, "parking an undecodable message");
                let ack = Box::new(AmqpAck { body: data, ..ack });
                tokio::spawn(async move { ack.park(&reason).await })
                    .await
                    .map_err(|e| other(format!("parking an undecodable message: {e}")))??;
            }
        }
    }
}

/// True when the consumer ended because we stopped it or closed the connection.
fn ended_by_us(shared: &Shared) -> bool {
    shared.closing.load(Ordering::SeqCst) || shared.stopped.load(Ordering::SeqCst)
}

/// The acknowledger of `message` (its body is filled in by the caller).
fn settle(shared: &Shared, running: &Running, message: &AmqpDelivery) -> AmqpAck {
    AmqpAck {
        acker: message.acker.clone(),
        body: Vec::new(),
        properties: message.properties.clone(),
        publisher: shared.publisher.clone(),
        jobs_queue: shared.names.jobs.clone(),
        retry_queues: shared.names.retries.clone().into(),
        parked_queue: shared.names.parked.clone(),
        _channel: running.channel.clone(),
    }
}

/// Returns a message that arrived after we stopped to the queue at once, for another
/// worker (rather than when our connection closes).
fn give_back(message: AmqpDelivery) {
    tokio::spawn(async move {
        let requeue = BasicNackOptions {
            requeue: true,
            ..BasicNackOptions::default()
        };
        if let Err(e) = message.acker.nack(requeue).await {
            tracing::debug!(error = %e, "could not hand a prefetched job back; it returns when the connection closes");
        }
    });
}

/// Cancels the consumer (no new deliveries), then hands the deliveries lapin had already
/// buffered back to the queue. The channel stays open: jobs being worked on are still
/// acknowledged on it.
pub(super) async fn stop(shared: &Shared) -> Result<(), QueueError> {
    let running = {
        let mut state = shared.consumer.lock().await;
        let running = match &*state {
            ConsumerState::Running(r) => Some(r.clone()),
            ConsumerState::Stopped { .. } => return Ok(()),
            ConsumerState::Idle => None,
        };
        *state = ConsumerState::Stopped {
            _running: running.clone(),
        };
        shared.stopped.store(true, Ordering::SeqCst);
        running
    };
    let Some(running) = running else {
        return Ok(());
    };
    running
        .channel
        .basic_cancel(running.tag.clone(), BasicCancelOptions::default())
        .await
        .map_err(|e| broker("cancelling the jobs consumer", e))?;
    // lapin puts the end of the stream behind the deliveries that came before the
    // cancel-ok, so once the cancel returned they are all buffered.
    let mut stream = running.stream.lock().await;
    while let Some(Some(Ok(message))) = stream.next().now_or_never() {
        give_back(message);
    }
    Ok(())
}
