//! Step 2 first (`docs/behaviour.md`, "What one copy does"): where each destination tag
//! points now, asked before the source is read. A planned job is pinned to a digest, so
//! when every tag is already at it the copy takes the fast path here: nothing of the source
//! is read but the top manifest's referrers, looked for while the destinations are asked,
//! and only the missing ones are pushed.

use futures::StreamExt;

use super::engine::CopyEngine;
use super::errors::{failed, referrer_failed};
use super::limits::DESTINATION_HEADS;
use super::referrers::Referrer;
use super::target::{by_repository, Target};
use crate::reference::ImageRef;
use crate::registry::RegistryError;
use crate::report::{Counters, TagResult, TagStatus};

/// Where each destination tag points now, in the order of the destinations.
pub(crate) type Checked = Vec<Result<Option<String>, RegistryError>>;

/// The source digest's referrers, when they were looked for with the destination checks.
pub(crate) type Early = Option<Result<Vec<Referrer>, RegistryError>>;

impl CopyEngine {
    /// Only when what is pushed is the source manifest itself (no filter, no reduction to
    /// one image) can the tags be checked against the source digest without reading it.
    fn pushes_source(&self) -> bool {
        self.opts.filter.is_none() && self.opts.keep_manifest_list && !self.opts.force
    }

    /// Step 2 first: where each destination tag points now, with the source digest's own
    /// referrers (when they may be all that is left to copy) looked for at the same time,
    /// not after: a no-op run then costs one round trip per image, not two.
    pub(super) async fn check_destinations(
        &self,
        source: &ImageRef,
        destinations: &[ImageRef],
    ) -> (Checked, Early) {
        let heads: Vec<_> = destinations
            .iter()
            .map(|d| self.head_destination(d))
            .collect();
        // Bounded: a glob of thousands of tags into one repository is one job, and its
        // destination checks must not open thousands of connections at once.
        let checks = futures::stream::iter(heads)
            .buffered(DESTINATION_HEADS)
            .collect::<Vec<_>>();
        match (&source.digest, self.pushes_source()) {
            (Some(want), true) if self.opts.referrers.enabled => {
                let (current, found) =
                    futures::join!(checks, self.discover_referrers(source, vec![want.clone()]));
                (current, Some(found))
            }
            _ => (checks.await, None),
        }
    }

    /// The source digest when every destination tag already points at it (a planned job
    /// is pinned to a digest, so the source is not even read).
    pub(super) fn all_there<'s>(
        &self,
        source: &'s ImageRef,
        current: &Checked,
    ) -> Option<&'s String> {
        let want = source.digest.as_ref().filter(|_| self.pushes_source())?;
        current
            .iter()
            .all(|c| matches!(c, Ok(Some(d)) if d == want))
            .then_some(want)
    }

    /// The digest a destination tag points at now (`None`: no such tag), by a HEAD unless
    /// the repository's listing says it is absent. Asks for a push token unless in a dry
    /// run, so that the push that may follow reuses it.
    async fn head_destination(&self, dst: &ImageRef) -> Result<Option<String>, RegistryError> {
        let push = !self.opts.dry_run;
        self.destination_tags
            .head(self.registries.as_ref(), self.run, dst, push)
            .await
    }

    /// Every tag already at `digest`: only the top manifest's referrers (`found`) were
    /// looked for (nothing else of the source is read); the missing ones are pushed. A
    /// referrer that cannot be copied fails the tags of its repository; the tags stay.
    pub(super) async fn sync_referrers_only(
        &self,
        source: &ImageRef,
        digest: &str,
        destinations: &[ImageRef],
        found: Result<Vec<Referrer>, RegistryError>,
        counters: &Counters,
    ) -> Vec<TagResult> {
        let up_to_date = |d: &ImageRef, n: usize| {
            let mut t = TagResult::ok(d, TagStatus::UpToDate, digest);
            t.referrers = n as u64;
            t
        };
        let referrers = match found {
            Ok(r) => r,
            Err(e) => return destinations.iter().map(|d| failed(d, &e)).collect(),
        };
        if referrers.is_empty() {
            return destinations.iter().map(|d| up_to_date(d, 0)).collect();
        }
        let mut results = Vec::new();
        for ((registry, repository), tags) in by_repository(destinations, |d| d) {
            let target = Target {
                registry: &registry,
                repository: &repository,
            };
            let outcome = self
                .sync_referrers(source, &referrers, &target, counters)
                .await;
            results.extend(tags.into_iter().map(|d| match &outcome {
                Ok(()) => up_to_date(d, referrers.len()),
                Err(e) => referrer_failed(d, e),
            }));
        }
        results
    }
}
