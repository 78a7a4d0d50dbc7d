//! Which credential a docker config gives a registry: `auths` entries, identity tokens,
//! and the precedence of `credHelpers`, `credsStore` and `auths` (with fake helpers).

use std::path::Path;

use super::cred_helper::tests::FakeHelpers;
use super::cred_helper::TIMEOUT;
use super::credential::Credential;
use super::credentials::CredentialStore;

fn password(username: &str, password: &str) -> Credential {
    Credential::Password {
        username: username.into(),
        password: password.into(),
    }
}

/// `docker-credential-NAME` answering `user`/`secret`.
fn answering(helpers: &FakeHelpers, name: &str, user: &str, secret: &str) {
    helpers.install(
        name,
        &format!(r#"printf '{{"ServerURL":"x","Username":"{user}","Secret":"{secret}"}}'"#),
    );
}

fn store(helpers: &FakeHelpers, json: &str) -> CredentialStore {
    CredentialStore::from_json(json)
        .unwrap()
        .with_runner(helpers.runner(TIMEOUT))
}

#[test]
fn auth_and_username_password_entries_are_read_with_or_without_scheme() {
    let store = CredentialStore::from_json(
        r#"{"auths":{
            "https://quay.io":{"auth":"dTE6cDE="},
            "127.0.0.1:5000":{"username":"u2","password":"p:2"},
            "https://index.docker.io/v1/":{"auth":"aHViOnNlY3JldA=="},
            "empty.example":{}
        }}"#,
    )
    .unwrap();
    assert_eq!(store.get("quay.io"), Some(password("u1", "p1")));
    assert_eq!(store.get("127.0.0.1:5000"), Some(password("u2", "p:2")));
    assert_eq!(store.get("registry-1.docker.io").unwrap().username(), "hub");
    assert!(store.get("ghcr.io").is_none());
    assert!(store.get("empty.example").is_none());
}

#[test]
fn an_identitytoken_entry_is_an_identity_token_with_the_auth_user_name() {
    let store = CredentialStore::from_json(
        r#"{"auths":{
            "acr.example":{"auth":"MDAwMDAwMDAtMDAwMDo=","identitytoken":"refresh-1"},
            "hub.example":{"identitytoken":"refresh-2"},
            "plain.example":{"auth":"dTE6cDE=","identitytoken":""}
        }}"#,
    )
    .unwrap();
    assert_eq!(
        store.get("acr.example"),
        Some(Credential::IdentityToken {
            username: "00000000-0000".into(),
            token: "refresh-1".into()
        })
    );
    assert_eq!(
        store.get("hub.example"),
        Some(Credential::IdentityToken {
            username: "<token>".into(),
            token: "refresh-2".into()
        })
    );
    assert_eq!(store.get("plain.example"), Some(password("u1", "p1")));
}

#[test]
fn debug_output_never_shows_a_secret() {
    let c = password("u", "hunter2");
    assert!(!format!("{c:?}").contains("hunter2"));
    let t = Credential::IdentityToken {
        username: "<token>".into(),
        token: "refresh-hunter3".into(),
    };
    assert!(!format!("{t:?}").contains("hunter3"));
    let store = CredentialStore::from_json(
        r#"{"auths":{"quay.io":{"auth":"dTE6aHVudGVyNA=="}},"credHelpers":{"gcr.io":"gcloud"},"credsStore":"desktop"}"#,
    )
    .unwrap();
    let shown = format!("{store:?}");
    assert!(
        !shown.contains("hunter4") && !shown.contains("dTE6"),
        "{shown}"
    );
    assert!(
        shown.contains("quay.io") && shown.contains("gcloud") && shown.contains("desktop"),
        "{shown}"
    );
}

#[test]
fn missing_explicit_file_is_an_error_naming_it() {
    let e = CredentialStore::load(Some(Path::new("/nonexistent/config.json"))).unwrap_err();
    assert!(e.to_string().contains("/nonexistent/config.json"), "{e}");
}

