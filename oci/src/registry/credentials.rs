//! Registry credentials from a docker `config.json`, the file docker, podman, skopeo and oc
//! read.
//!
//! For one registry, in docker's order: the credential helper `credHelpers` names for its
//! host, else the default helper `credsStore`, else its `auths` entry (`auth` = base64
//! `user:password`, or `username` and `password`, and `identitytoken` when there is one).
//! Helpers run lazily, the first time a registry asks for credentials (see
//! `cred_helper.rs`). One difference from docker: a helper that has nothing for the
//! registry ("credentials not found") leaves the word to the registry's `auths` entry where
//! docker would go anonymous, so inline credentials beside a `credsStore` still work.
//!
//! Secrets never reach `Debug` output, logs or errors.

use std::collections::HashMap;
use std::fmt;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use base64::Engine;
use serde::Deserialize;

use super::cred_helper::{self, Runner, TOKEN_USERNAME};
use super::credential::Credential;
use super::error::RegistryError;

/// Credentials by registry host (normalised: no scheme, no path), from one or more docker
/// configs. Cheap to clone: the configs are shared, and helper answers are kept for the
/// whole process (see `cred_helper.rs`).
#[derive(Clone, Default)]
pub struct CredentialStore {
    /// Configs in the order they are asked: a named config over the process's own.
    layers: Vec<Arc<Config>>,
    helpers: Runner,
}

/// One docker config, parsed.
#[derive(Clone, Default)]
struct Config {
    auths: HashMap<String, Credential>,
    cred_helpers: HashMap<String, String>,
    creds_store: Option<String>,
}

impl Config {
    /// The helper docker would ask about `host`.
    fn helper(&self, host: &str) -> Option<&str> {
        self.cred_helpers
            .get(host)
            .or(self.creds_store.as_ref())
            .map(String::as_str)
    }
}

impl fmt::Debug for CredentialStore {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut list = f.debug_list();
        for c in &self.layers {
            let mut hosts: Vec<&String> = c.auths.keys().collect();
            hosts.sort();
            let mut helpers: Vec<(&String, &String)> = c.cred_helpers.iter().collect();
            helpers.sort();
            list.entry(&format_args!(
                "Config {{ auths: {hosts:?}, cred_helpers: {helpers:?}, creds_store: {:?} }}",
                c.creds_store
            ));
        }
        list.finish()
    }
}

#[derive(Deserialize)]
struct ConfigFile {
    #[serde(default)]
    auths: HashMap<String, AuthEntry>,
    #[serde(default, rename = "credHelpers")]
    cred_helpers: HashMap<String, String>,
    #[serde(default, rename = "credsStore")]
    creds_store: Option<String>,
}

#[derive(Deserialize)]
struct AuthEntry {
    auth: Option<String>,
    username: Option<String>,
    password: Option<String>,
    identitytoken: Option<String>,
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

    /// Parses the JSON text of a config file. No helper is run.
    pub fn from_json(text: &str) -> Result<Self, String> {
        let file: ConfigFile =
            serde_json::from_str(text).map_err(|e| format!("not a docker config.json: {e}"))?;
        let mut config = Config::default();
        for (key, entry) in file.auths {
            if let Some(cred) = entry
                .credential()
                .map_err(|e| format!("auths.\"{key}\": {e}"))?
            {
                config.auths.insert(normalise_host(&key), cred);
            }
        }
        for (key, helper) in file.cred_helpers {
            if helper.is_empty() {
                continue;
            }
            if !cred_helper::is_helper_name(&helper) {
                return Err(format!("credHelpers.\"{key}\": \"{helper}\" is not a helper name (docker-credential-NAME on PATH)"));
            }
            config.cred_helpers.insert(normalise_host(&key), helper);
        }
        config.creds_store = match file.creds_store {
            Some(s) if s.is_empty() => None,
            Some(s) if !cred_helper::is_helper_name(&s) => {
                return Err(format!(
                    "credsStore: \"{s}\" is not a helper name (docker-credential-NAME on PATH)"
                ))
            }
            other => other,
        };
        Ok(CredentialStore {
            layers: vec![Arc::new(config)],
            helpers: Runner::default(),
        })
    }

    /// Adds or replaces the `auths` entry of one host (a helper named for the host still
    /// comes first).
    pub fn insert(&mut self, host: &str, cred: Credential) {
        if self.layers.is_empty() {
            self.layers.push(Arc::default());
        }
        Arc::make_mut(&mut self.layers[0])
            .auths
            .insert(normalise_host(host), cred);
    }

