//! The copy engine: one source image to its destination tags, following SPEC.md's six
//! steps: resolve and verify the source; skip tags already at its digest; keep indexes
//! whole (or filtered by platform); skip / mount / stream every blob; push child manifests
//! by digest, then the top manifest under each tag; report per tag. Referrers (signatures,
//! attestations, SBOMs) travel with their subject in the same copy (`referrers.rs`).
//!
//! The engine knows nothing of queues: the embedded mode and the fleet's workers call the
//! same `CopyEngine::copy`, differing only in the `BlobIndex` they hand it.

mod blob;
mod destination_tags;
mod dry_run;
mod platform;
mod referrer_tags;
mod referrers;
#[cfg(test)]
mod referrers_tests;
#[cfg(test)]
mod tests;
mod transfer;

use parking_lot::Mutex;
use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;
use std::time::{Duration, Instant};

use futures::{StreamExt, TryStreamExt};
use tokio::sync::Semaphore;
use uuid::Uuid;

use crate::failure::FailureKind;
use crate::index::BlobIndex;
use crate::manifest::{Descriptor, Manifest};
use crate::name::{Reference, Repository};
use crate::reference::ImageRef;
use crate::registry::{Registries, RegistryError};
use crate::report::{CopyReport, CopyStats, Counters, TagResult, TagStatus};

pub use blob::BlobPlan;
pub use platform::PlatformFilter;
pub use referrers::{
    fallback_tag, ReferrerOptions, COSIGN_SUFFIXES, MAX_REFERRERS_PER_IMAGE, MAX_REFERRER_DEPTH,
};

use blob::{ensure_blob, Target};
use destination_tags::DestinationTags;
use referrer_tags::TagListings;
use referrers::Referrer;

/// Destination tags of one job checked (HEAD) at the same time.
const DESTINATION_HEADS: usize = 16;

/// Child manifests of one index pushed at the same time.
const CHILD_PUSHES: usize = 8;

/// How index children nested in index children are followed at most.
const MAX_INDEX_DEPTH: usize = 2;

/// Past this many tags a repository's whole listing is not asked for again: reading it
/// would cost more than the HEADs it spares (referrer tags at a source, absent tags at a
/// destination).
const WHOLE_LISTING_LIMIT: usize = 5_000;

/// Knobs of the copy engine.
#[derive(Clone, Debug)]
pub struct CopyOptions {
    /// Keep only the index children whose `os/arch[/variant]` matches.
    pub filter: Option<PlatformFilter>,
    /// Look, count and report, but write nothing.
    pub dry_run: bool,
    /// Blobs of one image handled at the same time.
    pub blob_concurrency: usize,
    /// Blob operations in flight against one destination registry, over all copies.
    pub max_per_registry: usize,
    /// Keep an index whole (or filtered, with [`filter`](Self::filter)); `false` mirrors
    /// only the one image oc would (its `--keep-manifest-list` left out): the image the
    /// filter, by default `linux/amd64`, selects, pushed as that single manifest.
    pub keep_manifest_list: bool,
    /// A copy still running after this long fails every tag it has not finished, with
    /// [`FailureKind::Deadline`]: a job never holds a worker forever.
    pub deadline: Duration,
    /// Which referrers (signatures, attestations, SBOMs) travel with their images.
    pub referrers: ReferrerOptions,
    /// Copy non-distributable (foreign) layers too; by default they are left out (with a
    /// note), as their licence may forbid it and the manifest points at where they live.
    pub include_nondistributable: bool,
    /// A source that does not exist passes its tags over ([`TagStatus::Skipped`]) instead
    /// of failing them (oc's `--skip-missing`).
    pub skip_missing: bool,
    /// Push even when a destination tag already points at the digest (oc's `--force`).
    pub force: bool,
}

