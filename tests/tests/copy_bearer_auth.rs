//! The distribution Bearer token flow against a real `docker-registry` that uses the
//! `token` access controller and the test bed's token server: pushes ask `pull,push` on the
//! destination with the docker config's credentials, a cross-repository mount asks push on
//! the target and pull on the `from` repository in one token, refused credentials name the
//! registry and never show the password, anonymous pulls get a pull-only token, a token the
//! registry refuses is fetched again, and cached tokens are reused until they expire.

use std::time::Duration;

use mirror_common::copy::CopyOptions;
use mirror_common::report::TagStatus;
use mirror_tests::mirror::{engine, registry_flags, run_binary};
use mirror_tests::test_io::image_ref;
use mirror_tests::*;

/// A registry that only takes tokens from `server`.
async fn token_registry(server: &TokenServer) -> Registry {
    Registry::start_with(RegistryOptions {
        token_auth: Some(server.registry_auth()),
        ..Default::default()
    })
    .await
    .unwrap()
}

/// The scope lists of the token requests that got a token.
fn granted_scopes(server: &TokenServer) -> Vec<Vec<String>> {
    server
        .requests()
        .into_iter()
        .filter(|q| q.status == 200)
        .map(|q| q.scopes)
        .collect()
}

#[tokio::test]
async fn copy_to_a_token_registry_asks_pull_push_on_the_destination_repository() {
    let server = TokenServer::start(TokenServerOptions::with_user("pusher", "s3cret")).unwrap();
    let src = Registry::start().await.unwrap();
    let dst = token_registry(&server).await;
    let image = push_image(
        &src,
        "app/one",
        "1",
        ImageSpec::new(vec![Layer::random(20_000), Layer::random(3_000)]),
    )
    .await
    .unwrap();
    let dir = tempfile::tempdir().unwrap();
    let config =
        write_docker_config(dir.path(), &[(dst.host().as_str(), "pusher", "s3cret")]).unwrap();

    let report = engine(&[&src, &dst], Some(&config), CopyOptions::default())
        .copy(
            &image_ref(format!("{}/app/one:1", src.host())),
            &[image_ref(format!("{}/app/one:1", dst.host()))],
        )
        .await;
    assert!(report.succeeded(), "{report:?}\n{}", dst.logs());
    assert_eq!(
        server.manifest_digest(&dst, "app/one", "1").await.unwrap(),
        Some(image.digest)
    );

    let requests = server.requests();
    assert!(!requests.is_empty());
    assert!(
        requests.iter().all(|q| q.status == 200
            && q.user.as_deref() == Some("pusher")
            && q.service.as_deref() == Some(token_server::SERVICE)),
        "every token request carries the service and the docker config's user: {requests:?}"
    );
    assert!(
        requests
            .iter()
            .any(|q| q.scopes == ["repository:app/one:pull,push"]),
        "{requests:?}"
    );
    assert!(
        dst.requests().iter().any(|q| q.status == 401),
        "the registry challenged first"
    );
}

