//! Signatures, attestations, SBOMs and other OCI artifacts travel with their images between
//! real docker-registry (distribution 2.8) processes: found by cosign's tags, by the
//! referrers tag schema and (through a front that serves it, see `referrers_front.rs`) by
//! the Referrers API; pushed with identical digests; listed at the destination in the tag
//! schema's index, since distribution 2.8 has no Referrers API. And artifacts that are not
//! images (Helm charts, empty configs, unknown media types, zstd and foreign layers) are
//! copied byte for byte.

use mirror_common::copy::CopyOptions;
use mirror_common::report::TagStatus;
use mirror_tests::artifacts::*;
use mirror_tests::mirror::{engine, registry_flags, run_binary};
use mirror_tests::test_io::image_ref;
use mirror_tests::*;

fn pushed_image(image: &PushedImage) -> Pushed {
    Pushed {
        digest: image.digest.clone(),
        bytes: image.manifest_bytes.clone(),
        media_type: image.media_type.clone(),
    }
}

fn pushed_index(index: &PushedIndex) -> Pushed {
    Pushed {
        digest: index.digest.clone(),
        bytes: index.bytes.clone(),
        media_type: index.media_type.clone(),
    }
}

#[tokio::test]
async fn a_signed_attested_image_arrives_with_its_referrers_and_a_second_run_copies_nothing() {
    let src = Registry::start().await.unwrap();
    let dst = Registry::start().await.unwrap();
    let image = push_image(
        &src,
        "team/app",
        "v1",
        ImageSpec::new(vec![Layer::random(5_000)]).with_format(Format::Oci),
    )
    .await
    .unwrap();
    let image = pushed_image(&image);
    let sig = cosign_sign(&src, "team/app", &image, &["signature-1"])
        .await
        .unwrap();
    let att = cosign_attest(
        &src,
        "team/app",
        &image,
        "{\"_type\":\"https://in-toto.io/Statement/v1\"}",
    )
    .await
    .unwrap();
    let sbom = attach(
        &src,
        "team/app",
        &image,
        SPDX,
        "{\"spdxVersion\":\"SPDX-2.3\"}",
    )
    .await
    .unwrap();

    let mut args = vec![
        "copy".to_string(),
        format!("{}/team/app:v1", src.host()),
        format!("{}/mirror/app:v1", dst.host()),
    ];
    args.extend(registry_flags(&[&src, &dst]));
    let out = run_binary("mirror-worker", &args);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{stderr}");
    assert!(stderr.contains("3 referrers copied"), "{stderr}");

    for (tag, want) in [
        (image.cosign_tag("sig"), &sig),
        (image.cosign_tag("att"), &att),
    ] {
        assert_eq!(
            manifest_digest(&dst, "mirror/app", &tag).await.unwrap(),
            Some(want.digest.clone()),
            "{tag}"
        );
    }
    assert_eq!(
        manifest_digest(&dst, "mirror/app", &sbom.digest)
            .await
            .unwrap(),
        Some(sbom.digest.clone())
    );
    assert_eq!(
        referrer_digests(&dst, "mirror/app", &image.tag_schema_tag())
            .await
            .unwrap(),
        vec![sbom.digest.clone()],
        "found at the destination by the referrers tag schema"
    );
    let listed = referrers_listed(&dst, "mirror/app", &image.tag_schema_tag())
        .await
        .unwrap();
    assert_eq!(listed[0]["artifactType"], SPDX);

    let engine = engine(&[&src, &dst], None, CopyOptions::default());
    // A second run: nothing to copy, nothing written.
    let pinned = image_ref(format!("{}/team/app:v1", src.host())).with_digest(&image.digest);
    let again = engine
        .copy(
            &pinned,
            &[image_ref(format!("{}/mirror/app:v1", dst.host()))],
        )
        .await;
    assert_eq!(again.tags[0].status, TagStatus::UpToDate, "{again:?}");
    assert_eq!(again.tags[0].referrers, 3);
    assert_eq!(again.stats.manifests_pushed, 0);
    assert_eq!(again.stats.referrers_pushed, 0);

    // A signature added at the source later (cosign appends it: the .sig tag moves) is
    // copied by a later run of the unchanged image.
    let resigned = cosign_sign(&src, "team/app", &image, &["signature-1", "signature-2"])
        .await
        .unwrap();
    let later = engine
        .copy(
            &pinned,
            &[image_ref(format!("{}/mirror/app:v1", dst.host()))],
        )
        .await;
    assert!(later.succeeded(), "{later:?}");
    assert_eq!(later.tags[0].status, TagStatus::UpToDate);
    assert_eq!(later.stats.referrers_pushed, 1);
    assert_eq!(
        manifest_digest(&dst, "mirror/app", &image.cosign_tag("sig"))
            .await
            .unwrap(),
        Some(resigned.digest)
    );
}

