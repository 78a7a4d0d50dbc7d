//! What `status` collects: per queue its ready, in-flight and consumer counts, the retrying
//! and parked totals, each run's progress, and with `--groups` each group's last run and
//! next start.
//!
//! The newest runs come from Redis alone when it indexes runs in the window: each run's
//! counters and its first failed tags (fleet `RunCounters::record`), a few kilobytes where
//! the history of one run at 100x is ~260 MB. The run history on the broker is read only
//! when Redis cannot answer (down, no run indexed: schedulers from before the index) and
//! for `--groups` (each group's last run may be older than the newest runs); there the
//! fleet's counters stand in for a run the history no longer announces.

use std::collections::{BTreeMap, HashMap};
use std::path::Path;
use std::time::Duration;

use anyhow::Result;
use mirror_cli::RedisArgs;
use mirror_common::failure::FailureKind;
use mirror_common::job::RunEvent;
use mirror_common::report::TagStatus;
use mirror_fleet::amqp::AmqpQueue;
use mirror_fleet::store::{Redis, RunFailure, RunRecord};
use serde::Serialize;
use uuid::Uuid;

use super::management::ListedQueue;

/// Everything `status` shows.
#[derive(Debug, Serialize)]
pub(crate) struct Status {
    /// Where the numbers came from (and why in-flight counts are missing, if they are).
    pub source: String,
    pub queues: Vec<QueueStatus>,
    pub retrying: u64,
    /// With `--groups`: each group's last run and next start.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub groups: Vec<GroupStatus>,
    pub parked: u64,
    /// Where the runs came from: `Redis`, `the history` (both a fleet's) or `the state file`
    /// (embedded runs).
    pub runs_source: &'static str,
    pub runs: Vec<RunStatus>,
}

/// One queue's numbers; `in_flight` is known only through the management API.
#[derive(Debug, Serialize)]
pub(crate) struct QueueStatus {
    pub name: String,
    pub role: &'static str,
    pub ready: u64,
    pub in_flight: Option<u64>,
    pub consumers: u64,
}

/// One run's progress.
#[derive(Debug, Default, Serialize)]
pub(crate) struct RunStatus {
    pub run_id: Uuid,
    /// The group the run is of, if any.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub group: Option<String>,
    pub started_at: u64,
    pub jobs: usize,
    pub tags: usize,
    pub done: usize,
    pub up_to_date: usize,
    pub failed: usize,
    pub pending: usize,
    pub failures: Vec<Failure>,
    /// Failed tags counted but not listed (Redis and a state file list a run's first 100).
    #[serde(skip_serializing_if = "is_zero")]
    pub failures_not_shown: usize,
    /// How an embedded run ended (`finished`, `running`, `interrupted`); a fleet's run
    /// shows its progress instead.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub outcome: Option<&'static str>,
    /// Whether the history holds the run's announcement (else its size is unknown there).
    #[serde(skip)]
    pub announced: bool,
    /// The announcement's place in the history: orders runs started in the same second.
    #[serde(skip)]
    pub seq: usize,
}

/// A failed tag and why.
#[derive(Debug, Serialize)]
pub(crate) struct Failure {
    pub destination: String,
    /// What kind of failure (`not_found`, `denied`, `network`, ...).
    pub kind: Option<FailureKind>,
    pub reason: String,
}

/// A failure as Redis and the state file keep it.
impl From<RunFailure> for Failure {
    fn from(f: RunFailure) -> Self {
        Failure {
            destination: f.destination,
            kind: f.kind,
            reason: f.reason,
        }
    }
}

/// One group: its last run in the history and when it starts next.
#[derive(Debug, Serialize)]
pub(crate) struct GroupStatus {
    pub name: String,
    /// The newest run of the group within `--since`.
    pub last_run: Option<Uuid>,
    /// Tags failed in that run.
    pub last_failed: usize,
    /// Tags pending in that run.
    pub last_pending: usize,
    /// The next start by its schedule (RFC 3339), if it has one.
    pub next_start: Option<String>,
}

