//! A copy leaves the destination with exactly the source's manifests (same digests), for
//! single images of both formats and for multi-platform indexes, and `--filter-by-os`
//! keeps only the platforms asked for.

use mirror_common::copy::{CopyOptions, PlatformFilter};
use mirror_common::report::TagStatus;
use mirror_tests::mirror::{engine, registry_flags, run_binary};
use mirror_tests::test_io::{image_ref, text};
use mirror_tests::*;

#[tokio::test]
async fn single_manifest_of_each_format_is_copied_with_identical_digest() {
    let src = Registry::start().await.unwrap();
    let dst = Registry::start().await.unwrap();
    for (repo, format) in [("app/docker", Format::Docker), ("app/oci", Format::Oci)] {
        let image = push_image(
            &src,
            repo,
            "v1",
            ImageSpec::new(vec![Layer::random(40_000), Layer::random(3_000)]).with_format(format),
        )
        .await
        .unwrap();
        let mut args = vec![
            "copy".to_string(),
            format!("{}/{repo}:v1", src.host()),
            format!("{}/mirror/{repo}", dst.host()),
        ];
        args.extend(registry_flags(&[&src, &dst]));
        let out = run_binary("mirror-worker", &args);
        let stdout = String::from_utf8_lossy(&out.stdout);
        assert!(
            out.status.success(),
            "stderr: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        assert_eq!(
            stdout.trim(),
            format!("{} {}/mirror/{repo}:v1", image.digest, dst.host()),
            "oc's output line"
        );
        assert_eq!(
            manifest_digest(&dst, &format!("mirror/{repo}"), "v1")
                .await
                .unwrap(),
            Some(image.digest.clone())
        );
        let (media_type, bytes) = get_manifest(&dst, &format!("mirror/{repo}"), "v1")
            .await
            .unwrap()
            .unwrap();
        assert_eq!(media_type, format.manifest_media_type());
        assert_eq!(
            bytes, image.manifest_bytes,
            "manifest bytes are pushed unchanged"
        );
        for (digest, _) in &image.blobs {
            assert!(blob_exists(&dst, &format!("mirror/{repo}"), digest)
                .await
                .unwrap());
        }
        let summary = String::from_utf8_lossy(&out.stderr);
        assert!(summary.contains("3 uploaded"), "summary: {summary}");
    }
}

#[tokio::test]
async fn multi_arch_index_is_copied_whole_with_identical_digests() {
    let src = Registry::start().await.unwrap();
    let dst = Registry::start().await.unwrap();
    for (tag, format) in [("docker", Format::Docker), ("oci", Format::Oci)] {
        let index = push_index(&src, "multi/app", tag, three_platform_index_spec(), format)
            .await
            .unwrap();
        let engine = engine(&[&src, &dst], None, CopyOptions::default());
        let report = engine
            .copy(
                &image_ref(format!("{}/multi/app:{tag}", src.host())),
                &[image_ref(format!("{}/multi/copy:{tag}", dst.host()))],
            )
            .await;
        assert!(report.succeeded(), "{report:?}");
        assert_eq!(report.digest.as_deref(), Some(index.digest.as_str()));
        let (media_type, bytes) = get_manifest(&dst, "multi/copy", tag)
            .await
            .unwrap()
            .unwrap();
        assert_eq!(media_type, format.index_media_type());
        assert_eq!(bytes, index.bytes);
        for child in &index.children {
            assert_eq!(
                manifest_digest(&dst, "multi/copy", &child.digest)
                    .await
                    .unwrap(),
                Some(child.digest.clone())
            );
        }
        // Three platforms sharing one base layer: each distinct blob once.
        let distinct: std::collections::HashSet<_> = index
            .children
            .iter()
            .flat_map(|c| c.blobs.iter().map(|b| b.0.clone()))
            .collect();
        assert_eq!(report.stats.blobs_uploaded as usize, distinct.len());
        assert_eq!(
            report.stats.manifests_pushed, 4,
            "three children and the index"
        );
    }
}

