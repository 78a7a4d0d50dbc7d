//! The embedded mode's memory: one SQLite file holding what a fleet keeps in Redis (the
//! destination tag cache, the blob index, registry quirks) and the run history `status`
//! reads (runs, their tag results, failures). It is the other [`StateStore`] beside the
//! fleet's [`Redis`](crate::store::Redis): the scheduler and the job handlers read both the
//! same way.
//!
//! Why a file (SQLite, built into the binary): it survives the process, stays consistent
//! through `kill -9` (write-ahead log; every result is one transaction), and can be looked
//! into with the `sqlite3` tool. Where it lives: `$XDG_STATE_HOME/image-mirror/state.db`
//! (`~/.local/state/image-mirror/state.db`) unless `--state PATH` says otherwise.
//!
//! What makes it safe to trust (`docs/behaviour.md`, "What an embedded run remembers"):
//! - a tag's entry is written only from a result, after the destination answered with the
//!   digest (pushed or seen); a failed tag's entry is removed. A run killed at any moment
//!   leaves entries for the tags whose results were in, each true when written.
//! - one writer: a lock file beside it ([`lock`]) names the process holding it; a second
//!   run on the same file fails at once with that pid.
//! - a file that is not a state file, is damaged, or was written by a newer schema is an
//!   error naming the path and what to do ([`schema`]), never a silent fresh start.
//!
//! Like Redis it is an accelerator: past the open, no call returns an error. A query that
//! fails is logged (once) and answered "unknown", so the run checks the registry instead.
//!
//! - [`tags`]: the tag cache; [`blobs`]: the blob index; [`quirks`]: registry quirks;
//!   [`runs`]: the run history and its pruning.

mod blobs;
mod db;
mod lock;
mod quirks;
mod runs;
mod schema;
mod tags;
#[cfg(test)]
mod tests;

use std::path::{Path, PathBuf};
use std::sync::Arc;

use async_trait::async_trait;
use mirror_common::index::BlobIndex;
use mirror_common::job::JobResult;
use mirror_common::reference::ImageRef;
use mirror_common::registry::SharedQuirks;
use mirror_common::report::TagResult;
use mirror_common::state::{StateStore, TagKey};
use uuid::Uuid;

pub use runs::{read_runs, RunOutcome, RunTotals, StoredRun};
pub use schema::StateError;

use db::Db;
pub use db::StateConfig;

/// An open state file, held by this process (the lock) until dropped.
pub struct StateFile {
    db: Arc<Db>,
    index: Arc<blobs::FileIndex>,
    _lock: lock::Holder,
}

impl StateFile {
    /// Opens (or creates) the state file at `path` for this process: takes its lock, checks
    /// that it is a state file this version reads, creates its tables if new, and prunes
    /// history and entries past their age.
    pub fn open(path: &Path, config: StateConfig) -> Result<StateFile, StateError> {
        if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
            std::fs::create_dir_all(dir).map_err(|e| StateError::Io {
                path: path.to_path_buf(),
                why: format!("cannot create {}: {e}", dir.display()),
            })?;
        }
        let lock = lock::take(path)?;
        let conn = schema::open_for_writing(path)?;
        let db = Arc::new(Db::new(path.to_path_buf(), conn, config));
        runs::prune(&db);
        Ok(StateFile {
            index: Arc::new(blobs::FileIndex::new(db.clone())),
            db,
            _lock: lock,
        })
    }

    /// Where the state file is when `--state` does not say: `$XDG_STATE_HOME/image-mirror/
    /// state.db`, else `$HOME/.local/state/image-mirror/state.db`.
    pub fn default_path() -> Option<PathBuf> {
        let base = std::env::var_os("XDG_STATE_HOME")
            .filter(|v| !v.is_empty())
            .map(PathBuf::from)
            .or_else(|| {
                std::env::var_os("HOME")
                    .filter(|v| !v.is_empty())
                    .map(|h| PathBuf::from(h).join(".local/state"))
            })?;
        Some(base.join("image-mirror").join("state.db"))
    }

    /// The file's path.
    pub fn path(&self) -> &Path {
        &self.db.path
    }
}

/// The run history (see [`runs`]).
impl StateFile {
    /// Starts a run in the history, as run by this process.
    pub fn begin_run(&self, run_id: Uuid, group: Option<&str>) {
        runs::begin(&self.db, run_id, group);
    }

    /// Says how big a planned run is: its jobs, and its destination tags in all (those with
    /// a job and those without), so that `status` can say what is pending while it goes.
    pub fn planned(&self, run_id: Uuid, jobs: u64, tags: u64) {
        runs::planned(&self.db, run_id, jobs, tags);
    }

    /// Adds to a run tags that got no job: the ones the tag cache knew up to date, and the
    /// ones whose source could not be resolved (failed, or skipped with `--skip-missing`).
    pub fn record_unjobbed(&self, run_id: Uuid, up_to_date: u64, unresolved: &[TagResult]) {
        runs::record_unjobbed(&self.db, run_id, up_to_date, unresolved);
    }

    /// Ends a run: its totals (as the run's report counted them) and how long it took;
    /// then prunes the history (so it holds at most `keep_runs`, this one among them) and
    /// folds the write-ahead log back into the file.
    pub fn finish_run(&self, run_id: Uuid, totals: &RunTotals) {
        runs::end(&self.db, run_id, totals);
        runs::prune(&self.db);
        self.checkpoint();
    }
}

#[async_trait]
impl StateStore for StateFile {
    async fn dest_digests(&self, tags: &[TagKey<'_>]) -> Vec<Option<String>> {
        tags::dest_digests(&self.db, tags)
    }

    async fn record_result(&self, destinations: &[ImageRef], result: &JobResult) {
        runs::record_result(&self.db, destinations, result);
    }

    fn blob_index(&self) -> Arc<dyn BlobIndex> {
        self.index.clone()
    }

    fn quirks(&self) -> SharedQuirks {
        SharedQuirks(Arc::new(quirks::FileQuirks::new(self.db.clone())))
    }
}

impl StateFile {
    /// Folds the write-ahead log back into the file, so that what is left on disk between
    /// runs is one file (the `sqlite3` tool reads it either way). A reader in the way
    /// (`status`) only makes it wait for the next time.
    pub(crate) fn checkpoint(&self) {
        self.db.with("checkpoint", |c| {
            c.query_row("PRAGMA wal_checkpoint(TRUNCATE)", [], |_| Ok(()))
        });
    }
}

impl Drop for StateFile {
    fn drop(&mut self) {
        self.checkpoint();
    }
}

impl std::fmt::Debug for StateFile {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("StateFile")
            .field("path", &self.db.path)
            .finish_non_exhaustive()
    }
}
