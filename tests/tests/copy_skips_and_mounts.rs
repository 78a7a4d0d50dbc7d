//! Blob work is skipped when it is not needed: a tag already at the source digest costs no
//! blob upload and no manifest PUT, a blob in another repository of the destination is
//! mounted rather than uploaded, and a declined mount still ends in a correct copy.

use std::sync::Arc;

use mirror_common::copy::CopyOptions;
use mirror_common::index::{BlobIndex, MemoryIndex};
use mirror_common::report::TagStatus;
use mirror_tests::mirror::{engine, engine_with_index, registry_flags, run_binary};
use mirror_tests::util::image_ref;
use mirror_tests::*;

#[tokio::test]
async fn second_copy_of_same_image_does_no_blob_upload_and_no_manifest_put() {
    let src = Registry::start().await.unwrap();
    let dst = Registry::start().await.unwrap();
    let index = push_index(
        &src,
        "a/b",
        "1",
        three_platform_index_spec(),
        Format::Docker,
    )
    .await
    .unwrap();
    let mut args = vec![
        "copy".to_string(),
        format!("{}/a/b:1", src.host()),
        format!("{}/a/b:1", dst.host()),
    ];
    args.extend(registry_flags(&[&src, &dst]));
    let first = run_binary("mirror-worker", &args);
    assert!(
        first.status.success(),
        "{}",
        String::from_utf8_lossy(&first.stderr)
    );
    let uploads_before = dst.count("POST", "/blobs/uploads/");
    let puts_before = dst.count("PUT", "/");
    assert!(uploads_before > 0 && puts_before > 0);

    let second = run_binary("mirror-worker", &args);
    assert!(
        second.status.success(),
        "{}",
        String::from_utf8_lossy(&second.stderr)
    );
    assert_eq!(
        String::from_utf8_lossy(&second.stdout).trim(),
        format!("{} {}/a/b:1", index.digest, dst.host())
    );
    assert_eq!(
        dst.count("POST", "/blobs/uploads/"),
        uploads_before,
        "no upload session was opened"
    );
    assert_eq!(
        dst.count("PUT", "/"),
        puts_before,
        "no blob or manifest PUT"
    );
    let summary = String::from_utf8_lossy(&second.stderr);
    assert!(summary.contains("0 pushed, 1 up to date"), "{summary}");
}

#[tokio::test]
async fn blob_in_another_repository_of_the_destination_is_mounted_not_uploaded() {
    let src = Registry::start().await.unwrap();
    let dst = Registry::start().await.unwrap();
    let base = Layer::random(60_000);
    let one = push_image(
        &src,
        "team/one",
        "1",
        ImageSpec::new(vec![base.clone(), Layer::random(1_000)]),
    )
    .await
    .unwrap();
    let two = push_image(
        &src,
        "team/two",
        "1",
        ImageSpec::new(vec![base.clone(), Layer::random(2_000)]),
    )
    .await
    .unwrap();
    let engine = engine(&[&src, &dst], None, CopyOptions::default());
    let first = engine
        .copy(
            &image_ref(format!("{}/team/one:1", src.host())),
            &[image_ref(format!("{}/team/one:1", dst.host()))],
        )
        .await;
    assert!(first.succeeded(), "{first:?}");
    assert_eq!(first.stats.blobs_uploaded, 3);

    let second = engine
        .copy(
            &image_ref(format!("{}/team/two:1", src.host())),
            &[image_ref(format!("{}/team/two:1", dst.host()))],
        )
        .await;
    assert!(second.succeeded(), "{second:?}");
    assert_eq!(
        second.stats.blobs_mounted, 1,
        "the shared base layer is mounted"
    );
    assert_eq!(
        second.stats.blobs_uploaded, 2,
        "config and own layer are uploaded"
    );
    assert_eq!(second.stats.bytes_mounted, base.size());
    let mounts: Vec<_> = dst
        .requests()
        .into_iter()
        .filter(|q| q.path.contains("mount=") && q.path.contains("from=team/one"))
        .collect();
    assert_eq!(mounts.len(), 1);
    assert_eq!(mounts[0].status, 201, "the registry performed the mount");
    assert!(mounts[0].path.contains(base.digest()));
    assert_eq!(
        manifest_digest(&dst, "team/two", "1").await.unwrap(),
        Some(two.digest)
    );
    assert_eq!(
        manifest_digest(&dst, "team/one", "1").await.unwrap(),
        Some(one.digest)
    );
}

