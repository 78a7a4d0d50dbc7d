//! Progress counters of runs, kept in Redis so they survive a scheduler restart and any
//! process (the `status` command) can read them without replaying the run history.
//!
//! A run is a hash `<p>:run:{<run_id>}` that expires after the configured TTL (the run
//! history on the broker says which runs there were); `<p>:runs` indexes them by start, so
//! that `status` finds the newest runs without reading the history. Counts are per
//! destination tag and follow `status`: pushed (or would be, in a dry run) counts as done,
//! up to date and failed are counted apart. A job delivered twice (a worker died after
//! reporting) is counted twice: the counters are progress, the run history stays the record.
//!
//! Beside the hash, `<p>:run:{<run_id>}:failures` lists the run's first [`FAILURES_KEPT`]
//! failed tags (destination, kind, reason), so that `status` can say which tags failed and
//! why from Redis alone; the hash's `failed` stays the exact count. Both keys carry the
//! run's hash tag: one MULTI (the job's one round trip) counts and lists a failure.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::{SystemTime, UNIX_EPOCH};

use serde::{Deserialize, Serialize};
use uuid::Uuid;

use super::conn::{millis, Shared};
use mirror_common::failure::FailureKind;
use mirror_common::report::{CopyReport, TagResult, TagStatus};

/// Failed tags a run keeps in Redis, at most: what an operator reads in `status` (a run
/// with more failures usually fails for one reason), and it bounds a run's list at ~100 KiB
/// (reasons are cut at [`REASON_KEPT`]) whatever the size of the run.
pub const FAILURES_KEPT: usize = 100;

/// Bytes of a failure's reason kept in Redis: registry error bodies can be pages long.
pub const REASON_KEPT: usize = 1024;

/// A failed tag as a run keeps it in Redis: which tag, and why.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct RunFailure {
    /// `registry/repository:tag`.
    pub destination: String,
    /// Why it failed, for a decision (absent from results of older workers).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub kind: Option<FailureKind>,
    /// Why it failed, for a person (at most [`REASON_KEPT`] bytes).
    pub reason: String,
}

impl RunFailure {
    /// The failure of `tag`, its reason cut to [`REASON_KEPT`]; `None` when it did not fail.
    pub fn of(tag: &TagResult) -> Option<Self> {
        if tag.status != TagStatus::Failed {
            return None;
        }
        let mut reason = tag.error.clone().unwrap_or_default();
        if reason.len() > REASON_KEPT {
            let mut end = REASON_KEPT;
            while !reason.is_char_boundary(end) {
                end -= 1;
            }
            reason.truncate(end);
        }
        Some(RunFailure {
            destination: tag.destination.clone(),
            kind: tag.failure,
            reason,
        })
    }
}

/// What Redis keeps of a run: its numbers and its first failed tags.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RunRecord {
    /// The run's counters (`failed` counts every failed tag, listed or not).
    pub progress: RunProgress,
    /// The run's first failed tags, at most [`FAILURES_KEPT`], in the order they reported.
    pub failures: Vec<RunFailure>,
}

/// One run's numbers.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct RunProgress {
    /// Destination tags the run will write.
    pub total: u64,
    /// Jobs the run enqueued.
    pub jobs: u64,
    /// Jobs reported so far (a retried job counts each time it reports).
    pub jobs_done: u64,
    /// Tags pushed (or, in a dry run, that would be).
    pub done: u64,
    /// Tags that already pointed at the source digest.
    pub up_to_date: u64,
    /// Tags that failed.
    pub failed: u64,
    /// Tags passed over because their source does not exist (`--skip-missing`).
    #[serde(default)]
    pub skipped: u64,
    /// Bytes uploaded (mounted blobs do not cross the wire and are not counted).
    pub bytes: u64,
    /// Milliseconds since the Unix epoch when the run started.
    pub started_at_ms: u64,
    /// The group the run is of, if any (runs of schedulers from before it was kept have none).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub group: Option<String>,
}

impl RunProgress {
    /// Tags not reported yet.
    pub fn pending(&self) -> u64 {
        self.total
            .saturating_sub(self.done + self.up_to_date + self.failed + self.skipped)
    }

