//! Docker credential helpers: `docker-credential-NAME get`, the programs that keep
//! registry credentials in a keychain or mint them on demand (ECR, GCR, ACR, Docker
//! Desktop), as docker, podman and skopeo run them.
//!
//! The protocol (docker/docker-credential-helpers): the server URL on stdin, and on stdout
//! `{"ServerURL":..,"Username":..,"Secret":..}`, or exit status 1 with `credentials not
//! found in native keychain` when the helper has nothing for that server. A `Username` of
//! `<token>` makes the Secret an identity token (an OAuth2 refresh token).
//!
//! A helper's stdout may hold a secret, and so may its stderr: no error here quotes
//! either, and stderr is not even read. Helpers are slow (a keychain, a cloud API), so an
//! answer is kept for the life of the process, per helper and server, shared by every
//! client and config that names the helper (two configs naming one helper get one
//! answer from it); an answer the registry refused is dropped, so that the next lookup
//! asks the helper again (its token had expired, say).

use parking_lot::Mutex;
use std::collections::HashMap;
use std::ffi::OsString;
use std::process::Stdio;
use std::sync::{Arc, OnceLock};
use std::time::Duration;

use serde::Deserialize;
use tokio::io::AsyncWriteExt;
use tokio::sync::OnceCell;

use super::credential::Credential;
use super::error::RegistryError;

/// How long a helper may take to answer: long enough for a cloud API call or a keychain
/// unlock, short enough that a hung helper fails the job instead of holding it.
pub(crate) const TIMEOUT: Duration = Duration::from_secs(30);

/// What a helper prints (exit status 1) when it has no credentials for the server: the
/// registry is then used anonymously, as docker does.
const NOT_FOUND: &str = "credentials not found in native keychain";

/// The `Username` that makes a helper's Secret an identity token.
pub(crate) const TOKEN_USERNAME: &str = "<token>";

/// How helpers are run: their time limit, and where they are looked for.
#[derive(Clone, Debug)]
pub(crate) struct Runner {
    /// The time limit of one run.
    pub(crate) timeout: Duration,
    /// The `PATH` helpers are looked for on (and run with) instead of the process's own;
    /// unit tests use it so that they never change their process's `PATH`.
    pub(crate) search_path: Option<OsString>,
}

impl Default for Runner {
    fn default() -> Self {
        Runner {
            timeout: TIMEOUT,
            search_path: None,
        }
    }
}

/// One helper asked about one server, the key of an answer.
#[derive(Clone, PartialEq, Eq, Hash)]
struct Key {
    search_path: Option<OsString>,
    helper: String,
    server_url: String,
}

/// An answer, or the run that is getting it (callers that come meanwhile wait for it).
type Slot = Arc<OnceCell<Option<Credential>>>;

/// Every helper answer of the process. A failed run leaves its slot empty, so the next
/// lookup runs the helper again rather than repeat a failure for the process's life.
fn answers() -> &'static Mutex<HashMap<Key, Slot>> {
    static ANSWERS: OnceLock<Mutex<HashMap<Key, Slot>>> = OnceLock::new();
    ANSWERS.get_or_init(Mutex::default)
}

impl Runner {
    /// `helper`'s credentials for `registry` (`None`: it has none), from an earlier answer
    /// or by running it; concurrent lookups share one run.
    pub(crate) async fn get(
        &self,
        helper: &str,
        registry: &str,
    ) -> Result<Option<Credential>, RegistryError> {
        let key = self.key(helper, registry);
        let slot = answers().lock().entry(key.clone()).or_default().clone();
        slot.get_or_try_init(|| self.run(&key, registry))
            .await
            .cloned()
    }

    /// An answer `helper` already gave for `registry`, without running it.
    pub(crate) fn answered(&self, helper: &str, registry: &str) -> Option<Option<Credential>> {
        let key = self.key(helper, registry);
        answers().lock().get(&key).and_then(|s| s.get().cloned())
    }

    /// Drops `helper`'s answer for `registry`; true when there was one to drop (asking
    /// again may then give other credentials).
    pub(crate) fn forget(&self, helper: &str, registry: &str) -> bool {
        let key = self.key(helper, registry);
        answers()
            .lock()
            .remove(&key)
            .is_some_and(|s| s.initialized())
    }

    fn key(&self, helper: &str, registry: &str) -> Key {
        Key {
            search_path: self.search_path.clone(),
            helper: helper.to_string(),
            server_url: server_url(registry),
        }
    }

