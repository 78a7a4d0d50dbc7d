//! Pull quotas announced in response headers, as Docker Hub does
//! (`ratelimit-limit: 100;w=21600`, `ratelimit-remaining: 76;w=21600`): the remaining
//! quota goes to the observer (a metric per registry), and once a registry says none is
//! left, its manifest GETs (what the quota counts) fail at once as throttled, without
//! being sent, until the quota window has passed: the alternative is a 429 per request for
//! hours, which Docker Hub counts against the account.

use parking_lot::Mutex;
use std::collections::HashMap;
use std::time::{Duration, Instant};

use reqwest::header::HeaderMap;

/// When a registry announces no window, how long an exhausted quota is believed.
const DEFAULT_WINDOW: Duration = Duration::from_secs(3600);

/// `ratelimit-remaining` of a response: the count and its window, if announced.
pub(crate) fn remaining(headers: &HeaderMap) -> Option<(u64, Option<Duration>)> {
    let v = headers.get("ratelimit-remaining")?.to_str().ok()?;
    let mut parts = v.split(';');
    let n = parts.next()?.trim().parse().ok()?;
    let window = parts
        .filter_map(|p| p.trim().strip_prefix("w="))
        .find_map(|w| w.parse::<u64>().ok())
        .map(Duration::from_secs);
    Some((n, window))
}

/// Registries whose quota is used up, until when.
#[derive(Default)]
pub(crate) struct Quotas {
    exhausted: Mutex<HashMap<String, Instant>>,
}

impl Quotas {
    /// Records what a response said of `registry`'s quota.
    pub(crate) fn update(&self, registry: &str, remaining: u64, window: Option<Duration>) {
        let mut map = self.exhausted.lock();
        if remaining == 0 {
            let until = Instant::now() + window.unwrap_or(DEFAULT_WINDOW);
            if map.insert(registry.to_string(), until).is_none() {
                tracing::warn!(
                    registry,
                    "the registry's pull quota is used up (ratelimit-remaining: 0): its manifest pulls fail as throttled until the window passes; authenticate for a larger quota"
                );
            }
        } else {
            map.remove(registry);
        }
    }

    /// Whether `registry` said its quota is used up, and the window has not passed.
    pub(crate) fn exhausted(&self, registry: &str) -> bool {
        let mut map = self.exhausted.lock();
        match map.get(registry) {
            Some(until) if *until > Instant::now() => true,
            Some(_) => {
                map.remove(registry);
                false
            }
            None => false,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use reqwest::header::HeaderValue;

    #[test]
    fn remaining_reads_the_count_and_its_window() {
        let mut h = HeaderMap::new();
        assert_eq!(remaining(&h), None);
        h.insert(
            "ratelimit-remaining",
            HeaderValue::from_static("76;w=21600"),
        );
        assert_eq!(remaining(&h), Some((76, Some(Duration::from_secs(21600)))));
        h.insert("ratelimit-remaining", HeaderValue::from_static("3"));
        assert_eq!(remaining(&h), Some((3, None)));
    }

    #[test]
    fn an_exhausted_quota_holds_until_a_response_says_otherwise() {
        let q = Quotas::default();
        q.update("docker.io", 0, Some(Duration::from_secs(60)));
        assert!(q.exhausted("docker.io"));
        assert!(!q.exhausted("quay.io"));
        q.update("docker.io", 5, None);
        assert!(!q.exhausted("docker.io"));
    }
}
