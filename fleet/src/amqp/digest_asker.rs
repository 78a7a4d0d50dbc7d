//! The scheduler's side of source resolution by the workers (see
//! `mirror_common::source_digests`): a batch's sources go out as requests of at most
//! [`SOURCES_PER_REQUEST`] to `{p}.digests`, each naming a private reply queue; the replies
//! come back there, matched by request id.
//!
//! Every path that does not give an answer gives "not resolved here", which the planner
//! resolves itself: no worker consuming the queue (none running, or one from before this
//! feature), a publish that fails, a reply that does not match its request, silence for
//! [`REPLY_SILENCE`]. So asking the fleet never changes what a run plans; at worst the run
//! waits that long before resolving the rest itself.

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use futures::StreamExt;
use lapin::options::{BasicConsumeOptions, QueueDeclareOptions};
use lapin::types::{FieldTable, ShortString};
use lapin::{BasicProperties, Channel, Consumer};
use tokio::sync::Mutex;
use uuid::Uuid;

use super::error::{broker, other};
use super::shared::Shared;
use super::QueueError;
use mirror_common::reference::ImageRef;
use mirror_common::source_digests::{
    DigestReply, DigestRequest, SourceDigests, DIGEST_REQUEST_VERSION, SOURCES_PER_REQUEST,
};

/// How long the asker waits without any reply before resolving what is left itself: a
/// worker answers 256 HEADs in well under a second at ordinary latencies; a silence this
/// long means no worker is taking requests (or all are stuck behind a slow registry).
pub const REPLY_SILENCE: Duration = Duration::from_secs(15);

/// Asks the workers for source digests, on a channel of its own.
pub struct DigestAsker {
    shared: Arc<Shared>,
    reply_queue: ShortString,
    replies: Mutex<Consumer>,
    /// Keeps the reply queue (exclusive, auto-delete) alive while the asker lives.
    channel: Channel,
    /// Sources asked about, and of them the ones a worker resolved.
    asked: AtomicU64,
    answered: AtomicU64,
    /// [`REPLY_SILENCE`] unless told.
    silence: Duration,
}

impl DigestAsker {
    /// Declares a private reply queue and consumes it.
    pub(super) async fn open(shared: Arc<Shared>) -> Result<DigestAsker, QueueError> {
        let channel = shared
            .connection
            .create_channel()
            .await
            .map_err(|e| broker("opening the digest replies channel", e))?;
        let queue =
            super::topology::private_queue(&channel, "declaring the digest replies queue").await?;
        let replies = channel
            .basic_consume(
                queue.name().clone(),
                ShortString::from(""),
                BasicConsumeOptions {
                    no_ack: true,
                    ..BasicConsumeOptions::default()
                },
                FieldTable::default(),
            )
            .await
            .map_err(|e| broker("consuming the digest replies", e))?;
        Ok(DigestAsker {
            shared,
            reply_queue: queue.name().clone(),
            replies: Mutex::new(replies),
            channel,
            asked: AtomicU64::new(0),
            answered: AtomicU64::new(0),
            silence: REPLY_SILENCE,
        })
    }

    /// Waits `silence` instead of [`REPLY_SILENCE`] (tests).
    pub fn with_reply_silence(mut self, silence: Duration) -> Self {
        self.silence = silence;
        self
    }

    /// Workers consuming the requests queue now.
    pub async fn serving(&self) -> Result<u32, QueueError> {
        let name = &self.shared.names.digests;
        self.channel
            .queue_declare(
                ShortString::from(name.as_str()),
                QueueDeclareOptions::default().passive(),
                FieldTable::default(),
            )
            .await
            .map(|q| q.consumer_count())
            .map_err(|e| broker(format!("looking at {name}"), e))
    }

    /// Publishes one request (transient: a request outlives neither the broker nor its
    /// asker's patience), its reply to come to this asker's queue.
    pub async fn ask(&self, request: &DigestRequest) -> Result<(), QueueError> {
        let body = serde_json::to_vec(request)
            .map_err(|e| other(format!("encoding digest request {}: {e}", request.id)))?;
        let properties = BasicProperties::default()
            .with_content_type(ShortString::from("application/json"))
            .with_message_id(ShortString::from(request.id.to_string()))
            .with_correlation_id(ShortString::from(request.id.to_string()))
            .with_reply_to(self.reply_queue.clone());
        self.shared
            .publisher
            .publish("", &self.shared.names.digests, &body, properties)
            .await
    }

