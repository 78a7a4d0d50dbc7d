//! Expanding mappings into destination tags: globs and tag-less sources by their
//! repository's listing (each repository listed once per run), every destination given the
//! tag it inherits.

use std::collections::{HashMap, HashSet};

use futures::StreamExt;

use super::limits::RegistryLimits;
use crate::mapping::{inherit_tag, Mapping, MappingError, Origin, TagSelector};
use crate::reference::ImageRef;
use crate::registry::Registries;

/// The tags of each listed source repository (by `repo_name`), or why it could not be listed.
pub(super) type Listed = HashMap<String, Result<Vec<String>, String>>;

/// One destination tag with the source tag (or digest) it comes from.
pub(super) struct Entry {
    pub(super) source: ImageRef,
    pub(super) destination: ImageRef,
    pub(super) origin: Origin,
}

/// Lists, into `listed`, every repository named by a glob or tag-less source of `mappings`
/// that is not listed yet: once each per run, however many lines and files name it.
pub(super) async fn list_new_repos<'m>(
    mappings: impl Iterator<Item = &'m Mapping>,
    listed: &mut Listed,
    client: &dyn Registries,
    limits: &RegistryLimits,
) {
    let mut wanted: HashSet<String> = HashSet::new();
    let mut repos: Vec<&ImageRef> = Vec::new();
    for m in mappings.filter(|m| m.source.tags.expands()) {
        let name = m.source.image.repo_name();
        if !listed.contains_key(&name) && wanted.insert(name) {
            repos.push(&m.source.image);
        }
    }
    let found: Vec<(String, Result<Vec<String>, String>)> = futures::stream::iter(repos)
        .map(|r| async move {
            let _place = limits.acquire(&r.registry).await;
            let tags = client
                .list_tags(&r.repository())
                .await
                .map_err(|e| e.to_string());
            (r.repo_name(), tags)
        })
        .buffer_unordered(limits.in_all())
        .collect()
        .await;
    listed.extend(found);
}

/// Every destination tag `mappings` name, with its source tag: globs and tag-less sources
/// expanded by their repository's listing (`listed`); a mapping whose source could not be
/// listed gives an error instead.
pub(super) fn expand(mappings: &[Mapping], listed: &Listed) -> (Vec<Entry>, Vec<MappingError>) {
    let mut entries = Vec::new();
    let mut listing_errors = Vec::new();
    for m in mappings {
        let tags = match source_tags(m, listed) {
            Ok(tags) => tags,
            Err(e) => {
                listing_errors.push(e);
                continue;
            }
        };
        for source in tags {
            let inherit = source
                .tag
                .clone()
                .or_else(|| m.source.written_tag().map(str::to_string));
            for d in &m.destinations {
                // None is refused by the parser: nothing to inherit.
                let Some(destination) = inherit_tag(d, inherit.as_deref()) else {
                    continue;
                };
                entries.push(Entry {
                    source: source.clone(),
                    destination,
                    origin: m.origin.clone(),
                });
            }
        }
    }
    (entries, listing_errors)
}

/// The source tags one mapping names: itself, or the listed tags its selector matches. A
/// repository missing from `listed` (its file changed between the planner's two reads)
/// is an error like a failed listing.
fn source_tags(m: &Mapping, listed: &Listed) -> Result<Vec<ImageRef>, MappingError> {
    let cannot = |why: &str| {
        MappingError::new(
            m.origin.clone(),
            format!("cannot list the tags of {}: {why}", m.source),
        )
    };
    Ok(match &m.source.tags {
        TagSelector::Tag(_) | TagSelector::Digest(_) => vec![m.source.image.clone()],
        selector => match listed.get(&m.source.image.repo_name()) {
            Some(Ok(all)) => all
                .iter()
                .filter(|t| selector.matches(t))
                .map(|t| m.source.image.with_tag(t))
                .collect(),
            Some(Err(e)) => return Err(cannot(e)),
            None => return Err(cannot("the file changed while the run was planned")),
        },
    })
}
