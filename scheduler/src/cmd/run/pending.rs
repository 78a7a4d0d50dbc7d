//! Tags an earlier run's jobs still hold: a destination tag whose job from an earlier run
//! has not reported gets no new job (two jobs racing to move one tag would be wasted work
//! at best). The runs' announcements and results in the history say which; an announced
//! tag counts as pending for [`PENDING_FOR`] at most (nothing a run leaves behind blocks
//! the next one for long). A tag skipped as pending is checked with a HEAD: unless it is
//! already at its source digest, it fails the run.

use std::collections::{HashMap, HashSet};
use std::time::Duration;

use futures::StreamExt;
use mirror_common::failure::FailureKind;
use mirror_common::job::{Job, RunEvent};
use mirror_common::reference::ImageRef;
use mirror_common::registry::Registries;
use mirror_common::report::TagStatus;
use uuid::Uuid;

use crate::report::TagEntry;

/// How long a tag announced by a run counts as pending without a result: past this, its
/// job is presumed lost (a purged queue, a broker restored from backup) and the next run
/// publishes the tag again.
pub(crate) const PENDING_FOR: Duration = Duration::from_secs(6 * 3600);

/// HEADs of skipped tags in flight at once.
const CHECK_CONCURRENCY: usize = 32;

/// Destination tags announced by runs in `history` that started less than `pending_for`
/// before `now` (seconds since the epoch) and whose results have not come back, each with
/// its run. Events may come in any order: a run is announced after its jobs are published,
/// so fast workers report before the announcement.
pub(crate) fn unfinished_tags(
    history: &[RunEvent],
    now: u64,
    pending_for: Duration,
) -> HashMap<String, Uuid> {
    let oldest = now.saturating_sub(pending_for.as_secs());
    let mut announced: HashMap<Uuid, &[String]> = HashMap::new();
    let mut reported: HashSet<(Uuid, &str)> = HashSet::new();
    for event in history {
        match event {
            RunEvent::Started(run) if run.started_at >= oldest => {
                announced.insert(run.run_id, &run.destinations);
            }
            RunEvent::Started(_) => {}
            RunEvent::Result(result) => {
                for t in &result.report.tags {
                    reported.insert((result.run_id, t.destination.as_str()));
                }
            }
        }
    }
    let mut pending = HashMap::new();
    for (run, destinations) in announced {
        for d in destinations {
            if !reported.contains(&(run, d.as_str())) {
                pending.insert(d.clone(), run);
            }
        }
    }
    pending
}

/// Report entries for the tags skipped as pending: up to date when a HEAD finds the tag
/// at its source digest already, else failed (the run must not pass while they are not).
pub(crate) async fn check_skipped(
    client: &dyn Registries,
    skipped: &[(ImageRef, Job, Uuid)],
) -> Vec<TagEntry> {
    futures::stream::iter(skipped)
        .map(|(d, job, run)| async move {
            let head = client
                .head_manifest(&d.repository(), &d.reference(), false)
                .await;
            let (status, digest, error, failure) = match head {
                Ok(Some(at)) if at == job.digest => (TagStatus::UpToDate, Some(at), None, None),
                Ok(_) => (
                    TagStatus::Failed,
                    None,
                    Some(format!(
                        "not at {} yet: the job of run {run} for this tag has not reported",
                        job.digest
                    )),
                    Some(FailureKind::Pending),
                ),
                Err(e) => (
                    TagStatus::Failed,
                    None,
                    Some(e.to_string()),
                    Some(FailureKind::of(&e)),
                ),
            };
            TagEntry {
                destination: d.to_string(),
                source: job.source.to_string(),
                digest,
                status,
                error,
                failure,
                origins: job.origins.clone(),
            }
        })
        .buffered(CHECK_CONCURRENCY)
        .collect()
        .await
}

#[cfg(test)]
mod tests {
    use super::*;
    use mirror_common::job::{JobResult, RunStarted};
    use mirror_common::report::{CopyReport, TagResult, TagStatus};
    use uuid::Uuid;

    #[test]
    fn tags_of_announced_runs_without_results_are_unfinished() {
        let run_id = Uuid::new_v4();
        let started = RunEvent::Started(RunStarted {
            version: 1,
            run_id,
            started_at: 0,
            jobs: 2,
            destinations: vec!["r/a:1".into(), "r/b:1".into()],
            up_to_date: 0,
            group: None,
        });
        let tag = TagResult::ok("r/a:1", TagStatus::Pushed, "sha256:0");
        let report = CopyReport {
            source: "s".into(),
            digest: None,
            tags: vec![tag],
            stats: Default::default(),
            seconds: 0.0,
        };
        let done = RunEvent::Result(JobResult {
            version: 1,
            job_id: Uuid::new_v4(),
            run_id,
            report,
            origins: vec![],
        });
        let pending = unfinished_tags(&[done.clone(), started.clone()], 100, PENDING_FOR);
        assert_eq!(
            pending.into_keys().collect::<Vec<_>>(),
            ["r/b:1"],
            "a result before its run's announcement still counts"
        );
        let later = PENDING_FOR.as_secs() + 1;
        assert!(
            unfinished_tags(&[started, done], later, PENDING_FOR).is_empty(),
            "an announcement older than PENDING_FOR blocks nothing"
        );
    }
}
