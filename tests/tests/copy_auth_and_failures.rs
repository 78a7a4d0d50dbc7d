//! Credentials, TLS and failures: Basic auth from a docker config file, refused
//! credentials named with their registry, TLS through the test CA, a corrupted source blob
//! that fails the copy and leaves the destination tag absent, and a missing source tag.

use mirror_common::copy::CopyOptions;
use mirror_common::report::TagStatus;
use mirror_tests::mirror::{engine, registry_flags, run_binary};
use mirror_tests::test_io::image_ref;
use mirror_tests::*;

fn htpasswd(user: &str, pass: &str) -> RegistryOptions {
    RegistryOptions {
        tls: false,
        htpasswd: Some((user.to_string(), pass.to_string())),
        ..Default::default()
    }
}

#[tokio::test]
async fn basic_auth_credentials_come_from_the_docker_config_file() {
    let src = Registry::start_with(htpasswd("reader", "s3cret-src"))
        .await
        .unwrap();
    let dst = Registry::start_with(htpasswd("pusher", "s3cret-dst"))
        .await
        .unwrap();
    let image = push_image(
        &src,
        "private/app",
        "1",
        ImageSpec::new(vec![Layer::random(10_000)]),
    )
    .await
    .unwrap();
    let dir = tempfile::tempdir().unwrap();
    let config = write_docker_config(
        dir.path(),
        &[
            (src.host().as_str(), "reader", "s3cret-src"),
            (dst.host().as_str(), "pusher", "s3cret-dst"),
        ],
    )
    .unwrap();
    let mut args = vec![
        "copy".to_string(),
        format!("{}/private/app:1", src.host()),
        format!("{}/private/app:1", dst.host()),
        "-a".to_string(),
        config.display().to_string(),
    ];
    args.extend(registry_flags(&[&src, &dst]));
    let out = run_binary("mirror-worker", &args);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{stderr}");
    assert_eq!(
        manifest_digest(&dst, "private/app", "1").await.unwrap(),
        Some(image.digest)
    );
    assert!(
        !stderr.contains("s3cret"),
        "credentials never appear in output: {stderr}"
    );
}

#[tokio::test]
async fn wrong_credentials_give_a_clear_error_naming_the_registry() {
    let src = Registry::start().await.unwrap();
    let dst = Registry::start_with(htpasswd("pusher", "right-password"))
        .await
        .unwrap();
    push_image(
        &src,
        "app/z",
        "1",
        ImageSpec::new(vec![Layer::random(1_000)]),
    )
    .await
    .unwrap();
    let dir = tempfile::tempdir().unwrap();
    let config = write_docker_config(
        dir.path(),
        &[(dst.host().as_str(), "pusher", "wrong-password")],
    )
    .unwrap();
    let mut args = vec![
        "copy".to_string(),
        format!("{}/app/z:1", src.host()),
        format!("{}/app/z:1", dst.host()),
        "--registry-config".to_string(),
        config.display().to_string(),
    ];
    args.extend(registry_flags(&[&src, &dst]));
    let out = run_binary("mirror-worker", &args);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1));
    assert!(
        stderr.contains(&format!("registry {}: authentication failed", dst.host())),
        "{stderr}"
    );
    assert!(!stderr.contains("wrong-password"), "{stderr}");
    assert_eq!(manifest_digest(&dst, "app/z", "1").await.unwrap(), None);

    // No credentials at all: the message says what is missing.
    let mut args = vec![
        "copy".to_string(),
        format!("{}/app/z:1", src.host()),
        format!("{}/app/z:1", dst.host()),
    ];
    args.extend(registry_flags(&[&src, &dst]));
    let out = run_binary("mirror-worker", &args);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1));
    assert!(
        stderr.contains("requires a username and password"),
        "{stderr}"
    );
}

