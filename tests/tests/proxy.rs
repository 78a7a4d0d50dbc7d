//! Tests of the fault-injecting, latency-adding proxy of the test bed: retry
//! and latency tests of the mirror are only as good as the proxy in between.

use std::time::{Duration, Instant};

use bytes::Bytes;
use futures::stream;
use mirror_tests::media_types::accept_all_manifests;
use mirror_tests::{
    blob_exists, get_blob, push_image, sha256_digest, FaultRule, ImageSpec, Layer, Proxy, Registry,
};
use rand::RngCore;
use reqwest::{Body, StatusCode};

/// A header's value as a string ("" when missing).
fn header(resp: &reqwest::Response, name: &str) -> String {
    resp.headers()
        .get(name)
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default()
        .to_string()
}

/// `POST /v2/<repo>/blobs/uploads/` through `base`, returning the Location.
async fn start_upload(client: &reqwest::Client, base: &str, repo: &str) -> String {
    let resp = client
        .post(format!("{base}/v2/{repo}/blobs/uploads/"))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), StatusCode::ACCEPTED);
    header(&resp, "Location")
}

fn with_digest(location: &str, digest: &str) -> String {
    let sep = if location.contains('?') { '&' } else { '?' };
    format!("{location}{sep}digest={digest}")
}

#[tokio::test]
async fn requests_through_the_proxy_reach_the_registry_and_uploads_stay_on_the_proxy() {
    let registry = Registry::start().await.unwrap();
    let spec = ImageSpec::new(vec![Layer::random(2048)]);
    let image = push_image(&registry, "library/app", "v1", spec)
        .await
        .unwrap();
    let proxy = Proxy::start(&registry).await.unwrap();
    assert!(proxy.host().starts_with("127.0.0.1:"));
    assert_ne!(proxy.host(), registry.host());
    let client = registry.client().unwrap();
    let base = proxy.url();

    let resp = client
        .get(format!("{base}/v2/library/app/manifests/v1"))
        .header("Accept", accept_all_manifests())
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), StatusCode::OK);
    assert_eq!(header(&resp, "Content-Type"), image.media_type);
    assert_eq!(header(&resp, "Docker-Content-Digest"), image.digest);
    assert_eq!(resp.bytes().await.unwrap(), image.manifest_bytes);

    // HEAD keeps the blob's Content-Length although no body follows.
    let (layer, size) = &image.blobs[1];
    let resp = client
        .head(format!("{base}/v2/library/app/blobs/{layer}"))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), StatusCode::OK);
    assert_eq!(header(&resp, "Content-Length"), size.to_string());

    let location = start_upload(&client, &base, "library/other").await;
    assert!(
        location.starts_with(&format!("{base}/v2/library/other/blobs/uploads/")),
        "Location {location} does not point at the proxy {base}"
    );
    let data = Bytes::from_static(b"a small blob through the proxy");
    let digest = sha256_digest(&data);
    let resp = client
        .put(with_digest(&location, &digest))
        .body(data)
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), StatusCode::CREATED);
    assert!(header(&resp, "Location").starts_with(&base));
    assert!(blob_exists(&registry, "library/other", &digest)
        .await
        .unwrap());

    assert_eq!(proxy.count("get", "/manifests/v1"), 1);
    assert_eq!(proxy.count("PUT", "digest=sha256:"), 1);
    let first = proxy.requests().first().cloned().unwrap();
    assert_eq!(
        (first.method.as_str(), first.path.as_str(), first.status),
        ("GET", "/v2/library/app/manifests/v1", 200)
    );
}

#[tokio::test]
async fn a_rule_for_two_times_answers_503_with_retry_after_twice_then_passes_through() {
    let registry = Registry::start().await.unwrap();
    push_image(
        &registry,
        "app",
        "v1",
        ImageSpec::new(vec![Layer::random(1024)]),
    )
    .await
    .unwrap();
    let proxy = Proxy::start(&registry).await.unwrap();
    proxy.fail(FaultRule {
        method: Some("GET".into()),
        path_contains: "/manifests/".into(),
        status: 503,
        retry_after_secs: Some(2),
        times: Some(2),
        skip: 0,
        code: None,
        after_upstream: false,
        body: None,
    });
    let client = registry.client().unwrap();
    let url = format!("{}/v2/app/manifests/v1", proxy.url());

    for _ in 0..2 {
        let resp = client
            .get(&url)
            .header("Accept", accept_all_manifests())
            .send()
            .await
            .unwrap();
        assert_eq!(resp.status(), StatusCode::SERVICE_UNAVAILABLE);
        assert_eq!(header(&resp, "Retry-After"), "2");
        let body: serde_json::Value = resp.json().await.unwrap();
        assert_eq!(body["errors"][0]["code"], "UNAVAILABLE");
        assert_eq!(body["errors"][0]["message"], "injected by test proxy");
    }
    let resp = client
        .get(&url)
        .header("Accept", accept_all_manifests())
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), StatusCode::OK);

    assert_eq!(proxy.count("GET", "/manifests/v1"), 3);
    let statuses: Vec<u16> = proxy.requests().iter().map(|r| r.status).collect();
    assert_eq!(statuses, [503, 503, 200]);
    // The faulted requests never reached the registry.
    assert_eq!(
        registry.count("GET", "/v2/app/manifests/v1"),
        1,
        "{}",
        registry.logs()
    );
}

