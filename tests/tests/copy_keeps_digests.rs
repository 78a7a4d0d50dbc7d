//! A copy leaves the destination with exactly the source's manifests (same digests), for
//! single images of both formats and for multi-platform indexes, and `--filter-by-os`
//! keeps only the platforms asked for.

use mirror_common::copy::{CopyOptions, PlatformFilter};
use mirror_common::report::TagStatus;
use mirror_tests::mirror::{engine, registry_flags, run_binary};
use mirror_tests::util::image_ref;
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