impl CopyOptions {
    /// Default of [`blob_concurrency`](Self::blob_concurrency).
    pub const BLOB_CONCURRENCY: usize = 6;
    /// Default of [`max_per_registry`](Self::max_per_registry).
    pub const MAX_PER_REGISTRY: usize = 16;
    /// Default of [`deadline`](Self::deadline): generous, six hours.
    pub const DEADLINE: Duration = Duration::from_secs(6 * 3600);
}

impl Default for CopyOptions {
    fn default() -> Self {
        CopyOptions {
            filter: None,
            dry_run: false,
            blob_concurrency: Self::BLOB_CONCURRENCY,
            max_per_registry: Self::MAX_PER_REGISTRY,
            keep_manifest_list: true,
            deadline: Self::DEADLINE,
            referrers: ReferrerOptions::default(),
            include_nondistributable: false,
            skip_missing: false,
            force: false,
        }
    }
}

/// Copies images between registries; share one per process.
pub struct CopyEngine {
    registries: Arc<dyn Registries>,
    index: Arc<dyn BlobIndex>,
    opts: CopyOptions,
    /// Blob operations in flight per destination registry; shared with the engines made
    /// by [`with_options`](CopyEngine::with_options), so a job's own choices never widen it.
    limits: Arc<Mutex<HashMap<String, Arc<Semaphore>>>>,
    /// Destination registries known to answer (or not) the Referrers API.
    referrers_api: Arc<Mutex<HashMap<String, bool>>>,
    /// What source registries' tag listings can tell of referrer tags.
    listings: Arc<TagListings>,
    /// What destination repositories' tag listings tell of absent tags.
    destination_tags: Arc<DestinationTags>,
    /// The run this engine's copies belong to (see [`in_run`](CopyEngine::in_run)).
    run: Option<Uuid>,
    /// Dry run: the blobs each run has planned, so a shared one is counted as a run moves it.
    planned: Arc<dry_run::PlannedBlobs>,
}

/// A destination tag with what it points at now.
type Current<'a> = (&'a ImageRef, &'a Result<Option<String>, RegistryError>);

/// The source, resolved and verified: what to push, in push order.
struct Resolved {
    top: Manifest,
    /// Child manifests, deepest first, each once.
    children: Vec<Manifest>,
    /// Every blob of every image, each once.
    blobs: Vec<Descriptor>,
    /// What refers to the top manifest and its children, and to those in turn.
    referrers: Vec<Referrer>,
}

impl CopyEngine {
    /// An engine over the registries (a [`RegistryClient`](crate::registry::RegistryClient)
    /// in production) and a blob index.
    pub fn new(
        registries: Arc<dyn Registries>,
        index: Arc<dyn BlobIndex>,
        opts: CopyOptions,
    ) -> Self {
        CopyEngine {
            registries,
            index,
            opts,
            limits: Arc::default(),
            referrers_api: Arc::default(),
            listings: Arc::default(),
            destination_tags: Arc::default(),
            run: None,
            planned: Arc::default(),
        }
    }

    /// The options this engine copies with.
    pub fn options(&self) -> &CopyOptions {
        &self.opts
    }

    /// An engine over the same registries, index and per-registry limits with other
    /// options: a job's own choices of what to copy.
    pub fn with_options(&self, opts: CopyOptions) -> CopyEngine {
        CopyEngine {
            registries: self.registries.clone(),
            index: self.index.clone(),
            opts,
            limits: self.limits.clone(),
            referrers_api: self.referrers_api.clone(),
            listings: self.listings.clone(),
            destination_tags: self.destination_tags.clone(),
            run: self.run,
            planned: self.planned.clone(),
        }
    }

    /// This engine, for the copies of one run: a destination repository's listing answers
    /// only the run that asked for it. Within a run each destination tag has one job, so a
    /// tag the listing does not name is one nobody of the run has pushed; a later run (a
    /// `--verify` just after, another worker's pushes since) asks again.
    pub fn in_run(&self, run: Uuid) -> CopyEngine {
        CopyEngine {
            run: Some(run),
            ..self.with_options(self.opts.clone())
        }
    }