    fn from_fields(fields: &HashMap<String, String>) -> Option<Self> {
        if fields.is_empty() {
            return None;
        }
        let f = |name: &str| fields.get(name).and_then(|v| v.parse().ok()).unwrap_or(0);
        Some(RunProgress {
            total: f("total"),
            jobs: f("jobs"),
            jobs_done: f("jobs_done"),
            done: f("done"),
            up_to_date: f("up_to_date"),
            failed: f("failed"),
            skipped: f("skipped"),
            bytes: f("bytes"),
            started_at_ms: f("started_at_ms"),
            group: fields.get("group").cloned(),
        })
    }
}

/// Run progress counters, fleet-wide.
#[derive(Clone)]
pub struct RunCounters {
    shared: Arc<Shared>,
}

impl RunCounters {
    pub(crate) fn new(shared: Arc<Shared>) -> Self {
        RunCounters { shared }
    }

    /// Records a run's size and group when it starts (a group already there is kept).
    pub async fn start(&self, run_id: Uuid, total_tags: u64, jobs: u64, group: Option<&str>) {
        let key = self.shared.keys.run(run_id);
        let ttl = millis(self.shared.config.ttl);
        let now = now_ms();
        let mut pipe = redis::pipe();
        pipe.cmd("HSET")
            .arg(&key)
            .arg("total")
            .arg(total_tags)
            .arg("jobs")
            .arg(jobs)
            .arg("started_at_ms")
            .arg(now)
            .ignore();
        if let Some(group) = group {
            pipe.cmd("HSETNX")
                .arg(&key)
                .arg("group")
                .arg(group)
                .ignore();
        }
        pipe.cmd("PEXPIRE").arg(&key).arg(ttl).ignore();
        let _: Option<()> = self
            .shared
            .call("start run", |mut c| async move {
                pipe.query_async(&mut c).await
            })
            .await;
        // The index, in a call of its own: another key, another Redis Cluster slot.
        let index = self.shared.keys.runs();
        let mut pipe = redis::pipe();
        pipe.cmd("ZADD")
            .arg(&index)
            .arg(now)
            .arg(run_id.to_string())
            .ignore()
            .cmd("ZREMRANGEBYSCORE")
            .arg(&index)
            .arg("-inf")
            .arg(now.saturating_sub(ttl))
            .ignore()
            .cmd("PEXPIRE")
            .arg(&index)
            .arg(ttl)
            .ignore();
        let _: Option<()> = self
            .shared
            .call("index run", |mut c| async move {
                pipe.query_async(&mut c).await
            })
            .await;
    }

    /// The newest runs started since `since_ms` (ms since the Unix epoch), at most
    /// `limit`, newest first, each with its start; `None` when Redis is down.
    pub async fn recent(&self, since_ms: u64, limit: usize) -> Option<Vec<(Uuid, u64)>> {
        let index = self.shared.keys.runs();
        let listed: Vec<(String, u64)> = self
            .shared
            .call("ZREVRANGEBYSCORE", |mut c| {
                let index = index.clone();
                async move {
                    redis::cmd("ZREVRANGEBYSCORE")
                        .arg(&index)
                        .arg("+inf")
                        .arg(since_ms)
                        .arg("WITHSCORES")
                        .arg("LIMIT")
                        .arg(0)
                        .arg(limit)
                        .query_async(&mut c)
                        .await
                }
            })
            .await?;
        Some(
            listed
                .into_iter()
                .filter_map(|(id, ms)| Some((id.parse().ok()?, ms)))
                .collect(),
        )
    }

    /// Adds what one job did to its run, its failed tags listed (up to [`FAILURES_KEPT`]):
    /// one round trip.
    pub async fn add(&self, run_id: Uuid, report: &CopyReport) {
        let counts = report.counts();
        self.count(
            run_id,
            &[
                ("jobs_done", 1),
                ("done", counts.done()),
                ("up_to_date", counts.up_to_date),
                ("failed", counts.failed),
                ("skipped", counts.skipped),
                ("bytes", report.stats.bytes_uploaded),
            ],
            &report.tags,
        )
        .await;
    }

    /// Counts tags that failed before any job (while planning: a source that does not
    /// resolve) as failed, listed like a job's, without counting a job.
    pub async fn add_failed(&self, run_id: Uuid, tags: &[TagResult]) {
        let failed = tags
            .iter()
            .filter(|t| t.status == TagStatus::Failed)
            .count();
        if failed == 0 {
            return;
        }
        self.count(run_id, &[("failed", failed as u64)], tags).await;
    }

