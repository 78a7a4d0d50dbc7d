//! What tags pointed at, so a run whose sources did not move costs a few Redis round trips
//! instead of a manifest request per destination tag.
//!
//! A cached digest is a hint: it can be stale if someone else moved the tag, so it may only
//! ever make the caller skip work it would otherwise verify cheaply, and it is trusted for a
//! bounded age only.
//!
//! # The entry and its age
//!
//! An entry is `<digest> <checked>`: the digest and when it was pushed or seen at the tag, in
//! milliseconds since the Unix epoch by the writer's clock (see [`encode`]). Whoever *reads*
//! the cache decides how old an entry may be: it trusts one only while it is younger than
//! its own [`RedisConfig::tag_max_age`](super::config::RedisConfig::tag_max_age) (each key for a
//! share of it, below). So `run --tag-cache-max-age 1s` re-checks every destination tag
//! written more than a second ago, whatever max age the workers that wrote them were given.
//! The Redis TTL is only the writer's cleanup: an entry is gone after the writer's share of
//! the writer's max age, so a reader with a longer max age than the writer's gets no more
//! than the writer's.
//!
//! An entry with no check time (the format before it, a bare digest) or one that does not
//! parse is unknown: not trusted, the tag is checked again and rewritten in the new format.
//!
//! # The spread
//!
//! The age a key is trusted for is a point in `[max age / 2, max age]` derived from a hash
//! of the key ([`trusted_for_ms`]), so the tags one big run wrote come due over the second
//! half of the max age and each later run re-checks a share of them instead of all at once.
//! A hash rather than a random fraction stored by the writer: the entry stays a digest and
//! a time, every reader (and the writer's TTL) agrees on each key's share without reading
//! anything more, and a reader applies the spread to its own max age whatever wrote the
//! entry. The share is fixed per key, so the spread across keys is what keeps re-checks
//! apart; a tag re-checked is written again with a new time and comes due after the same
//! share.
//!
//! Clocks: the age is the reader's clock minus the writer's. Fleet machines are expected to
//! keep NTP time; a writer's clock ahead of the reader's makes its entries look younger
//! (never older than 0), and the writer's TTL still bounds them.

use std::sync::Arc;

use mirror_common::state::tag_age::{now_ms, trusted_for_ms};

use super::conn::{millis, Shared};

/// Digests of destination and source tags, fleet-wide.
#[derive(Clone)]
pub struct TagCache {
    shared: Arc<Shared>,
}

impl TagCache {
    pub(crate) fn new(shared: Arc<Shared>) -> Self {
        TagCache { shared }
    }

    /// The digest we last pushed to (or saw at) a destination tag, while its entry is younger
    /// than this process's share of its max age for the key (see the module doc).
    pub async fn dest_digest(&self, registry: &str, repository: &str, tag: &str) -> Option<String> {
        let key = self.shared.keys.dest_tag(registry, repository, tag);
        let value = self.get(key.clone()).await?;
        self.trusted(&key, &value, now_ms())
    }

    /// Remembers what a destination tag points at now.
    pub async fn set_dest_digest(&self, registry: &str, repository: &str, tag: &str, digest: &str) {
        let key = self.shared.keys.dest_tag(registry, repository, tag);
        self.set(key, digest).await;
    }

    /// Forgets a destination tag (found to point elsewhere, or failed to push).
    pub async fn forget_dest_digest(&self, registry: &str, repository: &str, tag: &str) {
        let key = self.shared.keys.dest_tag(registry, repository, tag);
        let _: Option<i64> = self
            .shared
            .call("DEL", |mut c| async move {
                redis::cmd("DEL").arg(&key).query_async(&mut c).await
            })
            .await;
    }

