//! Behaviours of the registries people use that CNCF distribution 2.8 does not have, each
//! shaped by the test proxy in front of a real docker-registry (see `tests/src/registry_shapes.rs`
//! for what is real and what is shaped): a body size limit (413), chunked uploads and their
//! resumption, registries that never mount, single-request uploads, and blob downloads
//! redirected to object storage.

use std::sync::Arc;

use mirror_common::copy::{CopyEngine, CopyOptions};
use mirror_common::index::MemoryIndex;
use mirror_common::registry::RegistryClient;
use mirror_tests::mirror::{client_options, registry_flags, run_binary};
use mirror_tests::object_store::ObjectStore;
use mirror_tests::test_io::{image_ref, text};
use mirror_tests::*;

const MIB: u64 = 1024 * 1024;

fn copy_args(src: &str, dst: &str, registries: &[&Registry], extra: &[&str]) -> Vec<String> {
    let mut args = vec!["copy".to_string(), src.to_string(), dst.to_string()];
    args.extend(extra.iter().map(|s| s.to_string()));
    args.extend(registry_flags(registries));
    args
}

fn uploads_of(requests: &[SeenRequest], method: &str) -> usize {
    requests
        .iter()
        .filter(|r| r.method == method && r.path.contains("/blobs/uploads/"))
        .count()
}

