//! Where the broker is, how the queues are named, and how jobs are retried.

use std::fmt;
use std::time::Duration;

use super::error::{redact, scrub};
use super::QueueError;

/// Longest accepted prefix: AMQP names are at most 255 bytes, and the longest name we
/// build is the prefix plus a suffix such as `.retry.NN`.
const MAX_PREFIX_LEN: usize = 200;

/// The broker connection and the topology's shape.
///
/// The `Debug` output and every error name the broker by [`AmqpConfig::redacted_url`], so
/// the password in `url` never reaches a log.
#[derive(Clone)]
pub struct AmqpConfig {
    /// `amqp://user:password@host:port/vhost` (the vhost URL-encoded: `%2f` is `/`).
    pub url: String,
    /// Every queue and exchange is named `{prefix}.<suffix>`, so two installations (or two
    /// test runs) share a broker without seeing each other's messages.
    pub prefix: String,
    /// Unacknowledged jobs one consumer holds at most: the worker's concurrency.
    pub prefetch: u16,
    /// Delay before redelivery n (n = the job's attempt count when it failed). A job is
    /// tried `retry_delays.len() + 1` times; see [`AmqpConfig::attempts`].
    pub retry_delays: Vec<Duration>,
    /// How long the run history stream keeps events.
    pub history_max_age: Duration,
    /// How many bytes the run history stream keeps at most (whichever of age and size is
    /// reached first drops the oldest segment): at 100x the real set a steady hour writes
    /// ~100 MB of results, so age alone would let the stream grow to tens of gigabytes.
    pub history_max_bytes: u64,
}

impl AmqpConfig {
    /// Default [`url`](Self::url): a broker on this machine, vhost `/`.
    pub const DEFAULT_URL: &'static str = "amqp://127.0.0.1:5672/%2f";
    /// Default [`prefix`](Self::prefix).
    pub const DEFAULT_PREFIX: &'static str = "image-mirror";
    /// Default [`history_max_bytes`](Self::history_max_bytes): 4 GiB.
    pub const DEFAULT_HISTORY_MAX_BYTES: u64 = 4 << 30;
    /// Default [`retry_delays`](Self::retry_delays): 10 s, 1 min, 5 min.
    pub const DEFAULT_RETRY_DELAYS: [Duration; 3] = [
        Duration::from_secs(10),
        Duration::from_secs(60),
        Duration::from_secs(300),
    ];
}

impl Default for AmqpConfig {
    fn default() -> Self {
        AmqpConfig {
            url: Self::DEFAULT_URL.into(),
            prefix: Self::DEFAULT_PREFIX.into(),
            prefetch: 1,
            retry_delays: Self::DEFAULT_RETRY_DELAYS.to_vec(),
            history_max_age: Duration::from_secs(7 * 24 * 3600),
            history_max_bytes: Self::DEFAULT_HISTORY_MAX_BYTES,
        }
    }
}

impl fmt::Debug for AmqpConfig {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("AmqpConfig")
            .field("url", &self.redacted_url())
            .field("prefix", &self.prefix)
            .field("prefetch", &self.prefetch)
            .field("retry_delays", &self.retry_delays)
            .field("history_max_age", &self.history_max_age)
            .field("history_max_bytes", &self.history_max_bytes)
            .finish()
    }
}

impl AmqpConfig {
    /// Deliveries of one job at most, the first included.
    pub fn attempts(&self) -> u32 {
        mirror_common::queue::attempts(&self.retry_delays)
    }

    /// The URL without its user and password, for logs and errors.
    pub fn redacted_url(&self) -> String {
        redact(&self.url)
    }

    /// The queue and exchange names of this configuration.
    pub fn names(&self) -> QueueNames {
        let p = &self.prefix;
        QueueNames {
            jobs: format!("{p}.jobs"),
            parked: format!("{p}.parked"),
            // Named after their delay, so processes configured with other delays declare
            // queues of their own instead of colliding with an inequivalent TTL.
            retries: self
                .retry_delays
                .iter()
                .map(|d| format!("{p}.retry.{}ms", d.as_millis()))
                .collect(),
            history: format!("{p}.history"),
            events: format!("{p}.events"),
            digests: format!("{p}.digests"),
        }
    }