#[tokio::test]
async fn tls_registries_are_reached_through_the_given_ca() {
    let tls = RegistryOptions {
        tls: true,
        htpasswd: None,
        ..Default::default()
    };
    let src = Registry::start_with(tls.clone()).await.unwrap();
    let dst = Registry::start_with(tls).await.unwrap();
    let image = push_image(
        &src,
        "secure/app",
        "1",
        ImageSpec::new(vec![Layer::random(5_000)]),
    )
    .await
    .unwrap();
    let mut args = vec![
        "copy".to_string(),
        format!("{}/secure/app:1", src.host()),
        format!("{}/secure/app:1", dst.host()),
    ];
    args.extend(registry_flags(&[&src, &dst]));
    assert!(args.iter().any(|a| a == "--ca-file"));
    let out = run_binary("mirror-worker", &args);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(
        manifest_digest(&dst, "secure/app", "1").await.unwrap(),
        Some(image.digest)
    );
    // The registry speaks HTTP/2 over TLS, and so did the copy: every request it sent (by
    // its user agent) was an HTTP/2 one.
    let ours = dst.requests_from_the_mirror();
    assert!(!ours.is_empty(), "{}", dst.logs());
    assert!(ours.iter().all(|r| r.protocol == "HTTP/2.0"), "{ours:#?}");

    // Without the CA the certificate is not trusted, and plain HTTP is never tried.
    let args = vec![
        "copy".to_string(),
        format!("{}/secure/app:1", src.host()),
        format!("{}/secure/other:1", dst.host()),
    ];
    let out = run_binary(
        "mirror-worker",
        &[args, vec!["--retry-attempts".into(), "1".into()]].concat(),
    );
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1));
    assert!(
        stderr.contains(&format!("registry {}", src.host()))
            && stderr.to_lowercase().contains("certificate"),
        "{stderr}"
    );
}

/// A TLS registry whose CA is not given, and a plain-HTTP one, on one host.
async fn untrusted_tls_and_plain_http_registries() -> (Registry, Registry, PushedImage) {
    let tls = Registry::start_with(RegistryOptions {
        tls: true,
        ..Default::default()
    })
    .await
    .unwrap();
    let plain = Registry::start().await.unwrap();
    let image = push_image(
        &tls,
        "secure/app",
        "v0",
        ImageSpec::new(vec![Layer::random(5_000)]),
    )
    .await
    .unwrap();
    (tls, plain, image)
}

/// `mirror-worker copy SRC DST` with these flags (no `--ca-file`), one attempt per request.
fn copy(src: &str, dst: &str, flags: &[&str]) -> std::process::Output {
    let mut args = vec!["copy".to_string(), src.to_string(), dst.to_string()];
    args.extend(["--retry-attempts", "1"].iter().map(|s| s.to_string()));
    args.extend(flags.iter().map(|s| s.to_string()));
    run_binary("mirror-worker", &args)
}

/// `--insecure-registry HOST` as Docker's insecure-registries mean it (issue 21): on a
/// host named so, a registry speaking TLS keeps TLS with its certificate not checked, and
/// one speaking plain HTTP is spoken to in it. Without the flag the untrusted certificate
/// fails the copy, naming the registry.
#[tokio::test]
async fn insecure_registry_host_accepts_an_untrusted_certificate_and_plain_http() {
    let (tls, plain, image) = untrusted_tls_and_plain_http_registries().await;
    let src = format!("{}/secure/app:v0", tls.host());

    let out = copy(&src, &format!("{}/mirror/app:v0", plain.host()), &[]);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{stderr}");
    assert!(
        stderr.contains(&format!("registry {}", tls.host()))
            && stderr.to_lowercase().contains("certificate"),
        "{stderr}"
    );
    assert_eq!(
        manifest_digest(&plain, "mirror/app", "v0").await.unwrap(),
        None
    );

    let dst = format!("{}/mirror/app:v0", plain.host());
    let out = copy(&src, &dst, &["--insecure-registry", "127.0.0.1"]);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{stderr}");
    assert!(
        !stderr.contains("HTTP request to an HTTPS server"),
        "{stderr}"
    );
    assert_eq!(
        manifest_digest(&plain, "mirror/app", "v0").await.unwrap(),
        Some(image.digest)
    );
    // The source was read over TLS (HTTP/2, negotiated as with a trusted certificate),
    // not over plain HTTP.
    let ours = tls.requests_from_the_mirror();
    assert!(
        ours.iter().any(|r| r.path.contains("/manifests/v0")),
        "{ours:#?}"
    );
    assert!(ours.iter().all(|r| r.protocol == "HTTP/2.0"), "{ours:#?}");
}