/// Everything `status` shows: the queue counts of `queue` (in-flight from `listing`, the
/// management API's queues, when it answered), the `shown` newest runs within `since`
/// (from Redis, else from the history), and with `groups` each group of that groups file.
pub(crate) async fn collect(
    queue: &AmqpQueue,
    listing: Result<Vec<ListedQueue>>,
    since: Duration,
    shown: usize,
    redis: &RedisArgs,
    groups: Option<&Path>,
) -> Result<Status> {
    let (source, queues) = queue_status(queue, listing).await?;
    let total = |role: &str| -> u64 {
        queues
            .iter()
            .filter(|q| q.role == role)
            .map(|q| q.ready)
            .sum()
    };
    let (retrying, parked) = (total("retrying"), total("parked"));
    let redis = Redis::connect_checked(redis.config()).await?;
    let from_redis = match groups {
        Some(_) => None,
        None => runs_from_redis(&redis, since, shown).await,
    };
    let (runs_source, runs) = match from_redis {
        Some(runs) => ("Redis", runs),
        None => (
            "the history",
            runs_from_history(queue, &redis, since, shown, groups).await?,
        ),
    };
    let groups = match groups {
        Some(path) => groups_status(path, &runs)?,
        None => Vec::new(),
    };
    Ok(Status {
        source,
        queues,
        retrying,
        parked,
        groups,
        runs_source,
        runs,
    })
}

/// The `shown` newest runs of `since` from Redis alone: its index of runs, each run's
/// counters and first failed tags; nothing of the history is read. `None` when Redis
/// cannot say: down, no run indexed in the window, or a run's counters gone (expired, or
/// Redis failed in between), so that the history answers instead of a partial list.
async fn runs_from_redis(redis: &Redis, since: Duration, shown: usize) -> Option<Vec<RunStatus>> {
    if redis.is_degraded() {
        return None;
    }
    let counters = redis.counters();
    let listed = counters.recent(since_ms(since), shown.max(1)).await?;
    if listed.is_empty() {
        return None;
    }
    let mut runs = Vec::with_capacity(listed.len());
    for (run_id, _) in listed {
        runs.push(run_of_record(run_id, counters.record(run_id).await?));
    }
    runs.truncate(shown);
    Some(runs)
}

/// One run as `status` shows it, from what Redis keeps of it.
fn run_of_record(run_id: Uuid, record: RunRecord) -> RunStatus {
    let p = &record.progress;
    let failed = p.failed as usize;
    RunStatus {
        run_id,
        group: p.group.clone(),
        started_at: p.started_at_ms / 1000,
        jobs: p.jobs as usize,
        tags: p.total as usize,
        done: p.done as usize,
        up_to_date: p.up_to_date as usize,
        failed,
        pending: p.pending() as usize,
        failures_not_shown: failed.saturating_sub(record.failures.len()),
        failures: record.failures.into_iter().map(Failure::from).collect(),
        outcome: None,
        announced: true,
        seq: 0,
    }
}

/// The runs of the history: from the oldest of the `shown` newest runs Redis indexes on
/// (all of `since` with `groups`, keeping every run for each group's last one).
async fn runs_from_history(
    queue: &AmqpQueue,
    redis: &Redis,
    since: Duration,
    shown: usize,
    groups: Option<&Path>,
) -> Result<Vec<RunStatus>> {
    let (window, shown) = match groups {
        Some(_) => (since, usize::MAX),
        None => (history_window(redis, since, shown).await, shown),
    };
    let mut history = History::default();
    queue
        .read_history_each(window, |event| history.add(event))
        .await?;
    let mut runs = history.runs();
    runs.truncate(shown);
    // The history is the record. The fleet's counters in Redis stand in only for a run
    // whose announcement the history no longer holds.
    if !redis.is_degraded() {
        for r in runs.iter_mut().filter(|r| !r.announced) {
            if let Some(p) = redis.counters().get(r.run_id).await {
                r.tags = p.total as usize;
                r.done = p.done as usize;
                r.up_to_date = p.up_to_date as usize;
                r.failed = p.failed as usize;
                r.pending = p.pending() as usize;
            }
        }
    }
    Ok(runs)
}

/// How far back the history is read: from the start of the oldest of the `shown` newest
/// runs Redis indexes (a minute earlier, for clocks), within `since`; all of `since` when
/// Redis does not answer or indexes no run there (runs of schedulers from before the
/// index). At 100x the real set a steady hour adds ~260 MB to the history (bench/sim.sh):
/// a day of it is more than the stream keeps (4 GiB), far more than the last runs need.
async fn history_window(redis: &Redis, since: Duration, shown: usize) -> Duration {
    let now_ms = now_ms();
    let since_ms = since_ms(since);
    if redis.is_degraded() {
        return since;
    }
    match redis.counters().recent(since_ms, shown.max(1)).await {
        Some(listed) if !listed.is_empty() => {
            let oldest = listed.iter().map(|(_, ms)| *ms).min().unwrap_or(since_ms);
            let back =
                Duration::from_millis(now_ms.saturating_sub(oldest)) + Duration::from_secs(60);
            back.min(since)
        }
        _ => since,
    }
}

fn now_ms() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_millis() as u64)
        .unwrap_or(0)
}

