//! What registries send is bounded and checked before it is used: a token answer has a
//! size limit, a listed tag that is not a tag by the distribution grammar is left out
//! (never put into a URL, never failing the other tags), and a reference given by a user
//! with such a tag is refused naming it.

use mirror_common::copy::CopyOptions;
use mirror_common::report::TagStatus;
use mirror_tests::mirror::{engine, registry_flags, run_binary};
use mirror_tests::oversized_token_service::OversizedTokenService;
use mirror_tests::test_io::{image_ref, write};
use mirror_tests::token_server::{ISSUER, SERVICE};
use mirror_tests::*;

/// Real: the destination registry (distribution's token access controller) and its
/// challenge, the copy engine. Shaped: the token service the challenge sends the client
/// to answers a 50 MB token, streamed without `Content-Length`. The copy fails naming the
/// token service and the limit, and the client stops reading at it: the service gets to
/// send a fraction of its answer (what the limit and the socket buffers take), not 50 MB.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_oversized_token_fails_the_copy_naming_the_token_service_unread() {
    const TOKEN: u64 = 50 * 1000 * 1000;
    let service = OversizedTokenService::start(TOKEN).await.unwrap();
    // Only for a root certificate the registry can load: no token from it is ever asked.
    let trusted = TokenServer::start(TokenServerOptions::default()).unwrap();
    let dst = Registry::start_with(RegistryOptions {
        token_auth: Some(TokenAuth {
            realm: service.realm(),
            service: SERVICE.to_string(),
            issuer: ISSUER.to_string(),
            root_cert_bundle: trusted.root_cert().to_path_buf(),
        }),
        ..RegistryOptions::default()
    })
    .await
    .unwrap();
    let src = Registry::start().await.unwrap();
    push_image(
        &src,
        "app/tok",
        "1",
        ImageSpec::new(vec![Layer::random(1_000)]),
    )
    .await
    .unwrap();
    let report = engine(&[&src, &dst], None, CopyOptions::default())
        .copy(
            &image_ref(format!("{}/app/tok:1", src.host())),
            &[image_ref(format!("{}/app/tok:1", dst.host()))],
        )
        .await;
    let tag = &report.tags[0];
    assert_eq!(tag.status, TagStatus::Failed, "{report:?}");
    let error = tag.error.as_deref().unwrap_or_default();
    assert!(
        error.contains(&format!("registry {}", dst.host()))
            && error.contains(&format!("token service {}", service.host()))
            && error.contains("over the 1048576-byte limit"),
        "{error}"
    );
    let sent = service.bytes_sent();
    assert!(
        sent < TOKEN / 4,
        "the client stopped reading near the limit: {sent} of {TOKEN} bytes were sent"
    );
    eprintln!("{error}; the service sent {sent} bytes");
}

/// Real: the registries, `mirror-scheduler run --local` on a tag-less mapping. Shaped: the
/// front answers the source's tag listing with the real tag `good` and a 10 KB "tag". The
/// listed non-tag is left out with a warning naming the repository; `good` is mirrored and
/// the run succeeds.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_listed_tag_that_is_no_tag_is_left_out_and_the_good_one_is_mirrored() {
    let src = Registry::start().await.unwrap();
    let dst = Registry::start().await.unwrap();
    let image = push_image(
        &src,
        "app/listed",
        "good",
        ImageSpec::new(vec![Layer::random(1_000)]),
    )
    .await
    .unwrap();
    let front = Proxy::start(&src).await.unwrap();
    let long = "x".repeat(10 * 1024);
    let listing = serde_json::json!({ "name": "app/listed", "tags": ["good", long] });
    front.answer(Answer {
        path_contains: "/app/listed/tags/list".into(),
        status: 200,
        headers: vec![("content-type".into(), "application/json".into())],
        body: listing.to_string().into(),
    });
    let dir = tempfile::tempdir().unwrap();
    let file = write(
        dir.path(),
        "mapping_listed",
        &format!("{}/app/listed {}/app/listed\n", front.host(), dst.host()),
    );
    let mut args = vec![
        "run".to_string(),
        "--local".to_string(),
        "-f".to_string(),
        file,
        "--insecure-registry".to_string(),
        front.host(),
    ];
    args.extend(registry_flags(&[&src, &dst]));
    let out = tokio::task::spawn_blocking(move || run_binary("mirror-scheduler", &args))
        .await
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(0), "{stderr}");
    assert!(
        stderr.contains("app/listed") && stderr.contains("left out"),
        "the warning names the repository: {stderr}"
    );
    assert!(!stderr.contains(&long), "the non-tag is not printed whole");
    assert_eq!(
        tags(&dst, "app/listed").await.unwrap(),
        vec!["good".to_string()]
    );
    assert_eq!(
        manifest_digest(&dst, "app/listed", "good").await.unwrap(),
        Some(image.digest)
    );
    assert_eq!(
        front.count("HEAD", &long[..100])
            + front.count("GET", &format!("manifests/{}", &long[..100])),
        0,
        "the non-tag never went into a URL"
    );
}

/// A reference given on the command line whose tag is outside the distribution grammar
/// (a non-ASCII letter, which the reference grammar's `\w` would take) is refused before
/// any request, naming the reference.
#[test]
fn a_reference_with_a_tag_outside_the_grammar_is_refused_naming_it() {
    let out = run_binary(
        "mirror-worker",
        &[
            "copy".to_string(),
            "127.0.0.1:1/app/a:vé".to_string(),
            "127.0.0.1:1/app/b:1".to_string(),
        ],
    );
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{stderr}");
    assert!(
        stderr.contains("invalid image reference \"127.0.0.1:1/app/a:vé\""),
        "{stderr}"
    );
}
