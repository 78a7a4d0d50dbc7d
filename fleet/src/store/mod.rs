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
mod config;
mod conn;
mod counters;
mod fallback;
mod keys;
mod lease;
mod pending;
mod quirks;
mod refused;
mod state;
mod tags;
mod throttle;

use std::sync::Arc;

use mirror_common::job::JobResult;
use mirror_common::reference::ImageRef;
use mirror_common::state::{tag_updates, TagUpdate};

pub use blobs::RedisIndex;
pub use config::RedisConfig;
pub use counters::{RunCounters, RunFailure, RunProgress, RunRecord, FAILURES_KEPT, REASON_KEPT};
pub use pending::PendingTags;
pub use quirks::RedisQuirks;
pub use refused::RedisRefused;
pub use tags::TagCache;
pub use throttle::Throttle;

use conn::Shared;

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

    /// Markers of the destination tags published jobs still hold.
    pub fn pending(&self) -> PendingTags {
        PendingTags::new(self.shared.clone())
    }

    /// Fleet-wide pauses and rate limits per registry.
    pub fn throttle(&self) -> Throttle {
        Throttle::new(self.shared.clone())
    }

    /// After a job's result is out: remember what its destination tags now point at (cheap
    /// no-op runs), free them for later runs (their pending markers), and count the job in
    /// its run. `destinations` are the job's, whose results are in `result`.
    pub async fn record_result(&self, destinations: &[ImageRef], result: &JobResult) {
        let mut tags = Vec::new();
        let cache = self.tags();
        for update in tag_updates(destinations, result) {
            match update {
                TagUpdate::Points(tag, digest) => tags.push((tag.0, tag.1, tag.2, digest)),
                TagUpdate::Unknown((registry, repository, tag)) => {
                    cache.forget_dest_digest(registry, repository, tag).await
                }
            }
        }
        cache.set_dest_digests(&tags).await;
        let held: Vec<(&str, &str, &str)> = destinations
            .iter()
            .map(|d| {
                (
                    d.registry.as_str(),
                    d.repository.as_str(),
                    d.manifest_reference(),
                )
            })
            .collect();
        self.pending().release(&held).await;
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