#[tokio::test]
async fn cross_repository_mount_asks_push_on_target_and_pull_on_source_in_one_token() {
    let server = TokenServer::start(TokenServerOptions::with_user("pusher", "s3cret")).unwrap();
    let src = Registry::start().await.unwrap();
    let dst = token_registry(&server).await;
    let base = Layer::random(40_000);
    push_image(
        &src,
        "one/x",
        "1",
        ImageSpec::new(vec![base.clone(), Layer::random(1_000)]),
    )
    .await
    .unwrap();
    let y = push_image(
        &src,
        "two/y",
        "1",
        ImageSpec::new(vec![base.clone(), Layer::random(2_000)]),
    )
    .await
    .unwrap();
    let dir = tempfile::tempdir().unwrap();
    let config =
        write_docker_config(dir.path(), &[(dst.host().as_str(), "pusher", "s3cret")]).unwrap();
    let engine = engine(&[&src, &dst], Some(&config), CopyOptions::default());

    let first = engine
        .copy(
            &image_ref(format!("{}/one/x:1", src.host())),
            &[image_ref(format!("{}/one/x:1", dst.host()))],
        )
        .await;
    assert!(first.succeeded(), "{first:?}");
    let second = engine
        .copy(
            &image_ref(format!("{}/two/y:1", src.host())),
            &[image_ref(format!("{}/two/y:1", dst.host()))],
        )
        .await;
    assert!(second.succeeded(), "{second:?}\n{}", dst.logs());
    assert_eq!(second.stats.blobs_mounted, 1, "the shared base layer");
    assert_eq!(
        server.manifest_digest(&dst, "two/y", "1").await.unwrap(),
        Some(y.digest)
    );

    let mounts: Vec<_> = dst
        .requests()
        .into_iter()
        .filter(|q| q.method == "POST" && q.path.contains("mount="))
        .collect();
    assert!(
        mounts.iter().any(|q| q.path.starts_with("/v2/two/y/")
            && q.path.contains("from=one")
            && q.status == 201),
        "the mount was answered 201: {mounts:?}"
    );
    assert!(
        granted_scopes(&server)
            .iter()
            .any(|s| s == &["repository:one/x:pull", "repository:two/y:pull,push"]),
        "one token for both repositories: {:?}",
        server.requests()
    );
}

#[tokio::test]
async fn wrong_password_for_the_token_service_names_the_registry_and_hides_the_password() {
    let server =
        TokenServer::start(TokenServerOptions::with_user("pusher", "right-password")).unwrap();
    let src = Registry::start().await.unwrap();
    let dst = token_registry(&server).await;
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
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert_eq!(out.status.code(), Some(1), "{stderr}");
    assert!(
        stderr.contains(&format!("registry {}: authentication failed", dst.host())),
        "{stderr}"
    );
    assert!(
        !stderr.contains("wrong-password") && !stdout.contains("wrong-password"),
        "{stderr}"
    );
    let requests = server.requests();
    assert!(!requests.is_empty());
    assert!(
        requests
            .iter()
            .all(|q| q.status == 401 && q.user.as_deref() == Some("pusher")),
        "{requests:?}"
    );
    assert_eq!(
        server.manifest_digest(&dst, "app/z", "1").await.unwrap(),
        None
    );
}

#[tokio::test]
async fn anonymous_pull_from_a_token_registry_needs_no_credentials() {
    let server = TokenServer::start(TokenServerOptions {
        credentials: Some(("admin".into(), "s3cret".into())),
        anonymous_pull: true,
        ..Default::default()
    })
    .unwrap();
    let seed = Registry::start().await.unwrap();
    let src = token_registry(&server).await;
    let dst = Registry::start().await.unwrap();
    let image = push_image(
        &seed,
        "public/app",
        "1",
        ImageSpec::new(vec![Layer::random(10_000)]),
    )
    .await
    .unwrap();
    copy_storage(&seed, &src).unwrap();

    let engine = engine(&[&src, &dst], None, CopyOptions::default());
    let report = engine
        .copy(
            &image_ref(format!("{}/public/app:1", src.host())),
            &[image_ref(format!("{}/public/app:1", dst.host()))],
        )
        .await;
    assert!(report.succeeded(), "{report:?}\n{}", src.logs());
    assert_eq!(
        manifest_digest(&dst, "public/app", "1").await.unwrap(),
        Some(image.digest)
    );
    let requests = server.requests();
    assert!(
        requests.iter().all(|q| q.user.is_none() && q.status == 200),
        "{requests:?}"
    );
    assert!(
        requests
            .iter()
            .any(|q| q.scopes == ["repository:public/app:pull"]),
        "{requests:?}"
    );

    // The anonymous token holds pull only, so pushing to that registry is refused.
    let back = engine
        .copy(
            &image_ref(format!("{}/public/app:1", dst.host())),
            &[image_ref(format!("{}/public/copy:1", src.host()))],
        )
        .await;
    assert_eq!(back.tags[0].status, TagStatus::Failed);
    let error = back.tags[0].error.clone().unwrap();
    assert!(
        error.contains(&format!("registry {}: authentication failed", src.host())),
        "{error}"
    );
}

