//! The planner's behaviour, on the in-memory registries of `mirror_oci::memory`.

use std::path::PathBuf;

use mirror_oci::memory::{MemoryRegistries, Op};

use super::*;
use crate::failure::FailureKind;
fn set(dir: &tempfile::TempDir, name: &str, text: &str) -> Vec<PathBuf> {
    let path: PathBuf = dir.path().join(name);
    std::fs::write(&path, text).unwrap();
    vec![path]
}

fn destinations(plan: &Plan) -> Vec<Vec<String>> {
    plan.jobs
        .iter()
        .map(|j| j.destinations.iter().map(ToString::to_string).collect())
        .collect()
}

#[tokio::test]
async fn a_glob_is_expanded_by_one_listing_and_each_tag_resolved_once() {
    let r = MemoryRegistries::new();
    for tag in ["4.15.0", "4.15.1", "4.16.0"] {
        r.add_image("src.io", "ocp/release", tag, &[tag.as_bytes()]);
    }
    let dir = tempfile::tempdir().unwrap();
    let text = "src.io/ocp/release:4.15* dst.io/m/release\n\
                src.io/ocp/release:4.15* dst.io/n/release\n";
    let plan = plan(&set(&dir, "m", text), &r, Uuid::new_v4()).await;
    assert_eq!(
        destinations(&plan),
        [
            ["dst.io/m/release:4.15.0"],
            ["dst.io/n/release:4.15.0"],
            ["dst.io/m/release:4.15.1"],
            ["dst.io/n/release:4.15.1"]
        ]
    );
    assert_eq!(r.count(Op::ListTags), 1, "one listing per repository");
    assert_eq!(r.count(Op::HeadManifest), 2, "one HEAD per source tag");
    let job = &plan.jobs[0];
    assert_eq!(
        r.tag("src.io", "ocp/release", "4.15.0"),
        Some(job.digest.clone())
    );
    assert_eq!(
        job.origins,
        [format!("{}:1", dir.path().join("m").display())]
    );
}

#[tokio::test]
async fn tags_of_one_image_in_one_repository_make_one_job() {
    let r = MemoryRegistries::new();
    r.add_image("src.io", "a/app", "v1", &[b"x"]);
    let dir = tempfile::tempdir().unwrap();
    let text = "src.io/a/app:v1 dst.io/m/app:v1 dst.io/m/app:latest dst.io/o/app\n";
    let plan = plan(&set(&dir, "m", text), &r, Uuid::new_v4()).await;
    assert_eq!(
        destinations(&plan),
        vec![
            vec!["dst.io/m/app:v1", "dst.io/m/app:latest"],
            vec!["dst.io/o/app:v1"]
        ]
    );
}

#[tokio::test]
async fn a_tag_given_by_several_files_is_written_by_the_last_file_only() {
    let r = MemoryRegistries::new();
    let mut digests = Vec::new();
    for team in ["a", "b", "c"] {
        let m = r.add_image(
            "src.io",
            &format!("{team}/logging"),
            "v1",
            &[team.as_bytes()],
        );
        digests.push(m.digest);
    }
    let dir = tempfile::tempdir().unwrap();
    let mut files = Vec::new();
    for team in ["a", "b", "c"] {
        let path = dir.path().join(format!("mapping_logging_{team}"));
        let text = format!(
            "src.io/{team}/logging:v1 dst.io/logging/operator:latest dst.io/logging/{team}:v1\n"
        );
        std::fs::write(&path, text).unwrap();
        files.push(path);
    }
    let plan = plan(&files, &r, Uuid::new_v4()).await;
    let latest: Vec<&Job> = plan
        .jobs
        .iter()
        .filter(|j| {
            j.destinations
                .iter()
                .any(|d| d.repository == "logging/operator")
        })
        .collect();
    assert_eq!(latest.len(), 1, "{:?}", destinations(&plan));
    assert_eq!(latest[0].digest, digests[2], "the last file's image");
    assert_eq!(plan.jobs.len(), 4, "three own tags and the contested one");
    let by: Vec<String> = plan
        .set
        .superseded
        .iter()
        .map(|s| s.by.to_string())
        .collect();
    assert_eq!(
        by,
        [
            format!("{}:1", files[1].display()),
            format!("{}:1", files[2].display())
        ]
    );
    assert!(plan.set.rejected.is_empty());
}

