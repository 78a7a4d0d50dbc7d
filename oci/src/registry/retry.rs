//! Retry policy: exponential backoff with full jitter, bounded attempts, and the registry's
//! own `Retry-After` taking precedence when it gives one (registries throttle with 429).

use std::time::{Duration, SystemTime};

use rand::Rng;
use reqwest::header::{HeaderMap, RETRY_AFTER};

/// How often and how patiently a failed request is tried again.
#[derive(Clone, Debug)]
pub struct RetryPolicy {
    /// Total tries of one request, the first included (1 = no retry).
    pub max_attempts: u32,
    /// Delay before the first retry; doubles on each further one.
    pub base_delay: Duration,
    /// Upper bound of one computed delay and of an honoured `Retry-After`.
    pub max_delay: Duration,
}

impl RetryPolicy {
    /// Default [`max_attempts`](Self::max_attempts).
    pub const MAX_ATTEMPTS: u32 = 5;
    /// Default [`base_delay`](Self::base_delay).
    pub const BASE_DELAY: Duration = Duration::from_millis(250);
    /// Default [`max_delay`](Self::max_delay).
    pub const MAX_DELAY: Duration = Duration::from_secs(60);
}

impl Default for RetryPolicy {
    fn default() -> Self {
        RetryPolicy {
            max_attempts: Self::MAX_ATTEMPTS,
            base_delay: Self::BASE_DELAY,
            max_delay: Self::MAX_DELAY,
        }
    }
}

impl RetryPolicy {
    /// Delay before retry number `attempt` (1-based): the server's `Retry-After` when given,
    /// else a random point in `[base * 2^(attempt-1) / 2, base * 2^(attempt-1)]`.
    pub fn delay(&self, attempt: u32, retry_after: Option<Duration>) -> Duration {
        if let Some(d) = retry_after {
            return d.min(self.max_delay);
        }
        let exp = self
            .base_delay
            .saturating_mul(1u32 << attempt.saturating_sub(1).min(16));
        let cap = exp.min(self.max_delay);
        let half = cap / 2;
        half + rand::rng().random_range(Duration::ZERO..=half)
    }
}

/// `Retry-After` as a duration: either delta-seconds or an HTTP date.
pub fn retry_after(headers: &HeaderMap) -> Option<Duration> {
    let value = headers.get(RETRY_AFTER)?.to_str().ok()?.trim();
    if let Ok(secs) = value.parse::<u64>() {
        return Some(Duration::from_secs(secs));
    }
    let when = httpdate::parse_http_date(value).ok()?;
    Some(
        when.duration_since(SystemTime::now())
            .unwrap_or(Duration::ZERO),
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use reqwest::header::HeaderValue;

    #[test]
    fn retry_after_seconds_and_dates_are_understood() {
        let mut h = HeaderMap::new();
        h.insert(RETRY_AFTER, HeaderValue::from_static("7"));
        assert_eq!(retry_after(&h), Some(Duration::from_secs(7)));
        let future = SystemTime::now() + Duration::from_secs(30);
        h.insert(
            RETRY_AFTER,
            HeaderValue::from_str(&httpdate::fmt_http_date(future)).unwrap(),
        );
        let d = retry_after(&h).unwrap();
        assert!(
            d > Duration::from_secs(25) && d <= Duration::from_secs(30),
            "{d:?}"
        );
    }

    #[test]
    fn backoff_grows_and_is_capped() {
        let p = RetryPolicy {
            max_attempts: 10,
            base_delay: Duration::from_millis(100),
            max_delay: Duration::from_secs(1),
        };
        let d1 = p.delay(1, None);
        assert!(d1 >= Duration::from_millis(50) && d1 <= Duration::from_millis(100));
        let d4 = p.delay(4, None);
        assert!(d4 >= Duration::from_millis(400) && d4 <= Duration::from_millis(800));
        assert!(p.delay(30, None) <= Duration::from_secs(1));
        assert_eq!(
            p.delay(1, Some(Duration::from_secs(5))),
            Duration::from_secs(1),
            "Retry-After is capped too"
        );
    }
}