    /// [`Self::dest_digest`] for many tags at once, in the order given (`None`: unknown or too
    /// old): one MGET per registry and chunk of 1,000 (keys of one registry share a cluster
    /// slot), in pipelines of 10,000 keys.
    pub async fn dest_digests<R, P, T>(&self, tags: &[(R, P, T)]) -> Vec<Option<String>>
    where
        R: AsRef<str>,
        P: AsRef<str>,
        T: AsRef<str>,
    {
        let keys: Vec<(String, String)> = tags
            .iter()
            .map(|(r, p, t)| {
                let key = self
                    .shared
                    .keys
                    .dest_tag(r.as_ref(), p.as_ref(), t.as_ref());
                (r.as_ref().to_string(), key)
            })
            .collect();
        let values = self.shared.mget(&keys).await;
        let now = now_ms();
        keys.iter()
            .zip(values)
            .map(|((_, key), value)| self.trusted(key, &value?, now))
            .collect()
    }

    /// [`Self::set_dest_digest`] for many tags at once (pipelines of 10,000).
    pub async fn set_dest_digests<R, P, T, D>(&self, tags: &[(R, P, T, D)])
    where
        R: AsRef<str>,
        P: AsRef<str>,
        T: AsRef<str>,
        D: AsRef<str>,
    {
        let now = now_ms();
        let entries: Vec<(String, String, u64)> = tags
            .iter()
            .map(|(r, p, t, d)| {
                let key = self
                    .shared
                    .keys
                    .dest_tag(r.as_ref(), p.as_ref(), t.as_ref());
                let ttl = self.entry_ttl_ms(&key);
                (key, encode(d.as_ref(), now), ttl)
            })
            .collect();
        self.shared.set_all_px("SET tags", &entries).await;
    }

    async fn get(&self, key: String) -> Option<String> {
        self.shared
            .call("GET", |mut c| async move {
                redis::cmd("GET")
                    .arg(&key)
                    .query_async::<Option<String>>(&mut c)
                    .await
            })
            .await
            .flatten()
    }

    /// The digest of an entry read at `now_ms`, if this process trusts it: it parses and is
    /// younger than this process's share of its own max age for the key.
    fn trusted(&self, key: &str, value: &str, now_ms: u64) -> Option<String> {
        let (digest, checked) = decode(value)?;
        let max = millis(self.shared.config.tag_max_age);
        (now_ms.saturating_sub(checked) < trusted_for_ms(key, max)).then(|| digest.to_string())
    }

    /// The Redis TTL of an entry written now: the writer's own share of its max age for the
    /// key, after which no reader with the same max age would trust it anyway (cleanup).
    fn entry_ttl_ms(&self, key: &str) -> u64 {
        trusted_for_ms(key, millis(self.shared.config.tag_max_age))
    }

    async fn set(&self, key: String, digest: &str) {
        let ttl = self.entry_ttl_ms(&key);
        let value = encode(digest, now_ms());
        let _: Option<()> = self
            .shared
            .call("SET", |mut c| async move {
                redis::cmd("SET")
                    .arg(&key)
                    .arg(&value)
                    .arg("PX")
                    .arg(ttl)
                    .query_async(&mut c)
                    .await
            })
            .await;
    }
}

/// An entry: the digest, a space, and when it was checked (ms since the Unix epoch).
fn encode(digest: &str, checked_ms: u64) -> String {
    format!("{digest} {checked_ms}")
}

/// The digest and check time of an entry; `None` for one without a time (written before
/// entries had one: a bare digest) or that does not parse, which is therefore not trusted.
fn decode(value: &str) -> Option<(&str, u64)> {
    let (digest, checked) = value.split_once(' ')?;
    if digest.is_empty() {
        return None;
    }
    Some((digest, checked.parse().ok()?))
}

#[cfg(test)]
mod tests {
    use super::*;

    const DIGEST: &str = "sha256:0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef";

    #[test]
    fn an_entry_holds_its_digest_and_check_time_and_a_bare_digest_has_none() {
        let value = encode(DIGEST, 1_700_000_000_123);
        assert_eq!(value, format!("{DIGEST} 1700000000123"));
        assert_eq!(decode(&value), Some((DIGEST, 1_700_000_000_123)));
        assert_eq!(decode(DIGEST), None, "the format without a time");
        assert_eq!(decode(&format!("{DIGEST} soon")), None);
        assert_eq!(decode(" 12"), None);
    }
}
