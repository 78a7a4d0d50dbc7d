//! Steps 1 and 3 of `docs/behaviour.md` ("What one copy does"): the source manifest read
//! and verified, an index kept whole, filtered by platform or reduced to one image, its
//! children (nested up to [`MAX_INDEX_DEPTH`]) read in push order, every blob listed once,
//! and the referrers of all of them found (`referrers.rs`).

use std::collections::HashSet;

use futures::{StreamExt, TryStreamExt};

use super::engine::CopyEngine;
use super::errors::protocol;
use super::fast_path::Early;
use super::limits::{CHILD_READS, MAX_INDEX_DEPTH};
use super::platform::PlatformFilter;
use super::referrers::Referrer;
use crate::manifest::{Descriptor, Manifest};
use crate::name::Reference;
use crate::reference::ImageRef;
use crate::registry::RegistryError;

/// The source, resolved and verified: what to push, in push order.
pub(crate) struct Resolved {
    pub(crate) top: Manifest,
    /// Child manifests, deepest first, each once.
    pub(crate) children: Vec<Manifest>,
    /// Every blob of every image, each once.
    pub(crate) blobs: Vec<Descriptor>,
    /// What refers to the top manifest and its children, and to those in turn.
    pub(crate) referrers: Vec<Referrer>,
}

impl CopyEngine {
    /// Step 1 and 3: the source manifest, its children (filtered), all verified.
    /// `early`: the source digest's referrers when they were already looked for.
    pub(super) async fn resolve(
        &self,
        source: &ImageRef,
        early: Early,
    ) -> Result<Resolved, RegistryError> {
        let c = &self.registries;
        let mut top = c
            .get_manifest(&source.repository(), &source.reference())
            .await?;
        if top.is_index() {
            top = self.select_platforms(source, top).await?;
        }
        let children = self.children_of(source, &top).await?;
        let blobs = self.blobs_to_copy(source, &top, &children);
        let referrers = self
            .referrers_to_copy(source, &top, &children, early)
            .await?;
        Ok(Resolved {
            top,
            children,
            blobs,
            referrers,
        })
    }

    /// The child manifests of `top` and theirs, deepest first (pushed before the ones that
    /// reference them), each once.
    async fn children_of(
        &self,
        source: &ImageRef,
        top: &Manifest,
    ) -> Result<Vec<Manifest>, RegistryError> {
        let c = &self.registries;
        let repository = source.repository();
        let mut children: Vec<Manifest> = Vec::new();
        let mut level: Vec<Descriptor> = top.children.clone();
        for _ in 0..MAX_INDEX_DEPTH {
            if level.is_empty() {
                break;
            }
            // Futures collected first: a closure in `stream::map` trips the compiler's
            // higher-ranked lifetime check once this future is spawned.
            let references: Vec<Reference> =
                level.iter().map(|d| Reference::digest(&d.digest)).collect();
            let requests: Vec<_> = references
                .iter()
                .map(|r| c.get_manifest(&repository, r))
                .collect();
            let fetched: Vec<Manifest> = futures::stream::iter(requests)
                .buffered(CHILD_READS)
                .try_collect()
                .await?;
            level = fetched.iter().flat_map(|m| m.children.clone()).collect();
            // Deeper manifests must be pushed before the ones that reference them.
            let mut next = fetched;
            next.append(&mut children);
            children = next;
        }
        if !level.is_empty() {
            return Err(protocol(
                source,
                format!("indexes nested deeper than {MAX_INDEX_DEPTH} levels are not supported"),
            ));
        }
        children.reverse();
        let mut seen = HashSet::new();
        children.retain(|m| seen.insert(m.digest.clone()));
        Ok(children)
    }

