//! Queue depths and consumer counts without the management plugin: a passive
//! `queue.declare` answers with both.

use lapin::options::QueueDeclareOptions;
use lapin::protocol::{AMQPErrorKind, AMQPSoftError};
use lapin::types::{FieldTable, ShortString};
use lapin::{Channel, ErrorKind};

use super::error::broker;
use super::shared::Shared;
use super::QueueError;

/// One queue's numbers.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct QueueCount {
    /// The queue name (`{p}.jobs`, ...).
    pub name: String,
    /// Messages ready for delivery (not those delivered and not yet acknowledged; for the
    /// history stream, whatever the broker reports for a stream).
    pub ready: u32,
    /// Consumers attached to the queue (workers, for the jobs queue).
    pub consumers: u32,
}

async fn open(shared: &Shared) -> Result<Channel, QueueError> {
    shared
        .connection
        .create_channel()
        .await
        .map_err(|e| broker("opening a channel for queue counts", e))
}

fn is_not_found(err: &lapin::Error) -> bool {
    matches!(err.kind(), ErrorKind::ProtocolError(e)
        if *e.kind() == AMQPErrorKind::Soft(AMQPSoftError::NOTFOUND))
}

/// Every queue of the topology that exists (one deleted under us is left out: the broker
/// closes the channel on a failed passive declare, so a new one is opened for the rest).
pub(super) async fn counts(shared: &Shared) -> Result<Vec<QueueCount>, QueueError> {
    let mut channel = open(shared).await?;
    let mut out = Vec::new();
    for name in shared.names.queues() {
        let declared = channel
            .queue_declare(
                ShortString::from(name),
                QueueDeclareOptions::default().passive(),
                FieldTable::default(),
            )
            .await;
        match declared {
            Ok(queue) => out.push(QueueCount {
                name: name.to_string(),
                ready: queue.message_count(),
                consumers: queue.consumer_count(),
            }),
            Err(e) if is_not_found(&e) => {
                tracing::warn!(queue = name, "queue of the topology does not exist");
                channel = open(shared).await?;
            }
            Err(e) => return Err(broker(format!("counting {name}"), e)),
        }
    }
    let _ = channel.close(200, ShortString::from("counted")).await;
    Ok(out)
}
