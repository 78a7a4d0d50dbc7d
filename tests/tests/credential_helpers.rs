//! Credentials that are not in the config file: docker credential helpers (`credHelpers`
//! per registry, `credsStore` for the rest), run by `mirror-worker copy` only for the
//! registries that ask for credentials, once each; helpers that fail, are missing or hold
//! nothing; and identity tokens (OAuth2 refresh tokens) exchanged at the token service by
//! the refresh-token grant, or by GET where it has none. Real `docker-registry` processes
//! (htpasswd or the test bed's token server) and fake helpers first on the child's `PATH`.

use mirror_tests::cred_helper::CredentialHelpers;
use mirror_tests::mirror::{registry_flags, run_binary_with_env};
use mirror_tests::*;

fn htpasswd(user: &str, pass: &str) -> RegistryOptions {
    RegistryOptions {
        htpasswd: Some((user.to_string(), pass.to_string())),
        ..Default::default()
    }
}

/// A registry that only takes tokens from `server`.
async fn token_registry(server: &TokenServer) -> Registry {
    Registry::start_with(RegistryOptions {
        token_auth: Some(server.registry_auth()),
        ..Default::default()
    })
    .await
    .unwrap()
}

/// `repo:1` with one small layer in `registry`.
async fn image(registry: &Registry, repo: &str) -> PushedImage {
    push_image(
        registry,
        repo,
        "1",
        ImageSpec::new(vec![Layer::random(4_000)]),
    )
    .await
    .unwrap()
}

/// What `mirror-worker copy SRC/REPO:1 DST/REPO:1 -a CONFIG` printed and how it exited.
struct Copied {
    success: bool,
    stdout: String,
    stderr: String,
}

fn copy(
    src: &Registry,
    dst: &Registry,
    repo: &str,
    config: &std::path::Path,
    helpers: &CredentialHelpers,
) -> Copied {
    let mut args = vec![
        "copy".to_string(),
        format!("{}/{repo}:1", src.host()),
        format!("{}/{repo}:1", dst.host()),
        "-a".to_string(),
        config.display().to_string(),
        "--retry-attempts".to_string(),
        "1".to_string(),
    ];
    args.extend(registry_flags(&[src, dst]));
    let out = run_binary_with_env("mirror-worker", &args, &helpers.env());
    Copied {
        success: out.status.success(),
        stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
    }
}

#[tokio::test]
async fn a_helper_named_for_the_registry_gives_the_credentials_for_a_copy() {
    let src = Registry::start().await.unwrap();
    let dst = Registry::start_with(htpasswd("pusher", "from-the-keychain"))
        .await
        .unwrap();
    let pushed = image(&src, "team/app").await;
    let helpers = CredentialHelpers::new().unwrap();
    helpers
        .answering("vault", "pusher", "from-the-keychain")
        .unwrap();
    let dir = tempfile::tempdir().unwrap();
    let config = DockerConfig::new()
        .cred_helper(&dst.host(), "vault")
        .write(dir.path())
        .unwrap();

    let out = copy(&src, &dst, "team/app", &config, &helpers);
    assert!(out.success, "{}", out.stderr);
    assert_eq!(
        manifest_digest(&dst, "team/app", "1").await.unwrap(),
        Some(pushed.digest)
    );
    assert_eq!(
        helpers.calls("vault"),
        [dst.host()],
        "asked once, with the registry as written"
    );
    assert!(!out.stderr.contains("from-the-keychain") && !out.stdout.contains("from-the-keychain"));
}

#[tokio::test]
async fn the_creds_store_serves_every_registry_that_asks_and_comes_before_auths() {
    let src = Registry::start_with(htpasswd("mirror", "store-pass"))
        .await
        .unwrap();
    let dst = Registry::start_with(htpasswd("mirror", "store-pass"))
        .await
        .unwrap();
    let pushed = image(&src, "team/app").await;
    let helpers = CredentialHelpers::new().unwrap();
    helpers.answering("store", "mirror", "store-pass").unwrap();
    let dir = tempfile::tempdir().unwrap();
    // docker asks credsStore before auths: the stale inline password is never used.
    let config = DockerConfig::new()
        .auth(&dst.host(), "mirror", "stale-password")
        .creds_store("store")
        .write(dir.path())
        .unwrap();

    let out = copy(&src, &dst, "team/app", &config, &helpers);
    assert!(out.success, "{}", out.stderr);
    assert_eq!(
        manifest_digest(&dst, "team/app", "1").await.unwrap(),
        Some(pushed.digest)
    );
    let mut calls = helpers.calls("store");
    calls.sort();
    let mut expected = vec![src.host(), dst.host()];
    expected.sort();
    assert_eq!(calls, expected, "once per registry");
}

