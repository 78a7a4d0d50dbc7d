//! `--event-senders FILE`: who may announce pushes, in what body format, for which registry,
//! and with which token. A YAML list:
//!
//! ```yaml
//! - name: ci                      # the URL path: POST /events/ci
//!   kind: distribution            # distribution, quay, harbor, dockerhub, plain
//!   registry: registry.ci.example.com   # the host[:port] of its images in the mapping files
//!   token_file: /secrets/ci-token # or token_env: CI_EVENTS_TOKEN
//! ```
//!
//! `registry` is needed because the host inside a notification is the registry's own view
//! of itself (an internal name, a port behind a proxy) and may differ from the one the
//! mapping files name. Tokens are read once, at the start; they are kept in a [`Token`]
//! that never prints, so no error, log line or report can carry one.

use std::collections::HashSet;
use std::path::{Path, PathBuf};

use anyhow::{anyhow, bail, Result};
use serde::Deserialize;

/// The body format a sender POSTs.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub(crate) enum Kind {
    /// CNCF distribution (docker-registry) notification envelopes.
    Distribution,
    /// Quay's `repo_push` webhook.
    Quay,
    /// Harbor's `PUSH_ARTIFACT` webhook (and `DELETE_ARTIFACT`).
    Harbor,
    /// Docker Hub's repository webhook.
    Dockerhub,
    /// `{"image": "host/repo:tag"}`, for CI scripts.
    Plain,
}

impl Kind {
    /// The name as written in the senders file (for logs and metrics).
    pub(crate) fn as_str(self) -> &'static str {
        match self {
            Kind::Distribution => "distribution",
            Kind::Quay => "quay",
            Kind::Harbor => "harbor",
            Kind::Dockerhub => "dockerhub",
            Kind::Plain => "plain",
        }
    }
}

/// A sender's shared secret. Its `Debug` says nothing of it.
#[derive(Clone)]
pub(crate) struct Token(String);

impl Token {
    /// The secret, for the constant-time comparison only.
    pub(crate) fn expose(&self) -> &[u8] {
        self.0.as_bytes()
    }
}

impl std::fmt::Debug for Token {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Token(***)")
    }
}

/// One sender, as the listener checks it.
#[derive(Clone, Debug)]
pub(crate) struct Sender {
    /// The URL path segment (`/events/<name>`) and the metrics label.
    pub name: String,
    /// Its body format.
    pub kind: Kind,
    /// The host[:port] its images have in the mapping files.
    pub registry: String,
    /// What it must present.
    pub token: Token,
}

/// One entry as written.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Entry {
    name: String,
    kind: Kind,
    registry: String,
    #[serde(default)]
    token_file: Option<PathBuf>,
    #[serde(default)]
    token_env: Option<String>,
}

/// Reads the senders file at `path`; errors name `file:line` and the sender.
pub(crate) fn load(path: &Path) -> Result<Vec<Sender>> {
    let text = std::fs::read_to_string(path)
        .map_err(|e| anyhow!("--event-senders {}: {e}", path.display()))?;
    parse(path, &text, |name| std::env::var(name).ok())
}

/// Parses a senders file's `text` (`env` reads `token_env` variables).
pub(crate) fn parse(
    path: &Path,
    text: &str,
    env: impl Fn(&str) -> Option<String>,
) -> Result<Vec<Sender>> {
    let entries: Vec<Entry> = serde_yaml_ng::from_str(text).map_err(|e| match e.location() {
        Some(l) => anyhow!("{}:{}: {e}", path.display(), l.line()),
        None => anyhow!("{}: {e}", path.display()),
    })?;
    if entries.is_empty() {
        bail!("{}: no sender", path.display());
    }
    let lines = entry_lines(text);
    let mut seen = HashSet::new();
    let mut senders = Vec::new();
    for (i, e) in entries.into_iter().enumerate() {
        let at = format!(
            "{}:{}: sender \"{}\"",
            path.display(),
            lines.get(i).copied().unwrap_or(1),
            e.name
        );
        senders.push(check(&at, e, &mut seen, &env)?);
    }
    Ok(senders)
}