#[tokio::test]
async fn referrers_of_an_index_and_of_its_children_arrive_with_it() {
    let src = Registry::start().await.unwrap();
    let dst = Registry::start().await.unwrap();
    let index = push_index(
        &src,
        "team/multi",
        "v1",
        three_platform_index_spec(),
        Format::Oci,
    )
    .await
    .unwrap();
    let child = pushed_image(&index.children[1]);
    let index = pushed_index(&index);
    let index_sig = cosign_sign(&src, "team/multi", &index, &["index signature"])
        .await
        .unwrap();
    let child_sbom = attach(&src, "team/multi", &child, SPDX, "{\"arm64\":true}")
        .await
        .unwrap();
    let engine = engine(&[&src, &dst], None, CopyOptions::default());
    let report = engine
        .copy(
            &image_ref(format!("{}/team/multi:v1", src.host())),
            &[image_ref(format!("{}/mirror/multi:v1", dst.host()))],
        )
        .await;
    assert!(report.succeeded(), "{report:?}");
    assert_eq!(report.tags[0].referrers, 2);
    assert_eq!(
        manifest_digest(&dst, "mirror/multi", &index.cosign_tag("sig"))
            .await
            .unwrap(),
        Some(index_sig.digest.clone())
    );
    assert_eq!(
        referrer_digests(&dst, "mirror/multi", &child.tag_schema_tag())
            .await
            .unwrap(),
        vec![child_sbom.digest.clone()],
        "the referrer of a child image"
    );
}

// The proxy serves from this runtime while the binary runs: two threads.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_referrers_api_of_a_source_is_used_and_its_artifact_type_filter_sent() {
    let src = Registry::start().await.unwrap();
    let dst = Registry::start().await.unwrap();
    // Real: the registry and its contents. Shaped: the proxy answers the Referrers API
    // from the registry's own sha256-<hex> index (distribution 2.8 has no such API).
    let front = Proxy::start(&src).await.unwrap();
    front.serve_referrers_api();
    let image = push_image(
        &src,
        "team/app",
        "v1",
        ImageSpec::new(vec![Layer::random(1_000)]),
    )
    .await
    .unwrap();
    let image = pushed_image(&image);
    let sbom = attach(&src, "team/app", &image, SPDX, "{\"spdx\":1}")
        .await
        .unwrap();
    attach(
        &src,
        "team/app",
        &image,
        "application/vnd.example.scan+json",
        "{}",
    )
    .await
    .unwrap();
    let mut args = vec![
        "copy".to_string(),
        format!("{}/team/app:v1", front.host()),
        format!("{}/mirror/app:v1", dst.host()),
        "--referrers-type".into(),
        SPDX.into(),
        "--insecure-registry".into(),
        front.host(),
    ];
    args.extend(registry_flags(&[&src, &dst]));
    let out = run_binary("mirror-worker", &args);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let asked: Vec<String> = front
        .requests()
        .iter()
        .filter(|r| r.path.contains("/referrers/"))
        .map(|r| r.path.clone())
        .collect();
    // The image's referrers, then the SBOM's own (referrers of referrers are followed).
    assert_eq!(asked.len(), 2, "{asked:?}");
    assert!(asked[0].contains(&image.digest), "{asked:?}");
    assert!(asked[1].contains(&sbom.digest), "{asked:?}");
    assert!(
        asked
            .iter()
            .all(|a| a.ends_with("?artifactType=application%2Fspdx%2Bjson")),
        "{asked:?}"
    );
    assert_eq!(
        front.count("GET", &format!("/manifests/{}", image.tag_schema_tag())),
        0,
        "the tag schema is not read when the API answers"
    );
    assert_eq!(
        referrer_digests(&dst, "mirror/app", &image.tag_schema_tag())
            .await
            .unwrap(),
        vec![sbom.digest],
        "only the selected type"
    );
}

