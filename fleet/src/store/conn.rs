//! The connection, the degraded flag and the one place every Redis call goes through, so
//! timeouts, fail-fast while Redis is down, and the "unavailable" / "back" log lines are
//! handled once for all of the Redis-backed parts.

use parking_lot::RwLock;
use std::collections::BTreeMap;
use std::future::Future;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use redis::aio::{ConnectionManager, ConnectionManagerConfig};
use redis::{Client, ErrorKind, RedisError, RedisResult, ServerErrorKind};

use super::config::RedisConfig;
use super::fallback::LocalThrottle;
use super::keys::Keys;
use mirror_common::index::MemoryIndex;

/// State shared by every handle made from one [`super::Redis`].
pub(crate) struct Shared {
    pub config: RedisConfig,
    pub keys: Keys,
    /// In-process upload locks: taken before the Redis lease (so tasks of one process queue
    /// locally instead of polling Redis) and all that is left when Redis is down.
    pub local_locks: MemoryIndex,
    /// Pauses and buckets of this process, used when Redis is down.
    pub local_throttle: LocalThrottle,
    client: Option<Client>,
    /// Replaced after a timeout: the redis crate reconnects on a dropped connection, not on
    /// one that silently stopped answering.
    manager: RwLock<Option<ConnectionManager>>,
    degraded: AtomicBool,
    /// While degraded, milliseconds since `epoch` before which no call tries Redis.
    next_probe_ms: AtomicU64,
    epoch: Instant,
    /// When the connection manager was last replaced (milliseconds since `epoch`, 0: never).
    last_rebuild_ms: AtomicU64,
    /// A command Redis rejected (not an outage) was logged at warn level already.
    command_error_logged: AtomicBool,
}

impl Shared {
    pub(crate) fn new(config: RedisConfig) -> Self {
        let client = match Client::open(config.url.as_str()) {
            Ok(c) => Some(c),
            Err(e) => {
                // The URL may hold a password: log the error, not the URL.
                tracing::warn!(error = %e, "invalid Redis URL; working without Redis");
                None
            }
        };
        let shared = Shared {
            keys: Keys::new(&config.prefix),
            local_locks: MemoryIndex::new(),
            local_throttle: LocalThrottle::default(),
            manager: RwLock::new(None),
            degraded: AtomicBool::new(client.is_none()),
            next_probe_ms: AtomicU64::new(if client.is_none() { u64::MAX } else { 0 }),
            epoch: Instant::now(),
            last_rebuild_ms: AtomicU64::new(0),
            command_error_logged: AtomicBool::new(false),
            client,
            config,
        };
        shared.rebuild();
        shared
    }

    /// Makes a fresh connection manager; it connects on first use.
    fn rebuild(&self) {
        let Some(client) = &self.client else { return };
        let timeout = Some(self.config.op_timeout);
        // No retries inside the manager: a failed connect surfaces at once, and our own
        // probing (one call per retry_interval) decides when to try again.
        let config = ConnectionManagerConfig::new()
            .set_connection_timeout(timeout)
            .set_response_timeout(timeout)
            .set_number_of_retries(0);
        match ConnectionManager::new_lazy_with_config(client.clone(), config) {
            Ok(m) => *self.manager.write() = Some(m),
            Err(e) => tracing::warn!(error = %e, "cannot create a Redis connection manager"),
        }
    }

    /// Sends a PING so a Redis that is down at start shows as degraded right away.
    pub(crate) async fn ping(&self) {
        let _: Option<String> = self
            .call("PING", |mut c| async move {
                redis::cmd("PING").query_async(&mut c).await
            })
            .await;
    }

