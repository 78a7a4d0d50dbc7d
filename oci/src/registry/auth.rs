//! Registry authentication: the `WWW-Authenticate` challenge, Basic, and the Bearer token
//! flow of the distribution spec, with tokens cached per registry and scope set.
//!
//! Scopes matter: a push needs `pull,push` on the destination repository and a cross-repo
//! mount additionally needs `pull` on the repository it mounts from, all in one token.

use std::collections::HashMap;
use std::time::{Duration, Instant};

use base64::Engine;
use reqwest::header::HeaderValue;
use serde::Deserialize;
use tokio::sync::Mutex;

use super::credentials::Credential;
use super::error::RegistryError;

/// Access wanted on one repository.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Access {
    /// Pull only: read manifests and blobs.
    Pull,
    /// Pull and push (a registry needs pull to answer HEADs during a push).
    Push,
}

/// The set of repository accesses one request needs; the key of the token cache.
#[derive(Clone, Debug, Default, PartialEq, Eq, Hash)]
pub struct Scope(Vec<(String, Access)>);

impl Scope {
    /// Access to one repository.
    pub fn repo(repository: &str, access: Access) -> Self {
        Scope(vec![(repository.to_string(), access)])
    }

    /// No repository at all (the `/v2/` ping, the catalog).
    pub fn none() -> Self {
        Scope(Vec::new())
    }

    /// This scope plus pull on another repository (the `from` of a mount).
    pub fn and_pull(mut self, repository: &str) -> Self {
        if !self.0.iter().any(|(r, _)| r == repository) {
            self.0.push((repository.to_string(), Access::Pull));
            self.0.sort();
        }
        self
    }

    /// The `scope` parameters of a token request.
    pub fn params(&self) -> Vec<String> {
        self.0
            .iter()
            .map(|(r, a)| match a {
                Access::Pull => format!("repository:{r}:pull"),
                Access::Push => format!("repository:{r}:pull,push"),
            })
            .collect()
    }
}

/// How a registry wants to be spoken to, learnt from its first 401.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Challenge {
    /// HTTP Basic: the username and password go with every request.
    Basic,
    /// Bearer tokens from a token service, one per scope, cached until they expire.
    Bearer {
        /// The token service URL.
        realm: String,
        /// The `service` parameter passed on to the token service, when given.
        service: Option<String>,
    },
}

impl Challenge {
    /// Parses a `WWW-Authenticate` header value; Bearer is preferred when several are offered.
    pub fn parse(header: &str) -> Option<Challenge> {
        let challenges = http_auth::parse_challenges(header).ok()?;
        let param = |c: &http_auth::ChallengeRef, name: &str| {
            c.params
                .iter()
                .find(|(k, _)| k.eq_ignore_ascii_case(name))
                .map(|(_, v)| v.to_unescaped())
        };
        if let Some(c) = challenges
            .iter()
            .find(|c| c.scheme.eq_ignore_ascii_case("bearer"))
        {
            return Some(Challenge::Bearer {
                realm: param(c, "realm")?,
                service: param(c, "service"),
            });
        }
        challenges
            .iter()
            .find(|c| c.scheme.eq_ignore_ascii_case("basic"))
            .map(|_| Challenge::Basic)
    }
}

struct Token {
    value: String,
    expires: Instant,
}

#[derive(Deserialize)]
struct TokenResponse {
    token: Option<String>,
    access_token: Option<String>,
    expires_in: Option<u64>,
}

/// Challenges per registry and tokens per (registry, scope), shared by all requests.
#[derive(Default)]
pub struct AuthState {
    challenges: Mutex<HashMap<String, Challenge>>,
    tokens: Mutex<HashMap<(String, Scope), Token>>,
    /// (registry, token host) pairs already logged, so each is said once.
    realms_seen: std::sync::Mutex<std::collections::HashSet<(String, String)>>,
}