/// The start of the window `since` (ms since the Unix epoch).
fn since_ms(since: Duration) -> u64 {
    now_ms().saturating_sub(since.as_millis() as u64)
}

fn is_zero(n: &usize) -> bool {
    *n == 0
}

/// Each queue of the installation with its numbers, and where they came from.
async fn queue_status(
    queue: &AmqpQueue,
    listing: Result<Vec<ListedQueue>>,
) -> Result<(String, Vec<QueueStatus>)> {
    let names = queue.queue_names();
    let mut roles: Vec<(String, &'static str)> = vec![(names.jobs.clone(), "jobs")];
    roles.extend(names.retries.iter().map(|r| (r.clone(), "retrying")));
    roles.push((names.parked.clone(), "parked"));
    // Its consumers are the workers answering source-digest requests.
    roles.push((names.digests.clone(), "digests"));
    // Ready and consumers from passive declares: exact and immediate. In-flight counts only
    // the management API knows (it samples queues every few seconds).
    let counts = queue.counts().await?;
    let in_flight: Result<BTreeMap<String, u64>> = listing.map(|listed| {
        listed
            .into_iter()
            .map(|q| (q.name, q.messages_unacknowledged))
            .collect()
    });
    let source = match &in_flight {
        Ok(_) => "AMQP passive declare; retry queues and in-flight from the management API (sampled every few seconds)"
            .to_string(),
        Err(e) => format!(
            "AMQP passive declare; in-flight unknown: {e:#} (retry queues as --retry-delays names them)"
        ),
    };
    let queues = roles
        .iter()
        .map(|(name, role)| {
            let c = counts.iter().find(|c| &c.name == name);
            QueueStatus {
                name: name.clone(),
                role,
                ready: c.map(|c| u64::from(c.ready)).unwrap_or(0),
                in_flight: in_flight.as_ref().ok().and_then(|m| m.get(name).copied()),
                consumers: c.map(|c| u64::from(c.consumers)).unwrap_or(0),
            }
        })
        .collect();
    Ok((source, queues))
}

/// Every group of the groups file with its last run among `runs` (newest first).
pub(crate) fn groups_status(path: &Path, runs: &[RunStatus]) -> Result<Vec<GroupStatus>> {
    let file = crate::groups::load(path)?;
    let now = chrono::Utc::now();
    Ok(file
        .groups
        .iter()
        .map(|g| {
            let last = runs
                .iter()
                .find(|r| r.group.as_deref() == Some(g.name.as_str()));
            let next_start = g
                .schedule
                .as_deref()
                .and_then(|s| crate::schedule::Schedule::parse(s).ok())
                .and_then(|s| s.next_after(now).ok())
                .map(|t| t.to_rfc3339());
            GroupStatus {
                name: g.name.clone(),
                last_run: last.map(|r| r.run_id),
                last_failed: last.map_or(0, |r| r.failed),
                last_pending: last.map_or(0, |r| r.pending),
                next_start,
            }
        })
        .collect())
}

/// Progress of every run in `history`, newest first (see [`History`]).
#[cfg(test)]
pub(crate) fn runs(history: &[RunEvent]) -> Vec<RunStatus> {
    let mut folded = History::default();
    for event in history {
        folded.add(event.clone());
    }
    folded.runs()
}

/// The history folded into run progress as it is read (`status` reads hours of it: at 100x
/// the real set, a gigabyte of results a day). The history is the record: a job that
/// reported more than once (redelivered after a worker died, or requeued from the parked
/// queue and run again) counts with its latest result only, so per job its latest counts
/// and failed tags are kept, not the result.
#[derive(Default)]
pub(crate) struct History {
    seq: usize,
    by_run: BTreeMap<Uuid, RunStatus>,
    latest: BTreeMap<Uuid, HashMap<Uuid, JobOutcome>>,
}

/// What the latest result of one job counts.
struct JobOutcome {
    done: usize,
    up_to_date: usize,
    failed: usize,
    failures: Vec<Failure>,
}

impl History {
    /// Folds in the next event of the history.
    pub(crate) fn add(&mut self, event: RunEvent) {
        let seq = self.seq;
        self.seq += 1;
        match event {
            RunEvent::Started(s) => {
                let r = self.by_run.entry(s.run_id).or_default();
                r.seq = seq;
                r.run_id = s.run_id;
                r.started_at = s.started_at;
                r.jobs = s.jobs;
                // Announcements of earlier versions listed their tags instead of counting them.
                r.tags = s.tags.max(s.destinations.len()) + s.up_to_date;
                r.group = s.group;
                r.up_to_date += s.up_to_date;
                r.announced = true;
            }
            RunEvent::Result(res) => {
                let r = self.by_run.entry(res.run_id).or_default();
                r.run_id = res.run_id;
                let counts = res.report.counts();
                let failures = res
                    .report
                    .tags
                    .into_iter()
                    .filter(|t| t.status == TagStatus::Failed)
                    .map(|t| Failure {
                        destination: t.destination,
                        kind: t.failure,
                        reason: t.error.unwrap_or_default(),
                    })
                    .collect();
                let outcome = JobOutcome {
                    done: counts.done() as usize,
                    up_to_date: counts.up_to_date as usize,
                    failed: counts.failed as usize,
                    failures,
                };
                self.latest
                    .entry(res.run_id)
                    .or_default()
                    .insert(res.job_id, outcome);
            }
        }
    }

    /// Every run folded in, newest first.
    pub(crate) fn runs(mut self) -> Vec<RunStatus> {
        for (run_id, results) in self.latest {
            let Some(r) = self.by_run.get_mut(&run_id) else {
                continue;
            };
            for outcome in results.into_values() {
                r.done += outcome.done;
                r.up_to_date += outcome.up_to_date;
                r.failed += outcome.failed;
                r.failures.extend(outcome.failures);
            }
        }
        let mut runs: Vec<RunStatus> = self.by_run.into_values().collect();
        for r in &mut runs {
            r.pending = r.tags.saturating_sub(r.done + r.up_to_date + r.failed);
        }
        runs.sort_by_key(|r| std::cmp::Reverse((r.started_at, r.seq)));
        runs
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use mirror_common::job::{JobResult, RunStarted};
    use mirror_common::report::{CopyReport, TagResult};

    fn result(run_id: Uuid, job_id: Uuid, tag: TagResult) -> RunEvent {
        RunEvent::Result(JobResult {
            version: 1,
            job_id,
            run_id,
            report: CopyReport {
                source: "s".into(),
                digest: None,
                tags: vec![tag],
                stats: Default::default(),
                seconds: 0.0,
            },
            origins: vec![],
        })
    }

    #[test]
    fn a_job_that_reported_twice_counts_with_its_latest_result() {
        let run = Uuid::new_v4();
        let (a, b) = (Uuid::new_v4(), Uuid::new_v4());
        let failed = TagResult::failed("r/a:1", FailureKind::Network, "gave up");
        let pushed = TagResult::ok("r/a:1", TagStatus::Pushed, "sha256:0");
        let history = [
            result(run, a, failed),
            RunEvent::Started(RunStarted {
                version: 1,
                run_id: run,
                started_at: 1,
                jobs: 2,
                destinations: vec![],
                tags: 2,
                up_to_date: 3,
                group: None,
            }),
            result(
                run,
                b,
                TagResult::ok("r/b:1", TagStatus::UpToDate, "sha256:0"),
            ),
            // Requeued from the parked queue and run again.
            result(run, a, pushed),
        ];
        let r = &runs(&history)[0];
        assert_eq!(
            (r.tags, r.done, r.up_to_date, r.failed, r.pending),
            (5, 1, 4, 0, 0)
        );
        assert!(r.failures.is_empty());
    }

    #[test]
    fn a_run_from_redis_says_how_many_failures_it_does_not_list() {
        use mirror_fleet::store::{RunFailure, RunProgress};
        let record = RunRecord {
            progress: RunProgress {
                total: 300,
                jobs: 3,
                done: 90,
                failed: 150,
                started_at_ms: 7_999,
                group: Some("team".into()),
                ..RunProgress::default()
            },
            failures: vec![
                RunFailure {
                    destination: "r/a:1".into(),
                    kind: Some(FailureKind::Denied),
                    reason: "denied".into(),
                };
                100
            ],
        };
        let r = run_of_record(Uuid::nil(), record);
        assert_eq!(
            (r.failed, r.failures.len(), r.failures_not_shown),
            (150, 100, 50)
        );
        assert_eq!(
            (r.started_at, r.pending, r.group.as_deref()),
            (7, 60, Some("team"))
        );
        assert_eq!(r.failures[0].kind, Some(FailureKind::Denied));
    }

    #[test]
    fn runs_started_in_the_same_second_are_listed_latest_announced_first() {
        let started = |run_id| {
            RunEvent::Started(RunStarted {
                version: 1,
                run_id,
                started_at: 7,
                jobs: 0,
                destinations: vec![],
                tags: 0,
                up_to_date: 0,
                group: None,
            })
        };
        let (first, second) = (Uuid::from_u128(2), Uuid::from_u128(1));
        let listed: Vec<Uuid> = runs(&[started(first), started(second)])
            .iter()
            .map(|r| r.run_id)
            .collect();
        assert_eq!(listed, [second, first]);
    }
}
