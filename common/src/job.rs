//! Copy jobs and their results: the messages between the scheduler and the workers.
//!
//! A job is one source image (pinned by digest) and the tags it must reach in one
//! destination repository. Both types carry a `version`, so a fleet can be upgraded one
//! part at a time: a worker refuses (parks) a job whose version it does not know.

use serde::{Deserialize, Serialize};
use uuid::Uuid;

use crate::failure::FailureKind;
use crate::job_options::JobOptions;
use crate::reference::ImageRef;
use crate::report::{CopyReport, TagResult};

/// The message format version this build writes and reads.
pub const JOB_VERSION: u32 = 1;

/// One unit of copy work.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Job {
    /// The message format version ([`JOB_VERSION`] when written by this build); a worker
    /// parks a job whose version it does not know.
    pub version: u32,
    /// Unique id of this job (also the broker's `message_id`).
    pub id: Uuid,
    /// The scheduler run that planned it.
    pub run_id: Uuid,
    /// The source as written (tag kept for messages).
    pub source: ImageRef,
    /// The source digest resolved by the planner; the worker copies exactly this. A job
    /// whose digest is malformed does not decode (and is parked).
    #[serde(deserialize_with = "crate::digest::deserialize")]
    pub digest: String,
    /// Destination tags, all in one repository of one registry.
    pub destinations: Vec<ImageRef>,
    /// Where the mapping came from (`file:line`), for reports.
    pub origins: Vec<String>,
    /// How many times this job was tried before (0 on the first delivery).
    #[serde(default)]
    pub attempt: u32,
    /// The name of the credentials its destinations are written with (a team's push
    /// Secret, as the workers hold it); never a secret. `None`: the worker's own.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub credentials: Option<String>,
    /// The group of the run (a team's mapping files), for metrics and logs.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub group: Option<String>,
    /// What to copy of the image (platforms, referrers, foreign layers), as the run decided;
    /// `None` (jobs of older schedulers): the worker's own flags decide.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub options: Option<JobOptions>,
}

impl Job {
    /// Each destination tag as (registry, repository, tag): the keys the fleet's tag cache
    /// and pending marks are kept under.
    pub fn destination_keys(&self) -> impl Iterator<Item = (&str, &str, &str)> {
        self.destinations.iter().map(|d| {
            (
                d.registry.as_str(),
                d.repository.as_str(),
                d.manifest_reference(),
            )
        })
    }

    /// A new job of a run.
    pub fn new(
        run_id: Uuid,
        source: ImageRef,
        digest: String,
        destinations: Vec<ImageRef>,
        origins: Vec<String>,
    ) -> Self {
        Job {
            version: JOB_VERSION,
            id: Uuid::new_v4(),
            run_id,
            source,
            digest,
            destinations,
            origins,
            attempt: 0,
            credentials: None,
            group: None,
            options: None,
        }
    }

    /// The source pinned to the planned digest.
    pub fn pinned_source(&self) -> ImageRef {
        ImageRef {
            digest: Some(self.digest.clone()),
            ..self.source.clone()
        }
    }
}

/// What a worker reports for a job.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct JobResult {
    /// The message format version ([`JOB_VERSION`] when written by this build).
    pub version: u32,
    /// The job this is the result of.
    pub job_id: Uuid,
    /// The run the job belongs to.
    pub run_id: Uuid,
    /// What the copy did, tag by tag.
    pub report: CopyReport,
    /// Where the job's mapping came from (`file:line`), copied from the job for reports.
    pub origins: Vec<String>,
}

impl JobResult {
    /// The result of running `job`.
    pub fn new(job: &Job, report: CopyReport) -> Self {
        JobResult {
            version: JOB_VERSION,
            job_id: job.id,
            run_id: job.run_id,
            report,
            origins: job.origins.clone(),
        }
    }

    /// A job that failed before any copy could start (an unknown message version, a run
    /// that stopped): every destination tag failed with `kind` and `reason`.
    pub fn failed(job: &Job, kind: FailureKind, reason: &str) -> Self {
        let tags = job
            .destinations
            .iter()
            .map(|d| TagResult::failed(d, kind, reason))
            .collect();
        let report = CopyReport {
            source: job.source.to_string(),
            digest: None,
            tags,
            stats: Default::default(),
            seconds: 0.0,
        };
        JobResult::new(job, report)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn job_round_trips_through_json_with_its_version() {
        let src = ImageRef::parse("quay.io/a/b:1").unwrap();
        let job = Job::new(
            Uuid::new_v4(),
            src,
            format!("sha256:{}", "0".repeat(64)),
            vec![ImageRef::parse("r.io/x/y:1").unwrap()],
            vec!["m:1".into()],
        );
        let text = serde_json::to_string(&job).unwrap();
        assert!(text.contains("\"version\":1"));
        assert_eq!(serde_json::from_str::<Job>(&text).unwrap(), job);
        assert_eq!(
            job.pinned_source().to_string(),
            format!("quay.io/a/b:1@sha256:{}", "0".repeat(64))
        );
    }
}

/// Announces a run on the broker once its jobs are out: how many jobs and tags, so that
/// waiters know when a run is complete and `status` knows its size. One small message
/// whatever the size of the run.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct RunStarted {
    /// The message format version ([`JOB_VERSION`] when written by this build).
    pub version: u32,
    /// The run being announced.
    pub run_id: Uuid,
    /// Seconds since the Unix epoch.
    pub started_at: u64,
    /// How many jobs the run publishes: the run is complete once as many results are in.
    pub jobs: usize,
    /// Empty since pending tags are marked in Redis (`mirror_fleet::store::PendingTags`):
    /// listing every tag made the message grow with the run (46 MB at 100x the real set).
    /// Still written, empty, and read, for schedulers of earlier versions in the same fleet.
    #[serde(default)]
    pub destinations: Vec<String>,
    /// How many destination tags the run's jobs write, plus its tags that failed while
    /// planning (0 in announcements of earlier versions: count their `destinations`).
    #[serde(default)]
    pub tags: usize,
    /// Tags of the run found up to date without a job (the fleet's tag cache), so that
    /// the history alone tells the run's whole size.
    #[serde(default)]
    pub up_to_date: usize,
    /// The group the run is of, if any.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub group: Option<String>,
}

/// What the run history holds: run announcements and job results, in publishing order.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(tag = "event", rename_all = "snake_case")]
pub enum RunEvent {
    /// A run was announced, before its jobs were published.
    Started(RunStarted),
    /// A worker finished a job.
    Result(JobResult),
}