#[tokio::test]
async fn a_missing_source_fails_its_tags_as_not_found_with_their_origin() {
    let r = MemoryRegistries::new();
    r.add_image("src.io", "a/app", "v1", &[b"x"]);
    let dir = tempfile::tempdir().unwrap();
    let text = "src.io/a/app:v1 dst.io/m/app:v1\nsrc.io/a/app:v2 dst.io/m/app:v2\n";
    let plan = plan(&set(&dir, "m", text), &r, Uuid::new_v4()).await;
    assert_eq!(plan.jobs.len(), 1);
    let (tag, origin) = &plan.unresolved[0];
    assert_eq!(tag.destination, "dst.io/m/app:v2");
    assert_eq!(tag.failure, Some(FailureKind::NotFound));
    assert!(origin.ends_with("m:2"), "{origin}");
}

#[tokio::test]
async fn a_file_whose_glob_source_cannot_be_listed_contributes_nothing() {
    let r = MemoryRegistries::new();
    r.add_image("src.io", "a/app", "v1", &[b"x"]);
    let dir = tempfile::tempdir().unwrap();
    let text = "src.io/a/app:v1 dst.io/m/app:v1\nsrc.io/none/here:* dst.io/m/none\n";
    let plan = plan(&set(&dir, "m", text), &r, Uuid::new_v4()).await;
    assert!(plan.jobs.is_empty());
    assert_eq!(plan.set.rejected.len(), 1);
    let error = plan.set.rejected[0].1[0].to_string();
    assert!(
        error.contains("cannot list the tags of src.io/none/here"),
        "{error}"
    );
}

/// Every batch of a planner with batches of `tags` tags, in order.
async fn batches(files: &[PathBuf], r: &MemoryRegistries, tags: usize) -> Vec<Batch> {
    let mut planner = Planner::start(files, r, Uuid::new_v4(), PER_REGISTRY)
        .await
        .with_batch_tags(tags);
    let mut all = Vec::new();
    while let Some(b) = planner.next_batch().await {
        all.push(b);
    }
    all
}

#[tokio::test]
async fn a_later_file_wins_a_tag_even_when_the_earlier_file_is_planned_in_an_earlier_batch() {
    let r = MemoryRegistries::new();
    let dir = tempfile::tempdir().unwrap();
    let mut files = Vec::new();
    for team in ["a", "b"] {
        r.add_image("src.io", &format!("{team}/app"), "v1", &[team.as_bytes()]);
        let path = dir.path().join(format!("mapping_{team}"));
        let text = format!("src.io/{team}/app:v1 dst.io/shared/app:v1 dst.io/{team}/app:v1\n");
        std::fs::write(&path, text).unwrap();
        files.push(path);
    }
    let all = batches(&files, &r, 1).await;
    assert_eq!(all.len(), 2, "one file per batch");
    let shared: Vec<(usize, &Job)> = all
        .iter()
        .enumerate()
        .flat_map(|(i, b)| b.jobs.iter().map(move |j| (i, j)))
        .filter(|(_, j)| j.destinations.iter().any(|d| d.repository == "shared/app"))
        .collect();
    assert_eq!(shared.len(), 1, "the contested tag has one job");
    assert_eq!(shared[0].0, 1, "in the later file's batch");
    assert_eq!(shared[0].1.source.repository, "b/app");
    let own: usize = all.iter().map(|b| b.jobs.len()).sum();
    assert_eq!(own, 3, "each file keeps its own tag");
}