    /// These credentials with `base`'s underneath: a host these configs have nothing for
    /// (no helper, or a helper without credentials for it, and no `auths` entry) uses
    /// `base`'s (a group's push credentials over the fleet-wide pull credentials).
    pub fn over(mut self, base: &CredentialStore) -> CredentialStore {
        self.layers.extend(base.layers.iter().cloned());
        self
    }

    /// The credential for a registry host (Docker Hub's aliases included), running its
    /// credential helper when that has not answered yet. `None`: anonymous. An error when
    /// the helper fails; it names the helper and the registry, never what it printed.
    pub async fn lookup(&self, registry: &str) -> Result<Option<Credential>, RegistryError> {
        let host = normalise_host(registry);
        for config in &self.layers {
            if let Some(helper) = config.helper(&host) {
                if let Some(cred) = self.helpers.get(helper, registry).await? {
                    return Ok(Some(cred));
                }
            }
            if let Some(cred) = config.auths.get(&host) {
                return Ok(Some(cred.clone()));
            }
        }
        Ok(None)
    }

    /// The credential for a registry host as far as it is known without running a helper:
    /// a helper's answer already given, else the `auths` entry. For messages that say
    /// whether credentials were sent; requests use [`lookup`](Self::lookup).
    pub fn get(&self, registry: &str) -> Option<Credential> {
        let host = normalise_host(registry);
        for config in &self.layers {
            if let Some(helper) = config.helper(&host) {
                if let Some(Some(cred)) = self.helpers.answered(helper, registry) {
                    return Some(cred);
                }
            }
            if let Some(cred) = config.auths.get(&host) {
                return Some(cred.clone());
            }
        }
        None
    }

    /// Drops the helper answers for a registry whose credentials were refused; true when
    /// there was one (a lookup then runs the helper again: its token may have expired).
    pub(crate) fn forget_helper_answers(&self, registry: &str) -> bool {
        let host = normalise_host(registry);
        let mut forgot = false;
        for config in &self.layers {
            if let Some(helper) = config.helper(&host) {
                forgot |= self.helpers.forget(helper, registry);
            }
        }
        forgot
    }

    /// This store with helpers run by `runner` (unit tests: fake helpers, short limits).
    #[cfg(test)]
    pub(crate) fn with_runner(mut self, runner: Runner) -> Self {
        self.helpers = runner;
        self
    }
}

impl AuthEntry {
    /// The entry's credential: an identity token when it has one (the user name from
    /// `auth` or `username`, else `<token>`), else `auth`, else `username` and `password`;
    /// `None` for an entry without any (`{}`, which `docker login` leaves beside a
    /// `credsStore`).
    fn credential(&self) -> Result<Option<Credential>, String> {
        let basic = match (&self.auth, &self.username, &self.password) {
            (Some(auth), _, _) if !auth.is_empty() => Some(decode_auth(auth)?),
            (_, Some(u), Some(p)) => Some((u.clone(), p.clone())),
            _ => None,
        };
        Ok(match (&self.identitytoken, basic) {
            (Some(token), basic) if !token.is_empty() => {
                let username = basic
                    .map(|(u, _)| u)
                    .or_else(|| self.username.clone())
                    .filter(|u| !u.is_empty())
                    .unwrap_or_else(|| TOKEN_USERNAME.to_string());
                Some(Credential::IdentityToken {
                    username,
                    token: token.clone(),
                })
            }
            (_, Some((username, password))) => Some(Credential::Password { username, password }),
            _ => None,
        })
    }
}

fn default_path() -> Option<PathBuf> {
    if let Some(dir) = std::env::var_os("DOCKER_CONFIG") {
        return Some(PathBuf::from(dir).join("config.json"));
    }
    std::env::var_os("HOME").map(|h| PathBuf::from(h).join(".docker").join("config.json"))
}

fn decode_auth(auth: &str) -> Result<(String, String), String> {
    let raw = base64::engine::general_purpose::STANDARD
        .decode(auth.trim())
        .map_err(|_| "\"auth\" is not base64".to_string())?;
    let text = String::from_utf8(raw).map_err(|_| "\"auth\" is not UTF-8".to_string())?;
    let (u, p) = text
        .split_once(':')
        .ok_or("\"auth\" is not base64 of user:password")?;
    Ok((u.to_string(), p.to_string()))
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