/// One entry checked: a name fit for a URL path, once; a registry host; one token source.
fn check(
    at: &str,
    e: Entry,
    seen: &mut HashSet<String>,
    env: &impl Fn(&str) -> Option<String>,
) -> Result<Sender> {
    let name_ok = !e.name.is_empty()
        && e.name.len() <= 64
        && e.name
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b"-_.".contains(&b));
    if !name_ok {
        bail!("{at}: a name is 1 to 64 of a-z, 0-9, '-', '_', '.' (it is a URL path segment)");
    }
    if !seen.insert(e.name.clone()) {
        bail!("{at}: the name is given twice");
    }
    let registry = e.registry.trim().to_string();
    if registry.is_empty() || registry.contains(['/', ' ', '@']) {
        bail!("{at}: registry is a host[:port] as the mapping files write it, e.g. quay.io");
    }
    let token = match (&e.token_file, &e.token_env) {
        (Some(file), None) => std::fs::read_to_string(file)
            .map_err(|err| anyhow!("{at}: token_file {}: {err}", file.display()))?,
        (None, Some(var)) => {
            env(var).ok_or_else(|| anyhow!("{at}: token_env {var}: the variable is not set"))?
        }
        _ => bail!("{at}: give exactly one of token_file and token_env"),
    };
    let token = token.trim().to_string();
    if token.len() < 16 {
        bail!("{at}: the token is shorter than 16 characters");
    }
    Ok(Sender {
        name: e.name,
        kind: e.kind,
        registry,
        token: Token(token),
    })
}

/// The line each top-level list entry starts on (`- ` at the smallest indentation), so
/// that an entry's error names its line.
fn entry_lines(text: &str) -> Vec<usize> {
    let starts: Vec<(usize, usize)> = text
        .lines()
        .enumerate()
        .filter_map(|(i, l)| {
            let indent = l.len() - l.trim_start().len();
            let t = l.trim_start();
            (t.starts_with("- ") || t == "-").then_some((i + 1, indent))
        })
        .collect();
    let top = starts.iter().map(|s| s.1).min().unwrap_or(0);
    starts
        .into_iter()
        .filter(|s| s.1 == top)
        .map(|s| s.0)
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn env(name: &str) -> Option<String> {
        (name == "CI_TOKEN").then(|| "0123456789abcdef-env".to_string())
    }

    #[test]
    fn senders_are_read_with_their_tokens_from_files_and_the_environment() {
        let dir = tempfile::tempdir().unwrap();
        let token = dir.path().join("t");
        std::fs::write(&token, "0123456789abcdef-file\n").unwrap();
        let text = format!(
            "- name: ci\n  kind: distribution\n  registry: 127.0.0.1:5000\n  token_file: {}\n\
             - name: quay\n  kind: quay\n  registry: quay.io\n  token_env: CI_TOKEN\n",
            token.display()
        );
        let s = parse(Path::new("senders.yaml"), &text, env).unwrap();
        assert_eq!(s.len(), 2);
        assert_eq!(s[0].kind, Kind::Distribution);
        assert_eq!(s[0].token.expose(), b"0123456789abcdef-file");
        assert_eq!(s[1].registry, "quay.io");
        assert_eq!(s[1].token.expose(), b"0123456789abcdef-env");
        assert_eq!(format!("{:?}", s[1].token), "Token(***)");
    }

    #[test]
    fn errors_name_the_file_line_and_sender_never_the_token() {
        let text = "- name: a\n  kind: plain\n  registry: r.io\n  token_env: CI_TOKEN\n\
                    - name: a\n  kind: plain\n  registry: r.io\n  token_env: CI_TOKEN\n";
        let e = parse(Path::new("s.yaml"), text, env)
            .unwrap_err()
            .to_string();
        assert_eq!(e, "s.yaml:5: sender \"a\": the name is given twice");
        let text = "- name: b\n  kind: plain\n  registry: r.io\n  token_env: NOPE\n";
        let e = parse(Path::new("s.yaml"), text, env)
            .unwrap_err()
            .to_string();
        assert!(
            e.starts_with("s.yaml:1: sender \"b\": token_env NOPE"),
            "{e}"
        );
        let text = "- name: c\n  kind: gitlab\n  registry: r.io\n  token_env: CI_TOKEN\n";
        let e = parse(Path::new("s.yaml"), text, env)
            .unwrap_err()
            .to_string();
        assert!(e.starts_with("s.yaml:"), "{e}");
        assert!(e.contains("unknown variant `gitlab`"), "{e}");
        let text = "- name: Bad/Name\n  kind: plain\n  registry: r.io\n  token_env: CI_TOKEN\n";
        let e = parse(Path::new("s.yaml"), text, env)
            .unwrap_err()
            .to_string();
        assert!(e.contains("URL path segment"), "{e}");
        assert!(!e.contains("0123456789abcdef"), "{e}");
    }
}
