//! The engine's decisions against in-memory registries, in milliseconds: which blobs are
//! skipped, mounted or uploaded, how a stale index is repaired, what a dry run reports.
//! The same behaviours are proven over HTTP against docker-registry in `tests/`.

use std::sync::Arc;

use mirror_oci::memory::{MemoryRegistries, Op};

use super::engine::CopyEngine;
use super::options::CopyOptions;
use crate::failure::FailureKind;
use crate::index::{BlobIndex, MemoryIndex};
use crate::reference::ImageRef;
use crate::report::TagStatus;

pub(super) const BASE: &[u8] = b"a base layer every image shares";

pub(super) fn r(s: &str) -> ImageRef {
    ImageRef::parse(s).unwrap()
}

pub(super) struct Bed {
    pub(super) registries: Arc<MemoryRegistries>,
    pub(super) index: Arc<MemoryIndex>,
    pub(super) engine: CopyEngine,
}

pub(super) fn bed(opts: CopyOptions) -> Bed {
    bed_with(Arc::new(MemoryRegistries::new()), opts)
}

/// A bed over registries that already hold content, with an empty index.
pub(super) fn bed_with(registries: Arc<MemoryRegistries>, opts: CopyOptions) -> Bed {
    let index = Arc::new(MemoryIndex::new());
    let engine = CopyEngine::new(registries.clone(), index.clone(), opts);
    Bed {
        registries,
        index,
        engine,
    }
}

#[tokio::test]
async fn a_new_image_is_uploaded_and_its_tag_points_at_the_source_digest() {
    let b = bed(CopyOptions::default());
    let m = b
        .registries
        .add_image("src.io", "team/app", "1", &[BASE, b"app"]);
    let report = b
        .engine
        .copy(&r("src.io/team/app:1"), &[r("dst.io/mirror/app:1")])
        .await;
    assert!(report.succeeded(), "{report:?}");
    assert_eq!(report.tags[0].status, TagStatus::Pushed);
    assert_eq!(
        b.registries.tag("dst.io", "mirror/app", "1"),
        Some(m.digest)
    );
    assert_eq!(report.stats.blobs_uploaded, 3, "config and two layers");
    assert_eq!(
        b.registries.count(Op::PostBlob),
        3,
        "small blobs go up in one request each"
    );
    assert_eq!(b.registries.count(Op::StartUpload), 0);
}

#[tokio::test]
async fn where_single_request_uploads_are_sessions_a_small_blob_costs_a_probe_and_a_put() {
    let b = bed(CopyOptions::default());
    b.registries.probe_small_blobs("dst.io");
    b.registries
        .add_image("src.io", "team/app", "1", &[BASE, b"app"]);
    b.registries
        .add_image("src.io", "team/app", "2", &[BASE, b"app 2"]);
    let first = b
        .engine
        .copy(&r("src.io/team/app:1"), &[r("dst.io/mirror/app:1")])
        .await;
    assert!(first.succeeded(), "{first:?}");
    assert_eq!(first.stats.blobs_uploaded, 3);
    assert_eq!(b.registries.count(Op::MountOrStart), 3);
    assert_eq!(
        b.registries.count(Op::PutBlob),
        3,
        "into the probes' sessions"
    );
    assert_eq!(
        b.registries.count(Op::HeadBlob),
        0,
        "no HEAD before a probe"
    );
    assert_eq!(b.registries.count(Op::StartUpload), 0);
    // The index forgotten (a new process): the shared base layer is found by its probe.
    let again = bed_with(b.registries.clone(), CopyOptions::default());
    b.registries.clear_calls();
    let second = again
        .engine
        .copy(&r("src.io/team/app:2"), &[r("dst.io/mirror/app:2")])
        .await;
    assert!(second.succeeded(), "{second:?}");
    assert_eq!(
        (second.stats.blobs_uploaded, second.stats.blobs_skipped),
        (2, 1)
    );
    assert_eq!(b.registries.count(Op::MountOrStart), 3);
    assert_eq!(
        b.registries.count(Op::PutBlob),
        2,
        "the present one is not sent"
    );
    assert_eq!(
        b.registries.tag("dst.io", "mirror/app", "2"),
        b.registries.tag("src.io", "team/app", "2")
    );
}

