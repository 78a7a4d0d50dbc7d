//! The run history of a state file, what `status --state` shows: one row per run (its
//! group, pid, start and end, counts per tag status) and one row per tag result that was
//! more than "already up to date" (pushed, failed, skipped), so that a run where nothing
//! changed adds one row, not one per tag. Pruned when a run opens the file and when one
//! ends: runs beyond the newest `keep_runs` or older than `keep_for`, with their results.

use std::path::Path;

use mirror_common::job::JobResult;
use mirror_common::reference::ImageRef;
use mirror_common::report::{TagCounts, TagResult, TagStatus};
use mirror_common::state::tag_age::now_ms;
use mirror_common::state::{tag_updates, TagUpdate};
use rusqlite::{params, Connection, Transaction};
use uuid::Uuid;

use super::db::Db;
use super::lock;
use super::schema::{self, StateError};
use super::tags::{self, millis};
use crate::store::RunFailure;

/// Failures shown per run (the count stays exact).
const FAILURES_SHOWN: usize = 100;

/// A run's counts per destination tag.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct RunTotals {
    /// Jobs the run made (tags the tag cache knew need none).
    pub jobs: u64,
    /// Destination tags of the run.
    pub tags: u64,
    /// Tags pushed.
    pub pushed: u64,
    /// Tags already at their digest (by the tag cache or a check).
    pub up_to_date: u64,
    /// Tags that failed.
    pub failed: u64,
    /// Tags passed over (`--skip-missing`).
    pub skipped: u64,
    /// How long the run took, once it ended.
    pub seconds: Option<f64>,
}

/// How a run in the history ended.
#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum RunOutcome {
    /// It ended and wrote its totals.
    Finished,
    /// Its process is still there.
    Running,
    /// Its process is gone without ending it (killed, crashed): its counts are what its
    /// results had reached.
    Interrupted,
}

/// One run of the history.
#[derive(Clone, Debug)]
pub struct StoredRun {
    /// The run.
    pub run_id: Uuid,
    /// Its group (`run --groups`), if any.
    pub group: Option<String>,
    /// Milliseconds since the Unix epoch when it started.
    pub started_ms: u64,
    /// How it ended.
    pub outcome: RunOutcome,
    /// Its counts.
    pub totals: RunTotals,
    /// Its failed tags, the first [`FAILURES_SHOWN`].
    pub failures: Vec<RunFailure>,
    /// How many tags failed in all (see `failures`).
    pub failures_total: u64,
}

/// Starts a run in the history, as run by this process.
pub(crate) fn begin(db: &Db, run_id: Uuid, group: Option<&str>) {
    db.with("begin run", |c| {
        c.execute(
            "INSERT OR IGNORE INTO runs (run_id, grp, pid, started_ms) VALUES (?1, ?2, ?3, ?4)",
            params![
                run_id.to_string(),
                group,
                std::process::id(),
                now_ms() as i64
            ],
        )
    });
}

/// Adds to a run tags that got no job: the ones the tag cache knew up to date, and the
/// ones whose source could not be resolved (failed, or skipped with `--skip-missing`).
pub(crate) fn record_unjobbed(db: &Db, run_id: Uuid, up_to_date: u64, unresolved: &[TagResult]) {
    if up_to_date == 0 && unresolved.is_empty() {
        return;
    }
    db.with("record planning", |c| {
        let tx = c.transaction()?;
        let mut counts = TagCounts {
            up_to_date,
            ..TagCounts::default()
        };
        for t in unresolved {
            counts.add(t.status);
            insert_result(&tx, run_id, t)?;
        }
        add_counts(&tx, run_id, &counts)?;
        tx.commit()
    });
}

/// Says how big a planned run is: its jobs, and its destination tags in all (those with
/// a job and those without), so that `status` can say what is pending while it goes.
pub(crate) fn planned(db: &Db, run_id: Uuid, jobs: u64, tags: u64) {
    db.with("plan run", |c| {
        c.execute(
            "UPDATE runs SET jobs = ?2, tags = ?3 WHERE run_id = ?1",
            params![run_id.to_string(), jobs as i64, tags as i64],
        )
    });
}

/// Ends a run: its totals (as the run's report counted them) and when.
pub(crate) fn end(db: &Db, run_id: Uuid, totals: &RunTotals) {
    db.with("finish run", |c| {
        c.execute(
            "UPDATE runs SET finished_ms = ?2, jobs = ?3, tags = ?4, pushed = ?5, up_to_date = ?6,
             failed = ?7, skipped = ?8, seconds = ?9 WHERE run_id = ?1",
            params![
                run_id.to_string(),
                now_ms() as i64,
                totals.jobs as i64,
                totals.tags as i64,
                totals.pushed as i64,
                totals.up_to_date as i64,
                totals.failed as i64,
                totals.skipped as i64,
                totals.seconds
            ],
        )
    });
}

/// Adds `counts` to a run's row.
fn add_counts(tx: &Transaction<'_>, run_id: Uuid, counts: &TagCounts) -> rusqlite::Result<()> {
    tx.prepare_cached(
        "UPDATE runs SET pushed = pushed + ?2, up_to_date = up_to_date + ?3,
         failed = failed + ?4, skipped = skipped + ?5 WHERE run_id = ?1",
    )?
    .execute(params![
        run_id.to_string(),
        counts.pushed as i64,
        counts.up_to_date as i64,
        counts.failed as i64,
        counts.skipped as i64
    ])?;
    Ok(())
}