#[tokio::test]
async fn declined_mount_falls_back_to_upload_and_forgets_the_stale_entry() {
    let src = Registry::start().await.unwrap();
    let dst = Registry::start().await.unwrap();
    let image = push_image(
        &src,
        "app/x",
        "1",
        ImageSpec::new(vec![Layer::random(30_000)]),
    )
    .await
    .unwrap();
    let layer = image.blobs[1].0.clone();
    // The index believes a repository holds the layer; the registry does not have it.
    let index = Arc::new(MemoryIndex::new());
    index.record(&dst.host(), "ghost/repo", &layer).await;
    let engine = engine_with_index(&[&src, &dst], None, CopyOptions::default(), index.clone());
    let report = engine
        .copy(
            &image_ref(format!("{}/app/x:1", src.host())),
            &[image_ref(format!("{}/app/x:1", dst.host()))],
        )
        .await;
    assert!(report.succeeded(), "{report:?}");
    assert_eq!(report.tags[0].status, TagStatus::Pushed);
    assert_eq!(
        (report.stats.blobs_mounted, report.stats.blobs_uploaded),
        (0, 2)
    );
    let declined: Vec<_> = dst
        .requests()
        .into_iter()
        .filter(|q| q.path.contains("mount="))
        .collect();
    assert_eq!(declined.len(), 1);
    assert_eq!(declined[0].status, 202, "the registry declined the mount");
    assert_eq!(
        manifest_digest(&dst, "app/x", "1").await.unwrap(),
        Some(image.digest)
    );
    assert!(blob_exists(&dst, "app/x", &layer).await.unwrap());
    assert_eq!(
        index.repositories(&dst.host(), &layer).await,
        ["app/x"],
        "the stale entry is gone"
    );
}

#[tokio::test]
async fn copy_to_two_repositories_of_one_registry_uploads_each_blob_once() {
    let src = Registry::start().await.unwrap();
    let dst = Registry::start().await.unwrap();
    push_image(
        &src,
        "app/y",
        "2",
        ImageSpec::new(vec![Layer::random(20_000), Layer::random(20_000)]),
    )
    .await
    .unwrap();
    let mut args = vec![
        "copy".to_string(),
        format!("{}/app/y:2", src.host()),
        format!("{}/first/y", dst.host()),
        format!("{}/second/y:latest", dst.host()),
    ];
    args.extend(registry_flags(&[&src, &dst]));
    let out = run_binary("mirror-worker", &args);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let lines: Vec<String> = String::from_utf8_lossy(&out.stdout)
        .lines()
        .map(str::to_string)
        .collect();
    assert_eq!(lines.len(), 2);
    assert!(
        lines[0].ends_with("/first/y:2") && lines[1].ends_with("/second/y:latest"),
        "{lines:?}"
    );
    let summary = String::from_utf8_lossy(&out.stderr);
    assert!(
        summary.contains(" 3 uploaded (") && summary.contains(", 3 mounted ("),
        "{summary}"
    );
}

#[tokio::test]
async fn blob_deleted_at_the_destination_behind_the_index_back_is_uploaded_again() {
    let src = Registry::start().await.unwrap();
    let dst = Registry::start().await.unwrap();
    let base = Layer::random(40_000);
    push_image(&src, "app/z", "1", ImageSpec::new(vec![base.clone()]))
        .await
        .unwrap();
    let two = push_image(
        &src,
        "app/z",
        "2",
        ImageSpec::new(vec![base.clone(), Layer::random(1_000)]),
    )
    .await
    .unwrap();
    let index = Arc::new(MemoryIndex::new());
    let engine = engine_with_index(&[&src, &dst], None, CopyOptions::default(), index.clone());
    let first = engine
        .copy(
            &image_ref(format!("{}/app/z:1", src.host())),
            &[image_ref(format!("{}/app/z:1", dst.host()))],
        )
        .await;
    assert!(first.succeeded(), "{first:?}");
    // Someone deletes the layer from the destination repository; the index still lists it.
    let api = RegistryApi::new(&dst).unwrap();
    let deleted = api
        .request(
            reqwest::Method::DELETE,
            &format!("/v2/app/z/blobs/{}", base.digest()),
        )
        .send()
        .await
        .unwrap();
    assert_eq!(deleted.status(), 202);
    assert_eq!(
        index.repositories(&dst.host(), base.digest()).await,
        ["app/z"]
    );

    let second = engine
        .copy(
            &image_ref(format!("{}/app/z:2", src.host())),
            &[image_ref(format!("{}/app/z:2", dst.host()))],
        )
        .await;
    assert!(
        second.succeeded(),
        "the stale entry cost a retry, not the copy: {second:?}"
    );
    assert_eq!(
        manifest_digest(&dst, "app/z", "2").await.unwrap(),
        Some(two.digest)
    );
    assert!(
        blob_exists(&dst, "app/z", base.digest()).await.unwrap(),
        "the layer was uploaded again"
    );
    let refused = dst
        .requests()
        .into_iter()
        .filter(|q| q.method == "PUT" && q.path.ends_with("/manifests/2") && q.status == 400)
        .count();
    assert_eq!(
        refused, 1,
        "the first manifest PUT was refused for the missing blob, then the copy was repaired"
    );
}