/// What fetching a token may do: how long it may take, and which plain-HTTP hosts the
/// configuration trusts with credentials.
pub struct TokenPolicy<'a> {
    /// The whole token request.
    pub timeout: Duration,
    /// Hosts (`host[:port]`) given as insecure registries.
    pub insecure: &'a std::collections::HashSet<String>,
}

impl AuthState {
    /// Remembers the challenge a registry answered with.
    pub async fn set_challenge(&self, registry: &str, challenge: Challenge) {
        self.challenges
            .lock()
            .await
            .insert(registry.to_string(), challenge);
    }

    /// Forgets a token the registry refused.
    pub async fn invalidate(&self, registry: &str, scope: &Scope) {
        self.tokens
            .lock()
            .await
            .remove(&(registry.to_string(), scope.clone()));
    }

    /// The `Authorization` header for a request, or `None` while the registry has not
    /// asked for any (anonymous until the first 401).
    pub async fn authorization(
        &self,
        http: &reqwest::Client,
        registry: &str,
        scope: &Scope,
        cred: Option<&Credential>,
        policy: &TokenPolicy<'_>,
    ) -> Result<Option<HeaderValue>, RegistryError> {
        let challenge = self.challenges.lock().await.get(registry).cloned();
        match challenge {
            None => Ok(None),
            Some(Challenge::Basic) => {
                let c = cred.ok_or_else(|| RegistryError::Auth {
                    registry: registry.to_string(),
                    message: "the registry requires a username and password and the registry config has none for it".into(),
                })?;
                Ok(Some(basic_header(c)))
            }
            Some(Challenge::Bearer { realm, service }) => {
                let key = (registry.to_string(), scope.clone());
                if let Some(t) = self.tokens.lock().await.get(&key) {
                    if t.expires > Instant::now() {
                        return Ok(Some(bearer_header(&t.value)));
                    }
                }
                let realm = Realm {
                    url: &realm,
                    service: service.as_deref(),
                };
                self.note_realm(registry, realm.url);
                let token = fetch_token(http, registry, &realm, scope, cred, policy).await?;
                let header = bearer_header(&token.value);
                self.tokens.lock().await.insert(key, token);
                Ok(Some(header))
            }
        }
    }
}

impl AuthState {
    /// Says once per registry and token host where a registry sends its token requests,
    /// when that is another host: credentials go there, and an operator should know it.
    fn note_realm(&self, registry: &str, realm: &str) {
        let Some(host) = url::Url::parse(realm).ok().and_then(|u| host_port(&u)) else {
            return;
        };
        if host == registry {
            return;
        }
        let mut seen = self.realms_seen.lock().unwrap_or_else(|p| p.into_inner());
        if seen.insert((registry.to_string(), host.clone())) {
            tracing::info!(registry, token_host = %host, "the registry's tokens come from another host");
        }
    }
}

/// `host[:port]` of a URL, as registries are written.
fn host_port(url: &url::Url) -> Option<String> {
    let host = url.host_str()?;
    Some(match url.port() {
        Some(p) => format!("{host}:{p}"),
        None => host.to_string(),
    })
}

fn basic_header(c: &Credential) -> HeaderValue {
    let raw = format!("{}:{}", c.username, c.password);
    let mut v = HeaderValue::from_str(&format!(
        "Basic {}",
        base64::engine::general_purpose::STANDARD.encode(raw)
    ))
    .unwrap_or_else(|_| HeaderValue::from_static(""));
    v.set_sensitive(true);
    v
}

fn bearer_header(token: &str) -> HeaderValue {
    let mut v = HeaderValue::from_str(&format!("Bearer {token}"))
        .unwrap_or_else(|_| HeaderValue::from_static(""));
    v.set_sensitive(true);
    v
}

/// Where a registry's tokens come from, as its challenge said.
struct Realm<'a> {
    url: &'a str,
    service: Option<&'a str>,
}