#[tokio::test]
async fn token_refused_by_the_registry_is_fetched_again_once() {
    let server = TokenServer::start(TokenServerOptions::with_user("pusher", "s3cret")).unwrap();
    let src = Registry::start().await.unwrap();
    let dst = token_registry(&server).await;
    for repo in ["app/a", "app/b"] {
        push_image(&src, repo, "1", ImageSpec::new(vec![Layer::random(2_000)]))
            .await
            .unwrap();
    }
    let dir = tempfile::tempdir().unwrap();
    let config =
        write_docker_config(dir.path(), &[(dst.host().as_str(), "pusher", "s3cret")]).unwrap();
    let engine = engine(&[&src, &dst], Some(&config), CopyOptions::default());
    // The first copy learns the registry's challenge.
    let first = engine
        .copy(
            &image_ref(format!("{}/app/a:1", src.host())),
            &[image_ref(format!("{}/app/a:1", dst.host()))],
        )
        .await;
    assert!(first.succeeded(), "{first:?}");
    server.clear_requests();
    server.reject_next_tokens(1);

    let second = engine
        .copy(
            &image_ref(format!("{}/app/b:1", src.host())),
            &[image_ref(format!("{}/app/b:1", dst.host()))],
        )
        .await;
    assert!(second.succeeded(), "{second:?}\n{}", dst.logs());
    let asked: Vec<_> = granted_scopes(&server);
    assert_eq!(
        asked
            .iter()
            .filter(|s| *s == &["repository:app/b:pull,push"])
            .count(),
        2,
        "the refused token was replaced by a new one: {asked:?}"
    );
}

#[tokio::test]
async fn cached_token_is_reused_until_it_expires_then_fetched_again() {
    // expires_in 4 s: the client keeps a token for its life less half of it (a short
    // lifetime's safety margin), 2 s.
    let server = TokenServer::start(TokenServerOptions {
        expires_in: 4,
        ..TokenServerOptions::with_user("pusher", "s3cret")
    })
    .unwrap();
    let src = Registry::start().await.unwrap();
    let dst = token_registry(&server).await;
    push_image(
        &src,
        "app/c",
        "1",
        ImageSpec::new(vec![Layer::random(2_000)]),
    )
    .await
    .unwrap();
    let dir = tempfile::tempdir().unwrap();
    let config =
        write_docker_config(dir.path(), &[(dst.host().as_str(), "pusher", "s3cret")]).unwrap();
    let engine = engine(&[&src, &dst], Some(&config), CopyOptions::default());
    let from = image_ref(format!("{}/app/c:1", src.host()));
    let to = [image_ref(format!("{}/app/c:1", dst.host()))];
    let copy = || engine.copy(&from, &to);
    let scope = ["repository:app/c:pull,push"];
    let fetched = || {
        granted_scopes(&server)
            .iter()
            .filter(|s| *s == &scope)
            .count()
    };

    assert!(copy().await.succeeded());
    let after_first = fetched();
    assert!(after_first >= 1);
    // Within the token's life the cached token is used: no new request.
    let again = copy().await;
    assert!(again.succeeded(), "{again:?}");
    assert_eq!(fetched(), after_first, "{:?}", server.requests());

    tokio::time::sleep(Duration::from_millis(2_300)).await;
    let late = copy().await;
    assert!(late.succeeded(), "{late:?}");
    assert_eq!(fetched(), after_first + 1, "{:?}", server.requests());
}