/// skopeo's `--src-tls-verify=false` / `--dest-tls-verify=false` and oc's `--insecure`
/// mean the same as `--insecure-registry`: no certificate check, plain HTTP where the
/// registry speaks it; `--dest-tls-verify=false` alone leaves the source's certificate
/// checked.
#[tokio::test]
async fn tls_verify_false_and_oc_insecure_accept_an_untrusted_certificate() {
    let (tls, plain, image) = untrusted_tls_and_plain_http_registries().await;
    let src = format!("{}/secure/app:v0", tls.host());
    let to = |repo: &str| format!("{}/{repo}:v0", plain.host());

    let out = copy(&src, &to("dest-only"), &["--dest-tls-verify=false"]);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(
        out.status.code(),
        Some(1),
        "the source is still checked: {stderr}"
    );
    assert!(stderr.to_lowercase().contains("certificate"), "{stderr}");

    let skopeo = ["--src-tls-verify=false", "--dest-tls-verify=false"];
    for (repo, flags) in [("skopeo/app", &skopeo[..]), ("oc/app", &["--insecure"][..])] {
        let out = copy(&src, &to(repo), flags);
        assert!(
            out.status.success(),
            "{flags:?}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        assert_eq!(
            manifest_digest(&plain, repo, "v0").await.unwrap().as_ref(),
            Some(&image.digest),
            "{flags:?}"
        );
    }
    assert_eq!(
        manifest_digest(&plain, "dest-only", "v0").await.unwrap(),
        None
    );
}

#[tokio::test]
async fn corrupted_source_blob_fails_with_digest_error_and_leaves_tag_absent() {
    let src = Registry::start().await.unwrap();
    let dst = Registry::start().await.unwrap();
    let image = push_image(
        &src,
        "app/bad",
        "1",
        ImageSpec::new(vec![Layer::random(50_000)]),
    )
    .await
    .unwrap();
    let layer = image.blobs[1].0.clone();
    src.corrupt_blob(&layer).unwrap();
    let report = engine(&[&src, &dst], None, CopyOptions::default())
        .copy(
            &image_ref(format!("{}/app/bad:1", src.host())),
            &[image_ref(format!("{}/app/bad:1", dst.host()))],
        )
        .await;
    assert_eq!(report.tags[0].status, TagStatus::Failed);
    let error = report.tags[0].error.clone().unwrap();
    assert!(
        error.contains("digest mismatch") && error.contains(&layer),
        "{error}"
    );
    assert!(!report.tags[0].retryable());
    assert_eq!(
        manifest_digest(&dst, "app/bad", "1").await.unwrap(),
        None,
        "the tag is not created"
    );
    assert!(
        !blob_exists(&dst, "app/bad", &layer).await.unwrap(),
        "the corrupted blob was not committed"
    );
}

#[tokio::test]
async fn missing_source_tag_fails_with_not_found_naming_the_reference() {
    let src = Registry::start().await.unwrap();
    let dst = Registry::start().await.unwrap();
    push_image(
        &src,
        "app/here",
        "1",
        ImageSpec::new(vec![Layer::random(1_000)]),
    )
    .await
    .unwrap();
    let mut args = vec![
        "copy".to_string(),
        format!("{}/app/here:nope", src.host()),
        format!("{}/app/here:1", dst.host()),
    ];
    args.extend(registry_flags(&[&src, &dst]));
    let out = run_binary("mirror-worker", &args);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1));
    assert!(
        stderr.contains(&format!("{}/app/here:nope: not found", src.host())),
        "{stderr}"
    );
    assert!(out.stdout.is_empty());
}