/// A job's result, in one transaction: what its destination tags point at now (a failed
/// one forgotten), its tag results that were more than up to date, its run's counts.
pub(crate) fn record_result(db: &Db, destinations: &[ImageRef], result: &JobResult) {
    let updates = tag_updates(destinations, result);
    db.with("record result", |c| {
        let tx = c.transaction()?;
        for t in result
            .report
            .tags
            .iter()
            .filter(|t| t.status != TagStatus::UpToDate)
        {
            insert_result(&tx, result.run_id, t)?;
        }
        for update in &updates {
            match *update {
                TagUpdate::Points(tag, digest) => tags::set(&tx, tag, digest)?,
                TagUpdate::Unknown(tag) => tags::forget(&tx, tag)?,
            }
        }
        add_counts(&tx, result.run_id, &result.report.counts())?;
        tx.commit()
    });
}

fn insert_result(tx: &Transaction<'_>, run_id: Uuid, t: &TagResult) -> rusqlite::Result<()> {
    let status = serde_json::to_value(t.status)
        .ok()
        .and_then(|v| v.as_str().map(str::to_string))
        .unwrap_or_default();
    let kind = t
        .failure
        .and_then(|k| serde_json::to_value(k).ok())
        .and_then(|v| v.as_str().map(str::to_string));
    tx.prepare_cached(
        "INSERT INTO results (run_id, destination, digest, status, kind, error) VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
    )?
    .execute(params![
        run_id.to_string(),
        t.destination,
        t.digest,
        status,
        kind,
        t.error
    ])?;
    Ok(())
}

/// Drops what is past keeping: runs beyond the newest `keep_runs` or older than `keep_for`
/// (their results too), tag entries older than the max age (no reader trusts them) and blob
/// locations older than the index lifetime.
pub(crate) fn prune(db: &Db) {
    let config = &db.config;
    let now = now_ms();
    let runs_before = now.saturating_sub(millis(config.keep_for)) as i64;
    let tags_before = now.saturating_sub(millis(config.tag_max_age)) as i64;
    let blobs_before = now.saturating_sub(millis(config.index_ttl)) as i64;
    let keep = i64::try_from(config.keep_runs).unwrap_or(i64::MAX);
    db.with("prune", |c| {
        let tx = c.transaction()?;
        tx.execute(
            "DELETE FROM runs WHERE started_ms < ?1 OR run_id IN
             (SELECT run_id FROM runs ORDER BY started_ms DESC LIMIT -1 OFFSET ?2)",
            params![runs_before, keep],
        )?;
        tx.execute(
            "DELETE FROM results WHERE run_id NOT IN (SELECT run_id FROM runs)",
            [],
        )?;
        tx.execute("DELETE FROM tags WHERE checked_ms < ?1", [tags_before])?;
        tx.execute("DELETE FROM blobs WHERE seen_ms < ?1", [blobs_before])?;
        tx.commit()
    });
}

/// The newest `shown` runs of the state file at `path`, newest first, each with its first
/// failures; read beside a run that may be writing the file.
pub fn read_runs(path: &Path, shown: usize) -> Result<Vec<StoredRun>, StateError> {
    let conn = schema::open_for_reading(path)?;
    let read = |e: rusqlite::Error| StateError::Corrupt {
        path: path.to_path_buf(),
        why: e.to_string(),
    };
    // A run is going when its process holds the lock now (the pid in the lock file is the
    // last holder's, so the process must also be alive).
    let holder = lock::last_holder(path).filter(|pid| lock::alive(*pid));
    let mut runs = newest_runs(&conn, shown, holder).map_err(read)?;
    for run in &mut runs {
        run.failures = failures(&conn, run.run_id).map_err(read)?;
    }
    Ok(runs)
}

fn newest_runs(
    conn: &Connection,
    shown: usize,
    holder: Option<u32>,
) -> rusqlite::Result<Vec<StoredRun>> {
    let mut q = conn.prepare(
        "SELECT run_id, grp, pid, started_ms, finished_ms, jobs, tags, pushed, up_to_date, failed, skipped, seconds
         FROM runs ORDER BY started_ms DESC, rowid DESC LIMIT ?1",
    )?;
    let limit = i64::try_from(shown).unwrap_or(i64::MAX);
    let rows = q.query_map([limit], |r| {
        let id: String = r.get(0)?;
        let pid: u32 = r.get(2)?;
        let finished: Option<i64> = r.get(4)?;
        let n = |i: usize| -> rusqlite::Result<u64> { Ok(r.get::<_, i64>(i)?.max(0) as u64) };
        let outcome = match (finished, holder == Some(pid)) {
            (Some(_), _) => RunOutcome::Finished,
            (None, true) => RunOutcome::Running,
            (None, false) => RunOutcome::Interrupted,
        };
        let failed = n(9)?;
        Ok(StoredRun {
            run_id: Uuid::parse_str(&id).unwrap_or_default(),
            group: r.get(1)?,
            started_ms: n(3)?,
            outcome,
            totals: RunTotals {
                jobs: n(5)?,
                tags: n(6)?,
                pushed: n(7)?,
                up_to_date: n(8)?,
                failed,
                skipped: n(10)?,
                seconds: r.get(11)?,
            },
            failures: Vec::new(),
            failures_total: failed,
        })
    })?;
    rows.collect()
}

fn failures(conn: &Connection, run_id: Uuid) -> rusqlite::Result<Vec<RunFailure>> {
    let mut q = conn.prepare_cached(
        "SELECT destination, kind, error FROM results WHERE run_id = ?1 AND status = 'failed' LIMIT ?2",
    )?;
    let rows = q.query_map(params![run_id.to_string(), FAILURES_SHOWN as i64], |r| {
        let kind: Option<String> = r.get(1)?;
        Ok(RunFailure {
            destination: r.get(0)?,
            kind: kind.and_then(|k| serde_json::from_value(serde_json::Value::String(k)).ok()),
            reason: r.get::<_, Option<String>>(2)?.unwrap_or_default(),
        })
    })?;
    rows.collect()
}
