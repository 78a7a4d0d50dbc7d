//! Where the mappings an event is matched against come from: one route per group of a
//! groups file (every group's files), or the one route of `run --schedule` (its files),
//! each with what a scheduled run of it stamps on its jobs (credentials name, copy options,
//! group, digest tags). The `run` command builds them from its flags and settings; they
//! are built again whenever the listener checks for changed files, so a group's new file
//! is seen without a restart.

use std::path::PathBuf;
use std::sync::Arc;

use mirror_common::job::Job;
use mirror_common::job_options::JobOptions;

/// The mapping files of one group (or of the run) and the stamp of its jobs.
#[derive(Clone, Debug)]
pub(crate) struct Route {
    /// The group (`None` outside groups), for logs.
    pub group: Option<String>,
    /// Its mapping files, in the order a run reads them (a later file wins a tag).
    pub files: Vec<PathBuf>,
    /// What its jobs carry.
    pub stamp: Stamp,
}

/// What a scheduled run of a route puts on every job (the same as its batches get).
#[derive(Clone, Debug)]
pub(crate) struct Stamp {
    /// The push credentials name (never a secret).
    pub credentials: Option<String>,
    /// What to copy (platforms, manifest lists, referrers, foreign layers).
    pub options: JobOptions,
    /// The group, for metrics and logs.
    pub group: Option<String>,
    /// Also a tag of the digest's first 12 hex digits beside each mapped tag.
    pub digest_tag: bool,
}

impl Stamp {
    /// Stamps `jobs` as a scheduled run of the route would.
    pub(crate) fn apply(&self, jobs: &mut [Job]) {
        if self.digest_tag {
            mirror_common::plan::add_digest_tags(jobs);
        }
        for job in jobs {
            job.credentials.clone_from(&self.credentials);
            job.options = Some(self.options.clone());
            job.group.clone_from(&self.group);
        }
    }
}

/// Builds the routes afresh (the groups file and `--dir` read again).
pub(crate) type Resolve = Arc<dyn Fn() -> anyhow::Result<Vec<Route>> + Send + Sync>;
