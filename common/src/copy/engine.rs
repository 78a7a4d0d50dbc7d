//! The engine itself: [`CopyEngine`], what its copies share, and one copy from start to
//! end: the deadline around it, the destination checks first and the fast path when every
//! tag is already at the source digest (`fast_path.rs`), otherwise the source resolved
//! (`resolve.rs`) and pushed one destination repository at a time (`push.rs`).

use parking_lot::Mutex;
use std::collections::HashMap;
use std::sync::Arc;
use std::time::Instant;

use tokio::sync::Semaphore;
use uuid::Uuid;

use super::destination_tags::DestinationTags;
use super::dry_run::PlannedBlobs;
use super::options::CopyOptions;
use super::referrer_tags::TagListings;
use crate::failure::FailureKind;
use crate::index::BlobIndex;
use crate::reference::ImageRef;
use crate::registry::Registries;
use crate::report::{CopyReport, CopyStats, Counters, TagResult};

/// Copies images between registries; share one per process.
pub struct CopyEngine {
    pub(super) registries: Arc<dyn Registries>,
    pub(super) index: Arc<dyn BlobIndex>,
    pub(super) opts: CopyOptions,
    /// Blob operations in flight per destination registry; shared with the engines made
    /// by [`with_options`](CopyEngine::with_options), so a job's own choices never widen it.
    pub(super) limits: Arc<Mutex<HashMap<String, Arc<Semaphore>>>>,
    /// Destination registries known to answer (or not) the Referrers API.
    pub(super) referrers_api: Arc<Mutex<HashMap<String, bool>>>,
    /// What source registries' tag listings can tell of referrer tags.
    pub(super) listings: Arc<TagListings>,
    /// What destination repositories' tag listings tell of absent tags.
    pub(super) destination_tags: Arc<DestinationTags>,
    /// The run this engine's copies belong to (see [`in_run`](CopyEngine::in_run)).
    pub(super) run: Option<Uuid>,
    /// Dry run: the blobs each run has planned, so a shared one is counted as a run moves it.
    pub(super) planned: Arc<PlannedBlobs>,
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

    /// The registries this engine talks to (the worker resolves sources for the scheduler
    /// through them: the same client, credentials and bounds as its copies).
    pub fn registries(&self) -> Arc<dyn Registries> {
        self.registries.clone()
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

    /// The copy inside the deadline: the destination checks, then either only the
    /// referrers (every tag already there) or the source's content, within a slot.
    async fn copy_within(
        &self,
        source: &ImageRef,
        destinations: &[ImageRef],
        slots: Option<&Semaphore>,
    ) -> CopyReport {
        let started = Instant::now();
        let counters = Counters::default();
        let (current, early) = self.check_destinations(source, destinations).await;
        let (digest, tags) = match self.all_there(source, &current) {
            Some(want) => {
                let found = early.unwrap_or_else(|| Ok(Vec::new()));
                let tags = self
                    .sync_referrers_only(source, want, destinations, found, &counters)
                    .await;
                (Some(want.clone()), tags)
            }
            None => {
                // Something to copy: wait for a slot (a closed semaphore means no limit).
                let _slot = match slots {
                    Some(s) => s.acquire().await.ok(),
                    None => None,
                };
                self.copy_source(source, destinations, &current, early, &counters)
                    .await
            }
        };
        CopyReport {
            source: source.to_string(),
            digest,
            tags,
            stats: counters.snapshot(),
            seconds: started.elapsed().as_secs_f64(),
        }
    }
}
