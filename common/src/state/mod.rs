//! What an installation remembers between runs, read the same way by the fleet and by the
//! embedded mode: the destination tag cache (a run where nothing changed publishes or runs
//! no job), the blob index and the registry quirks. The fleet keeps it in Redis
//! (`mirror_fleet::store::Redis`), one machine in a state file
//! (`mirror_fleet::state_file::StateFile`); the planner's callers and the job handlers see
//! only [`StateStore`].
//!
//! Like the blob index it is an accelerator, never the truth: no method returns an error. A
//! store that cannot answer answers "unknown" and the run checks the registry instead. What
//! it does promise is that an entry says only what was true: a destination tag's digest is
//! written after the destination answered with it (a push or a check), never before.
//!
//! - [`tag_age`]: how long a tag-cache entry is trusted (one rule for both stores).

pub mod tag_age;

use std::sync::Arc;

use async_trait::async_trait;

use crate::index::BlobIndex;
use crate::job::JobResult;
use crate::reference::ImageRef;
use crate::registry::SharedQuirks;
use crate::report::TagStatus;

/// A destination tag as the tag cache keys it: registry, repository, tag.
pub type TagKey<'a> = (&'a str, &'a str, &'a str);

/// The store of what runs learnt: its tag cache, blob index and registry quirks.
#[async_trait]
pub trait StateStore: Send + Sync {
    /// The digest each destination tag was last pushed with or seen at, in the order given,
    /// while its entry is trusted by the [`tag_age`] rule (`None`: unknown or too old).
    async fn dest_digests(&self, tags: &[TagKey<'_>]) -> Vec<Option<String>>;

    /// After a job's result is out: remember what its destination tags now point at (a
    /// failed tag is forgotten: what it points at is unknown), and whatever else the store
    /// keeps of a result. `destinations` are the job's, whose results are in `result`.
    async fn record_result(&self, destinations: &[ImageRef], result: &JobResult);

    /// The blob index kept in this store.
    fn blob_index(&self) -> Arc<dyn BlobIndex>;

    /// Where registry quirks are kept, shared by every copy of the store's users.
    fn quirks(&self) -> SharedQuirks;
}

/// What a job's result says of one of its destination tags, for a tag cache.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum TagUpdate<'a> {
    /// The tag points at this digest now (pushed, or seen there).
    Points(TagKey<'a>, &'a str),
    /// The tag failed: what it points at is unknown, forget it.
    Unknown(TagKey<'a>),
}

/// The tag-cache updates of `result` for the job's `destinations`, one per destination tag
/// the result reports (skipped and dry-run tags say nothing of the destination). The one
/// rule both stores follow: an entry only from an answer of the destination.
pub fn tag_updates<'a>(destinations: &'a [ImageRef], result: &'a JobResult) -> Vec<TagUpdate<'a>> {
    let by_name: std::collections::HashMap<String, &ImageRef> =
        destinations.iter().map(|d| (d.to_string(), d)).collect();
    result
        .report
        .tags
        .iter()
        .filter_map(|t| {
            let dst = by_name.get(&t.destination)?;
            let key = (
                dst.registry.as_str(),
                dst.repository.as_str(),
                dst.tag.as_deref()?,
            );
            match (t.status, &t.digest) {
                (TagStatus::Pushed | TagStatus::UpToDate, Some(digest)) => {
                    Some(TagUpdate::Points(key, digest))
                }
                (TagStatus::Failed, _) => Some(TagUpdate::Unknown(key)),
                _ => None,
            }
        })
        .collect()
}
