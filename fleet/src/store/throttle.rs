//! Fleet-wide throttling per registry: when one worker is told to back off (429 with
//! `Retry-After`), every worker pauses; and an optional request rate is shared by the whole
//! fleet instead of being multiplied by the number of workers.
//!
//! Both live in one Lua script over `<p>:{<registry>}:pause` and `<p>:{<registry>}:bucket`
//! (one cluster slot thanks to the hash tag). The bucket refills from Redis's own clock
//! (`TIME`), so workers with skewed clocks agree. Without a rate limit, a process asks
//! about a registry's pause at most once per [`CLEAR_FOR`]: not once per request.

use std::sync::{Arc, LazyLock};
use std::time::Duration;

use redis::Script;

use super::conn::{millis, Shared};

/// How long a "not paused" answer stands for requests without a rate limit (see
/// `LocalThrottle::seen_clear`): at most ten pause checks a second per registry and
/// process, and a pause set by another worker reaches this one's new requests within
/// 100 ms (250 ms let requests of the other worker land inside a 429's Retry-After).
const CLEAR_FOR: Duration = Duration::from_millis(100);

/// Added to every wait, so waiters of many processes do not all retry at the same instant.
const JITTER_MS: u64 = 15;

/// Returns 0 when the caller may go, else how many milliseconds to wait: what is left of a
/// pause, or until the bucket holds a token. A new bucket holds one token (no burst when a
/// fleet starts) and fills up to `max(1, rate)` while idle.
static ACQUIRE: LazyLock<Script> = LazyLock::new(|| {
    Script::new(
        r"local paused = redis.call('PTTL', KEYS[1])
          if paused > 0 then return paused end
          local rate = tonumber(ARGV[1])
          if rate == nil or rate <= 0 then return 0 end
          local capacity = math.max(1, rate)
          local t = redis.call('TIME')
          local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
          local b = redis.call('HMGET', KEYS[2], 'tokens', 'ts')
          local tokens = tonumber(b[1]) or 1
          local ts = tonumber(b[2]) or now
          if now > ts then tokens = math.min(capacity, tokens + (now - ts) * rate / 1000) end
          local wait = 0
          if tokens >= 1 then
            tokens = tokens - 1
          else
            wait = math.ceil((1 - tokens) * 1000 / rate)
          end
          redis.call('HSET', KEYS[2], 'tokens', tostring(tokens), 'ts', tostring(now))
          redis.call('PEXPIRE', KEYS[2], math.ceil(capacity * 1000 / rate) + 60000)
          return wait",
    )
});

/// Sets the pause unless one that ends later is already there; returns the pause in effect.
static PAUSE: LazyLock<Script> = LazyLock::new(|| {
    Script::new(
        r"local want = tonumber(ARGV[1])
          local left = redis.call('PTTL', KEYS[1])
          if left < want then
            redis.call('SET', KEYS[1], '1', 'PX', want)
            return want
          end
          return left",
    )
});

/// Pauses and rate limits per registry, fleet-wide.
#[derive(Clone)]
pub struct Throttle {
    shared: Arc<Shared>,
}

impl Throttle {
    pub(crate) fn new(shared: Arc<Shared>) -> Self {
        Throttle { shared }
    }

    /// Waits until a request to `registry` may go: no pause in effect and, with a `rate`
    /// (requests per second, fleet-wide), a token taken from the bucket.
    pub async fn acquire(&self, registry: &str, rate: Option<f64>) {
        let rate = rate.filter(|r| r.is_finite() && *r > 0.0);
        let pause = self.shared.keys.pause(registry);
        let bucket = self.shared.keys.bucket(registry);
        loop {
            // A pause this process was told about holds even if Redis lost it (restart).
            if let Some(left) = self.shared.local_throttle.pause_left(registry) {
                tokio::time::sleep(left).await;
                continue;
            }
            // With a rate every request takes a token from Redis (at most `rate` calls a
            // second, fleet-wide); without one, only pauses matter, and a recent answer does.
            if rate.is_none() && self.shared.local_throttle.known_clear(registry) {
                return;
            }
            let mut acquire = ACQUIRE.prepare_invoke();
            acquire.key(&pause).key(&bucket).arg(rate.unwrap_or(0.0));
            let wait: Option<i64> = self
                .shared
                .call("throttle", |mut c| async move {
                    acquire.invoke_async(&mut c).await
                })
                .await;
            let wait = match wait {
                Some(ms) if ms <= 0 => {
                    if rate.is_none() {
                        self.shared.local_throttle.seen_clear(registry, CLEAR_FOR);
                    }
                    return;
                }
                Some(ms) => Duration::from_millis(u64::try_from(ms).unwrap_or(0)),
                // Redis is down: this process's own bucket.
                None => match rate.and_then(|r| self.shared.local_throttle.take(registry, r)) {
                    None => return,
                    Some(wait) => wait,
                },
            };
            let jitter = Duration::from_millis(rand::random_range(0..=JITTER_MS));
            tokio::time::sleep(wait + jitter).await;
        }
    }

    /// Pauses every request to `registry`, fleet-wide, for `duration` from now (a longer
    /// pause already in effect is kept).
    pub async fn pause(&self, registry: &str, duration: Duration) {
        if duration.is_zero() {
            return;
        }
        self.shared.local_throttle.pause(registry, duration);
        let key = self.shared.keys.pause(registry);
        let mut pause = PAUSE.prepare_invoke();
        pause.key(&key).arg(millis(duration));
        let _: Option<i64> = self
            .shared
            .call(
                "pause",
                |mut c| async move { pause.invoke_async(&mut c).await },
            )
            .await;
    }

    /// What is left of a pause of `registry`, if any (Redis's, else this process's).
    pub async fn paused_for(&self, registry: &str) -> Option<Duration> {
        let key = self.shared.keys.pause(registry);
        let remote: Option<i64> = self
            .shared
            .call("PTTL", |mut c| async move {
                redis::cmd("PTTL").arg(&key).query_async(&mut c).await
            })
            .await;
        let remote = remote
            .and_then(|ms| u64::try_from(ms).ok())
            .filter(|&ms| ms > 0)
            .map(Duration::from_millis);
        let local = self.shared.local_throttle.pause_left(registry);
        remote.max(local)
    }
}