    /// Copies `source` to every destination (each with a tag). Never panics on registry
    /// errors: they become failed tags with their reason. A copy past the deadline is
    /// abandoned (its upload sessions expire at the registry) and fails every tag.
    pub async fn copy(&self, source: &ImageRef, destinations: &[ImageRef]) -> CopyReport {
        self.copy_in_slot(source, destinations, None).await
    }

    /// [`copy`](Self::copy), taking one of `slots` for the part that moves content (reading
    /// the source, blobs, pushes), not for the checks before it: a process can check many
    /// jobs' destinations at once (a round trip each, mostly "already there") while only a
    /// few copy.
    pub async fn copy_in_slot(
        &self,
        source: &ImageRef,
        destinations: &[ImageRef],
        slots: Option<&Semaphore>,
    ) -> CopyReport {
        let started = Instant::now();
        let deadline = self.opts.deadline;
        let copy = self.copy_within(source, destinations, slots);
        match tokio::time::timeout(deadline, copy).await {
            Ok(report) => report,
            Err(_) => {
                let reason = format!(
                    "{source}: the copy did not finish within the job deadline of {}s",
                    deadline.as_secs()
                );
                CopyReport {
                    source: source.to_string(),
                    digest: None,
                    tags: destinations
                        .iter()
                        .map(|d| TagResult::failed(d, FailureKind::Deadline, reason.clone()))
                        .collect(),
                    stats: CopyStats::default(),
                    seconds: started.elapsed().as_secs_f64(),
                }
            }
        }
    }

