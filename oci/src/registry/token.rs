//! Bearer tokens from a registry's token service, the two flows of distribution's token
//! spec: `GET realm?service=..&scope=..` with Basic credentials (or none), and for an
//! identity token the OAuth2 refresh-token grant, `POST realm` with the form
//! `grant_type=refresh_token&refresh_token=..&service=..&scope=..&client_id=..`. Not every
//! token service serves the POST: one answering it 404 or 405 is asked by GET, with the
//! identity token as the password (as docker and go-containerregistry do). A new refresh
//! token in the answer is not kept: the registry config is never written to.

use std::time::{Duration, Instant};

use reqwest::header::CONTENT_TYPE;
use serde::Deserialize;

use super::body::{read_limited, MAX_TOKEN_RESPONSE};
use super::credential::basic_header;
use super::credential::Credential;
use super::error::RegistryError;
use super::scope::Scope;

/// Who we are to an OAuth2 token service (the token spec requires a `client_id`).
const CLIENT_ID: &str = "image-mirror";

/// A token and when to stop using it.
pub(crate) struct Token {
    pub(crate) value: String,
    pub(crate) expires: Instant,
}

/// Where a registry's tokens come from, as its challenge said.
pub(crate) struct Realm<'a> {
    pub(crate) url: &'a str,
    pub(crate) service: Option<&'a str>,
}

/// One token wanted: from which service, for which registry and scope, under which limits.
pub(crate) struct TokenAsk<'a> {
    pub(crate) http: &'a super::insecure::HttpClients,
    pub(crate) registry: &'a str,
    pub(crate) realm: Realm<'a>,
    pub(crate) scope: &'a Scope,
    pub(crate) policy: &'a TokenPolicy<'a>,
}

/// A token, or the token service's refusal of the credentials (the caller may ask a
/// credential helper again: its answer may have expired).
pub(crate) enum Fetched {
    Token(Token),
    Refused(RegistryError),
}

#[derive(Deserialize)]
struct TokenResponse {
    token: Option<String>,
    access_token: Option<String>,
    expires_in: Option<u64>,
}

/// `host[:port]` of a URL, as registries are written.
pub(crate) fn host_port(url: &url::Url) -> Option<String> {
    let host = url.host_str()?;
    Some(match url.port() {
        Some(p) => format!("{host}:{p}"),
        None => host.to_string(),
    })
}

