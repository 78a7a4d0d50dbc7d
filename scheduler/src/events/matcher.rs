//! From a pushed tag to the mapping lines that select it, across every route (with
//! `--groups`: every group's files): exact tags, globs and tag-less sources of that
//! repository; digest sources never (they name one manifest, whatever a tag does). The
//! files' rules hold as in a run: a rejected file contributes nothing, and when two files
//! of a route give the same destination tag the later file wins.
//!
//! The mappings are kept parsed and read again when a file changed (its size or time) or
//! the routes changed (a new file in `--dir`), checked at most every [`CHECK_EVERY`] and
//! only when an event comes.

use std::collections::HashMap;
use std::path::PathBuf;
use std::time::{Duration, Instant, SystemTime};

use mirror_common::mapping::{inherit_tag, load, Mapping};
use mirror_common::reference::ImageRef;

use super::routes::{Resolve, Route, Stamp};

/// How often, at most, the files are looked at for changes.
pub(crate) const CHECK_EVERY: Duration = Duration::from_secs(2);

/// The mapping lines of one route that select a pushed tag, and what they make.
#[derive(Clone, Debug)]
pub(crate) struct Hit {
    /// The route's stamp.
    pub stamp: Stamp,
    /// The destination tags, with the `file:line` that gives each.
    pub destinations: Vec<(ImageRef, String)>,
}

/// A route's mappings, parsed.
struct Loaded {
    stamp: Stamp,
    mappings: Vec<Mapping>,
}

/// What the files looked like when they were read: every route's group and files, each
/// with its size and modification time.
type Fingerprint = Vec<(Option<String>, Vec<(PathBuf, u64, Option<SystemTime>)>)>;

/// The matcher over every route's mappings.
pub(crate) struct Matcher {
    resolve: Resolve,
    loaded: Vec<Loaded>,
    fingerprint: Fingerprint,
    checked: Option<Instant>,
}

impl Matcher {
    /// A matcher whose routes come from `resolve`; the files are read at the first check.
    pub(crate) fn new(resolve: Resolve) -> Self {
        Matcher {
            resolve,
            loaded: Vec::new(),
            fingerprint: Vec::new(),
            checked: None,
        }
    }

    /// Reads the files again if they changed (at most every [`CHECK_EVERY`]). Routes
    /// that cannot be built (a groups file gone bad) keep the mappings read before, said.
    pub(crate) fn refresh(&mut self, now: Instant) {
        if self.checked.is_some_and(|t| now < t + CHECK_EVERY) {
            return;
        }
        self.checked = Some(now);
        let routes = match (self.resolve)() {
            Ok(r) => r,
            Err(e) => {
                eprintln!("events: cannot read the mapping files again ({e:#}); matching with the ones read before");
                return;
            }
        };
        let fingerprint = fingerprint(&routes);
        if fingerprint == self.fingerprint {
            return;
        }
        self.loaded = routes.into_iter().map(load_route).collect();
        self.fingerprint = fingerprint;
        let lines: usize = self.loaded.iter().map(|l| l.mappings.len()).sum();
        tracing::info!(
            routes = self.loaded.len(),
            mappings = lines,
            "events: mapping files read"
        );
    }

    /// Every route's hit for `source` (`registry/repository:tag`, the registry as the
    /// mapping files write it), in route order; routes without a hit are left out.
    pub(crate) fn matches(&self, source: &ImageRef) -> Vec<Hit> {
        let Some(tag) = source.tag.as_deref() else {
            return Vec::new();
        };
        let mut hits = Vec::new();
        for route in &self.loaded {
            // Destination tag -> (destination, origin); a later file's line replaces it.
            let mut by_tag: HashMap<String, (ImageRef, String)> = HashMap::new();
            let mut order: Vec<String> = Vec::new();
            for m in route.mappings.iter().filter(|m| selects(m, source, tag)) {
                for d in m
                    .destinations
                    .iter()
                    .filter_map(|d| inherit_tag(d, Some(tag)))
                {
                    let key = d.to_string();
                    if !by_tag.contains_key(&key) {
                        order.push(key.clone());
                    }
                    by_tag.insert(key, (d, m.origin.to_string()));
                }
            }
            if order.is_empty() {
                continue;
            }
            let destinations = order
                .into_iter()
                .filter_map(|k| by_tag.remove(&k))
                .collect();
            hits.push(Hit {
                stamp: route.stamp.clone(),
                destinations,
            });
        }
        hits
    }
}

/// Whether mapping `m`'s source selects `tag` of `source`'s repository.
fn selects(m: &Mapping, source: &ImageRef, tag: &str) -> bool {
    m.source.image.registry == source.registry
        && m.source.image.repository == source.repository
        && m.source.tags.matches(tag)
}

/// A route's files read and checked as a run reads them (rejected files said, left out).
fn load_route(route: Route) -> Loaded {
    let set = load(&route.files);
    for (file, errors) in &set.rejected {
        let first = errors.first().map(ToString::to_string).unwrap_or_default();
        eprintln!(
            "events: {} is rejected and matches no event: {first}",
            file.display()
        );
    }
    Loaded {
        stamp: route.stamp,
        mappings: set.mappings,
    }
}

fn fingerprint(routes: &[Route]) -> Fingerprint {
    routes
        .iter()
        .map(|r| {
            let files = r
                .files
                .iter()
                .map(|f| {
                    let meta = std::fs::metadata(f).ok();
                    let len = meta.as_ref().map_or(0, std::fs::Metadata::len);
                    (f.clone(), len, meta.and_then(|m| m.modified().ok()))
                })
                .collect();
            (r.group.clone(), files)
        })
        .collect()
}

#[cfg(test)]
#[path = "matcher_tests.rs"]
mod tests;