#[test]
fn a_helper_name_that_is_a_path_is_refused_at_load() {
    let e = CredentialStore::from_json(r#"{"credHelpers":{"quay.io":"../../tmp/x"}}"#)
        .err()
        .unwrap();
    assert!(e.contains("credHelpers.\"quay.io\""), "{e}");
    assert!(CredentialStore::from_json(r#"{"credsStore":"/bin/sh"}"#).is_err());
    assert!(CredentialStore::from_json(r#"{"credsStore":""}"#).is_ok());
}

#[tokio::test]
async fn cred_helpers_come_before_creds_store_and_creds_store_before_auths() {
    let helpers = FakeHelpers::new();
    answering(&helpers, "per-host", "from-cred-helpers", "s1");
    answering(&helpers, "store", "from-creds-store", "s2");
    let store = store(
        &helpers,
        r#"{"auths":{"quay.io":{"auth":"dTE6cDE="},"ghcr.io":{"auth":"dTE6cDE="}},
            "credHelpers":{"https://quay.io":"per-host"},
            "credsStore":"store"}"#,
    );
    assert_eq!(
        store.lookup("quay.io").await.unwrap(),
        Some(password("from-cred-helpers", "s1"))
    );
    assert_eq!(
        store.lookup("ghcr.io").await.unwrap(),
        Some(password("from-creds-store", "s2"))
    );
    assert_eq!(
        store.lookup("other.example:5000").await.unwrap(),
        Some(password("from-creds-store", "s2")),
        "credsStore is asked about every registry"
    );
    assert_eq!(helpers.calls("per-host"), ["get quay.io"]);
    assert_eq!(
        helpers.calls("store"),
        ["get ghcr.io", "get other.example:5000"]
    );
}

#[tokio::test]
async fn no_helper_runs_until_a_registry_s_credentials_are_looked_up() {
    let helpers = FakeHelpers::new();
    answering(&helpers, "store", "u", "s");
    let store = store(
        &helpers,
        r#"{"auths":{"quay.io":{"auth":"dTE6cDE="}},"credsStore":"store"}"#,
    );
    assert_eq!(
        store.get("quay.io"),
        Some(password("u1", "p1")),
        "not asked yet"
    );
    assert!(helpers.calls("store").is_empty());
    store.lookup("quay.io").await.unwrap();
    store.lookup("quay.io").await.unwrap();
    assert_eq!(helpers.calls("store"), ["get quay.io"], "asked once");
    assert_eq!(store.get("quay.io"), Some(password("u", "s")));
}

#[tokio::test]
async fn a_helper_without_credentials_leaves_the_auths_entry_or_anonymous() {
    let helpers = FakeHelpers::new();
    helpers.install(
        "empty",
        "echo 'credentials not found in native keychain'; exit 1",
    );
    let store = store(
        &helpers,
        r#"{"auths":{"quay.io":{"auth":"dTE6cDE="}},"credsStore":"empty"}"#,
    );
    assert_eq!(
        store.lookup("quay.io").await.unwrap(),
        Some(password("u1", "p1"))
    );
    assert_eq!(store.lookup("ghcr.io").await.unwrap(), None);
}

#[tokio::test]
async fn a_helper_answering_token_user_gives_an_identity_token() {
    let helpers = FakeHelpers::new();
    answering(&helpers, "oauth", "<token>", "refresh-9");
    let store = store(&helpers, r#"{"credHelpers":{"acr.example":"oauth"}}"#);
    let cred = store.lookup("acr.example").await.unwrap().unwrap();
    assert_eq!(cred.refresh_token(), Some("refresh-9"));
}

#[tokio::test]
async fn a_named_config_comes_before_the_base_config_and_its_helpers() {
    let helpers = FakeHelpers::new();
    answering(&helpers, "base-store", "base-user", "b");
    let base = store(
        &helpers,
        r#"{"auths":{"quay.io":{"auth":"dTE6cDE="}},"credsStore":"base-store"}"#,
    );
    let named = store(
        &helpers,
        r#"{"auths":{"quay.io":{"username":"team","password":"t"}}}"#,
    )
    .over(&base);
    assert_eq!(
        named.lookup("quay.io").await.unwrap(),
        Some(password("team", "t"))
    );
    assert_eq!(
        named.lookup("ghcr.io").await.unwrap(),
        Some(password("base-user", "b"))
    );
    assert_eq!(helpers.calls("base-store"), ["get ghcr.io"]);
}

#[tokio::test]
async fn a_refused_helper_answer_is_forgotten_and_asked_again() {
    let helpers = FakeHelpers::new();
    answering(&helpers, "store", "u", "s");
    let store = store(&helpers, r#"{"credsStore":"store"}"#);
    assert!(!store.forget_helper_answers("quay.io"), "nothing asked yet");
    store.lookup("quay.io").await.unwrap();
    assert!(store.forget_helper_answers("quay.io"));
    store.lookup("quay.io").await.unwrap();
    assert_eq!(helpers.calls("store").len(), 2);
}
