//! Registries that fail for a while: 503 and 429 answers are retried with backoff (the
//! registry's Retry-After wins), writes included — an aborted blob upload restarts cleanly —
//! and a registry that never recovers fails the copy with a reason naming it.

use std::time::{Duration, Instant};

use mirror_common::copy::CopyOptions;
use mirror_common::registry::{ClientOptions, RegistryClient, RetryPolicy};
use mirror_common::report::TagStatus;
use mirror_tests::test_io::image_ref;
use mirror_tests::*;

/// An engine whose destination is reached through `proxy`.
fn engine_via(
    proxy: &Proxy,
    src: &Registry,
    attempts: u32,
    copy: CopyOptions,
) -> mirror_common::copy::CopyEngine {
    let mut opts = ClientOptions {
        retry: RetryPolicy {
            max_attempts: attempts,
            base_delay: Duration::from_millis(20),
            max_delay: Duration::from_secs(5),
        },
        ..ClientOptions::default()
    };
    opts.insecure_registries.extend([proxy.host(), src.host()]);
    let client = std::sync::Arc::new(RegistryClient::new(opts).unwrap());
    mirror_common::copy::CopyEngine::new(
        client,
        std::sync::Arc::new(mirror_common::index::MemoryIndex::new()),
        copy,
    )
}

#[tokio::test]
async fn blob_upload_answered_503_twice_is_retried_and_ends_correct() {
    let src = Registry::start().await.unwrap();
    let dst = Registry::start().await.unwrap();
    let proxy = Proxy::start(&dst).await.unwrap();
    let image = push_image(
        &src,
        "app/r",
        "1",
        ImageSpec::new(vec![Layer::random(200_000)]),
    )
    .await
    .unwrap();
    // The blob PUT (the write that streams the bytes) fails twice; the session POST too.
    proxy.fail(FaultRule::new(503, "digest=").method("PUT").times(2));
    proxy.fail(
        FaultRule::new(503, "/blobs/uploads/")
            .method("POST")
            .times(1),
    );
    let report = engine_via(&proxy, &src, 5, CopyOptions::default())
        .copy(
            &image_ref(format!("{}/app/r:1", src.host())),
            &[image_ref(format!("{}/app/r:1", proxy.host()))],
        )
        .await;
    assert!(report.succeeded(), "{report:?}");
    assert_eq!(
        manifest_digest(&dst, "app/r", "1").await.unwrap(),
        Some(image.digest)
    );
    let failed_puts = proxy
        .requests()
        .into_iter()
        .filter(|q| q.method == "PUT" && q.path.contains("digest=") && q.status == 503)
        .count();
    assert_eq!(failed_puts, 2);
    assert_eq!(
        report.stats.blobs_uploaded, 2,
        "each blob counted once however often it was restarted"
    );
}

#[tokio::test]
async fn throttled_manifest_push_waits_for_retry_after() {
    let src = Registry::start().await.unwrap();
    let dst = Registry::start().await.unwrap();
    let proxy = Proxy::start(&dst).await.unwrap();
    push_image(
        &src,
        "app/t",
        "1",
        ImageSpec::new(vec![Layer::random(1_000)]),
    )
    .await
    .unwrap();
    proxy.fail(
        FaultRule::new(429, "/manifests/1")
            .method("PUT")
            .retry_after(1)
            .times(1),
    );
    let started = Instant::now();
    let report = engine_via(&proxy, &src, 3, CopyOptions::default())
        .copy(
            &image_ref(format!("{}/app/t:1", src.host())),
            &[image_ref(format!("{}/app/t:1", proxy.host()))],
        )
        .await;
    assert!(report.succeeded(), "{report:?}");
    assert!(
        started.elapsed() >= Duration::from_secs(1),
        "Retry-After: 1 was honoured ({:?})",
        started.elapsed()
    );
    assert_eq!(proxy.count("PUT", "/manifests/1"), 2);
}

#[tokio::test]
async fn registry_that_never_recovers_fails_the_copy_naming_it_and_leaves_the_tag_absent() {
    let src = Registry::start().await.unwrap();
    let dst = Registry::start().await.unwrap();
    let proxy = Proxy::start(&dst).await.unwrap();
    push_image(
        &src,
        "app/d",
        "1",
        ImageSpec::new(vec![Layer::random(1_000)]),
    )
    .await
    .unwrap();
    proxy.fail(FaultRule::new(503, "/blobs/uploads/"));
    let one_at_a_time = CopyOptions {
        blob_concurrency: 1,
        ..CopyOptions::default()
    };
    let report = engine_via(&proxy, &src, 3, one_at_a_time)
        .copy(
            &image_ref(format!("{}/app/d:1", src.host())),
            &[image_ref(format!("{}/app/d:1", proxy.host()))],
        )
        .await;
    let tag = &report.tags[0];
    assert_eq!(tag.status, TagStatus::Failed);
    assert!(tag.retryable(), "a 503 may pass later");
    let error = tag.error.as_deref().unwrap();
    assert!(
        error.contains(&format!("registry {}", proxy.host()))
            && error.contains("HTTP 503 UNAVAILABLE"),
        "{error}"
    );
    assert_eq!(manifest_digest(&dst, "app/d", "1").await.unwrap(), None);
    assert_eq!(
        proxy.count("POST", "/blobs/uploads/"),
        3,
        "the attempt limit bounds the requests; retries do not multiply"
    );
}

