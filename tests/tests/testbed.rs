//! Tests of the test bed itself: if these fail, no end-to-end result can be trusted.

use mirror_tests::fixtures::get_blob;
use mirror_tests::{
    blob_exists, catalog, get_manifest, manifest_digest, push_image, push_index, sha256_digest,
    tags, three_platform_index_spec, write_docker_config, Format, ImageSpec, Layer, Registry,
    RegistryOptions,
};

#[tokio::test]
async fn plain_registry_serves_a_pushed_image_and_logs_the_manifest_put() {
    let registry = Registry::start().await.unwrap();
    assert!(registry.url().starts_with("http://127.0.0.1:"));
    let spec = ImageSpec::new(vec![Layer::random(2048), Layer::random(1024)]);
    let image = push_image(&registry, "library/app", "v1", spec)
        .await
        .unwrap();

    let digest = manifest_digest(&registry, "library/app", "v1")
        .await
        .unwrap();
    assert_eq!(digest.as_deref(), Some(image.digest.as_str()));
    assert_eq!(image.digest, sha256_digest(&image.manifest_bytes));
    let (media_type, bytes) = get_manifest(&registry, "library/app", &image.digest)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(media_type, image.media_type);
    assert_eq!(bytes, image.manifest_bytes);
    for (blob, _) in &image.blobs {
        assert!(blob_exists(&registry, "library/app", blob).await.unwrap());
    }
    assert_eq!(catalog(&registry).await.unwrap(), vec!["library/app"]);
    assert_eq!(tags(&registry, "library/app").await.unwrap(), vec!["v1"]);
    assert!(tags(&registry, "nope").await.unwrap().is_empty());
    assert_eq!(
        manifest_digest(&registry, "library/app", "v2")
            .await
            .unwrap(),
        None
    );

    assert!(
        registry.count("PUT", "/manifests/") >= 1,
        "{}",
        registry.logs()
    );
    assert!(registry
        .requests()
        .iter()
        .any(|r| r.method == "PUT" && r.path == "/v2/library/app/manifests/v1" && r.status == 201));
}

#[tokio::test]
async fn shared_and_streamed_layers_push_once_per_repository() {
    let registry = Registry::start().await.unwrap();
    let base = Layer::random(4096);
    // Just above the streaming threshold: uploaded in two PATCH chunks.
    let big = Layer::random(9 * 1024 * 1024);
    assert!(!big.is_compressed());
    let a = ImageSpec::new(vec![base.clone(), big.clone()]).with_format(Format::Oci);
    let b = ImageSpec::new(vec![base.clone()]);
    let a = push_image(&registry, "a", "1", a).await.unwrap();
    push_image(&registry, "b", "1", b).await.unwrap();
    assert_eq!(a.blobs[2], (big.digest().to_string(), big.size()));
    let served = get_blob(&registry, "a", big.digest())
        .await
        .unwrap()
        .unwrap();
    assert_eq!(sha256_digest(&served), big.digest());
    assert_eq!(registry.count("PATCH", "/v2/a/blobs/uploads/"), 2);
    assert!(blob_exists(&registry, "b", base.digest()).await.unwrap());
    assert!(!blob_exists(&registry, "b", big.digest()).await.unwrap());
}

#[tokio::test]
async fn htpasswd_registry_rejects_anonymous_requests_and_accepts_credentials() {
    let registry = Registry::start_with(RegistryOptions {
        tls: false,
        htpasswd: Some(("alice".into(), "s3cret".into())),
        ..Default::default()
    })
    .await
    .unwrap();
    assert_eq!(registry.credentials(), Some(("alice", "s3cret")));

    let anonymous = reqwest::get(format!("{}/v2/", registry.url()))
        .await
        .unwrap();
    assert_eq!(anonymous.status(), 401);
    let wrong = reqwest::Client::new()
        .get(format!("{}/v2/", registry.url()))
        .basic_auth("alice", Some("wrong"))
        .send()
        .await
        .unwrap();
    assert_eq!(wrong.status(), 401);

    let image = push_image(
        &registry,
        "private/app",
        "latest",
        ImageSpec::new(vec![Layer::random(512)]),
    )
    .await
    .unwrap();
    assert_eq!(
        manifest_digest(&registry, "private/app", "latest")
            .await
            .unwrap(),
        Some(image.digest)
    );
    assert!(registry.requests().iter().any(|r| r.status == 401));
}

