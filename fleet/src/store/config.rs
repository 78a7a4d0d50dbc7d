//! How a process reaches Redis and how long what it keeps there lives.

use std::time::Duration;

/// How to reach Redis and how long what is kept there lives.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RedisConfig {
    /// `redis://[user:password@]host:port[/db]`.
    pub url: String,
    /// Put in front of every key, so several fleets (or tests) can share one Redis.
    pub prefix: String,
    /// How long blob locations and run counters live after their last write. Stale blob
    /// locations only cost a declined mount or an extra HEAD, so days are fine.
    pub ttl: Duration,
    /// How long this process trusts the digest of a destination tag without a HEAD (each
    /// entry for a share of it between half and all, fixed by its key), counted from when
    /// the entry was written, whoever wrote it: a tag changed or lost behind the fleet's back
    /// is found and repaired within this age of the reader's, without `--verify`. The
    /// entries this process writes also expire from Redis after their share of it (cleanup).
    pub tag_max_age: Duration,
    /// How long an upload lease outlives its holder: a worker that dies mid-upload blocks
    /// other uploaders of that blob for at most this long.
    pub lease_ttl: Duration,
    /// The longest any single Redis call may take before the process goes on without it.
    pub op_timeout: Duration,
    /// While Redis is unreachable, how often one call tries it again (the others go straight
    /// to the per-process fallback instead of each waiting for a timeout).
    pub retry_interval: Duration,
}

impl RedisConfig {
    /// Default [`url`](Self::url).
    pub const DEFAULT_URL: &'static str = "redis://127.0.0.1:6379";
    /// Default [`prefix`](Self::prefix), the same as the queues' default prefix.
    pub const DEFAULT_PREFIX: &'static str = "image-mirror";
    /// Default [`ttl`](Self::ttl): a week.
    pub const DEFAULT_TTL: Duration = Duration::from_secs(7 * 24 * 3600);
    /// Default [`tag_max_age`](Self::tag_max_age): four hours, so an hourly job re-checks
    /// each tag every two to four runs.
    pub const DEFAULT_TAG_MAX_AGE: Duration = Duration::from_secs(4 * 3600);
    /// Default [`lease_ttl`](Self::lease_ttl).
    pub const DEFAULT_LEASE_TTL: Duration = Duration::from_secs(30);

    /// The defaults with another URL.
    pub fn new(url: impl Into<String>) -> Self {
        RedisConfig {
            url: url.into(),
            ..Self::default()
        }
    }
}

impl Default for RedisConfig {
    fn default() -> Self {
        RedisConfig {
            url: Self::DEFAULT_URL.into(),
            prefix: Self::DEFAULT_PREFIX.into(),
            ttl: Self::DEFAULT_TTL,
            tag_max_age: Self::DEFAULT_TAG_MAX_AGE,
            lease_ttl: Self::DEFAULT_LEASE_TTL,
            op_timeout: Duration::from_millis(500),
            retry_interval: Duration::from_secs(1),
        }
    }
}
