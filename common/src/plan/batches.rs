//! The planner's second pass: the accepted files read again in order, a batch of whole
//! files at a time, each batch expanded (with the first pass's listings), stripped of the
//! tags a later file gives, resolved and grouped into jobs. A caller handles one batch
//! (checks the tag cache, publishes, reports) before asking for the next, so a run's
//! memory depends on the batch, not on the set.

use std::path::PathBuf;

use uuid::Uuid;

use super::expand::{expand, Entry};
use super::jobs::{into_jobs, resolve_sources};
use super::limits::RegistryLimits;
use super::survey::{survey, Survey};
use crate::job::Job;
use crate::mapping::destinations::key_hash;
use crate::mapping::{check_expanded_duplicates, load_file, MappingError, MappingSet};
use crate::registry::Registries;
use crate::report::TagResult;
use crate::source_digests::SourceDigests;

/// Destination tags per batch (a batch ends with the file that reaches it): thousands of
/// source HEADs, so the resolution stays as wide as the registries allow for most of a batch
/// (see `limits.rs`).
pub const BATCH_TAGS: usize = 8192;

/// The jobs of some consecutive files.
pub struct Batch {
    /// The jobs, one per source image and destination repository.
    pub jobs: Vec<Job>,
    /// Destination tags whose source could not be resolved, each with its `file:line`.
    pub unresolved: Vec<(TagResult, String)>,
    /// Files that changed since the first pass and are now rejected (they contribute no job).
    pub rejected: Vec<(PathBuf, Vec<MappingError>)>,
}

/// Plans a run batch by batch (see the module doc).
pub struct Planner<'a> {
    survey: Survey,
    limits: RegistryLimits,
    client: &'a dyn Registries,
    run_id: Uuid,
    next_file: usize,
    batch_tags: usize,
}

impl<'a> Planner<'a> {
    /// Runs the first pass over `files` (reading, listing, expanding every file; see
    /// [`survey`]), ready for [`Self::next_batch`]; at most `per_registry` requests to any
    /// one registry at once (see `limits.rs`).
    pub async fn start(
        files: &[PathBuf],
        client: &'a dyn Registries,
        run_id: Uuid,
        per_registry: usize,
    ) -> Self {
        let limits = RegistryLimits::new(per_registry);
        Planner {
            survey: survey(files, client, &limits).await,
            limits,
            client,
            run_id,
            next_file: 0,
            batch_tags: BATCH_TAGS,
        }
    }

    /// Batches of at least `tags` destination tags (the last may be smaller), for tests.
    pub fn with_batch_tags(mut self, tags: usize) -> Self {
        self.batch_tags = tags.max(1);
        self
    }

    /// The run this plans.
    pub fn run_id(&self) -> Uuid {
        self.run_id
    }

    /// The files, the rejected ones and the superseded mappings, as the first pass found
    /// them (`mappings` is empty: they are read again batch by batch).
    pub fn set(&self) -> &MappingSet {
        &self.survey.set
    }

    /// [`Self::set`], taken.
    pub fn into_set(self) -> MappingSet {
        self.survey.set
    }

    /// The next batch, `None` once every file was planned.
    pub async fn next_batch(&mut self) -> Option<Batch> {
        self.next_batch_asking(None).await
    }

    /// [`Self::next_batch`], its sources resolved by `remote` (the fleet's workers) where
    /// it can, and here for the rest.
    pub async fn next_batch_asking(&mut self, remote: Option<&dyn SourceDigests>) -> Option<Batch> {
        let files = self.survey.set.files.len();
        if self.next_file >= files {
            return None;
        }
        let mut entries: Vec<Entry> = Vec::new();
        let mut rejected = Vec::new();
        while self.next_file < files && entries.len() < self.batch_tags {
            let index = self.next_file;
            self.next_file += 1;
            match self.entries_of(index) {
                Ok(e) => entries.extend(e),
                Err(errors) => rejected.push((self.survey.set.files[index].clone(), errors)),
            }
        }
        let remote = remote.map(|r| (r, self.run_id));
        let digests = resolve_sources(&entries, self.client, &self.limits, remote).await;
        let (jobs, unresolved) = into_jobs(entries, &digests, self.run_id);
        Some(Batch {
            jobs,
            unresolved,
            rejected,
        })
    }

    /// The destination tags file `index` gives and no later file does; nothing for a file
    /// the first pass rejected; every error of one that changed since and is now rejected.
    /// A tag a file gives only since the first pass is left for the next run.
    fn entries_of(&self, index: usize) -> Result<Vec<Entry>, Vec<MappingError>> {
        if self.survey.rejected.contains(&index) {
            return Ok(Vec::new());
        }
        let (_, parsed) = load_file(&self.survey.set.files[index]);
        let (mut entries, errors) = expand(&parsed?, &self.survey.listed);
        if !errors.is_empty() {
            return Err(errors);
        }
        let duplicates =
            check_expanded_duplicates(entries.iter().map(|e| (&e.destination, &e.origin)));
        if !duplicates.is_empty() {
            return Err(duplicates);
        }
        entries.retain(|e| key_hash(&e.destination).is_some_and(|h| self.survey.wins(h, index)));
        Ok(entries)
    }
}
