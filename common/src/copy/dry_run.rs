//! What a dry run counts, so that its prediction is what a real run then moves.
//!
//! A dry run writes nothing, so the blob index learns nothing from it: planned alone, every
//! job of a run would count a base layer its images share as one more upload (a run of 60
//! tags over one base predicted it 60 times). A real run uploads it once per destination
//! registry (the upload lease; the others wait, then mount it) and mounts it into each other
//! repository, or finds it there already in a repository it was just pushed to. The run's
//! plans are therefore remembered here, per run and per destination registry: the first
//! plan of a blob counts what it needs, a later one in another repository of that registry
//! counts a mount (where the registry mounts; an upload again where it does not), and a
//! later one in the same repository counts it as already there.

use parking_lot::Mutex;
use std::collections::HashMap;
use std::time::{Duration, Instant};

use uuid::Uuid;

use super::target::Target;

/// A run's plans are forgotten once the run has planned nothing for this long (a
/// scheduler staying up with `--schedule --dry-run` does not keep every run's).
const KEPT: Duration = Duration::from_secs(3600);

/// How many repositories a planned mount names at most (as the engine tries).
const MOUNT_FROM: usize = 3;

/// Blobs planned so far, by run; shared by every engine made from one (see
/// `CopyEngine::with_options`, `CopyEngine::in_run`); `blobs.rs` plans with it.
#[derive(Default)]
pub(crate) struct PlannedBlobs {
    runs: Mutex<HashMap<Option<Uuid>, RunPlans>>,
}

/// One run's plans: by (destination registry, digest), the repositories planned to hold it.
struct RunPlans {
    touched: Instant,
    blobs: HashMap<(String, String), Vec<String>>,
}

/// What the run planned for a blob before this plan.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum Earlier {
    /// Nothing: this plan counts what the blob needs.
    Nothing,
    /// It is already counted into this repository: a real run finds it there.
    HereAlready,
    /// It is counted into these other repositories of the registry: a real run mounts it
    /// from them.
    Elsewhere(Vec<String>),
}

impl PlannedBlobs {
    /// Records that `run` plans `digest` into `repository` of `registry`, and says what it
    /// had planned for that blob before. One lock for both, so two jobs planning the same
    /// blob at once are first and second, never both first.
    pub(crate) fn claim(&self, run: Option<Uuid>, target: &Target<'_>, digest: &str) -> Earlier {
        let mut runs = self.runs.lock();
        let now = Instant::now();
        runs.retain(|_, r| now.duration_since(r.touched) < KEPT);
        let plans = runs.entry(run).or_insert_with(|| RunPlans {
            touched: now,
            blobs: HashMap::new(),
        });
        plans.touched = now;
        let repositories = plans
            .blobs
            .entry((target.registry.to_string(), digest.to_string()))
            .or_default();
        let earlier = if repositories.iter().any(|r| r == target.repository) {
            return Earlier::HereAlready;
        } else if repositories.is_empty() {
            Earlier::Nothing
        } else {
            Earlier::Elsewhere(repositories.iter().take(MOUNT_FROM).cloned().collect())
        };
        repositories.push(target.repository.to_string());
        earlier
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn target<'a>(registry: &'a str, repository: &'a str) -> Target<'a> {
        Target {
            registry,
            repository,
        }
    }

    #[test]
    fn a_blob_is_first_planned_once_per_registry_and_run() {
        let planned = PlannedBlobs::default();
        let run = Some(Uuid::new_v4());
        let d = "sha256:aa";
        assert_eq!(planned.claim(run, &target("r1", "a"), d), Earlier::Nothing);
        assert_eq!(
            planned.claim(run, &target("r1", "a"), d),
            Earlier::HereAlready
        );
        assert_eq!(
            planned.claim(run, &target("r1", "b"), d),
            Earlier::Elsewhere(vec!["a".into()])
        );
        assert_eq!(
            planned.claim(run, &target("r2", "a"), d),
            Earlier::Nothing,
            "another registry needs it too"
        );
        assert_eq!(
            planned.claim(Some(Uuid::new_v4()), &target("r1", "a"), d),
            Earlier::Nothing,
            "another run plans for itself"
        );
    }
}
