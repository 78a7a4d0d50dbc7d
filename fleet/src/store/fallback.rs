//! The per-process stand-in for the fleet-wide throttle while Redis is down: the same pause
//! and token bucket, in memory, so one process still honours a registry's `Retry-After` and
//! its rate limit (the fleet as a whole may then go faster, never a single process). It
//! also remembers, for a moment, that Redis said a registry is not paused (see
//! [`LocalThrottle::seen_clear`]).

use parking_lot::Mutex;
use std::collections::HashMap;
use std::time::{Duration, Instant};

/// Pauses and token buckets of one process, per registry.
#[derive(Default)]
pub(crate) struct LocalThrottle {
    registries: Mutex<HashMap<String, State>>,
}

struct State {
    paused_until: Option<Instant>,
    /// Until when Redis's word that the registry is not paused is taken without asking.
    clear_until: Option<Instant>,
    tokens: f64,
    refilled: Instant,
}

impl State {
    fn new(now: Instant) -> Self {
        // One token to start with, like the Redis bucket: no burst when processes start.
        State {
            paused_until: None,
            clear_until: None,
            tokens: 1.0,
            refilled: now,
        }
    }
}

impl LocalThrottle {
    /// Pauses `registry` for `duration` from now, unless it is paused for longer already.
    pub(crate) fn pause(&self, registry: &str, duration: Duration) {
        let now = Instant::now();
        let until = now + duration;
        let mut map = self.registries.lock();
        let state = map
            .entry(registry.to_string())
            .or_insert_with(|| State::new(now));
        if state.paused_until.is_none_or(|u| u < until) {
            state.paused_until = Some(until);
        }
        state.clear_until = None;
    }

    /// Records that Redis found `registry` not paused: for `for_`, a request without a rate
    /// limit goes without asking again. Without it every registry request of every worker
    /// cost a Redis round trip first; with it, one per registry and `for_` per process, and
    /// a pause another worker sets is seen at most `for_` late.
    pub(crate) fn seen_clear(&self, registry: &str, for_: Duration) {
        let now = Instant::now();
        let mut map = self.registries.lock();
        let state = map
            .entry(registry.to_string())
            .or_insert_with(|| State::new(now));
        state.clear_until = Some(now + for_);
    }

    /// True while the last [`Self::seen_clear`] of `registry` holds.
    pub(crate) fn known_clear(&self, registry: &str) -> bool {
        let now = Instant::now();
        let map = self.registries.lock();
        map.get(registry)
            .and_then(|s| s.clear_until)
            .is_some_and(|u| u > now)
    }

    /// How long `registry` is still paused for, if it is.
    pub(crate) fn pause_left(&self, registry: &str) -> Option<Duration> {
        let now = Instant::now();
        let map = self.registries.lock();
        map.get(registry)
            .and_then(|s| s.paused_until)
            .filter(|&u| u > now)
            .map(|u| u - now)
    }

    /// Takes a token at `rate` per second: `None` when granted, else how long to wait
    /// before trying again.
    pub(crate) fn take(&self, registry: &str, rate: f64) -> Option<Duration> {
        let now = Instant::now();
        let capacity = rate.max(1.0);
        let mut map = self.registries.lock();
        let state = map
            .entry(registry.to_string())
            .or_insert_with(|| State::new(now));
        let elapsed = now.duration_since(state.refilled).as_secs_f64();
        state.tokens = (state.tokens + elapsed * rate).min(capacity);
        state.refilled = now;
        if state.tokens >= 1.0 {
            state.tokens -= 1.0;
            None
        } else {
            Some(Duration::from_secs_f64((1.0 - state.tokens) / rate))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pause_only_extends_and_bucket_limits_the_rate() {
        let t = LocalThrottle::default();
        assert!(t.pause_left("r").is_none());
        t.pause("r", Duration::from_secs(10));
        t.pause("r", Duration::from_secs(1));
        assert!(t
            .pause_left("r")
            .is_some_and(|d| d > Duration::from_secs(5)));
        assert!(t.take("q", 5.0).is_none(), "the first token is there");
        t.seen_clear("c", Duration::from_secs(60));
        assert!(t.known_clear("c"));
        t.pause("c", Duration::from_secs(1));
        assert!(!t.known_clear("c"), "a pause of its own is not forgotten");
        let wait = t.take("q", 5.0).expect("the second must wait");
        assert!(wait <= Duration::from_millis(200), "{wait:?}");
    }
}