/// distribution takes single-request uploads as sessions, so a small blob the index does
/// not place is asked for with a mount from its own repository: 201 where it is there (no
/// bytes sent), 202 with the session its PUT goes to where it is not; no blob HEAD.
#[tokio::test]
async fn a_small_blob_is_asked_for_by_a_mount_from_its_own_repository_not_a_head() {
    let src = Registry::start().await.unwrap();
    let dst = Registry::start().await.unwrap();
    let base = Layer::random(60_000);
    for (repo, own) in [("team/one", 1_000), ("team/two", 2_000)] {
        push_image(
            &src,
            repo,
            "1",
            ImageSpec::new(vec![base.clone(), Layer::random(own)]),
        )
        .await
        .unwrap();
    }
    let two = manifest_digest(&src, "team/two", "1").await.unwrap();
    // An earlier process put image one into team/one.
    let earlier = engine(&[&src, &dst], None, CopyOptions::default())
        .copy(
            &image_ref(format!("{}/team/one:1", src.host())),
            &[image_ref(format!("{}/team/one:1", dst.host()))],
        )
        .await;
    assert!(earlier.succeeded(), "{earlier:?}");
    // A new process (an empty index) copies image two into team/one, which holds the base
    // layer already.
    let fresh = engine(&[&src, &dst], None, CopyOptions::default());
    // Its first small upload (of blobs of their own) is how it learns that.
    push_image(
        &src,
        "team/other",
        "1",
        ImageSpec::new(vec![Layer::random(500)]),
    )
    .await
    .unwrap();
    let learn = fresh
        .copy(
            &image_ref(format!("{}/team/other:1", src.host())),
            &[image_ref(format!("{}/team/learn:1", dst.host()))],
        )
        .await;
    assert!(learn.succeeded(), "{learn:?}");
    let before = dst.requests().len();
    let third = fresh
        .copy(
            &image_ref(format!("{}/team/two:1", src.host())),
            &[image_ref(format!("{}/team/one:2", dst.host()))],
        )
        .await;
    assert!(third.succeeded(), "{third:?}");
    let seen: Vec<_> = dst.requests().into_iter().skip(before).collect();
    let probes: Vec<_> = seen
        .iter()
        .filter(|q| q.path.contains("mount=") && q.path.contains("from=team/one"))
        .collect();
    assert_eq!(probes.len(), 3, "{seen:?}");
    let base_probe = probes
        .iter()
        .find(|q| q.path.contains(base.digest()))
        .unwrap();
    assert_eq!(
        base_probe.status, 201,
        "the base layer is found where it is"
    );
    assert_eq!(probes.iter().filter(|q| q.status == 202).count(), 2);
    assert!(!seen
        .iter()
        .any(|q| q.method == "HEAD" && q.path.contains("/blobs/")));
    assert_eq!(
        (third.stats.blobs_skipped, third.stats.blobs_uploaded),
        (1, 2)
    );
    assert_eq!(manifest_digest(&dst, "team/one", "2").await.unwrap(), two);
}

/// A repository being filled (a cold run) costs one manifest HEAD and one listing: its
/// first check (the scout) finds its tag absent while the others wait, the repository is
/// listed, and the others are answered from the listing. The tags land, and a copy soon
/// after finds them up to date by their HEADs (the listing keeps what this process pushed).
#[tokio::test]
async fn a_new_repository_filled_with_many_tags_costs_one_manifest_head_and_one_listing() {
    let src = Registry::start().await.unwrap();
    let dst = Registry::start().await.unwrap();
    push_image(
        &src,
        "team/app",
        "1",
        ImageSpec::new(vec![Layer::random(2_000)]),
    )
    .await
    .unwrap();
    let digest = manifest_digest(&src, "team/app", "1").await.unwrap();
    let copier = engine(&[&src, &dst], None, CopyOptions::default());
    let source = image_ref(format!("{}/team/app:1", src.host()));
    let tags: Vec<_> = (0..6)
        .map(|i| image_ref(format!("{}/mirror/app:v{i}", dst.host())))
        .collect();
    // A run's jobs of one repository, at once.
    let copies = tags
        .iter()
        .map(|tag| copier.copy(&source, std::slice::from_ref(tag)));
    for report in futures::future::join_all(copies).await {
        assert_eq!(report.tags[0].status, TagStatus::Pushed, "{report:?}");
    }
    let heads = dst.count("HEAD", "/v2/mirror/app/manifests/v");
    let listings = dst.count("GET", "/v2/mirror/app/tags/list");
    assert_eq!((heads, listings), (1, 1), "{:#?}", dst.requests());
    for i in 0..6 {
        let at = manifest_digest(&dst, "mirror/app", &format!("v{i}")).await;
        assert_eq!(at.unwrap(), digest);
    }
    let heads_before = dst.count("HEAD", "/v2/mirror/app/manifests/v");
    for tag in &tags {
        let report = copier.copy(&source, std::slice::from_ref(tag)).await;
        assert_eq!(report.tags[0].status, TagStatus::UpToDate, "{report:?}");
    }
    let heads = dst.count("HEAD", "/v2/mirror/app/manifests/v") - heads_before;
    assert_eq!(heads, 6, "one per tag, each found up to date");
    assert_eq!(dst.count("GET", "/v2/mirror/app/tags/list"), 1);
}