#[tokio::test]
async fn a_rule_without_times_answers_429_until_cleared_and_drains_the_body() {
    let registry = Registry::start().await.unwrap();
    let proxy = Proxy::start(&registry).await.unwrap();
    proxy.fail(FaultRule::new(429, "/blobs/uploads/").retry_after(1));
    let client = registry.client().unwrap();
    let url = format!("{}/v2/app/blobs/uploads/", proxy.url());

    for _ in 0..3 {
        // A body on the faulted request is read and dropped; the same
        // keep-alive connection then carries the next request.
        let resp = client
            .post(&url)
            .body(vec![7u8; 256 * 1024])
            .send()
            .await
            .unwrap();
        assert_eq!(resp.status(), StatusCode::TOO_MANY_REQUESTS);
        assert_eq!(header(&resp, "Retry-After"), "1");
        let body: serde_json::Value = resp.json().await.unwrap();
        assert_eq!(body["errors"][0]["code"], "TOOMANYREQUESTS");
    }
    // Other paths are untouched by the rule.
    let resp = client
        .get(format!("{}/v2/", proxy.url()))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), StatusCode::OK);

    proxy.clear_faults();
    let resp = client.post(&url).send().await.unwrap();
    assert_eq!(resp.status(), StatusCode::ACCEPTED);
    assert_eq!(proxy.count("POST", "/blobs/uploads/"), 4);
    assert_eq!(registry.count("POST", "/blobs/uploads/"), 1);
}

#[tokio::test]
async fn latency_of_50ms_each_way_makes_a_request_take_100ms_and_concurrent_ones_are_not_serialized(
) {
    let registry = Registry::start().await.unwrap();
    let proxy = Proxy::start(&registry).await.unwrap();
    let client = registry.client().unwrap();
    let url = format!("{}/v2/", proxy.url());
    // Open a connection first so the timings below hold no connect.
    client.get(&url).send().await.unwrap();

    proxy.set_latency(Duration::from_millis(50));
    let started = Instant::now();
    let resp = client.get(&url).send().await.unwrap();
    let elapsed = started.elapsed();
    assert_eq!(resp.status(), StatusCode::OK);
    assert!(elapsed >= Duration::from_millis(100), "took {elapsed:?}");

    // Eight at once, each on its own connection: serialized they would take 800 ms.
    let started = Instant::now();
    let answers = futures::future::join_all((0..8).map(|_| client.get(&url).send())).await;
    let elapsed = started.elapsed();
    for answer in answers {
        assert_eq!(answer.unwrap().status(), StatusCode::OK);
    }
    assert!(elapsed >= Duration::from_millis(100), "took {elapsed:?}");
    assert!(elapsed < Duration::from_millis(400), "took {elapsed:?}");
}

#[tokio::test]
async fn a_5_mib_blob_streams_through_the_proxy_both_ways() {
    let registry = Registry::start().await.unwrap();
    let proxy = Proxy::start(&registry).await.unwrap();
    let client = registry.client().unwrap();
    let mut data = vec![0u8; 5 * 1024 * 1024];
    rand::rng().fill_bytes(&mut data);
    let data = Bytes::from(data);
    let digest = sha256_digest(&data);

    // A streamed body has no Content-Length, so it goes chunked through both hops.
    let location = start_upload(&client, &proxy.url(), "big").await;
    let chunks: Vec<Result<Bytes, std::io::Error>> = data
        .chunks(64 * 1024)
        .map(|c| Ok(data.slice_ref(c)))
        .collect();
    let resp = client
        .put(with_digest(&location, &digest))
        .header("Content-Type", "application/octet-stream")
        .body(Body::wrap_stream(stream::iter(chunks)))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), StatusCode::CREATED, "{}", registry.logs());
    assert_eq!(header(&resp, "Docker-Content-Digest"), digest);

    let stored = get_blob(&registry, "big", &digest).await.unwrap().unwrap();
    assert_eq!(sha256_digest(&stored), digest);
    let resp = client
        .get(format!("{}/v2/big/blobs/{digest}", proxy.url()))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), StatusCode::OK);
    assert_eq!(sha256_digest(&resp.bytes().await.unwrap()), digest);
}

#[tokio::test]
async fn an_unreachable_registry_is_answered_with_502() {
    let mut registry = Registry::start().await.unwrap();
    let proxy = Proxy::start(&registry).await.unwrap();
    registry.stop();
    let resp = registry
        .client()
        .unwrap()
        .get(format!("{}/v2/", proxy.url()))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), StatusCode::BAD_GATEWAY);
    assert_eq!(proxy.count("GET", "/v2/"), 1);
    assert_eq!(proxy.requests()[0].status, 502);
}