/// Real: the registries, `mirror-worker copy`, every push but one. Shaped: the front
/// refuses the manifest `PUT` of the tag `bad` only (`403 DENIED`). The tag the registry
/// took is reported pushed with its digest and printed in oc's `<digest> <dst>` line; only
/// `bad` fails, with its own error, and the exit code says a tag failed.
// Multi-threaded: the front serves while the binary runs.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn one_refused_tag_fails_alone_and_the_pushed_tag_reports_its_digest() {
    let src = Registry::start().await.unwrap();
    let dst = Registry::start().await.unwrap();
    let proxy = Proxy::start(&dst).await.unwrap();
    let image = push_image(
        &src,
        "app/two",
        "1",
        ImageSpec::new(vec![Layer::random(3_000)]),
    )
    .await
    .unwrap();
    proxy.fail(
        FaultRule::new(403, "/manifests/bad")
            .method("PUT")
            .code("DENIED"),
    );
    let (good, bad) = (
        format!("{}/app/two:good", proxy.host()),
        format!("{}/app/two:bad", proxy.host()),
    );
    let mut args = vec![
        "copy".to_string(),
        format!("{}/app/two:1", src.host()),
        good.clone(),
        bad.clone(),
        "--insecure-registry".to_string(),
        proxy.host(),
    ];
    args.extend(registry_flags(&[&src, &dst]));
    let out = tokio::task::spawn_blocking(move || run_binary("mirror-worker", &args))
        .await
        .unwrap();
    let (stdout, stderr) = (
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr),
    );
    assert_eq!(out.status.code(), Some(1), "{stderr}");
    assert_eq!(
        stdout.trim(),
        format!("{} {good}", image.digest),
        "{stderr}"
    );
    assert!(
        stderr.contains(&format!("error: {bad}: ")) && stderr.contains("DENIED"),
        "{stderr}"
    );
    assert!(!stderr.contains(&format!("error: {good}")), "{stderr}");
    assert!(
        stderr.contains("2 tags: 1 pushed, 0 up to date, 1 failed"),
        "{stderr}"
    );
    assert_eq!(
        tags(&dst, "app/two").await.unwrap(),
        vec!["good".to_string()]
    );
}

/// Real: the registries, `mirror-worker copy`. Shaped: the front answers every closing
/// blob `PUT` with `500` and distribution's own body for a full disk (`UNKNOWN`, the
/// storage error in `detail`), as docker-registry answers when its filesystem is full. The
/// failure quotes the registry's detail, so the operator reads why.
// Multi-threaded: the front serves while the binary runs.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_registry_error_detail_is_quoted_in_the_failure() {
    let src = Registry::start().await.unwrap();
    let dst = Registry::start().await.unwrap();
    let proxy = Proxy::start(&dst).await.unwrap();
    push_image(
        &src,
        "app/full",
        "1",
        ImageSpec::new(vec![Layer::random(3_000)]),
    )
    .await
    .unwrap();
    let detail = "filesystem: write /var/lib/registry/docker/registry/v2/repositories/app/full/_uploads/x/data: no space left on device";
    let body = serde_json::json!({
        "errors": [{ "code": "UNKNOWN", "message": "unknown error", "detail": detail }]
    });
    proxy.fail(
        FaultRule::new(500, "digest=")
            .method("PUT")
            .body(body.to_string()),
    );
    let mut args = vec![
        "copy".to_string(),
        format!("{}/app/full:1", src.host()),
        format!("{}/app/full:1", proxy.host()),
        "--insecure-registry".to_string(),
        proxy.host(),
    ];
    args.extend(registry_flags(&[&src, &dst]));
    let out = tokio::task::spawn_blocking(move || run_binary("mirror-worker", &args))
        .await
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{stderr}");
    assert!(
        stderr.contains(&format!("HTTP 500 UNKNOWN: unknown error (\"{detail}\")")),
        "{stderr}"
    );
}