impl TokenAsk<'_> {
    /// The pool for the token service at `url`: its certificate goes unchecked only on a
    /// host named insecure, or on the registry's own insecure host (see `insecure.rs`).
    fn http(&self, url: &url::Url) -> &reqwest::Client {
        self.policy.insecure.client(self.http, self.registry, url)
    }

    fn auth_err(&self, message: String) -> RegistryError {
        RegistryError::Auth {
            registry: self.registry.to_string(),
            message,
        }
    }

    /// A token for `cred` (`None`: anonymous): by the refresh-token grant for an identity
    /// token, else (or when the service has no such grant) by GET.
    pub(crate) async fn fetch(&self, cred: Option<&Credential>) -> Result<Fetched, RegistryError> {
        let realm = url::Url::parse(self.realm.url).map_err(|e| {
            self.auth_err(format!(
                "token realm \"{}\" is not a URL: {e}",
                self.realm.url
            ))
        })?;
        let trusted = realm.scheme() == "https"
            || host_port(&realm).is_some_and(|h| self.policy.insecure.trusts(&h));
        if cred.is_some() && !trusted {
            return Err(self.auth_err(format!(
                "the token service {} is plain HTTP: credentials are sent only over HTTPS, or to a host given with --insecure-registry",
                host_port(&realm).unwrap_or_default()
            )));
        }
        if let Some(refresh_token) = cred.and_then(Credential::refresh_token) {
            if let Some(fetched) = self.refresh(realm.clone(), refresh_token).await? {
                return Ok(fetched);
            }
        }
        self.get(realm, cred).await
    }

    /// The OAuth2 refresh-token grant; `None` when the service does not serve it.
    async fn refresh(
        &self,
        realm: url::Url,
        refresh_token: &str,
    ) -> Result<Option<Fetched>, RegistryError> {
        let req = self
            .http(&realm)
            .post(realm.clone())
            .timeout(self.policy.timeout)
            .header(CONTENT_TYPE, "application/x-www-form-urlencoded")
            .body(self.refresh_form(refresh_token));
        let resp = self.send(req, "POST", &realm).await?;
        let status = resp.status().as_u16();
        if status == 404 || status == 405 {
            return Ok(None);
        }
        if matches!(status, 400 | 401 | 403) {
            return Ok(Some(Fetched::Refused(self.auth_err(format!(
                "the token service refused the identity token (OAuth2 refresh token) of the registry config (HTTP {status})"
            )))));
        }
        self.read(resp, "POST", &realm).await.map(Some)
    }

    /// The form of the refresh-token grant (scopes space-separated in one `scope`).
    fn refresh_form(&self, refresh_token: &str) -> String {
        let mut form = url::form_urlencoded::Serializer::new(String::new());
        form.append_pair("grant_type", "refresh_token")
            .append_pair("refresh_token", refresh_token)
            .append_pair("client_id", CLIENT_ID);
        if let Some(s) = self.realm.service {
            form.append_pair("service", s);
        }
        let scopes = self.scope.params().join(" ");
        if !scopes.is_empty() {
            form.append_pair("scope", &scopes);
        }
        form.finish()
    }

    /// The GET flow, with Basic credentials when there are some.
    async fn get(
        &self,
        realm: url::Url,
        cred: Option<&Credential>,
    ) -> Result<Fetched, RegistryError> {
        let mut url = realm;
        {
            let mut q = url.query_pairs_mut();
            if let Some(s) = self.realm.service {
                q.append_pair("service", s);
            }
            for s in self.scope.params() {
                q.append_pair("scope", &s);
            }
        }
        let mut req = self
            .http(&url)
            .get(url.clone())
            .timeout(self.policy.timeout);
        if let Some(c) = cred {
            req = req.header(reqwest::header::AUTHORIZATION, basic_header(c));
        }
        let resp = self.send(req, "GET", &url).await?;
        let status = resp.status().as_u16();
        if status == 401 || status == 403 {
            let message = match cred {
                Some(Credential::Password { username, .. }) => {
                    format!("credentials of user \"{username}\" were refused")
                }
                Some(Credential::IdentityToken { username, .. }) => {
                    format!("the identity token of user \"{username}\" was refused")
                }
                None => {
                    "anonymous access was refused; add credentials to the registry config".into()
                }
            };
            return Ok(Fetched::Refused(self.auth_err(message)));
        }
        self.read(resp, "GET", &url).await
    }

    async fn send(
        &self,
        req: reqwest::RequestBuilder,
        method: &str,
        url: &url::Url,
    ) -> Result<reqwest::Response, RegistryError> {
        req.send().await.map_err(|e| RegistryError::Transport {
            registry: self.registry.to_string(),
            method: method.into(),
            path: format!("token from {}", url.host_str().unwrap_or("")),
            message: e.without_url().to_string(),
        })
    }

    /// The token in a successful answer (`token` or OAuth2's `access_token`).
    async fn read(
        &self,
        resp: reqwest::Response,
        method: &str,
        url: &url::Url,
    ) -> Result<Fetched, RegistryError> {
        let status = resp.status();
        if !status.is_success() {
            return Err(RegistryError::Status {
                registry: self.registry.to_string(),
                method: method.into(),
                path: format!("token from {}", url.host_str().unwrap_or("")),
                status: status.as_u16(),
                code: None,
                message: "token service error".into(),
            });
        }
        // Bounded: the token goes back in every request's `Authorization` header.
        let service = host_port(url).unwrap_or_default();
        let bytes = read_limited(resp, MAX_TOKEN_RESPONSE)
            .await
            .map_err(|e| self.auth_err(format!("token service {service}: {method} token: {e}")))?;
        let body: TokenResponse = serde_json::from_slice(&bytes).map_err(|e| {
            self.auth_err(format!(
                "token service {service}: the token response is not JSON: {e}"
            ))
        })?;
        let value = body.token.or(body.access_token).ok_or_else(|| {
            self.auth_err(format!(
                "token service {service}: the token response has no token"
            ))
        })?;
        // Refresh a little early (5 s, or half of a short lifetime) so that a token never
        // expires on its way to the registry.
        let lifetime = Duration::from_secs(body.expires_in.unwrap_or(60));
        let margin = Duration::from_secs(5).min(lifetime / 2);
        Ok(Fetched::Token(Token {
            value,
            expires: Instant::now() + lifetime - margin,
        }))
    }
}

/// What fetching a token may do: how long it may take, and which plain-HTTP hosts the
/// configuration trusts with credentials.
pub struct TokenPolicy<'a> {
    /// The whole token request.
    pub timeout: Duration,
    /// Which plain-HTTP hosts may be sent credentials, and which token services' certificates
    /// go unchecked (see `insecure.rs`).
    pub insecure: &'a super::insecure::PlainHttp,
}
