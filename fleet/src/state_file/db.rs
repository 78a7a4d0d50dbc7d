//! The one connection of an open state file, and the rule for its failures after the open:
//! logged once, answered "unknown".

use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use parking_lot::Mutex;
use rusqlite::Connection;

/// How long what the file holds is trusted, and how much history it keeps.
#[derive(Clone, Debug)]
pub struct StateConfig {
    /// How long a destination tag's digest is trusted (each tag for its share, as in Redis).
    pub tag_max_age: Duration,
    /// How long a blob location is kept.
    pub index_ttl: Duration,
    /// Runs kept in the history, newest first.
    pub keep_runs: usize,
    /// Runs older than this are dropped from the history.
    pub keep_for: Duration,
}

/// The open file: its path, its connection, its configuration.
pub(crate) struct Db {
    pub(crate) path: PathBuf,
    conn: Mutex<Connection>,
    pub(crate) config: StateConfig,
    /// Set once a query failed, so that a damaged file is reported once, not per call.
    warned: AtomicBool,
}

impl Db {
    pub(crate) fn new(path: PathBuf, conn: Connection, config: StateConfig) -> Self {
        Db {
            path,
            conn: Mutex::new(conn),
            config,
            warned: AtomicBool::new(false),
        }
    }

    /// Runs `f` on the connection. Calls are short (an indexed lookup or a small
    /// transaction), so they run on the caller's thread under a lock rather than on a
    /// blocking pool. A failure is logged the first time and answered `None`.
    pub(crate) fn with<T>(
        &self,
        what: &str,
        f: impl FnOnce(&mut Connection) -> rusqlite::Result<T>,
    ) -> Option<T> {
        let mut conn = self.conn.lock();
        match f(&mut conn) {
            Ok(v) => Some(v),
            Err(e) => {
                if !self.warned.swap(true, Ordering::Relaxed) {
                    tracing::warn!(
                        path = %self.path.display(),
                        what,
                        error = %e,
                        "the state file did not answer; working without what it knows (move it aside if this repeats)"
                    );
                }
                None
            }
        }
    }
}
