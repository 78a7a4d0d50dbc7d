//! Progress counters of runs, kept in Redis so they survive a scheduler restart and any
//! process (the `status` command) can read them without replaying the run history.
//!
//! A run is a hash `<p>:run:{<run_id>}` that expires after the configured TTL (the run
//! history on the broker says which runs there were); `<p>:runs` indexes them by start, so
//! that `status` reads the history from the oldest run it shows instead of its whole window. Counts are per destination tag
//! and follow `status`: pushed (or would be, in a dry run) counts as done, up to date and
//! failed are counted apart. A job delivered twice (a worker died after reporting) is counted
//! twice: the counters are progress, the run history stays the record.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::{SystemTime, UNIX_EPOCH};

use serde::{Deserialize, Serialize};
use uuid::Uuid;

use super::conn::{millis, Shared};
use mirror_common::report::CopyReport;

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
}

impl RunProgress {
    /// Tags not reported yet.
    pub fn pending(&self) -> u64 {
        self.total
            .saturating_sub(self.done + self.up_to_date + self.failed + self.skipped)
    }

    fn from_fields(fields: &HashMap<String, u64>) -> Option<Self> {
        if fields.is_empty() {
            return None;
        }
        let f = |name: &str| fields.get(name).copied().unwrap_or(0);
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

    /// Records a run's size when it starts.
    pub async fn start(&self, run_id: Uuid, total_tags: u64, jobs: u64) {
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
            .ignore()
            .cmd("PEXPIRE")
            .arg(&key)
            .arg(ttl)
            .ignore();
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

    /// Adds what one job did to its run.
    pub async fn add(&self, run_id: Uuid, report: &CopyReport) {
        let counts = report.counts();
        let key = self.shared.keys.run(run_id);
        let ttl = millis(self.shared.config.ttl);
        let mut pipe = redis::pipe();
        pipe.atomic();
        for (field, by) in [
            ("jobs_done", 1),
            ("done", counts.done()),
            ("up_to_date", counts.up_to_date),
            ("failed", counts.failed),
            ("skipped", counts.skipped),
            ("bytes", report.stats.bytes_uploaded),
        ] {
            if by > 0 {
                pipe.cmd("HINCRBY").arg(&key).arg(field).arg(by).ignore();
            }
        }
        pipe.cmd("PEXPIRE").arg(&key).arg(ttl).ignore();
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
        let fields: HashMap<String, u64> = self
            .shared
            .call("HGETALL", |mut c| async move {
                redis::cmd("HGETALL").arg(&key).query_async(&mut c).await
            })
            .await?;
        RunProgress::from_fields(&fields)
    }
}

fn now_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX))
        .unwrap_or(0)
}