    /// The next reply that decodes (others are logged and skipped).
    pub async fn next_reply(&self) -> Result<DigestReply, QueueError> {
        let mut replies = self.replies.lock().await;
        loop {
            let message = match replies.next().await {
                Some(Ok(m)) => m,
                Some(Err(e)) => return Err(broker("lost the digest replies", e)),
                None => return Err(QueueError::Closed),
            };
            match serde_json::from_slice::<DigestReply>(&message.data) {
                Ok(reply) => return Ok(reply),
                Err(e) => tracing::warn!(error = %e, "skipping an undecodable digest reply"),
            }
        }
    }

    /// Sources asked about so far, and of them the ones a worker resolved.
    pub fn resolved_by_fleet(&self) -> (u64, u64) {
        (
            self.asked.load(Ordering::Relaxed),
            self.answered.load(Ordering::Relaxed),
        )
    }

    /// Closes the channel (the reply queue goes with it).
    pub async fn close(&self) {
        let _ = self.channel.close(200, ShortString::from("done")).await;
    }
}

#[async_trait]
impl SourceDigests for DigestAsker {
    async fn digests(&self, run_id: Uuid, sources: &[&ImageRef]) -> Vec<Option<String>> {
        let mut answers = vec![None; sources.len()];
        // The connection was lost (and said so once): the run resolves the rest itself.
        if !self.shared.connection.status().connected() {
            return answers;
        }
        match self.serving().await {
            Ok(0) => return answers,
            Ok(_) => {}
            Err(e) => {
                tracing::warn!(error = %e, "cannot ask the workers for source digests; resolving here");
                return answers;
            }
        }
        // Request id: where its sources start in `sources`, and how many.
        let mut waiting: HashMap<Uuid, (usize, usize)> = HashMap::new();
        for (n, chunk) in sources.chunks(SOURCES_PER_REQUEST).enumerate() {
            let request = DigestRequest {
                version: DIGEST_REQUEST_VERSION,
                id: Uuid::new_v4(),
                run_id,
                sources: chunk.iter().map(ToString::to_string).collect(),
            };
            if let Err(e) = self.ask(&request).await {
                tracing::warn!(error = %e, "cannot ask the workers for source digests; resolving the rest here");
                break;
            }
            waiting.insert(request.id, (n * SOURCES_PER_REQUEST, chunk.len()));
        }
        while !waiting.is_empty() {
            let reply = match tokio::time::timeout(self.silence, self.next_reply()).await {
                Ok(Ok(reply)) => reply,
                Ok(Err(e)) => {
                    tracing::warn!(error = %e, "lost the workers' digest replies; resolving the rest here");
                    break;
                }
                Err(_) => {
                    tracing::warn!(
                        requests = waiting.len(),
                        silence_s = self.silence.as_secs_f64(),
                        "no worker answered; resolving those sources here"
                    );
                    break;
                }
            };
            // A late reply to an earlier batch's request, or one that does not fit its
            // request, is no answer for this one.
            let Some(&(start, len)) = waiting.get(&reply.id) else {
                continue;
            };
            if reply.version != DIGEST_REQUEST_VERSION || reply.digests.len() != len {
                tracing::warn!(request = %reply.id, "a digest reply that does not fit its request; resolving its sources here");
            } else {
                for (slot, digest) in answers[start..start + len].iter_mut().zip(reply.digests) {
                    *slot = digest.filter(|d| mirror_common::digest::validate(d).is_ok());
                }
            }
            waiting.remove(&reply.id);
        }
        let answered = answers.iter().filter(|a| a.is_some()).count();
        self.asked
            .fetch_add(sources.len() as u64, Ordering::Relaxed);
        self.answered.fetch_add(answered as u64, Ordering::Relaxed);
        answers
    }
}
