//! Docker `config.json` credential files.
//!
//! Why: the mirror reads registry credentials the way docker and skopeo do,
//! so tests hand it a real `config.json` rather than a bespoke format: `auths`
//! entries (with passwords or identity tokens), `credHelpers` and `credsStore`.

use std::path::{Path, PathBuf};

use anyhow::{Context, Result};
use base64::Engine;
use serde_json::{json, Map, Value};

/// Writes `dir/config.json` as `{"auths": {"HOST": {"auth": base64(user:pass)}}}`
/// for each `(host, user, pass)` and returns its path.
pub fn write_docker_config(dir: &Path, entries: &[(&str, &str, &str)]) -> Result<PathBuf> {
    entries
        .iter()
        .fold(DockerConfig::new(), |c, (host, user, pass)| {
            c.auth(host, user, pass)
        })
        .write(dir)
}

/// A docker `config.json` to write, built entry by entry.
#[derive(Debug, Clone, Default)]
pub struct DockerConfig {
    auths: Map<String, Value>,
    cred_helpers: Map<String, Value>,
    creds_store: Option<String>,
}

impl DockerConfig {
    /// An empty config.
    pub fn new() -> Self {
        DockerConfig::default()
    }

    /// `auths.HOST = {"auth": base64(user:pass)}`.
    pub fn auth(mut self, host: &str, user: &str, pass: &str) -> Self {
        let auth = base64::engine::general_purpose::STANDARD.encode(format!("{user}:{pass}"));
        self.auths.insert(host.to_string(), json!({ "auth": auth }));
        self
    }

    /// `auths.HOST = {"identitytoken": TOKEN}`, as `docker login` leaves it for a
    /// registry that answered with an OAuth2 refresh token.
    pub fn identity_token(mut self, host: &str, token: &str) -> Self {
        self.auths
            .insert(host.to_string(), json!({ "identitytoken": token }));
        self
    }

    /// `credHelpers.HOST = NAME`: `docker-credential-NAME` holds HOST's credentials.
    pub fn cred_helper(mut self, host: &str, name: &str) -> Self {
        self.cred_helpers.insert(host.to_string(), json!(name));
        self
    }

    /// `credsStore = NAME`: `docker-credential-NAME` for every other registry.
    pub fn creds_store(mut self, name: &str) -> Self {
        self.creds_store = Some(name.to_string());
        self
    }

    /// Writes `dir/config.json` and returns its path.
    pub fn write(&self, dir: &Path) -> Result<PathBuf> {
        let mut config = json!({ "auths": Value::Object(self.auths.clone()) });
        if !self.cred_helpers.is_empty() {
            config["credHelpers"] = Value::Object(self.cred_helpers.clone());
        }
        if let Some(store) = &self.creds_store {
            config["credsStore"] = json!(store);
        }
        std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
        let path = dir.join("config.json");
        let text = serde_json::to_string_pretty(&config).context("serialising config.json")?;
        std::fs::write(&path, text).with_context(|| format!("writing {}", path.display()))?;
        Ok(path)
    }
}