    /// Whether Redis refuses this URL's credentials (a connection of its own, within
    /// `op_timeout`): `None` also when Redis cannot be reached (that is an outage, handled
    /// by degrading).
    pub(crate) async fn refusal(&self) -> Option<&'static str> {
        let client = self.client.as_ref()?;
        let attempt = tokio::time::timeout(self.config.op_timeout, async {
            let mut c = client.get_multiplexed_async_connection().await?;
            redis::cmd("PING").query_async::<String>(&mut c).await
        })
        .await;
        match attempt {
            Ok(Err(e)) => super::refused::refusal(&e),
            _ => None,
        }
    }

    pub(crate) fn is_degraded(&self) -> bool {
        self.degraded.load(Ordering::Acquire)
    }

    /// Runs one Redis interaction within `op_timeout`. `None` means "Redis could not answer":
    /// the caller falls back to what it would do without Redis.
    pub(crate) async fn call<T, F, Fut>(&self, what: &'static str, f: F) -> Option<T>
    where
        F: FnOnce(ConnectionManager) -> Fut,
        Fut: Future<Output = RedisResult<T>>,
    {
        self.call_within(what, self.config.op_timeout, f).await
    }

    /// [`Self::call`] with another time limit (large batches).
    pub(crate) async fn call_within<T, F, Fut>(
        &self,
        what: &'static str,
        limit: Duration,
        f: F,
    ) -> Option<T>
    where
        F: FnOnce(ConnectionManager) -> Fut,
        Fut: Future<Output = RedisResult<T>>,
    {
        let con = self.connection()?;
        match tokio::time::timeout(limit, f(con)).await {
            Ok(Ok(value)) => {
                if self.degraded.swap(false, Ordering::AcqRel) {
                    tracing::info!("Redis is back; using it again");
                }
                Some(value)
            }
            Ok(Err(e)) if !is_outage(&e) => {
                // Redis answered but refused this command (out of memory, a wrong type under
                // our prefix...): not a reason to stop using it for everything else.
                if !self.command_error_logged.swap(true, Ordering::Relaxed) {
                    tracing::warn!(command = what, error = %e, "a Redis command failed; carrying on without its answer");
                } else {
                    tracing::debug!(command = what, error = %e, "a Redis command failed");
                }
                None
            }
            Ok(Err(e)) => {
                self.failed(what, &e.to_string(), e.is_timeout());
                None
            }
            Err(_) => {
                self.failed(what, "timed out", true);
                None
            }
        }
    }

    /// The connection to use, or `None` when Redis is known to be down and it is not yet
    /// time to try it again (only one caller per interval gets to probe).
    fn connection(&self) -> Option<ConnectionManager> {
        if self.degraded.load(Ordering::Acquire) {
            let now = self.now_ms();
            let next = self.next_probe_ms.load(Ordering::Acquire);
            if now < next {
                return None;
            }
            let after = now.saturating_add(self.retry_ms());
            if self
                .next_probe_ms
                .compare_exchange(next, after, Ordering::AcqRel, Ordering::Acquire)
                .is_err()
            {
                return None;
            }
        }
        self.manager.read().clone()
    }

    fn failed(&self, what: &'static str, error: &str, timed_out: bool) {
        self.next_probe_ms.store(
            self.now_ms().saturating_add(self.retry_ms()),
            Ordering::Release,
        );
        let was_degraded = self.degraded.swap(true, Ordering::AcqRel);
        if !was_degraded {
            tracing::warn!(
                command = what,
                error,
                "Redis is unavailable; working without it (slower, same results) until it is back"
            );
        } else {
            tracing::debug!(command = what, error, "Redis still unavailable");
        }
        // At most one rebuild per retry interval: concurrent timeouts must not churn
        // connections.
        if timed_out {
            let now = self.now_ms();
            let last = self.last_rebuild_ms.load(Ordering::Acquire);
            if (last == 0 || now.saturating_sub(last) >= self.retry_ms())
                && self
                    .last_rebuild_ms
                    .compare_exchange(last, now, Ordering::AcqRel, Ordering::Acquire)
                    .is_ok()
            {
                self.rebuild();
            }
        }
    }

    fn now_ms(&self) -> u64 {
        u64::try_from(self.epoch.elapsed().as_millis()).unwrap_or(u64::MAX)
    }

    fn retry_ms(&self) -> u64 {
        millis(self.config.retry_interval)
    }

    /// Values of `(registry, key)` pairs in input order; `None` where Redis did not answer.
    ///
    /// At most [`PIPELINE_KEYS`] keys go in one pipeline, each pipeline with its own time
    /// limit: one pipeline for a whole run (770,000 keys at 100x the real set) outgrew any
    /// sane limit and timed out, and then every tag of the run became a job again. A
    /// pipeline that fails leaves its keys unknown (checked by the workers); the others
    /// still count.
    pub(crate) async fn mget(&self, keys: &[(String, String)]) -> Vec<Option<String>> {
        let mut out = vec![None; keys.len()];
        // Positions per registry, in a stable order.
        let mut groups: BTreeMap<&str, Vec<usize>> = BTreeMap::new();
        for (i, (registry, _)) in keys.iter().enumerate() {
            groups.entry(registry.as_str()).or_default().push(i);
        }
        let chunks: Vec<&[usize]> = groups
            .values()
            .flat_map(|positions| positions.chunks(MGET_CHUNK))
            .collect();
        for pipeline in chunks.chunks(PIPELINE_KEYS / MGET_CHUNK) {
            let mut pipe = redis::pipe();
            for chunk in pipeline {
                let cmd = pipe.cmd("MGET");
                for &i in *chunk {
                    cmd.arg(&keys[i].1);
                }
            }
            let n = pipeline.iter().map(|c| c.len()).sum();
            let limit = self.batch_limit(n);
            let answers: Option<Vec<Vec<Option<String>>>> = self
                .call_within("MGET", limit, |mut c| async move {
                    pipe.query_async(&mut c).await
                })
                .await;
            let Some(answers) = answers else { continue };
            for (chunk, values) in pipeline.iter().zip(answers) {
                for (&i, v) in chunk.iter().zip(values) {
                    out[i] = v;
                }
            }
        }
        out
    }

    /// `SET key value PX ttl` for every entry, in pipelines of [`PIPELINE_KEYS`], each with
    /// its own time limit (a failed one is logged as `what` and the others still go).
    pub(crate) async fn set_all_px(&self, what: &'static str, entries: &[(String, String, u64)]) {
        for chunk in entries.chunks(PIPELINE_KEYS) {
            let mut pipe = redis::pipe();
            for (key, value, ttl) in chunk {
                pipe.cmd("SET")
                    .arg(key)
                    .arg(value)
                    .arg("PX")
                    .arg(*ttl)
                    .ignore();
            }
            let limit = self.batch_limit(chunk.len());
            let _: Option<()> = self
                .call_within(what, limit, |mut c| async move {
                    pipe.query_async(&mut c).await
                })
                .await;
        }
    }

    /// A batch gets the usual timeout plus a little per thousand keys.
    pub(crate) fn batch_limit(&self, n: usize) -> Duration {
        let thousands = u32::try_from(n / 1000).unwrap_or(u32::MAX);
        self.config.op_timeout + Duration::from_millis(50).saturating_mul(thousands)
    }
}

/// Keys per MGET: large enough to amortise round trips, small enough not to block Redis.
const MGET_CHUNK: usize = 1000;

/// Keys per pipeline of MGETs (see `Shared::mget`): one round trip of ~1 MB of answers.
const PIPELINE_KEYS: usize = 10 * MGET_CHUNK;

/// Whether an error means Redis cannot be used right now (rather than one command failing).
fn is_outage(e: &RedisError) -> bool {
    match e.kind() {
        ErrorKind::Server(kind) => matches!(
            kind,
            ServerErrorKind::BusyLoading
                | ServerErrorKind::TryAgain
                | ServerErrorKind::ClusterDown
                | ServerErrorKind::MasterDown
                | ServerErrorKind::ReadOnly
        ),
        ErrorKind::UnexpectedReturnType
        | ErrorKind::Client
        | ErrorKind::Extension
        | ErrorKind::InvalidClientConfig => false,
        _ => true,
    }
}

/// A duration as Redis milliseconds: at least 1, because `PX 0` is an error.
pub(crate) fn millis(d: Duration) -> u64 {
    u64::try_from(d.as_millis()).unwrap_or(u64::MAX).max(1)
}