    async fn copy_within(
        &self,
        source: &ImageRef,
        destinations: &[ImageRef],
        slots: Option<&Semaphore>,
    ) -> CopyReport {
        let started = Instant::now();
        let counters = Counters::default();
        let mut report = CopyReport {
            source: source.to_string(),
            digest: None,
            tags: Vec::new(),
            stats: CopyStats::default(),
            seconds: 0.0,
        };
        // Step 2 first: where each destination tag points now. A planned job is pinned to a
        // digest, so when every tag is already there the source is not even read.
        let heads: Vec<_> = destinations
            .iter()
            .map(|d| self.head_destination(d))
            .collect();
        // Bounded: a glob of thousands of tags into one repository is one job, and its
        // destination checks must not open thousands of connections at once.
        let checks = futures::stream::iter(heads)
            .buffered(DESTINATION_HEADS)
            .collect::<Vec<_>>();
        // Only when what is pushed is the source manifest itself (no filter, no reduction to
        // one image) can the tags be checked against the source digest without reading it.
        let pushes_source =
            self.opts.filter.is_none() && self.opts.keep_manifest_list && !self.opts.force;
        // The source digest's own referrers are looked for while the destination is asked,
        // not after: a no-op run then costs one round trip per image, not two.
        let (current, early) = match (&source.digest, pushes_source) {
            (Some(want), true) if self.opts.referrers.enabled => {
                let (current, found) =
                    futures::join!(checks, self.discover_referrers(source, vec![want.clone()]));
                (current, Some(found))
            }
            _ => (checks.await, None),
        };
        if let (Some(want), true) = (&source.digest, pushes_source) {
            if current
                .iter()
                .all(|c| matches!(c, Ok(Some(d)) if d == want))
            {
                report.digest = Some(want.clone());
                let found = match early {
                    Some(found) => found,
                    None => Ok(Vec::new()),
                };
                report.tags = self
                    .sync_referrers_only(source, want, destinations, found, &counters)
                    .await;
                report.stats = counters.snapshot();
                report.seconds = started.elapsed().as_secs_f64();
                return report;
            }
        }
        // Something to copy: wait for a slot (a closed semaphore means no limit).
        let _slot = match slots {
            Some(s) => s.acquire().await.ok(),
            None => None,
        };
        match self.resolve(source, early).await {
            Err(e) if self.opts.skip_missing && is_missing_source(&e) => {
                let reason =
                    format!("{source}: the source does not exist; skipped (--skip-missing)");
                report.tags = destinations
                    .iter()
                    .map(|d| TagResult::skipped(d, reason.clone()))
                    .collect();
            }
            Err(e) => {
                report.tags = destinations.iter().map(|d| failed(d, &e)).collect();
            }
            Ok(resolved) => {
                report.digest = Some(resolved.top.digest.clone());
                let mut by_repo: BTreeMap<(String, String), Vec<Current>> = BTreeMap::new();
                for (d, c) in destinations.iter().zip(&current) {
                    by_repo
                        .entry((d.registry.clone(), d.repository.clone()))
                        .or_default()
                        .push((d, c));
                }
                for ((registry, repository), tags) in by_repo {
                    let target = Target {
                        registry: &registry,
                        repository: &repository,
                    };
                    let results = self
                        .copy_to_repository(source, &resolved, &target, &tags, &counters)
                        .await;
                    report.tags.extend(results);
                }
            }
        }
        report.stats = counters.snapshot();
        report.seconds = started.elapsed().as_secs_f64();
        report
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

    /// Step 1 and 3: the source manifest, its children (filtered), all verified.
    /// `early`: the source digest's referrers when they were already looked for.
    async fn resolve(
        &self,
        source: &ImageRef,
        early: Option<Result<Vec<Referrer>, RegistryError>>,
    ) -> Result<Resolved, RegistryError> {
        let c = &self.registries;
        let mut top = c
            .get_manifest(&source.repository(), &source.reference())
            .await?;
        if top.is_index() {
            top = self.select_platforms(source, top).await?;
        }
        let mut children: Vec<Manifest> = Vec::new();
        let mut level: Vec<Descriptor> = top.children.clone();
        let repository = source.repository();
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
                .buffered(8)
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
        let mut seen = std::collections::HashSet::new();
        children.retain(|m| seen.insert(m.digest.clone()));
        let mut blobs: Vec<Descriptor> = Vec::new();
        for m in children.iter().chain(std::iter::once(&top)) {
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
        let (mut referrers, looked_for) = match early {
            Some(found) if source.digest.as_deref() == Some(top.digest.as_str()) => {
                (found?, Some(top.digest.clone()))
            }
            _ => (Vec::new(), None),
        };
        let subjects = std::iter::once(&top)
            .chain(&children)
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
        Ok(Resolved {
            top,
            children,
            blobs,
            referrers,
        })
    }

    /// The blobs of one manifest this engine copies: foreign layers only when asked.
    fn blobs_of<'m>(&self, m: &'m Manifest) -> impl Iterator<Item = &'m Descriptor> {
        let foreign: &[Descriptor] = if self.opts.include_nondistributable {
            &m.foreign
        } else {
            &[]
        };
        m.blobs.iter().chain(foreign)
    }