#[tokio::test]
async fn a_large_blob_streams_through_an_upload_session() {
    let b = bed(CopyOptions::default());
    let large = vec![7u8; 1536 * 1024];
    b.registries
        .add_image("src.io", "team/big", "1", &[large.as_slice()]);
    let report = b
        .engine
        .copy(&r("src.io/team/big:1"), &[r("dst.io/m/big:1")])
        .await;
    assert!(report.succeeded(), "{report:?}");
    assert_eq!(
        b.registries.count(Op::StartUpload),
        1,
        "the layer's session"
    );
    assert_eq!(b.registries.count(Op::PutBlob), 1, "the layer, streamed");
    assert_eq!(b.registries.count(Op::PostBlob), 1, "the config");
}

#[tokio::test]
async fn a_tag_already_at_the_digest_costs_one_head_and_writes_nothing() {
    let b = bed(CopyOptions {
        referrers: super::options::ReferrerOptions::none(),
        ..CopyOptions::default()
    });
    let m = b.registries.add_image("src.io", "team/app", "1", &[BASE]);
    b.engine
        .copy(&r("src.io/team/app:1"), &[r("dst.io/mirror/app:1")])
        .await;
    b.registries.clear_calls();
    let pinned = r("src.io/team/app:1").with_digest(&m.digest);
    let report = b.engine.copy(&pinned, &[r("dst.io/mirror/app:1")]).await;
    assert_eq!(report.tags[0].status, TagStatus::UpToDate);
    let calls = b.registries.calls();
    assert_eq!(calls.len(), 1, "{calls:?}");
    assert_eq!(calls[0].op, Op::HeadManifest);
}

#[tokio::test]
async fn a_blob_another_repository_holds_is_mounted_not_uploaded() {
    let b = bed(CopyOptions::default());
    b.registries
        .add_image("src.io", "team/a", "1", &[BASE, b"a"]);
    b.registries
        .add_image("src.io", "team/b", "1", &[BASE, b"b"]);
    b.engine
        .copy(&r("src.io/team/a:1"), &[r("dst.io/m/a:1")])
        .await;
    b.registries.clear_calls();
    let report = b
        .engine
        .copy(&r("src.io/team/b:1"), &[r("dst.io/m/b:1")])
        .await;
    assert!(report.succeeded(), "{report:?}");
    assert_eq!(report.stats.blobs_mounted, 1, "the shared base");
    assert_eq!(report.stats.blobs_uploaded, 2, "b's config and layer");
    assert_eq!(b.registries.count(Op::Mount), 1);
    assert_eq!(b.registries.count(Op::PostBlob), 2);
}

#[tokio::test]
async fn a_blob_already_in_the_destination_repository_is_skipped() {
    let b = bed(CopyOptions::default());
    b.registries.add_image("src.io", "team/a", "1", &[BASE]);
    b.registries.add_blob("dst.io", "m/a", BASE);
    let report = b
        .engine
        .copy(&r("src.io/team/a:1"), &[r("dst.io/m/a:1")])
        .await;
    assert!(report.succeeded(), "{report:?}");
    assert_eq!(report.stats.blobs_skipped, 1);
    assert_eq!(report.stats.blobs_uploaded, 1, "only the config");
}

