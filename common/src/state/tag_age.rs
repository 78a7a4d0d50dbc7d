//! How long a tag-cache entry is trusted: the same rule in Redis and in a state file.
//!
//! An entry holds a digest and when it was pushed or seen at the tag. Whoever *reads* it
//! decides how old it may be: it is trusted while younger than the reader's max age, each
//! key for its own share of it, a point in `[max age / 2, max age]` derived from a hash of
//! the key ([`trusted_for_ms`]). The tags one big run wrote thus come due over the second
//! half of the max age, and each later run re-checks a share of them instead of all at once.
//! A hash rather than a random fraction stored by the writer: every reader agrees on each
//! key's share without reading anything more, whatever wrote the entry.

use std::time::{SystemTime, UNIX_EPOCH};

/// How long the entry under `key` is trusted by a reader whose max age is `max_ms`: a point
/// in `[max / 2, max]` (at least 1 ms) fixed by a hash of the key (FNV-1a, so every process
/// and version agrees on it).
pub fn trusted_for_ms(key: &str, max_ms: u64) -> u64 {
    let max = max_ms.max(2);
    let low = max / 2;
    let hash = key.bytes().fold(0xcbf2_9ce4_8422_2325_u64, |h, b| {
        (h ^ u64::from(b)).wrapping_mul(0x0100_0000_01b3)
    });
    low + hash % (max - low + 1)
}

/// Whether an entry under `key` checked at `checked_ms` is still trusted at `now_ms` by a
/// reader whose max age is `max_ms`.
pub fn trusted(key: &str, checked_ms: u64, now_ms: u64, max_ms: u64) -> bool {
    now_ms.saturating_sub(checked_ms) < trusted_for_ms(key, max_ms)
}

/// Milliseconds since the Unix epoch by this machine's clock.
pub fn now_ms() -> u64 {
    let since = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap_or_default();
    u64::try_from(since.as_millis()).unwrap_or(u64::MAX)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_key_is_trusted_for_its_own_point_between_half_and_all_of_the_max_age() {
        let max = 4 * 3600 * 1000;
        let shares: Vec<u64> = (0..1000)
            .map(|i| trusted_for_ms(&format!("p:{{r.io}}:tag:team/app:v{i}"), max))
            .collect();
        assert!(shares.iter().all(|s| (max / 2..=max).contains(s)));
        let early = shares.iter().filter(|&&s| s < max * 3 / 4).count();
        assert!(
            (350..650).contains(&early),
            "spread over the range: {early}"
        );
        assert_eq!(
            trusted_for_ms("p:{r.io}:tag:a:1", max),
            trusted_for_ms("p:{r.io}:tag:a:1", max),
            "the same key, the same share"
        );
        assert!((1..=2).contains(&trusted_for_ms("k", 1)));
    }

    #[test]
    fn an_entry_is_trusted_until_its_share_of_the_max_age_has_passed() {
        let (key, max) = ("r.io/team/app:v1", 1000);
        let share = trusted_for_ms(key, max);
        assert!(trusted(key, 5000, 5000 + share - 1, max));
        assert!(!trusted(key, 5000, 5000 + share, max));
        assert!(
            trusted(key, 9000, 5000, max),
            "a writer's clock ahead: age 0"
        );
    }
}
