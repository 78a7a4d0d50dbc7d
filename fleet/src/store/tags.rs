//! What tags pointed at, so a run whose sources did not move costs a few Redis round trips
//! instead of a manifest request per destination tag.
//!
//! A cached digest is a hint: it can be stale if someone else moved the tag, so it may only
//! ever make the caller skip work it would otherwise verify cheaply, and it expires after
//! the configured TTL.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use super::conn::{millis, Shared};

/// Keys per MGET: large enough to amortise round trips, small enough not to block Redis.
const MGET_CHUNK: usize = 1000;

/// Digests of destination and source tags, fleet-wide.
#[derive(Clone)]
pub struct TagCache {
    shared: Arc<Shared>,
}

impl TagCache {
    pub(crate) fn new(shared: Arc<Shared>) -> Self {
        TagCache { shared }
    }

    /// The digest we last pushed to (or saw at) a destination tag.
    pub async fn dest_digest(&self, registry: &str, repository: &str, tag: &str) -> Option<String> {
        let key = self.shared.keys.dest_tag(registry, repository, tag);
        self.get(key).await
    }

    /// Remembers what a destination tag points at now.
    pub async fn set_dest_digest(&self, registry: &str, repository: &str, tag: &str, digest: &str) {
        let key = self.shared.keys.dest_tag(registry, repository, tag);
        self.set(key, digest.to_string()).await;
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

    /// [`Self::dest_digest`] for many tags at once, in the order given: one MGET per
    /// registry and chunk (keys of one registry share a cluster slot), all in one pipeline.
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
        self.mget(keys).await
    }

    /// [`Self::set_dest_digest`] for many tags at once (one pipeline).
    pub async fn set_dest_digests<R, P, T, D>(&self, tags: &[(R, P, T, D)])
    where
        R: AsRef<str>,
        P: AsRef<str>,
        T: AsRef<str>,
        D: AsRef<str>,
    {
        if tags.is_empty() {
            return;
        }
        let mut pipe = redis::pipe();
        for (r, p, t, d) in tags {
            let ttl = self.entry_ttl_ms();
            let key = self
                .shared
                .keys
                .dest_tag(r.as_ref(), p.as_ref(), t.as_ref());
            pipe.cmd("SET")
                .arg(key)
                .arg(d.as_ref())
                .arg("PX")
                .arg(ttl)
                .ignore();
        }
        let limit = self.batch_limit(tags.len());
        let _: Option<()> = self
            .shared
            .call_within("SET tags", limit, |mut c| async move {
                pipe.query_async(&mut c).await
            })
            .await;
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

    /// How long one entry is trusted: a random point in `[max age / 2, max age]`, so that
    /// the tags written by one big run come due over half the max age, and each later run
    /// re-checks a share of them instead of all at once.
    fn entry_ttl_ms(&self) -> u64 {
        let max = millis(self.shared.config.tag_max_age).max(2);
        rand::random_range(max / 2..=max)
    }

    async fn set(&self, key: String, value: String) {
        let ttl = self.entry_ttl_ms();
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

    /// Values of `(registry, key)` pairs in input order; all `None` when Redis is down.
    async fn mget(&self, keys: Vec<(String, String)>) -> Vec<Option<String>> {
        let mut out = vec![None; keys.len()];
        if keys.is_empty() {
            return out;
        }
        // Positions per registry, in a stable order.
        let mut groups: BTreeMap<&str, Vec<usize>> = BTreeMap::new();
        for (i, (registry, _)) in keys.iter().enumerate() {
            groups.entry(registry.as_str()).or_default().push(i);
        }
        let mut pipe = redis::pipe();
        let mut order: Vec<&[usize]> = Vec::new();
        for positions in groups.values() {
            for chunk in positions.chunks(MGET_CHUNK) {
                let cmd = pipe.cmd("MGET");
                for &i in chunk {
                    cmd.arg(&keys[i].1);
                }
                order.push(chunk);
            }
        }
        let limit = self.batch_limit(keys.len());
        let answers: Option<Vec<Vec<Option<String>>>> = self
            .shared
            .call_within("MGET", limit, |mut c| async move {
                pipe.query_async(&mut c).await
            })
            .await;
        if let Some(answers) = answers {
            for (chunk, values) in order.into_iter().zip(answers) {
                for (&i, v) in chunk.iter().zip(values) {
                    out[i] = v;
                }
            }
        }
        out
    }

    /// A batch gets the usual timeout plus a little per thousand keys.
    fn batch_limit(&self, n: usize) -> Duration {
        let thousands = u32::try_from(n / 1000).unwrap_or(u32::MAX);
        self.shared.config.op_timeout + Duration::from_millis(50).saturating_mul(thousands)
    }
}
