//! The workers' side of source resolution (see `mirror_common::source_digests`): requests
//! consumed from `{p}.digests` with a prefetch of their own, each answered on the queue its
//! asker named, then acknowledged. A request whose asker is gone (its reply queue deleted)
//! is acknowledged all the same: nobody waits for it. A body that does not decode is
//! parked with its reason, as an undecodable job is.

use std::sync::Arc;

use futures::StreamExt;
use lapin::message::Delivery;
use lapin::options::{BasicAckOptions, BasicConsumeOptions, BasicQosOptions};
use lapin::types::{FieldTable, ShortString};
use lapin::{BasicProperties, Channel, Consumer};

use super::error::{broker, other};
use super::message::parked_properties;
use super::shared::Shared;
use super::QueueError;
use mirror_common::source_digests::{DigestReply, DigestRequest, DIGEST_REQUEST_VERSION};

/// The requests a worker takes, one at a time through [`DigestRequests::next`].
pub struct DigestRequests {
    shared: Arc<Shared>,
    consumer: Consumer,
    channel: Channel,
}

/// One request, to be answered with [`AskedDigests::reply`].
pub struct AskedDigests {
    /// What is asked.
    pub request: DigestRequest,
    delivery: Delivery,
    shared: Arc<Shared>,
    /// Keeps the delivery's channel open until the request is answered.
    _channel: Channel,
}

impl DigestRequests {
    /// Consumes `{p}.digests`, at most `prefetch` requests held at once.
    pub(super) async fn open(shared: Arc<Shared>, prefetch: u16) -> Result<Self, QueueError> {
        let name = shared.names.digests.clone();
        let channel = shared
            .connection
            .create_channel()
            .await
            .map_err(|e| broker("opening the digest requests channel", e))?;
        channel
            .basic_qos(prefetch.max(1), BasicQosOptions::default())
            .await
            .map_err(|e| broker("setting the digest requests prefetch", e))?;
        let consumer = channel
            .basic_consume(
                ShortString::from(name.as_str()),
                ShortString::from(""),
                BasicConsumeOptions::default(),
                FieldTable::default(),
            )
            .await
            .map_err(|e| broker(format!("consuming {name}"), e))?;
        Ok(DigestRequests {
            shared,
            consumer,
            channel,
        })
    }

    /// The next request that decodes; `Closed` when the consumer ended.
    pub async fn next(&mut self) -> Result<AskedDigests, QueueError> {
        loop {
            let delivery = match self.consumer.next().await {
                Some(Ok(d)) => d,
                Some(Err(e)) => return Err(broker("lost the digest requests consumer", e)),
                None => return Err(QueueError::Closed),
            };
            let decoded = serde_json::from_slice::<DigestRequest>(&delivery.data)
                .map_err(|e| format!("cannot decode digest request: {e}"))
                .and_then(|r| match r.version {
                    DIGEST_REQUEST_VERSION => Ok(r),
                    v => Err(format!("digest request version {v}: this worker reads version {DIGEST_REQUEST_VERSION}")),
                });
            match decoded {
                Ok(request) => {
                    return Ok(AskedDigests {
                        request,
                        delivery,
                        shared: self.shared.clone(),
                        _channel: self.channel.clone(),
                    })
                }
                Err(reason) => self.park(delivery, &reason).await?,
            }
        }
    }

    /// Parks a request that cannot be answered, then acknowledges it.
    async fn park(&self, delivery: Delivery, reason: &str) -> Result<(), QueueError> {
        tracing::warn!(queue = %self.shared.names.digests, %reason, "parking an undecodable message");
        let properties = parked_properties(&delivery.properties, reason);
        self.shared
            .publisher
            .publish("", &self.shared.names.parked, &delivery.data, properties)
            .await?;
        delivery
            .acker
            .ack(BasicAckOptions::default())
            .await
            .map(|_| ())
            .map_err(|e| broker("acknowledging a parked digest request", e))
    }
}

impl AskedDigests {
    /// Sends the answer to the asker (one digest or `None` per source, in order), then
    /// acknowledges the request. An asker that is gone is no error.
    pub async fn reply(self, digests: Vec<Option<String>>) -> Result<(), QueueError> {
        let reply = DigestReply {
            version: DIGEST_REQUEST_VERSION,
            id: self.request.id,
            digests,
        };
        if let Some(to) = self.delivery.properties.reply_to() {
            let body = serde_json::to_vec(&reply)
                .map_err(|e| other(format!("encoding digest reply {}: {e}", reply.id)))?;
            let properties = BasicProperties::default()
                .with_content_type(ShortString::from("application/json"))
                .with_correlation_id(ShortString::from(reply.id.to_string()));
            if let Err(e) = self
                .shared
                .publisher
                .publish("", to.as_str(), &body, properties)
                .await
            {
                if !self.shared.connection.status().connected() {
                    return Err(e);
                }
                tracing::debug!(request = %reply.id, error = %e, "the asker is gone; nobody waits for this reply");
            }
        }
        self.delivery
            .acker
            .ack(BasicAckOptions::default())
            .await
            .map(|_| ())
            .map_err(|e| broker("acknowledging a digest request", e))
    }
}