/// Real: the registry, the copy. Shaped: the proxy answers the tag's first manifest PUT
/// `400 DIGEST_INVALID`, as docker-registry (filesystem driver) does when the PUT reads a
/// blob link another request is rewriting (seen in the scale benchmark's cold fleet run).
/// The PUT is tried again and the tag lands; a registry that keeps refusing fails the tag
/// within the attempt limit and leaves it absent.
#[tokio::test]
async fn a_manifest_put_refused_as_digest_invalid_once_is_tried_again() {
    let src = Registry::start().await.unwrap();
    let dst = Registry::start().await.unwrap();
    let proxy = Proxy::start(&dst).await.unwrap();
    let image = push_image(
        &src,
        "app/m",
        "1",
        ImageSpec::new(vec![Layer::random(1_000)]),
    )
    .await
    .unwrap();
    let refused = || {
        FaultRule::new(400, "/manifests/")
            .method("PUT")
            .code("DIGEST_INVALID")
    };
    proxy.fail(refused().times(1));
    let copier = engine_via(&proxy, &src, 3, CopyOptions::default());
    let source = image_ref(format!("{}/app/m:1", src.host()));
    let report = copier
        .copy(&source, &[image_ref(format!("{}/app/m:1", proxy.host()))])
        .await;
    assert_eq!(report.tags[0].status, TagStatus::Pushed, "{report:?}");
    assert_eq!(
        manifest_digest(&dst, "app/m", "1").await.unwrap(),
        Some(image.digest)
    );
    assert_eq!(proxy.count("PUT", "/manifests/1"), 2);

    proxy.fail(refused());
    let report = copier
        .copy(&source, &[image_ref(format!("{}/app/m:2", proxy.host()))])
        .await;
    let error = report.tags[0].error.as_deref().unwrap_or_default();
    assert!(error.contains("DIGEST_INVALID"), "{report:?}");
    assert_eq!(proxy.count("PUT", "/manifests/2"), 3, "the attempt limit");
    assert_eq!(manifest_digest(&dst, "app/m", "2").await.unwrap(), None);
}

/// Real: the registries, the copy, every upload (the registry commits each blob). Shaped:
/// the front forwards every closing blob `PUT ?digest=` to the registry and then answers
/// 500 in place of its 201, as a load balancer that fails after the registry committed.
/// The blob is checked (HEAD) and found there: the upload is done, not retried on the
/// closed session (a `404 BLOB_UPLOAD_UNKNOWN`) nor failed.
#[tokio::test]
async fn a_blob_committed_behind_a_lost_reply_is_not_a_failure() {
    let src = Registry::start().await.unwrap();
    let dst = Registry::start().await.unwrap();
    let proxy = Proxy::start(&dst).await.unwrap();
    // A small blob (sent from memory) and one over the single-request size (streamed).
    let image = push_image(
        &src,
        "app/lost",
        "1",
        ImageSpec::new(vec![Layer::random(2_000), Layer::random(1_500_000)]),
    )
    .await
    .unwrap();
    proxy.fail(
        FaultRule::new(500, "digest=")
            .method("PUT")
            .after_upstream(),
    );
    let report = engine_via(&proxy, &src, 3, CopyOptions::default())
        .copy(
            &image_ref(format!("{}/app/lost:1", src.host())),
            &[image_ref(format!("{}/app/lost:1", proxy.host()))],
        )
        .await;
    assert_eq!(report.tags[0].status, TagStatus::Pushed, "{report:?}");
    assert_eq!(
        report.tags[0].digest.as_deref(),
        Some(image.digest.as_str())
    );
    assert_eq!(
        manifest_digest(&dst, "app/lost", "1").await.unwrap(),
        Some(image.digest)
    );
    let lost = proxy
        .requests()
        .into_iter()
        .filter(|q| q.method == "PUT" && q.path.contains("digest=") && q.status == 500)
        .count();
    assert_eq!(
        lost, 3,
        "each blob's closing PUT lost its reply once: {report:?}"
    );
    assert_eq!(
        proxy.count("PUT", "digest="),
        3,
        "no closing PUT was sent again on a closed session"
    );
}

/// Real: the registries, the copy. Shaped: the front answers the first closing `PUT` of
/// each blob `404 BLOB_UPLOAD_UNKNOWN` without passing it on, as a registry does whose
/// session expired (or was closed by a try whose reply was lost). The blob is not there,
/// so it goes again in a new session, and the tag lands.
#[tokio::test]
async fn a_lost_upload_session_is_restarted_in_a_new_one() {
    let src = Registry::start().await.unwrap();
    let dst = Registry::start().await.unwrap();
    let proxy = Proxy::start(&dst).await.unwrap();
    let image = push_image(
        &src,
        "app/gone",
        "1",
        ImageSpec::new(vec![Layer::random(2_000), Layer::random(1_500_000)]),
    )
    .await
    .unwrap();
    // The first closing PUT of the small layer (sent from memory) and of the large one
    // (streamed): the digest is in the PUT's query.
    for (blob, _) in &image.blobs[1..] {
        let hex = blob.trim_start_matches("sha256:");
        proxy.fail(
            FaultRule::new(404, hex)
                .method("PUT")
                .code("BLOB_UPLOAD_UNKNOWN")
                .times(1),
        );
    }
    let one_at_a_time = CopyOptions {
        blob_concurrency: 1,
        ..CopyOptions::default()
    };
    let report = engine_via(&proxy, &src, 3, one_at_a_time)
        .copy(
            &image_ref(format!("{}/app/gone:1", src.host())),
            &[image_ref(format!("{}/app/gone:1", proxy.host()))],
        )
        .await;
    assert_eq!(report.tags[0].status, TagStatus::Pushed, "{report:?}");
    assert_eq!(
        manifest_digest(&dst, "app/gone", "1").await.unwrap(),
        Some(image.digest)
    );
    assert_eq!(
        proxy.count("PUT", "digest="),
        5,
        "the config once, each layer twice, the second time in a new session"
    );
}
