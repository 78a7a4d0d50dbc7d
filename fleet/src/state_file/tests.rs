//! The state file on its own: what it vouches for and for how long, what survives the
//! process, and one holder at a time.

use std::time::Duration;

use mirror_common::failure::FailureKind;
use mirror_common::job::{Job, JobResult};
use mirror_common::reference::ImageRef;
use mirror_common::registry::Quirks;
use mirror_common::report::{CopyReport, TagResult, TagStatus};
use mirror_common::state::StateStore;
use uuid::Uuid;

use super::{StateConfig, StateError, StateFile};

const DIGEST: &str = "sha256:0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef";

fn config(tag_max_age: Duration) -> StateConfig {
    StateConfig {
        tag_max_age,
        index_ttl: Duration::from_secs(3600),
        keep_runs: 10,
        keep_for: Duration::from_secs(3600),
    }
}

/// A job to `dst` and its result with `status` for its one tag.
fn result(dst: &str, status: TagStatus) -> (Vec<ImageRef>, JobResult) {
    let destinations = vec![ImageRef::parse(dst).unwrap()];
    let job = Job::new(
        Uuid::new_v4(),
        ImageRef::parse("src.io/team/app:1").unwrap(),
        DIGEST.into(),
        destinations.clone(),
        vec![],
    );
    let tag = match status {
        TagStatus::Failed => TagResult::failed(&destinations[0], FailureKind::Network, "reset"),
        _ => TagResult {
            destination: dst.into(),
            status,
            digest: Some(DIGEST.into()),
            error: None,
            failure: None,
            referrers: 0,
        },
    };
    let report = CopyReport {
        source: "src.io/team/app:1".into(),
        digest: Some(DIGEST.into()),
        tags: vec![tag],
        stats: Default::default(),
        seconds: 0.0,
    };
    (destinations, JobResult::new(&job, report))
}

#[tokio::test]
async fn a_pushed_tag_is_known_until_its_share_of_the_max_age_and_a_failed_one_is_forgotten() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("state.db");
    let key = [("dst.io", "mirror/app", "1")];
    {
        let file = StateFile::open(&path, config(Duration::from_secs(3600))).unwrap();
        assert_eq!(file.dest_digests(&key).await, vec![None]);
        let (d, r) = result("dst.io/mirror/app:1", TagStatus::Pushed);
        file.record_result(&d, &r).await;
        assert_eq!(file.dest_digests(&key).await, vec![Some(DIGEST.into())]);
    }
    // Another process, later: still known. One whose max age has passed: not trusted.
    let file = StateFile::open(&path, config(Duration::from_secs(3600))).unwrap();
    assert_eq!(file.dest_digests(&key).await, vec![Some(DIGEST.into())]);
    drop(file);
    let file = StateFile::open(&path, config(Duration::from_millis(2))).unwrap();
    tokio::time::sleep(Duration::from_millis(5)).await;
    assert_eq!(file.dest_digests(&key).await, vec![None], "too old");
    drop(file);

    let file = StateFile::open(&path, config(Duration::from_secs(3600))).unwrap();
    let (d, r) = result("dst.io/mirror/app:1", TagStatus::UpToDate);
    file.record_result(&d, &r).await;
    assert_eq!(file.dest_digests(&key).await, vec![Some(DIGEST.into())]);
    let (d, r) = result("dst.io/mirror/app:1", TagStatus::Failed);
    file.record_result(&d, &r).await;
    assert_eq!(
        file.dest_digests(&key).await,
        vec![None],
        "failed: unknown now"
    );
}

#[tokio::test]
async fn blob_locations_and_quirks_outlive_the_process_that_learnt_them() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("state.db");
    let learnt = Quirks {
        chunk_size: Some(5_000_000),
        ..Quirks::default()
    };
    {
        let file = StateFile::open(&path, config(Duration::from_secs(60))).unwrap();
        let index = file.blob_index();
        index.record("dst.io", "mirror/app", DIGEST).await;
        index.record("dst.io", "mirror/other", DIGEST).await;
        index.forget("dst.io", "mirror/other", DIGEST).await;
        file.quirks().0.save("dst.io", &learnt).await;
    }
    let file = StateFile::open(&path, config(Duration::from_secs(60))).unwrap();
    let index = file.blob_index();
    assert_eq!(
        index.repositories("dst.io", DIGEST).await,
        vec!["mirror/app"]
    );
    assert!(index.repositories("other.io", DIGEST).await.is_empty());
    assert_eq!(file.quirks().0.load("dst.io").await, Some(learnt));
    assert_eq!(file.quirks().0.load("other.io").await, None);
}

#[test]
fn a_second_holder_is_refused_with_the_first_ones_pid_until_it_lets_go() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("state.db");
    let first = StateFile::open(&path, config(Duration::from_secs(60))).unwrap();
    match StateFile::open(&path, config(Duration::from_secs(60))) {
        Err(StateError::InUse { pid, .. }) => assert_eq!(pid, Some(std::process::id())),
        other => panic!("expected in use, got {other:?}"),
    }
    drop(first);
    StateFile::open(&path, config(Duration::from_secs(60))).unwrap();
}

#[test]
fn the_history_keeps_the_newest_runs_with_their_counts_and_failures() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("state.db");
    let file = StateFile::open(&path, config(Duration::from_secs(60))).unwrap();
    let mut ids = Vec::new();
    for i in 0..12 {
        let id = Uuid::new_v4();
        file.begin_run(id, Some("team"));
        let failed = TagResult::failed(
            ImageRef::parse(&format!("dst.io/mirror/app:{i}")).unwrap(),
            FailureKind::NotFound,
            "no such source",
        );
        file.record_unjobbed(id, 3, &[failed]);
        file.finish_run(
            id,
            &super::RunTotals {
                jobs: 0,
                tags: 4,
                pushed: 0,
                up_to_date: 3,
                failed: 1,
                skipped: 0,
                seconds: Some(0.1),
            },
        );
        ids.push(id);
        std::thread::sleep(Duration::from_millis(2));
    }
    let runs = super::read_runs(&path, 100).unwrap();
    assert_eq!(runs.len(), 10, "keep_runs");
    assert_eq!(runs[0].run_id, ids[11], "newest first");
    assert_eq!(runs[0].outcome, super::RunOutcome::Finished);
    assert_eq!(runs[0].group.as_deref(), Some("team"));
    assert_eq!(runs[0].totals.up_to_date, 3);
    assert_eq!(runs[0].failures.len(), 1);
    assert_eq!(runs[0].failures[0].kind, Some(FailureKind::NotFound));
    assert_eq!(runs[0].failures[0].destination, "dst.io/mirror/app:11");
}