#[tokio::test]
async fn a_stale_index_is_forgotten_and_every_blob_verified_and_uploaded() {
    let b = bed(CopyOptions::default());
    let m = b.registries.add_image("src.io", "team/a", "1", &[BASE]);
    // The index believes the destination already holds every blob; the registry has none.
    for blob in &m.blobs {
        b.index.record("dst.io", "m/a", &blob.digest).await;
    }
    let report = b
        .engine
        .copy(&r("src.io/team/a:1"), &[r("dst.io/m/a:1")])
        .await;
    assert!(report.succeeded(), "{report:?}");
    assert_eq!(
        b.registries.tag("dst.io", "m/a", "1"),
        Some(m.digest.clone())
    );
    for blob in &m.blobs {
        assert!(b.registries.has_blob("dst.io", "m/a", &blob.digest));
    }
    assert_eq!(
        b.registries.count(Op::PutManifest),
        2,
        "refused once, then accepted"
    );
    assert_eq!(b.registries.count(Op::PostBlob), 2);
}

#[tokio::test]
async fn a_declined_mount_drops_the_index_entry_and_uploads() {
    let b = bed(CopyOptions::default());
    let m = b.registries.add_image("src.io", "team/a", "1", &[BASE]);
    let layer = &m.blobs[1].digest;
    b.index.record("dst.io", "gone/repo", layer).await;
    let report = b
        .engine
        .copy(&r("src.io/team/a:1"), &[r("dst.io/m/a:1")])
        .await;
    assert!(report.succeeded(), "{report:?}");
    assert_eq!(b.registries.count(Op::Mount), 1);
    assert_eq!(
        b.registries.count(Op::CancelUpload),
        1,
        "the declined session"
    );
    assert!(b.registries.has_blob("dst.io", "m/a", layer));
    assert_eq!(b.index.repositories("dst.io", layer).await, ["m/a"]);
}

#[tokio::test]
async fn a_dry_run_counts_the_work_and_writes_nothing() {
    let b = bed(CopyOptions {
        dry_run: true,
        ..CopyOptions::default()
    });
    b.registries
        .add_image("src.io", "team/a", "1", &[BASE, b"a"]);
    b.registries.add_blob("dst.io", "m/other", BASE);
    b.index
        .record("dst.io", "m/other", &crate::digest::sha256_digest(BASE))
        .await;
    let report = b
        .engine
        .copy(&r("src.io/team/a:1"), &[r("dst.io/m/a:1")])
        .await;
    assert_eq!(report.tags[0].status, TagStatus::WouldCreate);
    assert_eq!(report.stats.blobs_mounted, 1);
    assert_eq!(report.stats.blobs_uploaded, 2);
    for op in [
        Op::PutBlob,
        Op::PostBlob,
        Op::PutManifest,
        Op::Mount,
        Op::StartUpload,
    ] {
        assert_eq!(b.registries.count(op), 0, "{op:?}");
    }
    assert_eq!(b.registries.tag("dst.io", "m/a", "1"), None);
}

#[tokio::test]
async fn a_missing_source_fails_its_tags_as_not_found_and_writes_nothing() {
    let b = bed(CopyOptions::default());
    let report = b
        .engine
        .copy(&r("src.io/team/none:1"), &[r("dst.io/m/a:1")])
        .await;
    assert_eq!(report.tags[0].status, TagStatus::Failed);
    assert_eq!(report.tags[0].failure, Some(FailureKind::NotFound));
    assert!(!report.tags[0].retryable());
    assert_eq!(b.registries.count(Op::PutManifest), 0);
}

/// An index of an amd64 and an arm64 image at `src.io/multi/app:1`; returns the amd64 child.
pub(super) fn index_of_two(
    b: &Bed,
) -> (
    mirror_oci::manifest::Manifest,
    mirror_oci::manifest::Manifest,
) {
    let amd = b
        .registries
        .add_image("src.io", "multi/app", "amd", &[BASE, b"amd64"]);
    let arm = b
        .registries
        .add_image("src.io", "multi/app", "arm", &[BASE, b"arm64"]);
    let index = b.registries.add_index(
        "src.io",
        "multi/app",
        "1",
        &[(&amd, "linux", "amd64"), (&arm, "linux", "arm64")],
    );
    (index, amd)
}