#[tokio::test]
async fn referrers_none_copies_no_signature() {
    let src = Registry::start().await.unwrap();
    let dst = Registry::start().await.unwrap();
    let image = push_image(
        &src,
        "team/app",
        "v1",
        ImageSpec::new(vec![Layer::random(1_000)]),
    )
    .await
    .unwrap();
    let image = pushed_image(&image);
    cosign_sign(&src, "team/app", &image, &["s"]).await.unwrap();
    attach(&src, "team/app", &image, SPDX, "{}").await.unwrap();
    let mut args = vec![
        "copy".to_string(),
        format!("{}/team/app:v1", src.host()),
        format!("{}/mirror/app:v1", dst.host()),
        "--referrers".into(),
        "none".into(),
    ];
    args.extend(registry_flags(&[&src, &dst]));
    let out = run_binary("mirror-worker", &args);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(
        tags(&dst, "mirror/app").await.unwrap(),
        vec!["v1".to_string()]
    );
}

#[tokio::test]
async fn artifacts_that_are_not_images_are_copied_with_identical_digests() {
    let src = Registry::start().await.unwrap();
    let dst = Registry::start().await.unwrap();
    let helm = ArtifactSpec {
        config: Some((
            "application/vnd.cncf.helm.config.v1+json".into(),
            br#"{"name":"chart","version":"1.2.3","apiVersion":"v2"}"#.to_vec(),
        )),
        layers: vec![(
            "application/vnd.cncf.helm.chart.content.v1.tar+gzip".into(),
            Layer::random(3_000).bytes().unwrap().to_vec(),
        )],
        ..ArtifactSpec::default()
    };
    let empty_config = ArtifactSpec {
        artifact_type: Some("application/vnd.example.policy.v1".into()),
        layers: vec![(
            "application/vnd.example.policy.layer.v1+rego".into(),
            b"package x".to_vec(),
        )],
        ..ArtifactSpec::default()
    };
    let opaque = ArtifactSpec {
        config: Some((
            "application/vnd.unknown.config.v9".into(),
            b"\x00\x01binary".to_vec(),
        )),
        layers: vec![(
            "application/x-unknown-layer".into(),
            b"opaque bytes".to_vec(),
        )],
        ..ArtifactSpec::default()
    };
    let zstd = ArtifactSpec {
        config: Some((
            "application/vnd.oci.image.config.v1+json".into(),
            br#"{"architecture":"amd64","os":"linux","rootfs":{"type":"layers","diff_ids":[]}}"#
                .to_vec(),
        )),
        // A zstd frame's magic number: the bytes are copied, never decompressed.
        layers: vec![(
            "application/vnd.oci.image.layer.v1.tar+zstd".into(),
            [&[0x28u8, 0xb5, 0x2f, 0xfd][..], b"zstd payload"].concat(),
        )],
        ..ArtifactSpec::default()
    };
    for (tag, spec) in [
        ("helm", &helm),
        ("policy", &empty_config),
        ("opaque", &opaque),
        ("zstd", &zstd),
    ] {
        let pushed = push_artifact(&src, "kinds/x", Some(tag), spec)
            .await
            .unwrap();
        let mut args = vec![
            "copy".to_string(),
            format!("{}/kinds/x:{tag}", src.host()),
            format!("{}/mirror/x:{tag}", dst.host()),
        ];
        args.extend(registry_flags(&[&src, &dst]));
        let out = run_binary("mirror-worker", &args);
        assert!(
            out.status.success(),
            "{tag}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        let (_, bytes) = get_manifest(&dst, "mirror/x", tag).await.unwrap().unwrap();
        assert_eq!(bytes, pushed.bytes, "{tag}: manifest bytes unchanged");
        let doc: serde_json::Value = serde_json::from_slice(&bytes).unwrap();
        for layer in doc["layers"].as_array().unwrap() {
            let digest = layer["digest"].as_str().unwrap();
            assert_eq!(
                get_blob(&dst, "mirror/x", digest).await.unwrap(),
                get_blob(&src, "kinds/x", digest).await.unwrap(),
                "{tag}: layer {digest}"
            );
        }
    }
}

#[tokio::test]
async fn foreign_layers_are_left_out_with_a_note_unless_asked_for() {
    let allow_urls = RegistryOptions {
        allow_layer_urls: true,
        ..Default::default()
    };
    let src = Registry::start_with(allow_urls.clone()).await.unwrap();
    let dst = Registry::start_with(allow_urls).await.unwrap();
    let foreign_bytes = b"a windows base layer".to_vec();
    let foreign_digest = sha256_digest(&foreign_bytes);
    // The source has the layer's bytes too (as registries that mirror Windows bases do).
    let api = RegistryApi::new(&src).unwrap();
    api.push_blob("win/app", &Blob::new("x", foreign_bytes.clone()))
        .await
        .unwrap();
    let config = Blob::new(
        "application/vnd.oci.image.config.v1+json",
        br#"{"os":"windows"}"#.to_vec(),
    );
    api.push_blob("win/app", &config).await.unwrap();
    let doc = serde_json::json!({
        "schemaVersion": 2,
        "mediaType": OCI_MANIFEST,
        "config": {"mediaType": config.media_type, "digest": config.digest, "size": config.data.len()},
        "layers": [{"mediaType": "application/vnd.oci.image.layer.nondistributable.v1.tar+gzip",
                    "digest": foreign_digest, "size": foreign_bytes.len(),
                    "urls": ["https://mcr.example.com/layer"]}],
    });
    let bytes = bytes::Bytes::from(serde_json::to_vec(&doc).unwrap());
    let digest = api
        .put_manifest("win/app", "1", OCI_MANIFEST, bytes)
        .await
        .unwrap();
    for (include, repo) in [(false, "mirror/left-out"), (true, "mirror/included")] {
        let mut args = vec![
            "copy".to_string(),
            format!("{}/win/app:1", src.host()),
            format!("{}/{repo}:1", dst.host()),
        ];
        if include {
            args.push("--include-nondistributable".into());
        }
        args.extend(registry_flags(&[&src, &dst]));
        let out = run_binary("mirror-worker", &args);
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(out.status.success(), "{stderr}");
        assert_eq!(
            manifest_digest(&dst, repo, "1").await.unwrap(),
            Some(digest.clone())
        );
        assert_eq!(
            blob_exists(&dst, repo, &foreign_digest).await.unwrap(),
            include
        );
        assert_eq!(
            stderr.contains("non-distributable layers left out"),
            !include,
            "{stderr}"
        );
    }
}

// The proxy serves from this runtime while the binary runs: two threads.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_referrer_the_source_cannot_serve_fails_its_tag_and_leaves_no_index() {
    let src = Registry::start().await.unwrap();
    let dst = Registry::start().await.unwrap();
    // Real: both registries. Shaped: the proxy answers 404 for the SBOM's layer only.
    let front = Proxy::start(&src).await.unwrap();
    let image = push_image(
        &src,
        "team/app",
        "v1",
        ImageSpec::new(vec![Layer::random(1_000)]),
    )
    .await
    .unwrap();
    let image = pushed_image(&image);
    let sbom = attach(&src, "team/app", &image, SPDX, "{\"lost\":true}")
        .await
        .unwrap();
    let doc: serde_json::Value = serde_json::from_slice(&sbom.bytes).unwrap();
    let layer = doc["layers"][0]["digest"].as_str().unwrap().to_string();
    front.fail(FaultRule::new(404, format!("/blobs/{layer}")));
    let mut args = vec![
        "copy".to_string(),
        format!("{}/team/app:v1", front.host()),
        format!("{}/mirror/app:v1", dst.host()),
        "--insecure-registry".into(),
        front.host(),
    ];
    args.extend(registry_flags(&[&src, &dst]));
    let out = run_binary("mirror-worker", &args);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success(), "{stderr}");
    assert!(stderr.contains("referrer"), "{stderr}");
    assert_eq!(
        manifest_digest(&dst, "mirror/app", "v1").await.unwrap(),
        None,
        "tag untouched"
    );
    assert!(
        referrers_listed(&dst, "mirror/app", &image.tag_schema_tag())
            .await
            .unwrap()
            .is_empty(),
        "no index naming a missing referrer"
    );
}