    async fn run(&self, key: &Key, registry: &str) -> Result<Option<Credential>, RegistryError> {
        let program = format!("docker-credential-{}", key.helper);
        let fail = |what: String| {
            RegistryError::Config(format!(
                "registry {registry}: credential helper {program}: {what}"
            ))
        };
        let mut cmd = tokio::process::Command::new(&program);
        cmd.arg("get")
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .kill_on_drop(true);
        if let Some(path) = &self.search_path {
            // Also where the program is looked for: std searches the child's PATH.
            cmd.env("PATH", path);
        }
        let mut child = cmd.spawn().map_err(|e| {
            fail(match e.kind() {
                std::io::ErrorKind::NotFound => {
                    "not found on PATH (install it, or remove it from the registry config)".into()
                }
                _ => format!("could not be started: {e}"),
            })
        })?;
        if let Some(mut stdin) = child.stdin.take() {
            // A helper that exits without reading is judged by its exit status below.
            let _ = stdin.write_all(key.server_url.as_bytes()).await;
        }
        let output = tokio::time::timeout(self.timeout, child.wait_with_output())
            .await
            .map_err(|_| {
                fail(format!(
                    "no answer within {} (it was stopped)",
                    super::idle::humanize(self.timeout)
                ))
            })?
            .map_err(|e| fail(format!("reading its answer: {}", e.kind())))?;
        if !output.status.success() {
            if String::from_utf8_lossy(&output.stdout).trim() == NOT_FOUND {
                return Ok(None);
            }
            let how = match output.status.code() {
                Some(code) => format!("exited with status {code}"),
                None => "was killed by a signal".into(),
            };
            return Err(fail(format!(
                "{how}; run `printf {} | {program} get` to see why",
                key.server_url
            )));
        }
        parse_answer(&output.stdout).ok_or_else(|| {
            fail("its answer is not the JSON object {\"Username\",\"Secret\"} of the credential helper protocol".into())
        })
    }
}

#[derive(Deserialize)]
#[serde(rename_all = "PascalCase")]
struct Answer {
    #[serde(default)]
    username: String,
    #[serde(default)]
    secret: String,
}

/// The credential in a helper's stdout, `Some(None)` for an empty one; `None` when it is
/// not the protocol's JSON. Never says why: serde's message may quote the secret.
fn parse_answer(stdout: &[u8]) -> Option<Option<Credential>> {
    let answer: Answer = serde_json::from_slice(stdout).ok()?;
    if answer.secret.is_empty() {
        return Some(None);
    }
    Some(Some(if answer.username == TOKEN_USERNAME {
        Credential::IdentityToken {
            username: answer.username,
            token: answer.secret,
        }
    } else {
        Credential::Password {
            username: answer.username,
            password: answer.secret,
        }
    }))
}

/// The server URL a helper is asked about, as docker asks it: the registry as written,
/// Docker Hub as `https://index.docker.io/v1/` (the key `docker login` stored it under).
pub(crate) fn server_url(registry: &str) -> String {
    match registry.to_ascii_lowercase().as_str() {
        "docker.io" | "index.docker.io" | "registry-1.docker.io" | "registry.hub.docker.com" => {
            "https://index.docker.io/v1/".into()
        }
        _ => registry.to_string(),
    }
}

