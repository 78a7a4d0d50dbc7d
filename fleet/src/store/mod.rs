//! The fleet store: the fleet-wide knowledge in Redis: blob locations and upload leases (the [`BlobIndex`] of a
//! fleet), what destination and source tags pointed at (cheap no-op runs), run progress
//! counters (they survive a scheduler restart) and per-registry throttling shared by every
//! worker.
//!
//! Redis is an accelerator, never the truth (`docs/behaviour.md`, "Distributed mode").
//! Nothing here returns an error: every call has a short timeout, and when Redis is slow or
//! down the process carries on with a per-process equivalent (no blob knowledge, in-process
//! upload locks, an in-memory throttle) and logs that once. While Redis is down, calls fail
//! fast and one call per `retry_interval` probes it; the first probe that succeeds logs
//! "Redis is back" and everything uses Redis again.
//!
//! Every key about one destination registry carries the hash tag `{<registry>}`, so the Lua
//! scripts that touch several keys of a registry stay in one Redis Cluster slot; the layout is
//! in [`keys`](self::keys).
//!
//! [`BlobIndex`]: mirror_common::index::BlobIndex

mod blobs;
mod conn;
mod counters;
mod fallback;
mod keys;
mod lease;
mod quirks;
mod refused;
mod tags;
mod throttle;

use std::sync::Arc;
use std::time::Duration;

use mirror_common::job::JobResult;
use mirror_common::reference::ImageRef;
use mirror_common::report::TagStatus;

pub use blobs::RedisIndex;
pub use counters::{RunCounters, RunProgress};
pub use quirks::RedisQuirks;
pub use refused::RedisRefused;
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

    /// [`Redis::connect`], except that Redis refusing the credentials (`NOAUTH`,
    /// `WRONGPASS`) is an error: a misconfiguration fails the start, while a Redis that is
    /// down still degrades (see [`RedisRefused`] for why).
    pub async fn connect_checked(config: RedisConfig) -> Result<Redis, RedisRefused> {
        let shared = Arc::new(Shared::new(config));
        if let Some(why) = shared.refusal().await {
            return Err(RedisRefused {
                url: refused::redact(&shared.config.url),
                why,
            });
        }
        shared.ping().await;
        Ok(Redis { shared })
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

    /// What workers learnt about registries (chunked uploads, mounts), shared.
    pub fn quirks(&self) -> RedisQuirks {
        RedisQuirks::new(self.shared.clone())
    }

    /// Fleet-wide pauses and rate limits per registry.
    pub fn throttle(&self) -> Throttle {
        Throttle::new(self.shared.clone())
    }

    /// After a job: remember what its destination tags now point at (cheap no-op runs) and
    /// count it in its run. `destinations` are the job's, whose results are in `result`.
    pub async fn record_result(&self, destinations: &[ImageRef], result: &JobResult) {
        let by_name: std::collections::HashMap<String, &ImageRef> =
            destinations.iter().map(|d| (d.to_string(), d)).collect();
        let mut tags = Vec::new();
        let cache = self.tags();
        for t in &result.report.tags {
            let Some(dst) = by_name.get(&t.destination) else {
                continue;
            };
            let Some(tag) = &dst.tag else { continue };
            match (t.status, &t.digest) {
                (TagStatus::Pushed | TagStatus::UpToDate, Some(digest)) => {
                    tags.push((&dst.registry, &dst.repository, tag, digest));
                }
                // What a failed tag points at is unknown now: let the next run look.
                (TagStatus::Failed, _) => {
                    cache
                        .forget_dest_digest(&dst.registry, &dst.repository, tag)
                        .await
                }
                _ => {}
            }
        }
        cache.set_dest_digests(&tags).await;
        self.counters().add(result.run_id, &result.report).await;
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
