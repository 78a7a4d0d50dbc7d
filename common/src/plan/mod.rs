//! The planner: mapping files -> copy jobs. Tag globs and tag-less sources are expanded by
//! listing the source repository (once per repository and run), every source is resolved
//! to its digest (a HEAD per source tag and batch), and the destination tags of one source
//! image in one destination repository become one job.
//!
//! Two passes, so that a run's memory does not grow with its set (100x the real set is
//! 770,000 destination tags): the first ([`survey`]) reads every file and keeps only what
//! the whole set decides (rejected files, which file gives each tag last); the second
//! ([`Planner::next_batch`]) reads the files again and plans a batch of whole files at a
//! time, for the caller to publish before the next.
//!
//! Whole-file rule: a file whose sources cannot be listed, or whose expanded destinations
//! collide with another mapping's in the same file, contributes no job at all. Across files
//! the later file wins a destination tag; the earlier mapping is superseded for it.

mod batches;
mod expand;
mod jobs;
mod limits;
mod survey;

use std::path::PathBuf;

use uuid::Uuid;

use crate::job::Job;
use crate::mapping::MappingSet;
use crate::registry::Registries;
use crate::report::TagResult;

pub use batches::{Batch, Planner, BATCH_TAGS};
pub use jobs::add_digest_tags;
pub use limits::PER_REGISTRY;

/// What a whole run will do, every batch together (the embedded mode and dry runs; the
/// distributed mode publishes batch by batch).
pub struct Plan {
    /// The run the jobs belong to.
    pub run_id: Uuid,
    /// The jobs, one per source image and destination repository.
    pub jobs: Vec<Job>,
    /// Destination tags that cannot be copied because their source could not be resolved,
    /// each with the `file:line` that asked for it.
    pub unresolved: Vec<(TagResult, String)>,
    /// The files of the run: the rejected ones and every destination tag superseded by a
    /// later file (no mappings: the planner reads them batch by batch).
    pub set: MappingSet,
}

/// Plans every batch of `files` into one [`Plan`] ([`PER_REGISTRY`] requests at once to
/// each registry).
pub async fn plan(files: &[PathBuf], client: &dyn Registries, run_id: Uuid) -> Plan {
    let mut planner = Planner::start(files, client, run_id, PER_REGISTRY).await;
    let mut plan = Plan {
        run_id,
        jobs: Vec::new(),
        unresolved: Vec::new(),
        set: MappingSet::default(),
    };
    let mut late = Vec::new();
    while let Some(batch) = planner.next_batch().await {
        plan.jobs.extend(batch.jobs);
        plan.unresolved.extend(batch.unresolved);
        late.extend(batch.rejected);
    }
    plan.set = planner.into_set();
    plan.set.rejected.extend(late);
    plan
}

#[cfg(test)]
mod tests;