// The proxy serves from this runtime while the binary runs: two threads.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_413_on_a_whole_blob_switches_the_registry_to_chunks_and_the_copy_succeeds() {
    let src = Registry::start().await.unwrap();
    let dst = Registry::start().await.unwrap();
    // Shaped: bodies over 1 MiB are refused with 413, as a body-limited proxy does.
    let front = Proxy::start(&dst).await.unwrap();
    front.shape(Shape::BodyLimit(MIB));
    let image = push_image(
        &src,
        "big/app",
        "1",
        ImageSpec::new(vec![Layer::random(3 * MIB)]),
    )
    .await
    .unwrap();
    let args = copy_args(
        &format!("{}/big/app:1", src.host()),
        &format!("{}/big/app:1", front.host()),
        &[&src, &dst],
        &["--insecure-registry", &front.host()],
    );
    let out = run_binary("mirror-worker", &args);
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert_eq!(
        manifest_digest(&dst, "big/app", "1").await.unwrap(),
        Some(image.digest)
    );
    let seen = front.requests();
    let refused_puts = seen
        .iter()
        .filter(|r| r.method == "PUT" && r.status == 413)
        .count();
    assert_eq!(refused_puts, 1, "one whole PUT refused: {seen:?}");
    // Chunks of half the refused blob; a chunk still over the limit goes in halves.
    assert!(uploads_of(&seen, "PATCH") >= 2, "then chunks: {seen:?}");
    assert!(
        text(&out.stderr).contains("chunks"),
        "{}",
        text(&out.stderr)
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn chunk_size_sends_chunks_from_the_start_and_a_lost_chunk_resumes_from_the_registrys_offset()
{
    let src = Registry::start().await.unwrap();
    let dst = Registry::start().await.unwrap();
    // Shaped: the second PATCH is answered 502 by the proxy and never reaches the
    // registry, standing for a connection cut between the client and the registry.
    let front = Proxy::start(&dst).await.unwrap();
    front.fail(
        FaultRule::new(502, "/blobs/uploads/")
            .method("PATCH")
            .after(1)
            .times(1),
    );
    let layer = Layer::random(5 * MIB / 2);
    let image = push_image(&src, "big/app", "1", ImageSpec::new(vec![layer.clone()]))
        .await
        .unwrap();
    let chunk = format!("{}=1MiB", front.host());
    let args = copy_args(
        &format!("{}/big/app:1", src.host()),
        &format!("{}/big/app:1", front.host()),
        &[&src, &dst],
        &["--insecure-registry", &front.host(), "--chunk-size", &chunk],
    );
    let out = run_binary("mirror-worker", &args);
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert_eq!(
        manifest_digest(&dst, "big/app", "1").await.unwrap(),
        Some(image.digest)
    );
    // What reached the real registry: one session for the layer, three chunks of it, the
    // offset asked once, no second session.
    let at_registry = dst.requests();
    let sessions = at_registry
        .iter()
        .filter(|r| {
            r.method == "POST" && r.path.contains("/blobs/uploads/") && !r.path.contains("digest=")
        })
        .count();
    assert_eq!(sessions, 1, "resumed, not restarted: {at_registry:?}");
    assert_eq!(dst.count("PATCH", "/blobs/uploads/"), 3, "{at_registry:?}");
    assert_eq!(
        dst.count("GET", "/blobs/uploads/"),
        1,
        "the offset, asked once"
    );
    assert!(front.requests().iter().all(|r| r.status != 413));
}

#[tokio::test]
async fn a_registry_that_declines_every_mount_is_asked_three_times_then_not_again() {
    let src = Registry::start().await.unwrap();
    let dst = Registry::start().await.unwrap();
    // Shaped: mounts reach the registry without `mount`/`from`: it opens a session (202).
    let front = Proxy::start(&dst).await.unwrap();
    front.shape(Shape::DeclineMounts);
    let base = Layer::random(20_000);
    for i in 0..6 {
        push_image(
            &src,
            &format!("team/app{i}"),
            "1",
            ImageSpec::new(vec![base.clone(), Layer::random(1_000)]),
        )
        .await
        .unwrap();
    }
    let mut opts = client_options(&[&src], None);
    opts.insecure_registries.insert(front.host());
    let engine = CopyEngine::new(
        Arc::new(RegistryClient::new(opts).unwrap()),
        Arc::new(MemoryIndex::new()),
        CopyOptions::default(),
    );
    // Where each copy's requests start at the front.
    let mut starts = Vec::new();
    for i in 0..6 {
        starts.push(front.requests().len());
        let report = engine
            .copy(
                &image_ref(format!("{}/team/app{i}:1", src.host())),
                &[image_ref(format!("{}/mirror/app{i}:1", front.host()))],
            )
            .await;
        assert!(report.succeeded(), "{report:?}");
    }
    // Mounts from another repository; the others are probes (a mount from the repository
    // itself, how small blobs are asked for at a registry that takes single-request
    // uploads as sessions), which prove nothing about mounting and are not counted.
    let mounts: Vec<(usize, bool)> = front
        .requests()
        .iter()
        .enumerate()
        .filter(|(_, r)| r.method == "POST" && r.path.contains("mount="))
        .map(|(i, r)| {
            let repo = r
                .path
                .trim_start_matches("/v2/")
                .split("/blobs/")
                .next()
                .unwrap_or("");
            (i, !r.path.ends_with(&format!("from={repo}")))
        })
        .collect();
    let cross: Vec<usize> = mounts.iter().filter(|(_, c)| *c).map(|(i, _)| *i).collect();
    assert_eq!(
        cross.len(),
        3,
        "asked until it was clear, then uploaded without asking"
    );
    // The copies that start after the third decline ask for no mount of any kind.
    let after = starts
        .iter()
        .find(|s| **s > cross[2])
        .copied()
        .unwrap_or(usize::MAX);
    assert!(
        after < usize::MAX,
        "the third decline came before the last copy"
    );
    assert!(
        mounts.iter().all(|(i, _)| *i < after),
        "no mount of any kind once the registry is known not to mount: {mounts:?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn small_blobs_go_up_in_one_request_where_the_registry_completes_it() {
    let src = Registry::start().await.unwrap();
    let dst = Registry::start().await.unwrap();
    let image = push_image(
        &src,
        "team/app",
        "1",
        ImageSpec::new(vec![Layer::random(30_000), Layer::random(20_000)]),
    )
    .await
    .unwrap();
    let blobs = image.blobs.len();
    let mut per_blob = Vec::new();
    for completes in [false, true] {
        // Shaped when `completes`: `POST ?digest=` with the blob is completed in one request.
        let front = Proxy::start(&dst).await.unwrap();
        if completes {
            front.shape(Shape::CompleteSinglePost);
        }
        let repo = if completes {
            "single/app"
        } else {
            "session/app"
        };
        let args = copy_args(
            &format!("{}/team/app:1", src.host()),
            &format!("{}/{repo}:1", front.host()),
            &[&src, &dst],
            &["--insecure-registry", &front.host()],
        );
        let out = run_binary("mirror-worker", &args);
        assert!(out.status.success(), "{}", text(&out.stderr));
        assert_eq!(
            manifest_digest(&dst, repo, "1").await.unwrap(),
            Some(image.digest.clone())
        );
        let seen = front.requests();
        let upload_requests = uploads_of(&seen, "POST") + uploads_of(&seen, "PUT");
        per_blob.push(upload_requests as f64 / blobs as f64);
        if completes {
            assert_eq!(upload_requests, blobs, "one request per blob: {seen:?}");
        } else {
            // distribution opens a session for the first try and is not offered it again.
            assert_eq!(upload_requests, 2 * blobs, "{seen:?}");
        }
    }
    eprintln!(
        "upload requests per new small blob: {:.1} with sessions (distribution), {:.1} in one request",
        per_blob[0], per_blob[1]
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn redirected_downloads_carry_no_credentials_and_an_expired_url_is_not_reused() {
    let src = Registry::start_with(RegistryOptions {
        htpasswd: Some(("puller".into(), "s3cret".into())),
        ..Default::default()
    })
    .await
    .unwrap();
    let dst = Registry::start().await.unwrap();
    // Shaped: blob GETs at the registry are answered 307 to object storage with a
    // one-use signature; the first download there drops half way.
    let store = ObjectStore::start(&src, 1).await.unwrap();
    let front = Proxy::start(&src).await.unwrap();
    front.shape(Shape::redirect_blobs(store.url()));
    let layer = Layer::random(2 * MIB);
    let image = push_image(&src, "team/app", "1", ImageSpec::new(vec![layer]))
        .await
        .unwrap();
    let dir = tempfile::tempdir().unwrap();
    let config = write_docker_config(dir.path(), &[(&front.host(), "puller", "s3cret")]).unwrap();
    let args = copy_args(
        &format!("{}/team/app:1", front.host()),
        &format!("{}/mirror/app:1", dst.host()),
        &[&dst],
        &[
            "--insecure-registry",
            &front.host(),
            "-a",
            config.to_str().unwrap(),
        ],
    );
    let out = run_binary("mirror-worker", &args);
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert_eq!(
        manifest_digest(&dst, "mirror/app", "1").await.unwrap(),
        Some(image.digest)
    );
    let at_store = store.requests();
    assert!(
        at_store.iter().all(|r| !r.authorization),
        "the registry's credentials stayed at the registry: {at_store:?}"
    );
    assert!(at_store.iter().all(|r| r.status == 200), "{at_store:?}");
    let layer_digest = &image.blobs.iter().max_by_key(|(_, size)| *size).unwrap().0;
    let layer_fetches: Vec<_> = at_store
        .iter()
        .filter(|r| r.path.contains(layer_digest.as_str()))
        .collect();
    assert_eq!(
        layer_fetches.len(),
        2,
        "cut once, then fetched whole: {at_store:?}"
    );
    assert_ne!(
        layer_fetches[0].path, layer_fetches[1].path,
        "a new signed URL"
    );
    assert_eq!(
        front.count("GET", &format!("/blobs/{layer_digest}")),
        2,
        "the retry went back to the registry for it"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_used_up_pull_quota_fails_further_pulls_as_throttled_without_sending_them() {
    let src = Registry::start().await.unwrap();
    let dst = Registry::start().await.unwrap();
    // Shaped: two manifest GETs allowed, announced in ratelimit-remaining, then 429s.
    let front = Proxy::start(&src).await.unwrap();
    front.shape(Shape::pull_quota(2));
    let dir = tempfile::tempdir().unwrap();
    let mut lines = String::new();
    for i in 0..4 {
        push_image(
            &src,
            &format!("hub/app{i}"),
            "1",
            ImageSpec::new(vec![Layer::random(500)]),
        )
        .await
        .unwrap();
        lines.push_str(&format!(
            "{}/hub/app{i}:1 {}/hub/app{i}:1\n",
            front.host(),
            dst.host()
        ));
    }
    let file = mirror_tests::test_io::write(dir.path(), "mapping_hub", &lines);
    let mut args = vec![
        "run".to_string(),
        "--local".into(),
        "--workers".into(),
        "1".into(),
        "--continue-on-error".into(),
        "-f".into(),
        file,
        "--insecure-registry".into(),
        front.host(),
    ];
    args.extend(registry_flags(&[&src, &dst]));
    let out = run_binary("mirror-scheduler", &args);
    let stderr = text(&out.stderr);
    assert!(!out.status.success(), "{stderr}");
    assert!(stderr.contains("2 tags copied"), "{stderr}");
    assert!(stderr.contains("pull quota is used up"), "{stderr}");
    assert_eq!(
        front.requests().iter().filter(|r| r.status == 429).count(),
        0,
        "no request was sent into the 429: {:?}",
        front.requests()
    );
}