/// Whether `name` can only name a program on `PATH` (`docker-credential-NAME`), never a
/// path: a config mounted from a team's Secret must not run an arbitrary file.
pub(crate) fn is_helper_name(name: &str) -> bool {
    !name.is_empty()
        && name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.'))
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use std::os::unix::fs::PermissionsExt;

    /// A directory of fake helpers, each a shell script that logs what it was asked.
    pub(crate) struct FakeHelpers {
        pub(crate) dir: tempfile::TempDir,
    }

    impl FakeHelpers {
        pub(crate) fn new() -> Self {
            FakeHelpers {
                dir: tempfile::tempdir().unwrap(),
            }
        }

        /// Installs `docker-credential-NAME` running `body` after logging its stdin.
        pub(crate) fn install(&self, name: &str, body: &str) {
            let calls = self.dir.path().join(format!("{name}.calls"));
            let script = format!(
                "#!/bin/sh\nserver=$(cat)\nprintf '%s\\n' \"$1 $server\" >> '{}'\n{body}\n",
                calls.display()
            );
            let path = self.dir.path().join(format!("docker-credential-{name}"));
            std::fs::write(&path, script).unwrap();
            std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o755)).unwrap();
        }

        /// What NAME was run with, one `ACTION SERVER` line per run.
        pub(crate) fn calls(&self, name: &str) -> Vec<String> {
            std::fs::read_to_string(self.dir.path().join(format!("{name}.calls")))
                .unwrap_or_default()
                .lines()
                .map(str::to_string)
                .collect()
        }

        /// A runner that finds these helpers (and `cat`, `sleep`) and waits `timeout`.
        pub(crate) fn runner(&self, timeout: Duration) -> Runner {
            let mut path = OsString::from(self.dir.path());
            path.push(":/usr/bin:/bin");
            Runner {
                timeout,
                search_path: Some(path),
            }
        }
    }

    #[tokio::test]
    async fn an_answer_is_asked_once_and_shared_until_forgotten() {
        let helpers = FakeHelpers::new();
        helpers.install(
            "ok",
            r#"printf '{"ServerURL":"x","Username":"u","Secret":"s3"}'"#,
        );
        let runner = helpers.runner(TIMEOUT);
        let (a, b) = tokio::join!(
            runner.get("ok", "r.example:5000"),
            runner.get("ok", "r.example:5000")
        );
        let expected = Credential::Password {
            username: "u".into(),
            password: "s3".into(),
        };
        assert_eq!(a.unwrap(), Some(expected.clone()));
        assert_eq!(b.unwrap(), Some(expected.clone()));
        assert_eq!(helpers.calls("ok"), ["get r.example:5000"]);
        assert_eq!(
            runner.answered("ok", "r.example:5000"),
            Some(Some(expected))
        );
        assert!(runner.forget("ok", "r.example:5000"));
        assert!(
            !runner.forget("ok", "r.example:5000"),
            "nothing left to forget"
        );
        runner.get("ok", "r.example:5000").await.unwrap();
        assert_eq!(helpers.calls("ok").len(), 2);
    }

    #[tokio::test]
    async fn docker_hub_is_asked_as_its_v1_url_and_token_username_means_identity_token() {
        let helpers = FakeHelpers::new();
        helpers.install(
            "hub",
            r#"printf '{"ServerURL":"x","Username":"<token>","Secret":"refresh-1"}'"#,
        );
        let got = helpers
            .runner(TIMEOUT)
            .get("hub", "docker.io")
            .await
            .unwrap();
        assert_eq!(
            got,
            Some(Credential::IdentityToken {
                username: "<token>".into(),
                token: "refresh-1".into()
            })
        );
        assert_eq!(helpers.calls("hub"), ["get https://index.docker.io/v1/"]);
    }

    #[tokio::test]
    async fn not_found_in_the_keychain_is_no_credentials_not_an_error() {
        let helpers = FakeHelpers::new();
        helpers.install("none", &format!("echo '{NOT_FOUND}'; exit 1"));
        let got = helpers
            .runner(TIMEOUT)
            .get("none", "quay.io")
            .await
            .unwrap();
        assert_eq!(got, None);
    }

    #[tokio::test]
    async fn a_failing_helper_is_named_with_the_registry_and_never_quoted() {
        let helpers = FakeHelpers::new();
        helpers.install(
            "bad",
            "echo 'token=SECRET-IN-STDOUT'; echo 'SECRET-IN-STDERR' >&2; exit 3",
        );
        helpers.install("garbled", "echo '{\"Secret\": 12345678}'");
        let runner = helpers.runner(TIMEOUT);
        let e = runner.get("bad", "quay.io").await.unwrap_err().to_string();
        assert!(
            e.contains("registry quay.io")
                && e.contains("docker-credential-bad")
                && e.contains("exited with status 3"),
            "{e}"
        );
        assert!(!e.contains("SECRET"), "{e}");
        let e = runner
            .get("garbled", "quay.io")
            .await
            .unwrap_err()
            .to_string();
        assert!(e.contains("docker-credential-garbled"), "{e}");
        assert!(!e.contains("12345678"), "{e}");
        assert_eq!(
            runner.answered("bad", "quay.io"),
            None,
            "a failure is not kept"
        );
    }

    #[tokio::test]
    async fn a_missing_or_hung_helper_is_an_error_naming_it() {
        let helpers = FakeHelpers::new();
        helpers.install("slow", "sleep 30");
        let runner = helpers.runner(Duration::from_millis(300));
        let e = runner
            .get("absent", "ghcr.io")
            .await
            .unwrap_err()
            .to_string();
        assert!(
            e.contains("docker-credential-absent") && e.contains("not found on PATH"),
            "{e}"
        );
        let started = std::time::Instant::now();
        let e = runner.get("slow", "ghcr.io").await.unwrap_err().to_string();
        assert!(
            e.contains("docker-credential-slow") && e.contains("no answer within"),
            "{e}"
        );
        assert!(started.elapsed() < Duration::from_secs(10));
    }

    #[test]
    fn helper_names_are_program_names_never_paths() {
        assert!(is_helper_name("ecr-login"));
        assert!(is_helper_name("desktop.exe"));
        assert!(!is_helper_name("../../bin/sh"));
        assert!(!is_helper_name("a b"));
        assert!(!is_helper_name(""));
    }
}