#[tokio::test]
async fn an_index_is_kept_whole_by_default() {
    let b = bed(CopyOptions::default());
    let (index, _) = index_of_two(&b);
    let report = b
        .engine
        .copy(&r("src.io/multi/app:1"), &[r("dst.io/m/app:1")])
        .await;
    assert!(report.succeeded(), "{report:?}");
    assert_eq!(b.registries.tag("dst.io", "m/app", "1"), Some(index.digest));
    assert_eq!(
        b.registries.count(Op::PutManifest),
        3,
        "two children, then the index"
    );
}

#[tokio::test]
async fn without_keep_manifest_list_only_the_linux_amd64_image_is_pushed_as_itself() {
    let b = bed(CopyOptions {
        keep_manifest_list: false,
        ..CopyOptions::default()
    });
    let (index, amd) = index_of_two(&b);
    let pinned = r("src.io/multi/app:1").with_digest(&index.digest);
    let report = b.engine.copy(&pinned, &[r("dst.io/m/app:1")]).await;
    assert!(report.succeeded(), "{report:?}");
    assert_eq!(report.digest.as_deref(), Some(amd.digest.as_str()));
    assert_eq!(b.registries.tag("dst.io", "m/app", "1"), Some(amd.digest));
    assert_eq!(
        b.registries.count(Op::PutManifest),
        1,
        "the one image, no index"
    );
    assert_eq!(
        report.stats.blobs_uploaded, 3,
        "its config and two layers only"
    );
}

#[tokio::test]
async fn a_job_with_nothing_to_copy_does_not_wait_for_a_copy_slot_and_a_copy_does() {
    let b = bed(CopyOptions::default());
    let m = b.registries.add_image("src.io", "team/app", "1", &[BASE]);
    let pinned = r("src.io/team/app:1").with_digest(&m.digest);
    b.engine.copy(&pinned, &[r("dst.io/m/app:1")]).await;
    let slots = tokio::sync::Semaphore::new(1);
    let held = slots.acquire().await.unwrap();
    let wait = std::time::Duration::from_secs(5);
    let checked = tokio::time::timeout(
        wait,
        b.engine
            .copy_in_slot(&pinned, &[r("dst.io/m/app:1")], Some(&slots)),
    )
    .await
    .expect("a job whose tags are up to date does not wait for the held slot");
    assert_eq!(checked.tags[0].status, TagStatus::UpToDate);
    let other = [r("dst.io/m/other:1")];
    let copy = b.engine.copy_in_slot(&pinned, &other, Some(&slots));
    tokio::pin!(copy);
    let short = std::time::Duration::from_millis(200);
    assert!(
        tokio::time::timeout(short, &mut copy).await.is_err(),
        "a job with something to copy waits for a slot"
    );
    assert_eq!(b.registries.tag("dst.io", "m/other", "1"), None);
    drop(held);
    let copied = tokio::time::timeout(wait, copy)
        .await
        .expect("copied once the slot is free");
    assert_eq!(copied.tags[0].status, TagStatus::Pushed);
}

#[tokio::test]
async fn an_index_nested_in_an_index_is_copied_whole() {
    let b = bed(CopyOptions::default());
    let (inner, _) = index_of_two(&b);
    let solo = b
        .registries
        .add_image("src.io", "multi/app", "solo", &[BASE, b"s390x"]);
    let outer = b.registries.add_index(
        "src.io",
        "multi/app",
        "outer",
        &[(&inner, "linux", "amd64"), (&solo, "linux", "s390x")],
    );
    let report = b
        .engine
        .copy(&r("src.io/multi/app:outer"), &[r("dst.io/m/app:outer")])
        .await;
    assert!(report.succeeded(), "{report:?}");
    assert_eq!(
        b.registries.tag("dst.io", "m/app", "outer"),
        Some(outer.digest)
    );
    assert_eq!(
        report.stats.manifests_pushed, 5,
        "three images, the inner index, the top"
    );
}
