//! Registry credentials from a docker `config.json`, the file podman, skopeo and oc read.
//!
//! Only `auths` entries are read (`auth` = base64 `user:password`, or `username` and
//! `password`); credential helpers are not run. Secrets never reach `Debug` output.

use std::collections::HashMap;
use std::fmt;
use std::path::{Path, PathBuf};

use base64::Engine;
use serde::Deserialize;

use super::error::RegistryError;

/// A username and password for one registry.
#[derive(Clone, PartialEq, Eq)]
pub struct Credential {
    /// The user name to log in with.
    pub username: String,
    /// The password (or token); never shown in `Debug` output.
    pub password: String,
}

impl fmt::Debug for Credential {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "Credential {{ username: {:?}, password: <redacted> }}",
            self.username
        )
    }
}

/// Credentials by registry host (normalised: no scheme, no path).
#[derive(Clone, Debug, Default)]
pub struct CredentialStore {
    by_host: HashMap<String, Credential>,
}

#[derive(Deserialize)]
struct ConfigFile {
    #[serde(default)]
    auths: HashMap<String, AuthEntry>,
}

#[derive(Deserialize)]
struct AuthEntry {
    auth: Option<String>,
    username: Option<String>,
    password: Option<String>,
}

impl CredentialStore {
    /// Reads `path`, or when `None` the first of `$DOCKER_CONFIG/config.json` and
    /// `~/.docker/config.json` that exists (no file at a default place = no credentials).
    pub fn load(path: Option<&Path>) -> Result<Self, RegistryError> {
        match path {
            Some(p) => Self::from_file(p),
            None => match default_path() {
                Some(p) if p.exists() => Self::from_file(&p),
                _ => Ok(Self::default()),
            },
        }
    }

    /// Reads one config file; a missing or malformed file is an error naming it.
    pub fn from_file(path: &Path) -> Result<Self, RegistryError> {
        let text = std::fs::read_to_string(path).map_err(|e| {
            RegistryError::Config(format!("registry config {}: {e}", path.display()))
        })?;
        Self::from_json(&text)
            .map_err(|e| RegistryError::Config(format!("registry config {}: {e}", path.display())))
    }

    /// Parses the JSON text of a config file.
    pub fn from_json(text: &str) -> Result<Self, String> {
        let file: ConfigFile =
            serde_json::from_str(text).map_err(|e| format!("not a docker config.json: {e}"))?;
        let mut by_host = HashMap::new();
        for (key, entry) in file.auths {
            let cred = match (&entry.auth, &entry.username, &entry.password) {
                (Some(auth), _, _) if !auth.is_empty() => {
                    decode_auth(auth).map_err(|e| format!("auths.\"{key}\": {e}"))?
                }
                (_, Some(u), Some(p)) => Credential {
                    username: u.clone(),
                    password: p.clone(),
                },
                _ => continue,
            };
            by_host.insert(normalise_host(&key), cred);
        }
        Ok(CredentialStore { by_host })
    }

    /// Adds or replaces the credential of one host.
    pub fn insert(&mut self, host: &str, cred: Credential) {
        self.by_host.insert(normalise_host(host), cred);
    }

    /// These credentials with `base`'s underneath: a host this store has no entry for uses
    /// `base`'s (a group's push credentials over the fleet-wide pull credentials).
    pub fn over(mut self, base: &CredentialStore) -> CredentialStore {
        for (host, cred) in &base.by_host {
            self.by_host
                .entry(host.clone())
                .or_insert_with(|| cred.clone());
        }
        self
    }

    /// The credential for a registry host, Docker Hub's aliases included.
    pub fn get(&self, host: &str) -> Option<&Credential> {
        let h = normalise_host(host);
        self.by_host.get(&h)
    }
}

fn default_path() -> Option<PathBuf> {
    if let Some(dir) = std::env::var_os("DOCKER_CONFIG") {
        return Some(PathBuf::from(dir).join("config.json"));
    }
    std::env::var_os("HOME").map(|h| PathBuf::from(h).join(".docker").join("config.json"))
}

fn decode_auth(auth: &str) -> Result<Credential, String> {
    let raw = base64::engine::general_purpose::STANDARD
        .decode(auth.trim())
        .map_err(|_| "\"auth\" is not base64".to_string())?;
    let text = String::from_utf8(raw).map_err(|_| "\"auth\" is not UTF-8".to_string())?;
    let (u, p) = text
        .split_once(':')
        .ok_or("\"auth\" is not base64 of user:password")?;
    Ok(Credential {
        username: u.to_string(),
        password: p.to_string(),
    })
}

/// `https://index.docker.io/v1/` -> `docker.io`; `https://quay.io` -> `quay.io`.
fn normalise_host(key: &str) -> String {
    let k = key.trim();
    let k = k
        .strip_prefix("https://")
        .or_else(|| k.strip_prefix("http://"))
        .unwrap_or(k);
    let host = k.split('/').next().unwrap_or(k).to_ascii_lowercase();
    match host.as_str() {
        "index.docker.io" | "registry-1.docker.io" | "registry.hub.docker.com" => {
            "docker.io".into()
        }
        _ => host,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn auth_and_username_password_entries_are_read_with_or_without_scheme() {
        let store = CredentialStore::from_json(
            r#"{"auths":{
                "https://quay.io":{"auth":"dTE6cDE="},
                "127.0.0.1:5000":{"username":"u2","password":"p:2"},
                "https://index.docker.io/v1/":{"auth":"aHViOnNlY3JldA=="}
            }}"#,
        )
        .unwrap();
        assert_eq!(store.get("quay.io").unwrap().username, "u1");
        assert_eq!(store.get("127.0.0.1:5000").unwrap().password, "p:2");
        assert_eq!(store.get("registry-1.docker.io").unwrap().username, "hub");
        assert!(store.get("ghcr.io").is_none());
    }

    #[test]
    fn debug_output_never_shows_the_password() {
        let c = Credential {
            username: "u".into(),
            password: "hunter2".into(),
        };
        assert!(!format!("{c:?}").contains("hunter2"));
    }

    #[test]
    fn missing_explicit_file_is_an_error_naming_it() {
        let e = CredentialStore::load(Some(Path::new("/nonexistent/config.json"))).unwrap_err();
        assert!(e.to_string().contains("/nonexistent/config.json"), "{e}");
    }
}
