//! Confirmed publishing: a message counts as sent only once the broker said it stored it.

use lapin::options::{BasicPublishOptions, ConfirmSelectOptions};
use lapin::types::ShortString;
use lapin::{BasicProperties, Channel, Confirmation, Connection};
use tokio::sync::Mutex;

use super::error::{broker, other};
use super::QueueError;

/// One channel in confirm mode, shared by every publishing task.
///
/// Many publishes can wait for their confirms at the same time (each has its own
/// `PublisherConfirm`), but handing a message to lapin is serialised: lapin numbers the
/// message for confirms and queues its frames under two different locks, so two threads
/// publishing at once on one channel could be numbered in one order and sent in the other,
/// and a confirm (or a returned message) would then resolve the wrong publish.
pub(super) struct Publisher {
    channel: Channel,
    send: Mutex<()>,
}

impl Publisher {
    /// Opens the publishing channel and turns confirms on.
    pub(super) async fn open(connection: &Connection) -> Result<Publisher, QueueError> {
        let channel = connection
            .create_channel()
            .await
            .map_err(|e| broker("opening the publishing channel", e))?;
        channel
            .confirm_select(ConfirmSelectOptions::default())
            .await
            .map_err(|e| broker("enabling publisher confirms", e))?;
        Ok(Publisher {
            channel,
            send: Mutex::new(()),
        })
    }

    /// Publishes and waits for the broker's confirm.
    ///
    /// Messages are `mandatory`: one that no queue takes (a queue deleted under us) comes
    /// back and is an error here, instead of being confirmed and silently dropped; a caller
    /// that acks the original only after this returns can therefore never lose a job.
    pub(super) async fn publish(
        &self,
        exchange: &str,
        routing_key: &str,
        body: &[u8],
        properties: BasicProperties,
    ) -> Result<(), QueueError> {
        let target = || {
            if exchange.is_empty() {
                format!("queue {routing_key}")
            } else {
                format!("exchange {exchange} (routing key {routing_key})")
            }
        };
        let exchange_name = ShortString::try_new(exchange)
            .map_err(|e| other(format!("exchange name {exchange:?}: {e}")))?;
        let key = ShortString::try_new(routing_key)
            .map_err(|e| other(format!("routing key {routing_key:?}: {e}")))?;
        let options = BasicPublishOptions {
            mandatory: true,
            ..BasicPublishOptions::default()
        };
        let confirm = {
            let _turn = self.send.lock().await;
            self.channel
                .basic_publish(exchange_name, key, options, body, properties)
                .await
                .map_err(|e| broker(format!("publishing to {}", target()), e))?
        };
        match confirm
            .await
            .map_err(|e| broker(format!("waiting for the confirm of {}", target()), e))?
        {
            Confirmation::Ack(None) => Ok(()),
            Confirmation::Ack(Some(returned)) | Confirmation::Nack(Some(returned)) => {
                Err(other(format!(
                    "message to {} was returned by the broker: {} {}",
                    target(),
                    returned.reply_code,
                    returned.reply_text
                )))
            }
            Confirmation::Nack(None) => Err(other(format!(
                "the broker refused (nacked) the message to {}",
                target()
            ))),
            Confirmation::NotRequested => Err(other(
                "publisher confirms are off on the publishing channel",
            )),
        }
    }
}
