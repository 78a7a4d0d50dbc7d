//! Which destination tags a published job still holds: a marker per tag, written by the
//! scheduler just before it publishes the tag's job (value: the run's id, expiring after the
//! time a job may take at most) and deleted by the worker once the job's result is out. A
//! later run that finds a marker of another run leaves the tag out (two jobs racing to move
//! one tag would be wasted work at best) and checks it with a HEAD instead.
//!
//! Markers replace the list of every published tag that the run's announcement carried
//! (~60 bytes a tag: 46 MB at 100x the real set, over RabbitMQ 4's 16 MiB message limit),
//! and the read of hours of history that a run did to find the tags without results: each
//! message stays small and a run reads one key per tag, in the same batches as the tag
//! cache.
//!
//! A marker outlives its job only where nothing reported: a scheduler killed between
//! writing a batch's markers and its broker confirming the batch (one batch at most), a
//! purged queue, a worker whose Redis calls failed. The tag is then checked by a HEAD on
//! each run until the marker expires. With Redis down, nothing is left out: a tag may get a
//! second job, which finds it up to date.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use uuid::Uuid;

use super::conn::{millis, Shared};

/// Markers written or deleted per pipeline.
const PIPELINE_TAGS: usize = 10_000;

/// Pending-tag markers, fleet-wide.
#[derive(Clone)]
pub struct PendingTags {
    shared: Arc<Shared>,
}

impl PendingTags {
    pub(crate) fn new(shared: Arc<Shared>) -> Self {
        PendingTags { shared }
    }

    /// The run holding each of `tags` (registry, repository, tag), in the order given;
    /// `None`: no marker, or Redis did not answer.
    pub async fn holders<R, P, T>(&self, tags: &[(R, P, T)]) -> Vec<Option<Uuid>>
    where
        R: AsRef<str>,
        P: AsRef<str>,
        T: AsRef<str>,
    {
        let keys: Vec<(String, String)> = tags
            .iter()
            .map(|(r, p, t)| (r.as_ref().to_string(), self.key(r, p, t)))
            .collect();
        self.shared
            .mget(&keys)
            .await
            .into_iter()
            .map(|v| v.and_then(|v| Uuid::parse_str(&v).ok()))
            .collect()
    }

    /// Marks `tags` as held by `run_id` for at most `for_` (then they count as free).
    pub async fn hold<R, P, T>(&self, run_id: Uuid, tags: &[(R, P, T)], for_: Duration)
    where
        R: AsRef<str>,
        P: AsRef<str>,
        T: AsRef<str>,
    {
        let run = run_id.to_string();
        let ttl = millis(for_).max(1);
        let entries: Vec<(String, String, u64)> = tags
            .iter()
            .map(|(r, p, t)| (self.key(r, p, t), run.clone(), ttl))
            .collect();
        self.shared.set_all_px("SET pending", &entries).await;
    }

    /// Frees `tags` (their job reported).
    pub async fn release<R, P, T>(&self, tags: &[(R, P, T)])
    where
        R: AsRef<str>,
        P: AsRef<str>,
        T: AsRef<str>,
    {
        // One DEL per registry: keys of one registry share a cluster slot.
        let mut by_registry: BTreeMap<&str, Vec<String>> = BTreeMap::new();
        for (r, p, t) in tags {
            by_registry
                .entry(r.as_ref())
                .or_default()
                .push(self.key(r, p, t));
        }
        for keys in by_registry.values() {
            for chunk in keys.chunks(PIPELINE_TAGS) {
                let limit = self.shared.batch_limit(chunk.len());
                let _: Option<i64> = self
                    .shared
                    .call_within("DEL pending", limit, |mut c| async move {
                        redis::cmd("DEL").arg(chunk).query_async(&mut c).await
                    })
                    .await;
            }
        }
    }

    fn key<R, P, T>(&self, r: &R, p: &P, t: &T) -> String
    where
        R: AsRef<str>,
        P: AsRef<str>,
        T: AsRef<str>,
    {
        self.shared
            .keys
            .pending_tag(r.as_ref(), p.as_ref(), t.as_ref())
    }
}
