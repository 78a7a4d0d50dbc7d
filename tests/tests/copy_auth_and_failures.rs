//! Credentials, TLS and failures: Basic auth from a docker config file, refused
//! credentials named with their registry, TLS through the test CA, a corrupted source blob
//! that fails the copy and leaves the destination tag absent, and a missing source tag.

use mirror_common::copy::CopyOptions;
use mirror_common::report::TagStatus;
use mirror_tests::mirror::{engine, registry_flags, run_binary};
use mirror_tests::util::image_ref;
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
    let ours: Vec<_> = dst
        .requests()
        .into_iter()
        .filter(|r| r.user_agent.starts_with("image-mirror/"))
        .collect();
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
