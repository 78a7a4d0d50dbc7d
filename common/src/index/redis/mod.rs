//! The fleet-wide knowledge in Redis: blob locations and upload leases (the [`BlobIndex`] of a
//! fleet), what destination and source tags pointed at (cheap no-op runs), run progress
//! counters (they survive a scheduler restart) and per-registry throttling shared by every
//! worker.
//!
//! Redis is an accelerator, never the truth (SPEC, "Distributed mode"). Nothing here returns
//! an error: every call has a short timeout, and when Redis is slow or down the process
//! carries on with a per-process equivalent (no blob knowledge, in-process upload locks, an
//! in-memory throttle) and logs that once. While Redis is down, calls fail fast and one call
//! per `retry_interval` probes it; the first probe that succeeds logs "Redis is back" and
//! everything uses Redis again.
//!
//! Every key about one destination registry carries the hash tag `{<registry>}`, so the Lua
//! scripts that touch several keys of a registry stay in one Redis Cluster slot; the layout is
//! in [`keys`](self::keys).
//!
//! [`BlobIndex`]: crate::index::BlobIndex

mod blobs;
mod conn;
mod counters;
mod fallback;
mod keys;
mod lease;
mod tags;
mod throttle;

use std::sync::Arc;
use std::time::Duration;

pub use blobs::RedisIndex;
pub use counters::{RunCounters, RunProgress};
pub use tags::TagCache;
pub use throttle::Throttle;

use conn::Shared;

/// How to reach Redis and how long what is kept there lives.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RedisConfig {
    /// `redis://[user:password@]host:port[/db]`.
    pub url: String,
    /// Put in front of every key, so several fleets (or tests) can share one Redis.
    pub prefix: String,
    /// How long blob locations, tag digests and run counters live after their last write.
    /// Stale entries only cost a declined mount or an extra HEAD, so days are fine.
    pub ttl: Duration,
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
            url: "redis://127.0.0.1:6379".into(),
            prefix: "mirror".into(),
            ttl: Duration::from_secs(7 * 24 * 3600),
            lease_ttl: Duration::from_secs(30),
            op_timeout: Duration::from_millis(500),
            retry_interval: Duration::from_secs(1),
        }
    }
}

/// The shared Redis connection of a process and whether Redis is currently usable. Cheap to
/// clone; every handle made from it shares one multiplexed, self-reconnecting connection.
#[derive(Clone)]
pub struct Redis {
    shared: Arc<Shared>,
}

impl Redis {
    /// Connects to Redis. Never fails: when Redis is down (or the URL is wrong) the handle
    /// starts degraded, works per process, and tries Redis again lazily.
    pub async fn connect(config: RedisConfig) -> Redis {
        let shared = Arc::new(Shared::new(config));
        shared.ping().await;
        Redis { shared }
    }

    /// The blob index of the fleet (blob locations and upload leases).
    pub fn index(&self) -> RedisIndex {
        RedisIndex::new(self.shared.clone())
    }

    /// What destination and source tags pointed at.
    pub fn tags(&self) -> TagCache {
        TagCache::new(self.shared.clone())
    }

    /// Progress counters of runs.
    pub fn counters(&self) -> RunCounters {
        RunCounters::new(self.shared.clone())
    }

    /// Fleet-wide pauses and rate limits per registry.
    pub fn throttle(&self) -> Throttle {
        Throttle::new(self.shared.clone())
    }

    /// True while the last Redis call failed (the process works without Redis).
    pub fn is_degraded(&self) -> bool {
        self.shared.is_degraded()
    }

    /// The configuration this handle was made with.
    pub fn config(&self) -> &RedisConfig {
        &self.shared.config
    }
}

impl std::fmt::Debug for Redis {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Redis")
            .field("prefix", &self.shared.config.prefix)
            .field("degraded", &self.is_degraded())
            .finish_non_exhaustive()
    }
}