    /// Adds `by` to the run's fields and lists the failed ones of `tags`, in one MULTI.
    async fn count(&self, run_id: Uuid, by: &[(&str, u64)], tags: &[TagResult]) {
        let key = self.shared.keys.run(run_id);
        let ttl = millis(self.shared.config.ttl);
        let mut pipe = redis::pipe();
        pipe.atomic();
        for (field, by) in by.iter().filter(|(_, by)| *by > 0) {
            pipe.cmd("HINCRBY").arg(&key).arg(field).arg(by).ignore();
        }
        pipe.cmd("PEXPIRE").arg(&key).arg(ttl).ignore();
        let failures = self.shared.keys.run_failures(run_id);
        list_failures(&mut pipe, &failures, tags, ttl);
        let _: Option<()> = self
            .shared
            .call("count run", |mut c| async move {
                pipe.query_async(&mut c).await
            })
            .await;
    }

    /// Counts tags found up to date without a job (the scheduler's tag cache): they add to
    /// `up_to_date` but not to the jobs reported.
    pub async fn add_up_to_date(&self, run_id: Uuid, tags: u64) {
        if tags == 0 {
            return;
        }
        let key = self.shared.keys.run(run_id);
        let ttl = millis(self.shared.config.ttl);
        let mut pipe = redis::pipe();
        pipe.atomic();
        pipe.cmd("HINCRBY")
            .arg(&key)
            .arg("up_to_date")
            .arg(tags)
            .ignore();
        pipe.cmd("PEXPIRE").arg(&key).arg(ttl).ignore();
        let _: Option<()> = self
            .shared
            .call("count run", |mut c| async move {
                pipe.query_async(&mut c).await
            })
            .await;
    }

    /// A run's numbers; `None` when unknown, expired, or Redis is down.
    pub async fn get(&self, run_id: Uuid) -> Option<RunProgress> {
        let key = self.shared.keys.run(run_id);
        let fields: HashMap<String, String> = self
            .shared
            .call("HGETALL", |mut c| async move {
                redis::cmd("HGETALL").arg(&key).query_async(&mut c).await
            })
            .await?;
        RunProgress::from_fields(&fields)
    }

    /// A run's numbers and first failed tags, in one round trip; `None` when unknown,
    /// expired, or Redis is down.
    pub async fn record(&self, run_id: Uuid) -> Option<RunRecord> {
        let key = self.shared.keys.run(run_id);
        let failures = self.shared.keys.run_failures(run_id);
        let mut pipe = redis::pipe();
        pipe.cmd("HGETALL")
            .arg(&key)
            .cmd("LRANGE")
            .arg(&failures)
            .arg(0)
            .arg(FAILURES_KEPT - 1);
        let (fields, listed): (HashMap<String, String>, Vec<String>) = self
            .shared
            .call(
                "read run",
                |mut c| async move { pipe.query_async(&mut c).await },
            )
            .await?;
        Some(RunRecord {
            progress: RunProgress::from_fields(&fields)?,
            // An entry that does not decode (a newer writer's) is left out, not fatal.
            failures: listed
                .iter()
                .filter_map(|f| serde_json::from_str(f).ok())
                .collect(),
        })
    }
}

/// Appends the failed ones of `tags` to the run's list `key` and trims it to the first
/// [`FAILURES_KEPT`]: the first failures stay (a listing that does not churn while the run
/// goes on), the rest are only counted. Nothing is added for a job without failures.
fn list_failures(pipe: &mut redis::Pipeline, key: &str, tags: &[TagResult], ttl: u64) {
    let entries: Vec<String> = tags
        .iter()
        .filter_map(RunFailure::of)
        .take(FAILURES_KEPT)
        .filter_map(|f| serde_json::to_string(&f).ok())
        .collect();
    if entries.is_empty() {
        return;
    }
    pipe.cmd("RPUSH").arg(key).arg(&entries).ignore();
    pipe.cmd("LTRIM")
        .arg(key)
        .arg(0)
        .arg(FAILURES_KEPT - 1)
        .ignore();
    pipe.cmd("PEXPIRE").arg(key).arg(ttl).ignore();
}

fn now_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX))
        .unwrap_or(0)
}