async fn fetch_token(
    http: &reqwest::Client,
    registry: &str,
    realm: &Realm<'_>,
    scope: &Scope,
    cred: Option<&Credential>,
    policy: &TokenPolicy<'_>,
) -> Result<Token, RegistryError> {
    let (realm, service) = (realm.url, realm.service);
    let auth_err = |message: String| RegistryError::Auth {
        registry: registry.to_string(),
        message,
    };
    let mut url = url::Url::parse(realm)
        .map_err(|e| auth_err(format!("token realm \"{realm}\" is not a URL: {e}")))?;
    {
        let mut q = url.query_pairs_mut();
        if let Some(s) = service {
            q.append_pair("service", s);
        }
        for s in scope.params() {
            q.append_pair("scope", &s);
        }
    }
    let trusted =
        url.scheme() == "https" || host_port(&url).is_some_and(|h| policy.insecure.contains(&h));
    if cred.is_some() && !trusted {
        return Err(auth_err(format!(
            "the token service {} is plain HTTP: credentials are sent only over HTTPS, or to a host given with --insecure-registry",
            host_port(&url).unwrap_or_default()
        )));
    }
    let mut req = http.get(url.clone()).timeout(policy.timeout);
    if let Some(c) = cred {
        req = req.header(reqwest::header::AUTHORIZATION, basic_header(c));
    }
    let token_host = url.host_str().unwrap_or("").to_string();
    let resp = req.send().await.map_err(|e| RegistryError::Transport {
        registry: registry.to_string(),
        method: "GET".into(),
        path: format!("token from {token_host}"),
        message: e.without_url().to_string(),
    })?;
    let status = resp.status();
    if status.as_u16() == 401 || status.as_u16() == 403 {
        let who = cred.map(|c| format!("credentials of user \"{}\" were refused", c.username));
        return Err(auth_err(who.unwrap_or_else(|| {
            "anonymous access was refused; add credentials to the registry config".into()
        })));
    }
    if !status.is_success() {
        return Err(RegistryError::Status {
            registry: registry.to_string(),
            method: "GET".into(),
            path: format!("token from {token_host}"),
            status: status.as_u16(),
            code: None,
            message: "token service error".into(),
        });
    }
    let body: TokenResponse = resp
        .json()
        .await
        .map_err(|e| auth_err(format!("token response is not JSON: {}", e.without_url())))?;
    let value = body
        .token
        .or(body.access_token)
        .ok_or_else(|| auth_err("token response has no token".into()))?;
    // Refresh a little early (5 s, or half of a short lifetime) so that a token never
    // expires on its way to the registry.
    let lifetime = Duration::from_secs(body.expires_in.unwrap_or(60));
    let margin = Duration::from_secs(5).min(lifetime / 2);
    Ok(Token {
        value,
        expires: Instant::now() + lifetime - margin,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bearer_challenge_gives_realm_and_service() {
        let c = Challenge::parse(
            r#"Bearer realm="https://auth.docker.io/token",service="registry.docker.io",scope="repository:a/b:pull""#,
        );
        assert_eq!(
            c,
            Some(Challenge::Bearer {
                realm: "https://auth.docker.io/token".into(),
                service: Some("registry.docker.io".into())
            })
        );
        assert_eq!(
            Challenge::parse(r#"Basic realm="Registry Realm""#),
            Some(Challenge::Basic)
        );
        assert_eq!(Challenge::parse("garbage"), None);
    }

    #[test]
    fn mount_scope_asks_push_on_target_and_pull_on_source() {
        let s = Scope::repo("team/app", Access::Push).and_pull("base/os");
        assert_eq!(
            s.params(),
            vec!["repository:base/os:pull", "repository:team/app:pull,push"]
        );
        assert_eq!(
            Scope::repo("x", Access::Push).and_pull("x").params(),
            vec!["repository:x:pull,push"]
        );
    }
}
