//! The file's tables, how a file is recognised as a state file of a version this build
//! reads, and the errors of opening one. Each error names the path and what to do: a state
//! file that cannot be read must stop the run, not be replaced silently (a fresh start
//! would check every tag again and forget the history).

use std::path::{Path, PathBuf};
use std::time::Duration;

use rusqlite::{Connection, OpenFlags};

/// The schema this build writes; files of a higher one are refused.
pub(crate) const VERSION: i64 = 1;

/// `PRAGMA application_id` of a state file ("IMST"): tells it from other SQLite files.
const APPLICATION_ID: i64 = 0x494D_5354;

/// How long a statement waits for a lock held by a reader (`status`) before failing.
const BUSY: Duration = Duration::from_secs(5);

/// Version 1: the tag cache, blob index, quirks, runs and their results.
const TABLES: &str = "
CREATE TABLE tags (
    registry TEXT NOT NULL, repository TEXT NOT NULL, tag TEXT NOT NULL,
    digest TEXT NOT NULL, checked_ms INTEGER NOT NULL,
    PRIMARY KEY (registry, repository, tag)
) WITHOUT ROWID;
CREATE TABLE blobs (
    registry TEXT NOT NULL, digest TEXT NOT NULL, repository TEXT NOT NULL,
    seen_ms INTEGER NOT NULL,
    PRIMARY KEY (registry, digest, repository)
) WITHOUT ROWID;
CREATE TABLE quirks (
    registry TEXT PRIMARY KEY, quirks TEXT NOT NULL, saved_ms INTEGER NOT NULL
);
CREATE TABLE runs (
    run_id TEXT PRIMARY KEY, grp TEXT, pid INTEGER NOT NULL,
    started_ms INTEGER NOT NULL, finished_ms INTEGER,
    jobs INTEGER NOT NULL DEFAULT 0, tags INTEGER NOT NULL DEFAULT 0,
    pushed INTEGER NOT NULL DEFAULT 0, up_to_date INTEGER NOT NULL DEFAULT 0,
    failed INTEGER NOT NULL DEFAULT 0, skipped INTEGER NOT NULL DEFAULT 0,
    seconds REAL
);
CREATE INDEX runs_by_start ON runs (started_ms);
CREATE TABLE results (
    run_id TEXT NOT NULL, destination TEXT NOT NULL, digest TEXT,
    status TEXT NOT NULL, kind TEXT, error TEXT
);
CREATE INDEX results_by_run ON results (run_id, status);
";

/// Why a state file cannot be used.
#[derive(Debug, thiserror::Error)]
pub enum StateError {
    /// Another process holds the file's lock.
    #[error("state file {}: in use by {} (another embedded run); wait for it to end, or give this run its own --state PATH", path.display(), holder(*pid))]
    InUse {
        /// The state file.
        path: PathBuf,
        /// The holder's pid, when it has written it.
        pid: Option<u32>,
    },
    /// Not a state file, or damaged.
    #[error("state file {}: not a readable state file ({why}); move it aside to start afresh (the next run checks every destination tag once and pushes only what differs), or run with --state none", path.display())]
    Corrupt {
        /// The state file.
        path: PathBuf,
        /// What SQLite or the check said.
        why: String,
    },
    /// Written by a newer schema than this build reads.
    #[error("state file {}: written by a newer image-mirror (state schema {found}, this one reads up to {VERSION}); run the newer version, or give this one another --state PATH", path.display())]
    Newer {
        /// The state file.
        path: PathBuf,
        /// Its schema version.
        found: i64,
    },
    /// The file or its directory cannot be opened or created.
    #[error("state file {}: {why}", path.display())]
    Io {
        /// The state file.
        path: PathBuf,
        /// What went wrong.
        why: String,
    },
    /// No state file there (status of a machine where no embedded run has written one).
    #[error("state file {}: not found (embedded runs write it unless run with --state none; --state PATH names another)", path.display())]
    Missing {
        /// Where it was looked for.
        path: PathBuf,
    },
}

fn holder(pid: Option<u32>) -> String {
    match pid {
        Some(p) => format!("process {p}"),
        None => "another process".into(),
    }
}

