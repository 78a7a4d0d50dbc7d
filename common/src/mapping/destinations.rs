//! Which destination tags a run has taken so far, and where: the one place the rules for a
//! destination tag given twice are written. Inside one file it is an error (`file.rs`, and
//! the planner after expansion). Across files the file read later wins, as when `oc image
//! mirror -f` runs once per file in name order: the earlier mapping is superseded, with a
//! warning naming both places (`check.rs` offline, the planner after expansion).

use std::collections::hash_map::Entry;
use std::collections::HashMap;

use super::error::Origin;
use crate::reference::ImageRef;

/// The identity of a destination tag: registry (case-insensitive), repository, tag.
pub(crate) type DestinationKey = (String, String, String);

/// The identity of a destination tag (`None` without a tag): registries compare
/// case-insensitively, repositories and tags exactly.
pub(crate) fn key(dst: &ImageRef) -> Option<DestinationKey> {
    let tag = dst.tag.as_ref()?;
    Some((
        dst.registry.to_ascii_lowercase(),
        dst.repository.clone(),
        tag.clone(),
    ))
}

/// [`key`] in 8 bytes, for the planner's run-wide "which file gives this tag last" map
/// (770,000 tags at 100x the real set: 8 bytes each instead of three strings). Two tags
/// sharing a hash would make one of them look superseded; at 64 bits the chance over a
/// million tags is about 3 in 10^8. SipHash with fixed keys: the same in every run.
pub(crate) fn key_hash(dst: &ImageRef) -> Option<u64> {
    use std::hash::{Hash, Hasher};
    let tag = dst.tag.as_ref()?;
    #[allow(deprecated)] // SipHasher: stable output with fixed keys, unlike RandomState.
    let mut h = std::hash::SipHasher::new();
    for b in dst.registry.bytes() {
        h.write_u8(b.to_ascii_lowercase());
    }
    dst.repository.hash(&mut h);
    tag.hash(&mut h);
    Some(h.finish())
}

/// Which destination tags are taken, and where each was first given.
#[derive(Debug, Default)]
pub(crate) struct DestinationIndex {
    taken: HashMap<DestinationKey, Origin>,
}

impl DestinationIndex {
    /// Records `dst` (which must carry a tag; tag-less ones are ignored) as given at `origin`,
    /// or returns where it was given first.
    pub(crate) fn claim(&mut self, dst: &ImageRef, origin: &Origin) -> Result<(), &Origin> {
        let Some(k) = key(dst) else { return Ok(()) };
        match self.taken.entry(k) {
            Entry::Occupied(first) => Err(first.into_mut()),
            Entry::Vacant(slot) => {
                slot.insert(origin.clone());
                Ok(())
            }
        }
    }

    /// Records `dst` as given at `origin`, a later file than any before: returns where it
    /// was given before, whose mapping `origin`'s now supersedes for that tag.
    pub(crate) fn take_over(&mut self, dst: &ImageRef, origin: &Origin) -> Option<Origin> {
        let k = key(dst)?;
        self.taken.insert(k, origin.clone())
    }

    /// The message for `dst` given again after `first`.
    pub(crate) fn duplicate_message(dst: &ImageRef, first: &Origin) -> String {
        format!(
            "destination \"{dst}\" is given twice: here and also at {first}; a destination tag may be given only once in a file"
        )
    }
}