#[tokio::test]
async fn a_per_registry_helper_comes_before_the_store_which_runs_only_when_asked() {
    // The source asks for no credentials, so the (failing) store is never run for it.
    let src = Registry::start().await.unwrap();
    let dst = Registry::start_with(htpasswd("pusher", "per-host-pass"))
        .await
        .unwrap();
    image(&src, "team/app").await;
    let helpers = CredentialHelpers::new().unwrap();
    helpers
        .answering("per-host", "pusher", "per-host-pass")
        .unwrap();
    helpers
        .failing("store", 1, "the store must not run")
        .unwrap();
    let dir = tempfile::tempdir().unwrap();
    let config = DockerConfig::new()
        .cred_helper(&dst.host(), "per-host")
        .creds_store("store")
        .write(dir.path())
        .unwrap();

    let out = copy(&src, &dst, "team/app", &config, &helpers);
    assert!(out.success, "{}", out.stderr);
    assert_eq!(helpers.calls("per-host"), [dst.host()]);
    assert!(
        helpers.calls("store").is_empty(),
        "{:?}",
        helpers.calls("store")
    );
}

#[tokio::test]
async fn a_failing_helper_fails_the_copy_naming_it_and_the_registry_and_never_its_output() {
    let src = Registry::start().await.unwrap();
    let dst = Registry::start_with(htpasswd("pusher", "right"))
        .await
        .unwrap();
    image(&src, "team/app").await;
    let secret = "Secret: hunter2-SUPER-SECRET-TOKEN";
    let helpers = CredentialHelpers::new().unwrap();
    helpers.failing("leaky", 1, secret).unwrap();
    let dir = tempfile::tempdir().unwrap();
    let config = DockerConfig::new()
        .cred_helper(&dst.host(), "leaky")
        .write(dir.path())
        .unwrap();

    let out = copy(&src, &dst, "team/app", &config, &helpers);
    assert!(!out.success);
    assert!(
        out.stderr.contains("docker-credential-leaky")
            && out.stderr.contains(&format!("registry {}", dst.host()))
            && out.stderr.contains("exited with status 1"),
        "{}",
        out.stderr
    );
    for shown in [&out.stdout, &out.stderr] {
        assert!(
            !shown.contains("hunter2"),
            "the helper's output leaked: {shown}"
        );
    }
    assert_eq!(manifest_digest(&dst, "team/app", "1").await.unwrap(), None);
}

#[tokio::test]
async fn a_missing_helper_fails_the_copy_naming_it() {
    let src = Registry::start().await.unwrap();
    let dst = Registry::start_with(htpasswd("pusher", "right"))
        .await
        .unwrap();
    image(&src, "team/app").await;
    let helpers = CredentialHelpers::new().unwrap();
    let dir = tempfile::tempdir().unwrap();
    let config = DockerConfig::new()
        .cred_helper(&dst.host(), "not-installed")
        .write(dir.path())
        .unwrap();

    let out = copy(&src, &dst, "team/app", &config, &helpers);
    assert!(!out.success);
    assert!(
        out.stderr.contains("docker-credential-not-installed")
            && out.stderr.contains("not found on PATH")
            && out.stderr.contains(&dst.host()),
        "{}",
        out.stderr
    );
}

#[tokio::test]
async fn a_helper_holding_nothing_for_the_registry_means_anonymous() {
    let server = TokenServer::start(TokenServerOptions::default()).unwrap();
    let seed = Registry::start().await.unwrap();
    let src = token_registry(&server).await;
    let dst = Registry::start().await.unwrap();
    let pushed = image(&seed, "public/app").await;
    copy_storage(&seed, &src).unwrap();
    let helpers = CredentialHelpers::new().unwrap();
    helpers.not_found("empty").unwrap();
    let dir = tempfile::tempdir().unwrap();
    let config = DockerConfig::new()
        .creds_store("empty")
        .write(dir.path())
        .unwrap();

    let out = copy(&src, &dst, "public/app", &config, &helpers);
    assert!(out.success, "{}", out.stderr);
    assert_eq!(
        manifest_digest(&dst, "public/app", "1").await.unwrap(),
        Some(pushed.digest)
    );
    assert_eq!(helpers.calls("empty"), [src.host()]);
    let requests = server.requests();
    assert!(
        !requests.is_empty() && requests.iter().all(|q| q.user.is_none() && q.status == 200),
        "anonymous tokens: {requests:?}"
    );
}