/// Opens the file for a run: write-ahead log, checked, its tables created when new.
pub(crate) fn open_for_writing(path: &Path) -> Result<Connection, StateError> {
    let corrupt = |e: rusqlite::Error| corrupt(path, e);
    let conn = Connection::open(path).map_err(corrupt)?;
    conn.busy_timeout(BUSY).map_err(corrupt)?;
    // The first read of the file: a file that is not SQLite fails here.
    let mode: String = conn
        .query_row("PRAGMA journal_mode = WAL", [], |r| r.get(0))
        .map_err(corrupt)?;
    tracing::debug!(path = %path.display(), mode, "state file opened");
    // A committed result survives the process being killed (the log is written before the
    // commit returns); only a power cut may lose the last ones, never the file's integrity.
    conn.pragma_update(None, "synchronous", "NORMAL")
        .map_err(corrupt)?;
    match recognise(path, &conn)? {
        Some(_) => check(path, &conn)?,
        None => create(path, &conn)?,
    }
    Ok(conn)
}

/// Opens the file to read it only (`status`), beside a run that may be writing it.
pub(crate) fn open_for_reading(path: &Path) -> Result<Connection, StateError> {
    if !path.exists() {
        return Err(StateError::Missing {
            path: path.to_path_buf(),
        });
    }
    let corrupt = |e: rusqlite::Error| corrupt(path, e);
    let flags = OpenFlags::SQLITE_OPEN_READ_ONLY | OpenFlags::SQLITE_OPEN_NO_MUTEX;
    let conn = Connection::open_with_flags(path, flags).map_err(corrupt)?;
    conn.busy_timeout(BUSY).map_err(corrupt)?;
    match recognise(path, &conn)? {
        Some(_) => Ok(conn),
        None => Err(StateError::Corrupt {
            path: path.to_path_buf(),
            why: "an empty database, no state in it".into(),
        }),
    }
}

/// The schema version of a state file, `None` for an empty database (a new file), or why
/// it is not one this build reads.
fn recognise(path: &Path, conn: &Connection) -> Result<Option<i64>, StateError> {
    let corrupt = |e: rusqlite::Error| corrupt(path, e);
    let id: i64 = conn
        .query_row("PRAGMA application_id", [], |r| r.get(0))
        .map_err(corrupt)?;
    let version: i64 = conn
        .query_row("PRAGMA user_version", [], |r| r.get(0))
        .map_err(corrupt)?;
    if id == 0 {
        let objects: i64 = conn
            .query_row("SELECT count(*) FROM sqlite_master", [], |r| r.get(0))
            .map_err(corrupt)?;
        return match objects {
            0 => Ok(None),
            _ => Err(StateError::Corrupt {
                path: path.to_path_buf(),
                why: "an SQLite database of something else".into(),
            }),
        };
    }
    if id != APPLICATION_ID {
        return Err(StateError::Corrupt {
            path: path.to_path_buf(),
            why: format!("an SQLite database of something else (application id {id:#x})"),
        });
    }
    if version > VERSION {
        return Err(StateError::Newer {
            path: path.to_path_buf(),
            found: version,
        });
    }
    Ok(Some(version))
}

/// SQLite's own consistency check of a state file about to be written to.
fn check(path: &Path, conn: &Connection) -> Result<(), StateError> {
    let verdict: String = conn
        .query_row("PRAGMA quick_check", [], |r| r.get(0))
        .map_err(|e| corrupt(path, e))?;
    match verdict.as_str() {
        "ok" => Ok(()),
        _ => Err(StateError::Corrupt {
            path: path.to_path_buf(),
            why: format!("SQLite's check says: {verdict}"),
        }),
    }
}

/// A new file's tables, version and application id, in one transaction.
fn create(path: &Path, conn: &Connection) -> Result<(), StateError> {
    let batch = format!(
        "BEGIN; {TABLES} PRAGMA user_version = {VERSION}; PRAGMA application_id = {APPLICATION_ID}; COMMIT;"
    );
    conn.execute_batch(&batch).map_err(|e| StateError::Io {
        path: path.to_path_buf(),
        why: format!("cannot create its tables: {e}"),
    })
}

fn corrupt(path: &Path, e: rusqlite::Error) -> StateError {
    StateError::Corrupt {
        path: path.to_path_buf(),
        why: e.to_string(),
    }
}