    /// Refuses a configuration the broker would refuse later, with a clearer message.
    /// Checks what can be checked without a broker: the URL parses as an AMQP URI, the
    /// prefix makes valid queue names, the numbers are sane. Processes call it at start, so
    /// that a typo fails at once instead of being retried as if the broker were away.
    pub fn validate(&self) -> Result<(), QueueError> {
        if let Err(e) = self.url.parse::<lapin::uri::AMQPUri>() {
            return Err(QueueError::Broker(format!(
                "invalid broker URL {}: {}; expected amqp://[user:password@]host[:port]/[vhost]",
                self.redacted_url(),
                scrub(&e, &self.url)
            )));
        }
        let p = &self.prefix;
        let valid = !p.is_empty()
            && p.len() <= MAX_PREFIX_LEN
            && p.chars()
                .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.' | ':'));
        if !valid {
            return Err(QueueError::Broker(format!(
                "invalid queue prefix {p:?}: use 1 to {MAX_PREFIX_LEN} characters among \
                 letters, digits, '-', '_', '.', ':'"
            )));
        }
        if self.prefetch == 0 {
            // basic.qos 0 means "unlimited", the opposite of what a 0 would suggest.
            return Err(QueueError::Broker("prefetch must be at least 1".into()));
        }
        if self.retry_delays.len() > 99 {
            return Err(QueueError::Broker("at most 99 retry delays".into()));
        }
        if self.history_max_age < Duration::from_secs(1) {
            return Err(QueueError::Broker(
                "history max age must be at least one second".into(),
            ));
        }
        Ok(())
    }
}

/// Every name of one installation's topology (all derived from the prefix).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct QueueNames {
    /// The work queue (quorum).
    pub jobs: String,
    /// Jobs that cannot be done, with their reason (quorum).
    pub parked: String,
    /// `retries[n]` holds jobs waiting `retry_delays[n]` before going back to `jobs`.
    pub retries: Vec<String>,
    /// The run history stream (run announcements and job results).
    pub history: String,
    /// The topic exchange results and run announcements are published to.
    pub events: String,
    /// Source digests the scheduler asks the workers for (see `digest_asker.rs`).
    pub digests: String,
}

impl QueueNames {
    /// Every queue (not the exchange), in the order a status display wants them.
    pub fn queues(&self) -> Vec<&str> {
        let mut all = vec![self.jobs.as_str()];
        all.extend(self.retries.iter().map(String::as_str));
        all.push(&self.parked);
        all.push(&self.history);
        all.push(&self.digests);
        all
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn credentials_are_redacted_from_the_url_and_the_debug_output() {
        let config = AmqpConfig {
            url: "amqp://admin:s3cret@rabbit.example:5672/%2f".into(),
            ..AmqpConfig::default()
        };
        assert_eq!(config.redacted_url(), "amqp://rabbit.example:5672/%2f");
        assert!(!format!("{config:?}").contains("s3cret"));
        assert_eq!(redact("not a url s3cret"), "<unparseable AMQP URL>");
    }

    #[test]
    fn names_derive_from_the_prefix() {
        let config = AmqpConfig {
            prefix: "p".into(),
            ..AmqpConfig::default()
        };
        let names = config.names();
        assert_eq!(
            names.retries,
            ["p.retry.10000ms", "p.retry.60000ms", "p.retry.300000ms"]
        );
        assert_eq!(
            names.queues(),
            [
                "p.jobs",
                "p.retry.10000ms",
                "p.retry.60000ms",
                "p.retry.300000ms",
                "p.parked",
                "p.history",
                "p.digests"
            ]
        );
        assert_eq!(config.attempts(), 4);
        assert!(config.validate().is_ok());
        let bad = AmqpConfig {
            prefix: "a b".into(),
            ..config
        };
        assert!(bad.validate().is_err());
    }
}