#[tokio::test]
async fn registry_accepts_only_unexpired_tokens_of_its_token_server_for_the_asked_repository() {
    let server = TokenServer::start(TokenServerOptions::default()).unwrap();
    let stranger = TokenServer::start(TokenServerOptions::default()).unwrap();
    let registry = token_registry(&server).await;
    let client = registry.client().unwrap();
    let url = format!("{}/v2/a/b/tags/list", registry.url());
    let get = |token: Option<String>| {
        let req = client.get(&url);
        match token {
            Some(t) => req.bearer_auth(t),
            None => req,
        }
        .send()
    };
    let challenge = |resp: &reqwest::Response| {
        resp.headers()
            .get("www-authenticate")
            .and_then(|v| v.to_str().ok())
            .unwrap_or_default()
            .to_string()
    };

    let anonymous = get(None).await.unwrap();
    assert_eq!(anonymous.status(), 401);
    assert_eq!(
        challenge(&anonymous),
        format!(
            "Bearer realm=\"{}\",service=\"{}\",scope=\"repository:a/b:pull\"",
            server.realm(),
            token_server::SERVICE
        )
    );
    // Authorised: the repository is simply unknown.
    let ok = get(Some(server.token(&["repository:a/b:pull"]).unwrap()))
        .await
        .unwrap();
    assert_eq!(ok.status(), 404);

    let other_repo = get(Some(server.token(&["repository:a/c:pull"]).unwrap()))
        .await
        .unwrap();
    assert_eq!(other_repo.status(), 401);
    assert!(
        challenge(&other_repo).contains("error=\"insufficient_scope\""),
        "{}",
        challenge(&other_repo)
    );
    let foreign = get(Some(stranger.token(&["repository:a/b:pull"]).unwrap()))
        .await
        .unwrap();
    assert_eq!(foreign.status(), 401);
    assert!(challenge(&foreign).contains("error=\"invalid_token\""));

    server.reject_next_tokens(1);
    let expired = reqwest::Client::new()
        .get(format!(
            "{}?service={}&scope=repository:a/b:pull",
            server.realm(),
            token_server::SERVICE
        ))
        .send()
        .await
        .unwrap();
    assert_eq!(expired.status(), 200);
    let body: serde_json::Value = expired.json().await.unwrap();
    let expired = body["token"].as_str().unwrap().to_string();
    assert_eq!(get(Some(expired)).await.unwrap().status(), 401);
}

/// A registry whose challenge sends clients to a plain-HTTP token service on a host the
/// configuration does not name insecure: the credentials stay home. The copy fails with
/// the reason, and the token service never sees the user.
#[tokio::test]
async fn credentials_are_not_sent_to_a_plain_http_token_service_not_named_insecure() {
    let server = TokenServer::start(TokenServerOptions::with_user("pusher", "s3cret")).unwrap();
    let src = Registry::start().await.unwrap();
    let dst = token_registry(&server).await;
    push_image(
        &src,
        "app/one",
        "1",
        ImageSpec::new(vec![Layer::random(1_000)]),
    )
    .await
    .unwrap();
    let dir = tempfile::tempdir().unwrap();
    let config =
        write_docker_config(dir.path(), &[(dst.host().as_str(), "pusher", "s3cret")]).unwrap();
    let mut opts = mirror_tests::mirror::client_options(&[&src, &dst], Some(&config));
    let token_host = dst.token_host().unwrap().to_string();
    opts.insecure_registries.remove(&token_host);
    let client = mirror_common::registry::RegistryClient::new(opts).unwrap();
    let engine = mirror_common::copy::CopyEngine::new(
        std::sync::Arc::new(client),
        std::sync::Arc::new(mirror_common::index::MemoryIndex::new()),
        CopyOptions::default(),
    );
    let report = engine
        .copy(
            &image_ref(format!("{}/app/one:1", src.host())),
            &[image_ref(format!("{}/app/one:1", dst.host()))],
        )
        .await;
    let error = report.tags[0].error.as_deref().unwrap();
    assert!(
        error.contains(&format!("registry {}", dst.host()))
            && error.contains(&format!("the token service {token_host} is plain HTTP")),
        "{error}"
    );
    assert!(!error.contains("s3cret"));
    assert!(
        server.requests().iter().all(|r| r.user.is_none()),
        "{:?}",
        server.requests()
    );
}