    /// Every blob of the children and the top manifest, each once; non-distributable
    /// layers left out (with a note) unless asked for.
    fn blobs_to_copy(
        &self,
        source: &ImageRef,
        top: &Manifest,
        children: &[Manifest],
    ) -> Vec<Descriptor> {
        let mut blobs: Vec<Descriptor> = Vec::new();
        for m in children.iter().chain(std::iter::once(top)) {
            if !m.foreign.is_empty() && !self.opts.include_nondistributable {
                tracing::warn!(
                    source = %source,
                    manifest = %m.digest,
                    layers = m.foreign.len(),
                    "non-distributable layers left out (the manifest says where they live); \
                     --include-nondistributable copies them"
                );
            }
            for b in self.blobs_of(m) {
                if !blobs.iter().any(|x| x.digest == b.digest) {
                    blobs.push(b.clone());
                }
            }
        }
        blobs
    }

    /// The referrers of the top manifest and its children, each once: those `early` found
    /// for the source digest (when it is the top manifest's) and the others looked for now.
    async fn referrers_to_copy(
        &self,
        source: &ImageRef,
        top: &Manifest,
        children: &[Manifest],
        early: Early,
    ) -> Result<Vec<Referrer>, RegistryError> {
        let (mut referrers, looked_for) = match early {
            Some(found) if source.digest.as_deref() == Some(top.digest.as_str()) => {
                (found?, Some(top.digest.clone()))
            }
            _ => (Vec::new(), None),
        };
        let subjects = std::iter::once(top)
            .chain(children)
            .map(|m| m.digest.clone())
            .filter(|d| looked_for.as_ref() != Some(d))
            .collect();
        for r in self.discover_referrers(source, subjects).await? {
            if !referrers
                .iter()
                .any(|x| x.manifest.digest == r.manifest.digest)
            {
                referrers.push(r);
            }
        }
        Ok(referrers)
    }

    /// The blobs of one manifest this engine copies: foreign layers only when asked.
    pub(super) fn blobs_of<'m>(&self, m: &'m Manifest) -> impl Iterator<Item = &'m Descriptor> {
        let foreign: &[Descriptor] = if self.opts.include_nondistributable {
            &m.foreign
        } else {
            &[]
        };
        m.blobs.iter().chain(foreign)
    }

    /// Step 3 for an index: kept whole (the default), filtered by `--filter-by-os` (a new
    /// index), or, without `keep_manifest_list`, reduced as oc does: to the one image the
    /// filter (default `linux/amd64`) selects, pushed as that single manifest; a filtered
    /// index when it selects several.
    async fn select_platforms(
        &self,
        source: &ImageRef,
        top: Manifest,
    ) -> Result<Manifest, RegistryError> {
        let oc_default;
        let filter = match (&self.opts.filter, self.opts.keep_manifest_list) {
            (Some(f), _) => f,
            (None, true) => return Ok(top),
            (None, false) => {
                oc_default = PlatformFilter::linux_amd64();
                &oc_default
            }
        };
        let kept: Vec<&Descriptor> = top.children.iter().filter(|d| filter.keeps(d)).collect();
        if kept.is_empty() {
            let have: Vec<String> = top
                .children
                .iter()
                .filter_map(|d| d.platform.as_ref().map(|p| p.spec()))
                .collect();
            return Err(protocol(
                source,
                match self.opts.filter {
                    Some(_) => format!(
                        "no platform matches --filter-by-os \"{}\" (the index has: {})",
                        filter.pattern(),
                        have.join(", ")
                    ),
                    None => format!(
                        "the index has no linux/amd64 image to mirror without --keep-manifest-list (it has: {})",
                        have.join(", ")
                    ),
                },
            ));
        }
        if let ([one], false) = (kept.as_slice(), self.opts.keep_manifest_list) {
            let digest = one.digest.clone();
            return self
                .registries
                .get_manifest(&source.repository(), &Reference::digest(digest))
                .await;
        }
        let filtered = top
            .filter_children(|d| filter.keeps(d))
            .map_err(|m| protocol(source, m))?;
        Ok(filtered.unwrap_or(top))
    }
}
