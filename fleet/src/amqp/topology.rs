//! The queues and the exchange, declared by whoever connects first (declaring what exists
//! with the same arguments is a no-op, so every process declares everything); the table
//! of names and arguments is in the module's parent.
//!
//! Retry queues are named after their delay, so processes with other delays coexist.
//! Changing `history_max_age` or `history_max_bytes` for an existing installation (or the
//! first start of a version that bounds the stream by size on an installation made before) makes the broker refuse the
//! declaration (PRECONDITION_FAILED, inequivalent arg): the stream has to be deleted (it is
//! re-created on the next connect) or the old value kept.

use std::time::Duration;

use lapin::options::{ExchangeDeclareOptions, QueueBindOptions, QueueDeclareOptions};
use lapin::protocol::{AMQPErrorKind, AMQPSoftError};
use lapin::types::{AMQPValue, FieldTable, LongString, ShortString};
use lapin::{Channel, ExchangeKind};

use super::config::{AmqpConfig, QueueNames};
use super::error::broker;
use super::QueueError;

/// Binding of the history stream: every event of every run.
pub(super) const HISTORY_BINDING: &str = "run.#";

/// How long a digest request waits for a worker at most.
const DIGEST_REQUEST_TTL: Duration = Duration::from_secs(60);

/// Segment size of the history stream. Retention drops whole segments only, so with the
/// broker's default of 500 MB a small installation would never drop anything; results
/// are small (a few KB), so 16 MB segments still hold thousands of them.
const HISTORY_SEGMENT_BYTES: i64 = 16 * 1024 * 1024;

/// Checks, declaring nothing, that an installation with this prefix exists (its jobs
/// queue does); the error names the prefix.
pub(super) async fn expect(
    channel: &Channel,
    config: &AmqpConfig,
    names: &QueueNames,
) -> Result<(), QueueError> {
    let found = channel
        .queue_declare(
            ShortString::from(names.jobs.as_str()),
            QueueDeclareOptions::default().passive(),
            FieldTable::default(),
        )
        .await;
    match found {
        Ok(_) => Ok(()),
        Err(e) if matches!(e.kind(), lapin::ErrorKind::ProtocolError(p)
            if *p.kind() == AMQPErrorKind::Soft(AMQPSoftError::NOTFOUND)) =>
        {
            Err(super::error::other(format!(
                "no installation with queue prefix \"{}\" on {} (no queue {}): check --queue-prefix",
                config.prefix,
                config.redacted_url(),
                names.jobs
            )))
        }
        Err(e) => Err(broker(format!("looking for {}", names.jobs), e)),
    }
}

/// Declares everything (idempotent), the jobs queue last.
pub(super) async fn declare(
    channel: &Channel,
    config: &AmqpConfig,
    names: &QueueNames,
) -> Result<(), QueueError> {
    channel
        .exchange_declare(
            ShortString::from(names.events.as_str()),
            ExchangeKind::Topic,
            ExchangeDeclareOptions {
                durable: true,
                ..ExchangeDeclareOptions::default()
            },
            FieldTable::default(),
        )
        .await
        .map_err(|e| broker(format!("declaring exchange {}", names.events), e))?;
    declare_queue(channel, &names.parked, quorum()).await?;
    for (name, delay) in names.retries.iter().zip(&config.retry_delays) {
        declare_queue(channel, name, retry_arguments(*delay, &names.jobs)).await?;
    }
    declare_queue(
        channel,
        &names.history,
        history_arguments(config.history_max_age, config.history_max_bytes),
    )
    .await?;
    channel
        .queue_bind(
            ShortString::from(names.history.as_str()),
            ShortString::from(names.events.as_str()),
            ShortString::from(HISTORY_BINDING),
            QueueBindOptions::default(),
            FieldTable::default(),
        )
        .await
        .map_err(|e| broker(format!("binding {} to {}", names.history, names.events), e))?;
    declare_queue(channel, &names.digests, digests_arguments()).await?;
    // Last: `expect` takes the jobs queue for a whole installation, so an operator's command
    // started while a first worker declares never finds the jobs queue without the rest.
    declare_queue(channel, &names.jobs, quorum()).await
}

/// A server-named queue of this connection alone, deleted with its last consumer or the
/// connection: a run's subscription, a scheduler's digest replies.
pub(super) async fn private_queue(
    channel: &Channel,
    what: &str,
) -> Result<lapin::Queue, QueueError> {
    channel
        .queue_declare(
            ShortString::from(""),
            QueueDeclareOptions::exclusive().auto_delete(),
            FieldTable::default(),
        )
        .await
        .map_err(|e| broker(what, e))
}