#[tokio::test]
async fn tls_registry_is_reachable_with_the_generated_ca_only() {
    let registry = Registry::start_with(RegistryOptions {
        tls: true,
        htpasswd: None,
        ..Default::default()
    })
    .await
    .unwrap();
    assert!(registry.url().starts_with("https://127.0.0.1:"));
    let ca = std::fs::read(registry.ca_file().unwrap()).unwrap();

    let untrusting = reqwest::Client::new();
    assert!(untrusting
        .get(format!("{}/v2/", registry.url()))
        .send()
        .await
        .is_err());

    for host in [registry.host(), format!("localhost:{}", registry.port())] {
        let client = reqwest::Client::builder()
            .tls_certs_only(reqwest::Certificate::from_pem_bundle(&ca).unwrap())
            .build()
            .unwrap();
        let resp = client
            .get(format!("https://{host}/v2/"))
            .send()
            .await
            .unwrap();
        assert_eq!(resp.status(), 200, "via {host}");
    }
    let image = push_image(
        &registry,
        "secure",
        "1",
        ImageSpec::new(vec![Layer::random(256)]),
    )
    .await
    .unwrap();
    assert_eq!(
        manifest_digest(&registry, "secure", "1").await.unwrap(),
        Some(image.digest)
    );
}

#[tokio::test]
async fn pushed_indexes_have_children_resolvable_by_digest() {
    let registry = Registry::start().await.unwrap();
    for (tag, format) in [("docker", Format::Docker), ("oci", Format::Oci)] {
        let index = push_index(&registry, "multi", tag, three_platform_index_spec(), format)
            .await
            .unwrap();
        assert_eq!(index.media_type, format.index_media_type());
        assert_eq!(
            manifest_digest(&registry, "multi", tag).await.unwrap(),
            Some(index.digest.clone())
        );
        let (media_type, bytes) = get_manifest(&registry, "multi", tag)
            .await
            .unwrap()
            .unwrap();
        assert_eq!(media_type, format.index_media_type());
        assert_eq!(bytes, index.bytes);

        let parsed: serde_json::Value = serde_json::from_slice(&bytes).unwrap();
        let entries = parsed["manifests"].as_array().unwrap();
        assert_eq!(entries.len(), 3);
        assert_eq!(entries[1]["platform"]["variant"], "v8");
        for (entry, child) in entries.iter().zip(&index.children) {
            assert_eq!(entry["digest"], child.digest.as_str());
            assert_eq!(child.media_type, format.manifest_media_type());
            assert_eq!(
                manifest_digest(&registry, "multi", &child.digest)
                    .await
                    .unwrap(),
                Some(child.digest.clone())
            );
        }
        // One shared base layer across all three children.
        assert_eq!(index.children[0].blobs[1], index.children[2].blobs[1]);
    }
}

#[tokio::test]
async fn corrupt_blob_makes_the_served_bytes_mismatch_their_digest() {
    let registry = Registry::start().await.unwrap();
    let layer = Layer::random(4096);
    push_image(&registry, "c", "1", ImageSpec::new(vec![layer.clone()]))
        .await
        .unwrap();
    let path = registry.blob_data_path(layer.digest());
    assert_eq!(std::fs::metadata(&path).unwrap().len(), layer.size());

    registry.corrupt_blob(layer.digest()).unwrap();
    let served = get_blob(&registry, "c", layer.digest())
        .await
        .unwrap()
        .unwrap();
    assert_eq!(served.len() as u64, layer.size());
    assert_ne!(sha256_digest(&served), layer.digest());
}

#[tokio::test]
async fn dropping_a_registry_leaves_no_process_behind() {
    let registry = Registry::start().await.unwrap();
    let pid = registry.pid();
    let proc_dir = std::path::PathBuf::from(format!("/proc/{pid}"));
    assert!(proc_dir.exists());
    let dir = registry.dir().to_path_buf();
    drop(registry);
    assert!(!proc_dir.exists(), "docker-registry {pid} still running");
    assert!(!dir.exists(), "temporary directory left behind");
}

#[test]
fn docker_config_holds_base64_credentials_per_host() {
    let dir = tempfile::tempdir().unwrap();
    let path = write_docker_config(dir.path(), &[("127.0.0.1:5000", "bob", "pw:1")]).unwrap();
    let config: serde_json::Value = serde_json::from_slice(&std::fs::read(path).unwrap()).unwrap();
    // base64("bob:pw:1")
    assert_eq!(config["auths"]["127.0.0.1:5000"]["auth"], "Ym9iOnB3OjE=");
}

#[test]
fn workspace_binaries_are_built_next_to_the_test_executable() {
    let worker = mirror_tests::binary("mirror-worker");
    let scheduler = mirror_tests::binary("mirror-scheduler");
    let exe = std::env::current_exe().unwrap();
    let profile_dir = exe.parent().unwrap().parent().unwrap();
    assert_eq!(worker, profile_dir.join("mirror-worker"));
    assert!(scheduler.is_file());
}
