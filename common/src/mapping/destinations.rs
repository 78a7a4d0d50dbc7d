//! Which destination tags a run has taken so far, and where each was first given: the one
//! place the "a destination tag is given once" rule is written, used by a file's own check
//! (`file.rs`), the check across files (`check.rs`) and the planner after expansion.

use std::collections::hash_map::Entry;
use std::collections::HashMap;

use super::error::Origin;
use crate::reference::ImageRef;

/// The identity of a destination tag: registry (case-insensitive), repository, tag.
type DestinationKey = (String, String, String);

fn key(dst: &ImageRef) -> Option<DestinationKey> {
    let tag = dst.tag.as_ref()?;
    Some((
        dst.registry.to_ascii_lowercase(),
        dst.repository.clone(),
        tag.clone(),
    ))
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

    /// Where `dst` was given, if it was.
    pub(crate) fn get(&self, dst: &ImageRef) -> Option<&Origin> {
        key(dst).and_then(|k| self.taken.get(&k))
    }

    /// The message for `dst` given again after `first`.
    pub(crate) fn duplicate_message(dst: &ImageRef, first: &Origin) -> String {
        format!(
            "destination \"{dst}\" is given twice: here and also at {first}; each destination tag may be given only once per run"
        )
    }

    /// The message for `dst` given again, in a later file, after `first`.
    pub(crate) fn duplicate_across_files_message(dst: &ImageRef, first: &Origin) -> String {
        format!(
            "{}, so this file is skipped and {} keeps its mappings",
            Self::duplicate_message(dst, first),
            first.file.display()
        )
    }
}
