//! Fake docker credential helpers: `docker-credential-NAME` shell scripts in a temporary
//! directory, which a test puts first on the `PATH` of the binary it runs (see
//! [`run_binary_with_env`](crate::mirror::run_binary_with_env)), never on its own: tests
//! run in parallel threads of one process.
//!
//! Why: the mirror runs helpers the way docker does (`get`, the server URL on stdin, JSON
//! on stdout), so each of its paths (an answer, no credentials, a failure, a missing
//! helper) is shown through a real child process. Every script logs the server URL it was
//! asked about, so tests can check which registries a helper was run for, and how often.

use std::ffi::OsString;
use std::os::unix::fs::PermissionsExt;
use std::path::Path;

use anyhow::{Context, Result};
use serde_json::json;
use tempfile::TempDir;

/// What docker-credential-helpers print (exit status 1) when they hold nothing for a server.
pub const NOT_FOUND: &str = "credentials not found in native keychain";

/// A directory of fake helpers.
#[derive(Debug)]
pub struct CredentialHelpers {
    dir: TempDir,
}

impl CredentialHelpers {
    /// An empty directory of helpers.
    pub fn new() -> Result<Self> {
        let dir = tempfile::Builder::new()
            .prefix("mirror-cred-helpers-")
            .tempdir()
            .context("creating the credential helpers' directory")?;
        Ok(CredentialHelpers { dir })
    }

    /// `docker-credential-NAME` answering every `get` with `user` and `secret`.
    pub fn answering(&self, name: &str, user: &str, secret: &str) -> Result<()> {
        self.answering_in_turn(name, &[(user, secret)])
    }

    /// `docker-credential-NAME` answering its first run with the first `(user, secret)`,
    /// its second with the second, and so on; the last answer repeats (a helper whose
    /// first answer has expired, say).
    pub fn answering_in_turn(&self, name: &str, answers: &[(&str, &str)]) -> Result<()> {
        let mut cases = String::new();
        for (i, (user, secret)) in answers.iter().enumerate() {
            let answer = json!({"ServerURL": "", "Username": user, "Secret": secret}).to_string();
            let pattern = if i + 1 == answers.len() {
                "*".to_string()
            } else {
                (i + 1).to_string()
            };
            cases.push_str(&format!(
                "  {pattern}) printf '%s' {} ;;\n",
                sh_quote(&answer)
            ));
        }
        let calls = sh_quote(&self.calls_file(name).display().to_string());
        self.install(
            name,
            &format!("n=$(($(wc -l < {calls})))\ncase \"$n\" in\n{cases}esac"),
        )
    }

    /// `docker-credential-NAME` holding nothing: docker-credential-helpers' "not found".
    pub fn not_found(&self, name: &str) -> Result<()> {
        self.install(name, &format!("echo {}\nexit 1", sh_quote(NOT_FOUND)))
    }

    /// `docker-credential-NAME` exiting with `status` after printing `stdout` (a
    /// secret-looking text, to show it is never repeated).
    pub fn failing(&self, name: &str, status: i32, stdout: &str) -> Result<()> {
        self.install(name, &format!("echo {}\nexit {status}", sh_quote(stdout)))
    }

    /// The server URLs `docker-credential-NAME get` was run with, one per run.
    pub fn calls(&self, name: &str) -> Vec<String> {
        std::fs::read_to_string(self.calls_file(name))
            .unwrap_or_default()
            .lines()
            .map(str::to_string)
            .collect()
    }

    /// This directory, then the test process's own `PATH`.
    pub fn path(&self) -> OsString {
        let mut path = OsString::from(self.dir.path());
        if let Some(inherited) = std::env::var_os("PATH") {
            path.push(":");
            path.push(inherited);
        }
        path
    }

    /// The environment a binary finds these helpers with: `PATH` set to [`path`](Self::path).
    pub fn env(&self) -> Vec<(String, OsString)> {
        vec![("PATH".to_string(), self.path())]
    }

    /// The directory the helpers are in.
    pub fn dir(&self) -> &Path {
        self.dir.path()
    }

    fn calls_file(&self, name: &str) -> std::path::PathBuf {
        self.dir.path().join(format!("{name}.calls"))
    }

    /// Writes the script: only `get` is served; the server URL (stdin, no newline, as
    /// docker sends it) is logged, then `body` answers.
    fn install(&self, name: &str, body: &str) -> Result<()> {
        let calls = sh_quote(&self.calls_file(name).display().to_string());
        let script = format!(
            "#!/bin/sh\n[ \"$1\" = get ] || {{ echo \"unsupported action $1\" >&2; exit 2; }}\nserver=$(cat)\nprintf '%s\\n' \"$server\" >> {calls}\n{body}\n"
        );
        let path = self.dir.path().join(format!("docker-credential-{name}"));
        std::fs::write(&path, script).with_context(|| format!("writing {}", path.display()))?;
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o755))
            .with_context(|| format!("making {} executable", path.display()))
    }
}

/// `s` as one single-quoted shell word.
fn sh_quote(s: &str) -> String {
    format!("'{}'", s.replace('\'', r"'\''"))
}