    /// Every tag already at `digest`: only the top manifest's referrers (`found`) were
    /// looked for (nothing else of the source is read); the missing ones are pushed. A
    /// referrer that cannot be copied fails the tags of its repository; the tags stay.
    async fn sync_referrers_only(
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
        for ((registry, repository), tags) in by_repository(destinations) {
            let target = Target {
                registry: &registry,
                repository: &repository,
            };
            let outcome = if self.opts.dry_run {
                self.plan_referrers(source, &referrers, &target, counters)
                    .await
            } else {
                self.push_referrers(source, &referrers, &target, counters)
                    .await
            };
            results.extend(tags.into_iter().map(|d| match &outcome {
                Ok(()) => up_to_date(d, referrers.len()),
                Err(e) => referrer_failed(d, e),
            }));
        }
        results
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

    /// Steps 2, 4, 5 for the tags of one destination repository.
    async fn copy_to_repository(
        &self,
        source: &ImageRef,
        resolved: &Resolved,
        target: &Target<'_>,
        tags: &[Current<'_>],
        counters: &Counters,
    ) -> Vec<TagResult> {
        let mut results = self
            .copy_tags_to_repository(source, resolved, target, tags, counters)
            .await;
        let found = resolved.referrers.len() as u64;
        for t in &mut results {
            if t.status != TagStatus::Failed {
                t.referrers = found;
            }
        }
        results
    }

    async fn copy_tags_to_repository(
        &self,
        source: &ImageRef,
        resolved: &Resolved,
        target: &Target<'_>,
        tags: &[Current<'_>],
        counters: &Counters,
    ) -> Vec<TagResult> {
        let digest = &resolved.top.digest;
        let mut results = Vec::new();
        let mut pending: Vec<(&ImageRef, bool)> = Vec::new();
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
            } else if self.opts.dry_run {
                self.plan_referrers(source, &resolved.referrers, target, counters)
                    .await
            } else {
                self.push_referrers(source, &resolved.referrers, target, counters)
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
        if self.opts.dry_run {
            return match self.plan_blobs(source, resolved, target, counters).await {
                Ok(()) => {
                    results.extend(pending.iter().map(|(d, exists)| {
                        TagResult::ok(
                            d,
                            if *exists {
                                TagStatus::WouldUpdate
                            } else {
                                TagStatus::WouldCreate
                            },
                            digest,
                        )
                    }));
                    results
                }
                Err(e) => {
                    results.extend(pending.iter().map(|(d, _)| failed(d, &e)));
                    results
                }
            };
        }
        let mut outcome = self
            .push(source, resolved, target, &pending, counters)
            .await;
        if outcome
            .iter()
            .any(|t| matches!(t, Err(f) if is_blob_unknown(f.error())))
        {
            // The index said a blob was there and the registry disagrees: forget what
            // we knew about this repository and check every blob with the registry.
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
            // Only the tags not pushed yet go again, each taking its new outcome.
            let again: Vec<(&ImageRef, bool)> = pending
                .iter()
                .zip(&outcome)
                .filter(|(_, pushed)| pushed.is_err())
                .map(|(p, _)| *p)
                .collect();
            let mut retried = self
                .push(source, resolved, target, &again, counters)
                .await
                .into_iter();
            for t in outcome.iter_mut().filter(|t| t.is_err()) {
                if let Some(r) = retried.next() {
                    *t = r;
                }
            }
        }
        results.extend(
            pending
                .iter()
                .zip(outcome)
                .map(|((d, _), pushed)| match pushed {
                    Ok(()) => TagResult::ok(d, TagStatus::Pushed, digest),
                    Err(f) => match &*f {
                        PushFailure::Image(e) => failed(d, e),
                        PushFailure::Referrer(e) => referrer_failed(d, e),
                    },
                }),
        );
        results
    }

    /// Blobs, then child manifests by digest, then referrers, then the top manifest under
    /// each tag; one outcome per tag of `pending`. What the tags share failing fails them
    /// all; past it each tag's manifest PUT is its own, so a refused tag leaves the others
    /// pushed (and reported so, with their digest).
    async fn push(
        &self,
        source: &ImageRef,
        resolved: &Resolved,
        target: &Target<'_>,
        pending: &[(&ImageRef, bool)],
        counters: &Counters,
    ) -> Vec<TagPush> {
        match self.push_shared(source, resolved, target, counters).await {
            Ok(()) => self.push_tags(resolved, target, pending, counters).await,
            Err(e) => {
                let shared = Arc::new(e);
                pending.iter().map(|_| Err(shared.clone())).collect()
            }
        }
    }

    /// The top manifest under each tag, each PUT on its own.
    async fn push_tags(
        &self,
        resolved: &Resolved,
        target: &Target<'_>,
        pending: &[(&ImageRef, bool)],
        counters: &Counters,
    ) -> Vec<TagPush> {
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
    async fn push_shared(
        &self,
        source: &ImageRef,
        resolved: &Resolved,
        target: &Target<'_>,
        counters: &Counters,
    ) -> Result<(), PushFailure> {
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

    /// Gets every blob into the destination repository (skip, mount or upload), at most
    /// [`blob_concurrency`](CopyOptions::blob_concurrency) at once and within the
    /// registry's limit.
    async fn ensure_blobs<'b>(
        &self,
        source: &ImageRef,
        target: &Target<'_>,
        blobs: impl Iterator<Item = &'b Descriptor>,
        counters: &Counters,
    ) -> Result<(), RegistryError> {
        let limit = self.limit(target.registry);
        let copies: Vec<_> = blobs
            .map(|b| {
                let limit = limit.clone();
                async move {
                    let _permit = limit
                        .acquire_owned()
                        .await
                        .map_err(|_| RegistryError::Config("engine shut down".into()))?;
                    ensure_blob(
                        self.registries.as_ref(),
                        self.index.as_ref(),
                        counters,
                        source,
                        target,
                        b,
                    )
                    .await
                }
            })
            .collect();
        futures::stream::iter(copies)
            .buffer_unordered(self.opts.blob_concurrency.max(1))
            .try_collect::<Vec<()>>()
            .await?;
        Ok(())
    }

    /// Dry run: what every blob would need, counted as if it were done.
    async fn plan_blobs(
        &self,
        source: &ImageRef,
        resolved: &Resolved,
        target: &Target<'_>,
        counters: &Counters,
    ) -> Result<(), RegistryError> {
        for b in &resolved.blobs {
            self.plan_one(source, target, b, counters).await?;
        }
        Counters::bump(&counters.manifests, (resolved.children.len() + 1) as u64);
        self.plan_referrers(source, &resolved.referrers, target, counters)
            .await
    }

    fn limit(&self, registry: &str) -> Arc<Semaphore> {
        self.limits
            .lock()
            .entry(registry.to_string())
            .or_insert_with(|| Arc::new(Semaphore::new(self.opts.max_per_registry.max(1))))
            .clone()
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

/// The source manifest or its repository does not exist (not a blob of it).
/// A tag listing refused in a way that will not pass: the registry does not list tags to us.
fn listing_refused(e: &RegistryError) -> bool {
    match e {
        RegistryError::NotFound { .. } | RegistryError::Auth { .. } => true,
        RegistryError::Status { status, .. } => matches!(status, 400..=499) && *status != 429,
        _ => false,
    }
}

fn is_missing_source(e: &RegistryError) -> bool {
    e.is_not_found() && !e.code().is_some_and(|c| c.is_blob_unknown())
}

fn is_blob_unknown(e: &RegistryError) -> bool {
    e.code().is_some_and(|c| c.is_blob_unknown())
}

fn protocol(source: &ImageRef, message: String) -> RegistryError {
    RegistryError::Protocol {
        registry: source.registry.clone(),
        message: format!("{source}: {message}"),
    }
}

fn failed(dst: &ImageRef, e: &RegistryError) -> TagResult {
    TagResult::failed(dst, FailureKind::of(e), e.to_string())
}

/// A tag failed because one of its image's referrers could not be copied.
fn referrer_failed(dst: &ImageRef, e: &RegistryError) -> TagResult {
    TagResult::failed(
        dst,
        FailureKind::of(e),
        format!("a referrer (signature, attestation, SBOM) could not be copied: {e}"),
    )
}

/// Destinations grouped by (registry, repository), in a stable order.
fn by_repository(destinations: &[ImageRef]) -> BTreeMap<(String, String), Vec<&ImageRef>> {
    let mut map: BTreeMap<(String, String), Vec<&ImageRef>> = BTreeMap::new();
    for d in destinations {
        map.entry((d.registry.clone(), d.repository.clone()))
            .or_default()
            .push(d);
    }
    map
}
