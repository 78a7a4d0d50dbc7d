//! Upload leases: one uploader of a blob per destination registry across the fleet.
//!
//! A lease is `SET <p>:{<registry>}:lease:<digest> <token> NX PX lease_ttl` with a random
//! token. Its holder keeps it alive from a background task (extend only while the value is
//! still its token) and releases it with a compare-and-delete, so a late release never
//! removes someone else's lease. A holder that dies stops extending; its lease expires after
//! `lease_ttl` and a waiter takes over. Waiters poll (a lease has no "released" event that
//! works across a Redis restart), and give up waiting after `2 × lease_ttl`: they then take
//! the lease over, because an upload that slow is better duplicated than waited for forever.
//!
//! Tasks of one process first queue on an in-process lock: they do not poll Redis against
//! each other, and when Redis is down that lock is all that is left (per-process
//! single-flight).

use std::sync::{Arc, LazyLock, Weak};
use std::time::{Duration, Instant};

use redis::Script;
use tokio::sync::oneshot;
use uuid::Uuid;

use super::conn::{millis, Shared};
use mirror_common::index::{BlobIndex, UploadLock};

/// How often a waiter looks whether the lease is free, before jitter.
const POLL: Duration = Duration::from_millis(90);
/// Up to this much is added to each poll, so waiters of many processes do not march in step.
const POLL_JITTER_MS: u64 = 30;

/// Extends the lease only if it is still ours (1), else tells that it was lost (0).
static EXTEND: LazyLock<Script> = LazyLock::new(|| {
    Script::new(
        r"if redis.call('GET', KEYS[1]) == ARGV[1] then
            return redis.call('PEXPIRE', KEYS[1], ARGV[2])
          end
          return 0",
    )
});

/// Deletes the lease only if it is still ours.
static RELEASE: LazyLock<Script> = LazyLock::new(|| {
    Script::new(
        r"if redis.call('GET', KEYS[1]) == ARGV[1] then
            return redis.call('DEL', KEYS[1])
          end
          return 0",
    )
});

/// What the caller of `lock_upload` holds while it owns a Redis lease. Dropping it closes
/// the channel, which makes the keepalive task release the lease (drop never blocks).
struct LeaseGuard {
    _stop: oneshot::Sender<()>,
}

/// Waits for the in-process lock, then for the fleet-wide lease of `digest` at `registry`.
pub(crate) async fn lock(shared: &Arc<Shared>, registry: &str, digest: &str) -> UploadLock {
    let local = shared.local_locks.lock_upload(registry, digest).await;
    let mut waited = local.waited;
    let key = shared.keys.lease(registry, digest);
    let token = Uuid::new_v4().to_string();
    let ttl = shared.config.lease_ttl;
    let deadline = Instant::now() + ttl * 2;
    let mut told = false;
    loop {
        let take_over = Instant::now() >= deadline;
        let mut set = redis::cmd("SET");
        set.arg(&key).arg(&token);
        if !take_over {
            set.arg("NX");
        }
        set.arg("PX").arg(millis(ttl));
        let taken: Option<Option<String>> = shared
            .call(
                "SET lease",
                |mut c| async move { set.query_async(&mut c).await },
            )
            .await;
        match taken {
            // Redis is down: the in-process lock is all the single-flight there is.
            None => return UploadLock::new(local, waited),
            Some(Some(_)) => {
                if take_over {
                    tracing::warn!(registry, digest, waited = ?ttl * 2, "took over an upload lease that was held too long");
                }
                break;
            }
            Some(None) => {
                waited = true;
                if !told {
                    told = true;
                    tracing::info!(
                        registry,
                        digest,
                        wait_at_most_s = (ttl * 2).as_secs(),
                        "another worker is uploading this blob; waiting for it, then mounting"
                    );
                }
                let left = deadline.saturating_duration_since(Instant::now());
                let poll = POLL + Duration::from_millis(rand::random_range(0..=POLL_JITTER_MS));
                tokio::time::sleep(poll.min(left)).await;
            }
        }
    }
    let (stop, stopped) = oneshot::channel();
    let lease = Lease {
        shared: Arc::downgrade(shared),
        key,
        token,
        ttl,
    };
    tokio::spawn(lease.keep_alive(stopped, local));
    UploadLock::new(LeaseGuard { _stop: stop }, waited)
}

/// A lease this process holds.
struct Lease {
    /// Weak: the lease must not keep a dropped client alive. A process whose client is gone
    /// behaves like a dead one, its lease expires.
    shared: Weak<Shared>,
    key: String,
    token: String,
    ttl: Duration,
}

impl Lease {
    /// Extends the lease every `ttl / 3` until the guard is dropped, then releases it, and
    /// only then lets the next task of this process in (it would find the lease still taken
    /// otherwise and poll once for nothing).
    async fn keep_alive(self, mut stopped: oneshot::Receiver<()>, local: UploadLock) {
        let every = (self.ttl / 3).max(Duration::from_millis(10));
        let mut lost = false;
        loop {
            tokio::select! {
                _ = &mut stopped => break,
                _ = tokio::time::sleep(every), if !lost => {
                    let Some(shared) = self.shared.upgrade() else { return };
                    let mut extend = EXTEND.prepare_invoke();
                    extend.key(&self.key).arg(&self.token).arg(millis(self.ttl));
                    let extended: Option<i64> = shared
                        .call("extend lease", |mut c| async move { extend.invoke_async(&mut c).await })
                        .await;
                    // None: Redis did not answer; try again next time, the lease may live on.
                    if extended == Some(0) {
                        tracing::debug!(key = %self.key, "upload lease lost (expired or taken over)");
                        lost = true;
                    }
                }
            }
        }
        if let Some(shared) = self.shared.upgrade() {
            let mut release = RELEASE.prepare_invoke();
            release.key(&self.key).arg(&self.token);
            let _: Option<i64> = shared
                .call("release lease", |mut c| async move {
                    release.invoke_async(&mut c).await
                })
                .await;
        }
        drop(local);
    }
}