#[tokio::test]
async fn a_helper_answer_the_token_service_refuses_is_asked_for_again() {
    let server = TokenServer::start(TokenServerOptions::with_user("pusher", "fresh")).unwrap();
    let src = Registry::start().await.unwrap();
    let dst = token_registry(&server).await;
    let pushed = image(&src, "team/app").await;
    let helpers = CredentialHelpers::new().unwrap();
    helpers
        .answering_in_turn("cloud", &[("pusher", "expired"), ("pusher", "fresh")])
        .unwrap();
    let dir = tempfile::tempdir().unwrap();
    let config = DockerConfig::new()
        .cred_helper(&dst.host(), "cloud")
        .write(dir.path())
        .unwrap();

    let out = copy(&src, &dst, "team/app", &config, &helpers);
    assert!(out.success, "{}", out.stderr);
    assert_eq!(
        server.manifest_digest(&dst, "team/app", "1").await.unwrap(),
        Some(pushed.digest)
    );
    assert_eq!(
        helpers.calls("cloud").len(),
        2,
        "run again after the refusal"
    );
    let statuses: Vec<u16> = server.requests().iter().map(|q| q.status).collect();
    assert_eq!(statuses.first(), Some(&401), "{statuses:?}");
    assert_eq!(
        statuses.iter().filter(|s| **s == 401).count(),
        1,
        "{statuses:?}"
    );
}

/// A token registry whose token service takes the refresh token `refresh-abc` of user
/// `pusher` by the OAuth2 grant.
async fn oauth_registry() -> (TokenServer, Registry) {
    let server = TokenServer::start(TokenServerOptions {
        anonymous_pull: false,
        refresh_tokens: vec![("refresh-abc".into(), "pusher".into())],
        ..TokenServerOptions::default()
    })
    .unwrap();
    let dst = token_registry(&server).await;
    (server, dst)
}

/// Every token request was the refresh-token grant, granted to `pusher`.
fn assert_all_refresh_grants(server: &TokenServer) {
    let requests = server.requests();
    assert!(!requests.is_empty());
    assert!(
        requests.iter().all(|q| q.method == "POST"
            && q.grant_type.as_deref() == Some("refresh_token")
            && q.user.as_deref() == Some("pusher")
            && q.service.as_deref() == Some(token_server::SERVICE)
            && q.status == 200),
        "{requests:?}"
    );
    assert!(
        requests
            .iter()
            .any(|q| q.scopes == ["repository:team/app:pull,push"]),
        "{requests:?}"
    );
}

#[tokio::test]
async fn an_identity_token_in_the_config_is_exchanged_by_the_refresh_token_grant() {
    let (server, dst) = oauth_registry().await;
    let src = Registry::start().await.unwrap();
    let pushed = image(&src, "team/app").await;
    let helpers = CredentialHelpers::new().unwrap();
    let dir = tempfile::tempdir().unwrap();
    let config = DockerConfig::new()
        .identity_token(&dst.host(), "refresh-abc")
        .write(dir.path())
        .unwrap();

    let out = copy(&src, &dst, "team/app", &config, &helpers);
    assert!(out.success, "{}", out.stderr);
    assert_eq!(
        server.manifest_digest(&dst, "team/app", "1").await.unwrap(),
        Some(pushed.digest)
    );
    assert_all_refresh_grants(&server);
    assert!(!out.stderr.contains("refresh-abc"));
}

#[tokio::test]
async fn a_helper_answering_the_token_user_gives_an_identity_token() {
    let (server, dst) = oauth_registry().await;
    let src = Registry::start().await.unwrap();
    image(&src, "team/app").await;
    let helpers = CredentialHelpers::new().unwrap();
    helpers.answering("acr", "<token>", "refresh-abc").unwrap();
    let dir = tempfile::tempdir().unwrap();
    let config = DockerConfig::new()
        .cred_helper(&dst.host(), "acr")
        .write(dir.path())
        .unwrap();

    let out = copy(&src, &dst, "team/app", &config, &helpers);
    assert!(out.success, "{}", out.stderr);
    assert_all_refresh_grants(&server);
}

#[tokio::test]
async fn an_identity_token_goes_by_get_where_the_token_service_has_no_oauth() {
    // No refresh tokens configured: the POST is a 404, and the token goes as a password.
    let server =
        TokenServer::start(TokenServerOptions::with_user("<token>", "refresh-abc")).unwrap();
    let dst = token_registry(&server).await;
    let src = Registry::start().await.unwrap();
    let pushed = image(&src, "team/app").await;
    let helpers = CredentialHelpers::new().unwrap();
    let dir = tempfile::tempdir().unwrap();
    let config = DockerConfig::new()
        .identity_token(&dst.host(), "refresh-abc")
        .write(dir.path())
        .unwrap();

    let out = copy(&src, &dst, "team/app", &config, &helpers);
    assert!(out.success, "{}", out.stderr);
    assert_eq!(
        server.manifest_digest(&dst, "team/app", "1").await.unwrap(),
        Some(pushed.digest)
    );
    let requests = server.requests();
    assert!(
        requests
            .iter()
            .any(|q| q.method == "POST" && q.status == 404),
        "the grant was tried: {requests:?}"
    );
    assert!(
        requests
            .iter()
            .any(|q| q.method == "GET" && q.user.as_deref() == Some("<token>") && q.status == 200),
        "then GET with Basic: {requests:?}"
    );
}