async fn declare_queue(
    channel: &Channel,
    name: &str,
    arguments: FieldTable,
) -> Result<(), QueueError> {
    channel
        .queue_declare(
            ShortString::from(name),
            QueueDeclareOptions::durable(),
            arguments,
        )
        .await
        .map(|_| ())
        .map_err(|e| {
            let mut err = broker(format!("declaring queue {name}"), e.clone());
            if is_precondition_failed(&e) {
                if let QueueError::Broker(msg) = &mut err {
                    msg.push_str(
                        " (the queue exists with other arguments: to change a retry delay or \
                         the history's max age or size, delete the queue so it is declared anew, or \
                         keep the old value)",
                    );
                }
            }
            err
        })
}

fn is_precondition_failed(err: &lapin::Error) -> bool {
    matches!(err.kind(), lapin::ErrorKind::ProtocolError(e)
        if *e.kind() == AMQPErrorKind::Soft(AMQPSoftError::PRECONDITIONFAILED))
}

fn text(s: &str) -> AMQPValue {
    AMQPValue::LongString(LongString::from(s))
}

/// Quorum: replicated and fsynced, the safe home of jobs and parked jobs.
fn quorum() -> FieldTable {
    let mut args = FieldTable::default();
    args.insert("x-queue-type".into(), text("quorum"));
    args
}

/// A classic queue whose messages expire after `delay` into the jobs queue (through the
/// default exchange). Every message of one queue has the same TTL, so the one at the head
/// always expires first (classic queues only expire messages at their head).
fn retry_arguments(delay: Duration, jobs: &str) -> FieldTable {
    let mut args = FieldTable::default();
    args.insert("x-queue-type".into(), text("classic"));
    let ttl_ms = i64::try_from(delay.as_millis()).unwrap_or(i64::MAX);
    args.insert("x-message-ttl".into(), AMQPValue::LongLongInt(ttl_ms));
    args.insert("x-dead-letter-exchange".into(), text(""));
    args.insert("x-dead-letter-routing-key".into(), text(jobs));
    args
}

/// Requests for source digests: a classic queue whose messages expire after
/// [`DIGEST_REQUEST_TTL`] (an asker resolves a request itself after a far shorter
/// silence, so an older request has nobody waiting for it).
fn digests_arguments() -> FieldTable {
    let mut args = FieldTable::default();
    args.insert("x-queue-type".into(), text("classic"));
    let ttl_ms = i64::try_from(DIGEST_REQUEST_TTL.as_millis()).unwrap_or(i64::MAX);
    args.insert("x-message-ttl".into(), AMQPValue::LongLongInt(ttl_ms));
    args
}

/// A stream: consumers read it from any point in time without removing anything; bounded
/// by age and by size.
fn history_arguments(max_age: Duration, max_bytes: u64) -> FieldTable {
    let mut args = FieldTable::default();
    args.insert("x-queue-type".into(), text("stream"));
    args.insert("x-max-age".into(), text(&max_age_value(max_age)));
    let max_bytes = i64::try_from(max_bytes).unwrap_or(i64::MAX);
    args.insert(
        "x-max-length-bytes".into(),
        AMQPValue::LongLongInt(max_bytes),
    );
    args.insert(
        "x-stream-max-segment-size-bytes".into(),
        AMQPValue::LongLongInt(HISTORY_SEGMENT_BYTES),
    );
    args
}

/// A stream's `x-max-age` (`7D`, `12h`, `90s`): the largest unit the duration is a whole
/// number of (the broker takes Y, M, D, h, m, s).
pub(super) fn max_age_value(age: Duration) -> String {
    let secs = age.as_secs().max(1);
    for (unit, size) in [("D", 86_400), ("h", 3_600), ("m", 60)] {
        if secs.is_multiple_of(size) {
            return format!("{}{unit}", secs / size);
        }
    }
    format!("{secs}s")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn max_age_uses_the_largest_whole_unit() {
        assert_eq!(max_age_value(Duration::from_secs(7 * 86_400)), "7D");
        assert_eq!(max_age_value(Duration::from_secs(36 * 3_600)), "36h");
        assert_eq!(max_age_value(Duration::from_secs(90)), "90s");
        assert_eq!(max_age_value(Duration::from_secs(120)), "2m");
        assert_eq!(max_age_value(Duration::from_millis(10)), "1s");
    }
}