#[tokio::test]
async fn a_repository_is_listed_once_per_run_however_many_batches_expand_it() {
    let r = MemoryRegistries::new();
    for tag in ["1.0", "1.1"] {
        r.add_image("src.io", "ocp/tools", tag, &[tag.as_bytes()]);
    }
    let dir = tempfile::tempdir().unwrap();
    let mut files = Vec::new();
    for name in ["mapping_x", "mapping_y"] {
        let path = dir.path().join(name);
        std::fs::write(&path, format!("src.io/ocp/tools:1.* dst.io/{name}/tools\n")).unwrap();
        files.push(path);
    }
    let all = batches(&files, &r, 1).await;
    let tags: usize = all
        .iter()
        .flat_map(|b| &b.jobs)
        .map(|j| j.destinations.len())
        .sum();
    assert_eq!(tags, 4);
    assert_eq!(
        r.count(Op::ListTags),
        1,
        "the second pass expands with the first's listing"
    );
}

#[tokio::test]
async fn a_file_that_breaks_between_the_two_passes_is_rejected_whole() {
    let r = MemoryRegistries::new();
    r.add_image("src.io", "a/app", "v1", &[b"x"]);
    let dir = tempfile::tempdir().unwrap();
    let files = set(&dir, "m", "src.io/a/app:v1 dst.io/m/app:v1\n");
    let mut planner = Planner::start(&files, &r, Uuid::new_v4(), PER_REGISTRY).await;
    std::fs::write(
        &files[0],
        "src.io/a/app:v1 dst.io/m/app:v1\nnot a mapping line\n",
    )
    .unwrap();
    let batch = planner.next_batch().await.unwrap();
    assert!(batch.jobs.is_empty(), "nothing from the changed file");
    assert_eq!(batch.rejected.len(), 1);
    assert!(planner.next_batch().await.is_none());
}

/// Answers the first source it is asked for with a digest of its own choosing, the others
/// not at all, and remembers what it was asked.
struct HalfAnswering {
    asked: parking_lot::Mutex<Vec<String>>,
    digest: String,
}

#[async_trait::async_trait]
impl crate::source_digests::SourceDigests for HalfAnswering {
    async fn digests(
        &self,
        _run: Uuid,
        sources: &[&crate::reference::ImageRef],
    ) -> Vec<Option<String>> {
        self.asked
            .lock()
            .extend(sources.iter().map(ToString::to_string));
        let mut answers = vec![None; sources.len()];
        if let Some(first) = answers.first_mut() {
            *first = Some(self.digest.clone());
        }
        answers
    }
}

#[tokio::test]
async fn sources_the_fleet_resolves_cost_no_head_here_and_the_rest_are_resolved_here() {
    let r = MemoryRegistries::new();
    r.add_image("src.io", "a/app", "v2", &[b"two"]);
    let v2 = r.tag("src.io", "a/app", "v2").unwrap();
    r.add_image("src.io", "a/app", "v1", &[b"one"]);
    let dir = tempfile::tempdir().unwrap();
    let text = "src.io/a/app:v1 dst.io/m/app:v1\n\
                src.io/a/app:v2 dst.io/m/app:v2\n\
                src.io/a/app:gone dst.io/m/app:gone\n\
                src.io/a/app@"
        .to_string()
        + &v2
        + " dst.io/m/app:pinned\n";
    let remote = HalfAnswering {
        asked: Default::default(),
        digest: "sha256:".to_string() + &"f".repeat(64),
    };
    let mut planner = Planner::start(&set(&dir, "m", &text), &r, Uuid::new_v4(), 8).await;
    let batch = planner.next_batch_asking(Some(&remote)).await.unwrap();
    assert_eq!(
        *remote.asked.lock(),
        ["src.io/a/app:v1", "src.io/a/app:v2", "src.io/a/app:gone"],
        "sources by tag are asked for, once each; a source by digest is not"
    );
    assert_eq!(
        r.count(Op::HeadManifest),
        2,
        "the two the fleet did not answer are resolved here"
    );
    let v1_job = batch
        .jobs
        .iter()
        .find(|j| j.destinations[0].to_string() == "dst.io/m/app:v1")
        .unwrap();
    assert_eq!(v1_job.digest, remote.digest, "the fleet's answer is used");
    assert_eq!(batch.unresolved.len(), 1, "the missing source fails here");
    assert!(batch.unresolved[0]
        .0
        .error
        .as_deref()
        .unwrap()
        .contains("src.io/a/app:gone"));
    assert_eq!(
        batch.jobs.len(),
        2,
        "v2 and the pin on its digest are one image: one job"
    );
}
