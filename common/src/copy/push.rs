//! A copy with something to copy: the source resolved (`resolve.rs`), then steps 4 and 5
//! of `docs/behaviour.md` ("What one copy does") for each destination repository in turn:
//! which tags are already there, which are pushed (or, in a dry run, would be), in what
//! order (blobs, child manifests by digest, referrers, then the top manifest under each
//! tag), how a stale blob index is repaired, and each tag's result.

use std::sync::Arc;

use futures::{StreamExt, TryStreamExt};

use super::engine::CopyEngine;
use super::errors::{failed, is_blob_unknown, is_missing_source, referrer_failed};
use super::fast_path::{Checked, Early};
use super::limits::CHILD_PUSHES;
use super::resolve::Resolved;
use super::target::{by_repository, Target};
use crate::name::{Reference, Repository};
use crate::reference::ImageRef;
use crate::registry::RegistryError;
use crate::report::{Counters, TagResult, TagStatus};

/// A destination tag with what it points at now.
type Current<'a> = (&'a ImageRef, &'a Result<Option<String>, RegistryError>);

/// A destination tag to push, and whether it exists (points at another digest) now.
type Pending<'a> = (&'a ImageRef, bool);

/// One source image going into one destination repository: what every step of its push
/// reads.
#[derive(Clone, Copy)]
struct IntoRepository<'a> {
    source: &'a ImageRef,
    resolved: &'a Resolved,
    target: &'a Target<'a>,
    counters: &'a Counters,
}

impl CopyEngine {
    /// Steps 1 and 3 to 6: the source resolved, then pushed to each destination
    /// repository; the digest copied (when the source was resolved) and a result per tag.
    pub(super) async fn copy_source(
        &self,
        source: &ImageRef,
        destinations: &[ImageRef],
        current: &Checked,
        early: Early,
        counters: &Counters,
    ) -> (Option<String>, Vec<TagResult>) {
        let resolved = match self.resolve(source, early).await {
            Ok(resolved) => resolved,
            Err(e) if self.opts.skip_missing && is_missing_source(&e) => {
                let reason =
                    format!("{source}: the source does not exist; skipped (--skip-missing)");
                let tags = destinations
                    .iter()
                    .map(|d| TagResult::skipped(d, reason.clone()))
                    .collect();
                return (None, tags);
            }
            Err(e) => return (None, destinations.iter().map(|d| failed(d, &e)).collect()),
        };
        let mut tags = Vec::new();
        let checked = destinations.iter().zip(current);
        for ((registry, repository), group) in by_repository(checked, |(d, _)| d) {
            let target = Target {
                registry: &registry,
                repository: &repository,
            };
            let into = IntoRepository {
                source,
                resolved: &resolved,
                target: &target,
                counters,
            };
            let results = self.copy_to_repository(&into, &group).await;
            tags.extend(results);
        }
        (Some(resolved.top.digest.clone()), tags)
    }

