//! The embedded mode's state file (see `mirror_fleet::state_file`): which one a run uses
//! (`--state PATH|none`, else the default location), opened once per process. Every run of
//! a long-running process (`--schedule`, each group of `--groups`) shares that one open
//! file: it holds the file's lock for as long as the process lives, so a second process
//! on the same file fails at its start, not at some later run.
//!
//! A dry run neither reads nor writes it (it reports what each destination holds, not what
//! was remembered of it), and the distributed mode keeps its state in Redis: `--state`
//! there is a mistake, said as such.

use std::path::PathBuf;
use std::sync::Arc;

use anyhow::{bail, Result};
use mirror_cli::FleetHooks;
use mirror_common::index::{BlobIndex, MemoryIndex};
use mirror_common::state::StateStore;
use mirror_fleet::state_file::{RunTotals, StateConfig, StateFile};
use parking_lot::Mutex;
use uuid::Uuid;

use super::args::Args;
use crate::report::RunReport;

/// The state file this process opened, by path.
static OPENED: Mutex<Option<Arc<StateFile>>> = Mutex::new(None);

/// The state file of a run with `args`: `None` when the run remembers nothing (`--state
/// none`, a dry run); opened (locked) at the first call of the process.
pub(crate) fn open(args: &Args) -> Result<Option<Arc<StateFile>>> {
    let Some(path) = chosen_path(args)? else {
        return Ok(None);
    };
    let mut opened = OPENED.lock();
    if let Some(file) = opened.as_ref().filter(|f| f.path() == path) {
        return Ok(Some(file.clone()));
    }
    let config = StateConfig {
        tag_max_age: args.redis_ttl.tag_cache_max_age.into(),
        index_ttl: args.redis_ttl.index_ttl.into(),
        keep_runs: args.state_keep_runs.max(1),
        keep_for: args.state_keep_for.into(),
    };
    let file = Arc::new(StateFile::open(&path, config)?);
    tracing::debug!(path = %path.display(), "state file opened");
    *opened = Some(file.clone());
    Ok(Some(file))
}

/// The path `--state` and the mode choose, or `None` for no state file.
fn chosen_path(args: &Args) -> Result<Option<PathBuf>> {
    let named = args.state.as_deref().map(str::trim);
    if !args.local && !args.dry_run {
        if let Some(s) = named.filter(|s| *s != "none") {
            bail!("--state {s}: the state file is for embedded runs (--local); a fleet keeps its state in Redis (--redis)");
        }
        return Ok(None);
    }
    if args.dry_run {
        return Ok(None);
    }
    match named {
        Some("none") => Ok(None),
        Some("") => bail!("--state needs a file path, or none"),
        Some(path) => Ok(Some(PathBuf::from(path))),
        None => match StateFile::default_path() {
            Some(path) => Ok(Some(path)),
            None => bail!(
                "no place for the state file: neither XDG_STATE_HOME nor HOME is set; pass --state PATH, or --state none"
            ),
        },
    }
}

/// Ends a run in the state file's history with the report's counts.
pub(crate) fn finish(file: &StateFile, run_id: Uuid, report: &RunReport, seconds: f64) {
    let t = &report.totals;
    let tags = &t.tags;
    file.finish_run(
        run_id,
        &RunTotals {
            jobs: t.jobs as u64,
            tags: tags.total(),
            pushed: tags.pushed,
            up_to_date: tags.up_to_date,
            failed: tags.failed,
            skipped: tags.skipped,
            seconds: Some(seconds),
        },
    );
}

/// What in-process copies share through `store`: its blob index and its quirks; without a
/// store, an in-memory index for the process and nothing learnt kept.
pub(crate) fn engine_parts(
    store: Option<&Arc<dyn StateStore>>,
) -> (Arc<dyn BlobIndex>, FleetHooks) {
    match store {
        Some(s) => (
            s.blob_index(),
            FleetHooks {
                gate: None,
                quirks: Some(s.quirks()),
            },
        ),
        None => (Arc::new(MemoryIndex::new()), FleetHooks::default()),
    }
}