#[tokio::test]
async fn filter_by_os_keeps_only_matching_children() {
    let src = Registry::start().await.unwrap();
    let dst = Registry::start().await.unwrap();
    let index = push_index(
        &src,
        "multi/app",
        "1",
        three_platform_index_spec(),
        Format::Oci,
    )
    .await
    .unwrap();
    let opts = CopyOptions {
        filter: Some(PlatformFilter::new("linux/(amd64|arm64.*)").unwrap()),
        ..CopyOptions::default()
    };
    let report = engine(&[&src, &dst], None, opts)
        .copy(
            &image_ref(format!("{}/multi/app:1", src.host())),
            &[image_ref(format!("{}/multi/app:1", dst.host()))],
        )
        .await;
    assert!(report.succeeded(), "{report:?}");
    let (_, bytes) = get_manifest(&dst, "multi/app", "1").await.unwrap().unwrap();
    let doc: serde_json::Value = serde_json::from_slice(&bytes).unwrap();
    let platforms: Vec<String> = doc["manifests"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| m["platform"]["architecture"].as_str().unwrap().to_string())
        .collect();
    assert_eq!(platforms, ["amd64", "arm64"]);
    assert_ne!(
        report.digest.as_deref(),
        Some(index.digest.as_str()),
        "a filtered index is a new document"
    );
    let s390x = &index.children[2]; // three_platform_index_spec: amd64, arm64/v8, s390x
    assert_eq!(
        manifest_digest(&dst, "multi/app", &s390x.digest)
            .await
            .unwrap(),
        None,
        "the s390x child is not copied"
    );
    let none = engine(
        &[&src, &dst],
        None,
        CopyOptions {
            filter: Some(PlatformFilter::new("windows/.*").unwrap()),
            ..CopyOptions::default()
        },
    )
    .copy(
        &image_ref(format!("{}/multi/app:1", src.host())),
        &[image_ref(format!("{}/multi/none:1", dst.host()))],
    )
    .await;
    assert_eq!(none.tags[0].status, TagStatus::Failed);
    assert!(
        none.tags[0]
            .error
            .as_deref()
            .unwrap()
            .contains("no platform matches --filter-by-os \"windows/.*\""),
        "{none:?}"
    );
}

/// oc's flags carry over: `--keep-manifest-list=false` mirrors what oc mirrors without the
/// flag, the linux/amd64 image of a manifest list pushed as itself (the destination tag
/// has that child's digest); bare `--keep-manifest-list` and `--skip-multiple-scopes` are
/// accepted, the first keeping the index whole as by default, the second with a note.
#[tokio::test]
async fn oc_manifest_list_flags_keep_the_list_or_mirror_the_amd64_image_alone() {
    let src = Registry::start().await.unwrap();
    let dst = Registry::start().await.unwrap();
    let (s, d) = (src.host(), dst.host());
    let index = push_index(
        &src,
        "oc/app",
        "1",
        three_platform_index_spec(),
        Format::Docker,
    )
    .await
    .unwrap();
    let copy = |dst_repo: &str, extra: &[&str]| {
        let mut args: Vec<String> = vec![
            "copy".into(),
            format!("{s}/oc/app:1"),
            format!("{d}/{dst_repo}:1"),
        ];
        args.extend(extra.iter().map(|x| x.to_string()));
        args.extend(registry_flags(&[&src, &dst]));
        run_binary("mirror-worker", &args)
    };
    let single = copy("single/app", &["--keep-manifest-list=false"]);
    assert!(single.status.success(), "{}", text(&single.stderr));
    let amd64 = &index.children[0].digest;
    assert_eq!(
        manifest_digest(&dst, "single/app", "1")
            .await
            .unwrap()
            .as_ref(),
        Some(amd64)
    );
    assert_eq!(
        text(&single.stdout).trim(),
        format!("{amd64} {d}/single/app:1")
    );

    let whole = copy(
        "whole/app",
        &["--keep-manifest-list", "--skip-multiple-scopes"],
    );
    assert!(whole.status.success(), "{}", text(&whole.stderr));
    assert!(text(&whole.stderr).contains("--skip-multiple-scopes has no effect"));
    assert_eq!(
        manifest_digest(&dst, "whole/app", "1").await.unwrap(),
        Some(index.digest)
    );
}