    /// Steps 2, 4, 5 for the tags of one destination repository.
    async fn copy_to_repository(
        &self,
        into: &IntoRepository<'_>,
        tags: &[Current<'_>],
    ) -> Vec<TagResult> {
        let mut results = self.copy_tags_to_repository(into, tags).await;
        let found = into.resolved.referrers.len() as u64;
        for t in &mut results {
            if t.status != TagStatus::Failed {
                t.referrers = found;
            }
        }
        results
    }

    /// The tags already at the digest (only their referrers synced), then the others
    /// pushed, or planned in a dry run.
    async fn copy_tags_to_repository(
        &self,
        into: &IntoRepository<'_>,
        tags: &[Current<'_>],
    ) -> Vec<TagResult> {
        let digest = &into.resolved.top.digest;
        let mut results = Vec::new();
        let mut pending: Vec<Pending> = Vec::new();
        let mut current_tags: Vec<&ImageRef> = Vec::new();
        for (dst, current) in tags {
            match current {
                Ok(Some(d)) if d == digest && !self.opts.force => current_tags.push(dst),
                Ok(current) => pending.push((dst, current.is_some())),
                Err(e) => results.push(failed(dst, e)),
            }
        }
        if !current_tags.is_empty() {
            // Tags already there still get their image's new referrers.
            let synced = if !pending.is_empty() {
                Ok(()) // copied below, with the pending tags
            } else {
                self.sync_referrers(
                    into.source,
                    &into.resolved.referrers,
                    into.target,
                    into.counters,
                )
                .await
            };
            results.extend(current_tags.into_iter().map(|d| match &synced {
                Ok(()) => TagResult::ok(d, TagStatus::UpToDate, digest),
                Err(e) => referrer_failed(d, e),
            }));
        }
        if pending.is_empty() {
            return results;
        }
        let copied = if self.opts.dry_run {
            self.plan_pending(into, &pending).await
        } else {
            self.push_pending(into, &pending).await
        };
        results.extend(copied);
        results
    }

    /// Dry run: what pushing the pending tags would create or update, counted.
    async fn plan_pending(
        &self,
        into: &IntoRepository<'_>,
        pending: &[Pending<'_>],
    ) -> Vec<TagResult> {
        let digest = &into.resolved.top.digest;
        let IntoRepository {
            source,
            resolved,
            target,
            counters,
        } = *into;
        match self.plan_blobs(source, resolved, target, counters).await {
            Ok(()) => pending
                .iter()
                .map(|(d, exists)| {
                    TagResult::ok(
                        d,
                        if *exists {
                            TagStatus::WouldUpdate
                        } else {
                            TagStatus::WouldCreate
                        },
                        digest,
                    )
                })
                .collect(),
            Err(e) => pending.iter().map(|(d, _)| failed(d, &e)).collect(),
        }
    }

    /// Pushes the pending tags, once more for those that failed on a blob the index
    /// wrongly placed; a result per tag.
    async fn push_pending(
        &self,
        into: &IntoRepository<'_>,
        pending: &[Pending<'_>],
    ) -> Vec<TagResult> {
        let mut outcome = self.push(into, pending).await;
        if outcome
            .iter()
            .any(|t| matches!(t, Err(f) if is_blob_unknown(f.error())))
        {
            self.push_again(into, pending, &mut outcome).await;
        }
        let digest = &into.resolved.top.digest;
        pending
            .iter()
            .zip(outcome)
            .map(|((d, _), pushed)| match pushed {
                Ok(()) => TagResult::ok(d, TagStatus::Pushed, digest),
                Err(f) => match &*f {
                    PushFailure::Image(e) => failed(d, e),
                    PushFailure::Referrer(e) => referrer_failed(d, e),
                },
            })
            .collect()
    }

    /// The index said a blob was there and the registry disagrees: forget what we knew
    /// about this repository and push the tags not pushed yet again, checking every blob
    /// with the registry; each takes its new outcome.
    async fn push_again(
        &self,
        into: &IntoRepository<'_>,
        pending: &[Pending<'_>],
        outcome: &mut [TagPush],
    ) {
        let (resolved, target) = (into.resolved, into.target);
        tracing::warn!(
            registry = target.registry,
            repository = target.repository,
            "index was stale; verifying every blob"
        );
        for b in &resolved.blobs {
            self.index
                .forget(target.registry, target.repository, &b.digest)
                .await;
        }
        let again: Vec<Pending> = pending
            .iter()
            .zip(outcome.iter())
            .filter(|(_, pushed)| pushed.is_err())
            .map(|(p, _)| *p)
            .collect();
        let mut retried = self.push(into, &again).await.into_iter();
        for t in outcome.iter_mut().filter(|t| t.is_err()) {
            if let Some(r) = retried.next() {
                *t = r;
            }
        }
    }

    /// Blobs, then child manifests by digest, then referrers, then the top manifest under
    /// each tag; one outcome per tag of `pending`. What the tags share failing fails them
    /// all; past it each tag's manifest PUT is its own, so a refused tag leaves the others
    /// pushed (and reported so, with their digest).
    async fn push(&self, into: &IntoRepository<'_>, pending: &[Pending<'_>]) -> Vec<TagPush> {
        match self.push_shared(into).await {
            Ok(()) => self.push_tags(into, pending).await,
            Err(e) => {
                let shared = Arc::new(e);
                pending.iter().map(|_| Err(shared.clone())).collect()
            }
        }
    }

    /// The top manifest under each tag, each PUT on its own.
    async fn push_tags(&self, into: &IntoRepository<'_>, pending: &[Pending<'_>]) -> Vec<TagPush> {
        let (resolved, target, counters) = (into.resolved, into.target, into.counters);
        let mut outcomes = Vec::with_capacity(pending.len());
        for (dst, _) in pending {
            let put = self
                .registries
                .put_manifest(
                    &Repository::new(target.registry, target.repository),
                    &dst.reference(),
                    &resolved.top,
                )
                .await;
            if put.is_ok() {
                self.destination_tags.pushed(self.run, dst).await;
                Counters::bump(&counters.manifests, 1);
            }
            outcomes.push(put.map_err(|e| Arc::new(PushFailure::Image(e))));
        }
        outcomes
    }

    /// What every tag of a repository needs before its own PUT: blobs, child manifests,
    /// referrers.
    async fn push_shared(&self, into: &IntoRepository<'_>) -> Result<(), PushFailure> {
        let IntoRepository {
            source,
            resolved,
            target,
            counters,
        } = *into;
        self.ensure_blobs(source, target, resolved.blobs.iter(), counters)
            .await
            .map_err(PushFailure::Image)?;
        // Children at once, images before the indexes among them (an index nested in the
        // top one names images only, and a registry may refuse it before they are there).
        let repository = Repository::new(target.registry, target.repository);
        for wave in [false, true] {
            let puts: Vec<_> = resolved
                .children
                .iter()
                .filter(|c| c.is_index() == wave)
                .map(|child| {
                    let (repository, reference) = (&repository, Reference::digest(&child.digest));
                    async move {
                        self.registries
                            .put_manifest(repository, &reference, child)
                            .await
                    }
                })
                .collect();
            let pushed: Vec<()> = futures::stream::iter(puts)
                .buffer_unordered(CHILD_PUSHES)
                .try_collect()
                .await
                .map_err(PushFailure::Image)?;
            Counters::bump(&counters.manifests, pushed.len() as u64);
        }
        // Referrers before the tags: a referrer that cannot be copied leaves the tags
        // where they were.
        self.push_referrers(source, &resolved.referrers, target, counters)
            .await
            .map_err(PushFailure::Referrer)
    }
}

/// Why a push failed: the image's own content, or one of its referrers'.
enum PushFailure {
    Image(RegistryError),
    Referrer(RegistryError),
}

impl PushFailure {
    fn error(&self) -> &RegistryError {
        match self {
            PushFailure::Image(e) | PushFailure::Referrer(e) => e,
        }
    }
}

/// One tag's push: done, or why not (shared by the tags a common step failed for).
type TagPush = Result<(), Arc<PushFailure>>;
