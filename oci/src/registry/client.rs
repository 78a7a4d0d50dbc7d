//! The registry client: one HTTP connection pool, credentials, authentication state and
//! the retry loop that every registry operation (manifests, blobs, tags) goes through.

use std::collections::HashSet;
use std::path::PathBuf;
use std::sync::Arc;

use tokio::sync::Semaphore;

use reqwest::header::{HeaderMap, AUTHORIZATION, LOCATION, WWW_AUTHENTICATE};
use reqwest::{Method, RequestBuilder, Response, StatusCode};

use super::auth::{AuthState, Challenge, Scope, TokenPolicy};
use super::code::ErrorCode;
use super::credentials::CredentialStore;
use super::error::{parse_error_body, RegistryError};
use super::gate::Gate;
use super::insecure::{HttpClients, HttpFallback, PlainHttp};
use super::observer::Observer;
use super::retry::{retry_after, RetryPolicy};
use super::timeouts::Timeouts;
use crate::reference::api_host;

/// Everything that configures how registries are reached; one struct passed down.
#[derive(Clone, Debug, Default)]
pub struct ClientOptions {
    /// Credentials by registry host.
    pub credentials: CredentialStore,
    /// Insecure registries (`--insecure-registry`): `host:port` as written in references for
    /// that port, `host` for every port of it. Tried over HTTPS without certificate checks,
    /// over plain HTTP once they answer in it; trusted with credentials over plain HTTP
    /// (see `insecure.rs`).
    pub insecure_registries: HashSet<String>,
    /// Registries reached as those of `insecure_registries` (no certificate checks, plain
    /// HTTP when they answer in it), but not trusted with credentials over plain HTTP.
    /// Loopback ones not named fall back to plain HTTP too, certificates checked.
    pub http_fallback: HttpFallback,
    /// Extra PEM CA bundles trusted on top of the system's roots.
    pub ca_files: Vec<PathBuf>,
    /// Retries of failed requests.
    pub retry: RetryPolicy,
    /// Rate limits and pauses shared with other workers, when there is a fleet.
    pub gate: Option<Gate>,
    /// Sees every request attempt (a process's metrics), when there is one.
    pub observer: Option<Observer>,
    /// Time limits: connecting, small requests in total, blob transfers by progress.
    pub timeouts: Timeouts,
    /// Registries whose blobs go up in chunks of at most this many bytes
    /// (`--chunk-size REGISTRY=SIZE`); others send whole blobs until one answers 413.
    pub chunk_sizes: std::collections::HashMap<String, u64>,
    /// Where what is learnt about registries (413s, mounts, single-request uploads) is
    /// shared with other processes, when there is a fleet.
    pub quirks_store: Option<super::quirks::SharedQuirks>,
}

/// A client for OCI distribution registries, cheap to share behind an `Arc`.
pub struct RegistryClient {
    /// Two pools: certificates checked, and not (hosts named insecure only).
    http: HttpClients,
    opts: ClientOptions,
    /// Which registries are insecure, and which were found to speak plain HTTP.
    plain_http: PlainHttp,
    auth: AuthState,
    /// Registries found without the Referrers API (see `referrers.rs`).
    pub(crate) no_referrers_api: parking_lot::Mutex<HashSet<String>>,
    /// What was learnt about each registry (see `quirks.rs`).
    pub(crate) quirks: super::quirks::QuirksMemory,
    /// Registries whose pull quota is used up (see `ratelimit.rs`).
    quotas: super::ratelimit::Quotas,
    /// Requests awaiting their answer, per registry: see [`REQUESTS_PER_REGISTRY`].
    waiting: parking_lot::Mutex<std::collections::HashMap<String, Arc<Semaphore>>>,
}

/// Requests to one registry awaiting their answer at once (a blob body streaming after its
/// answer's head is not counted). Past this they queue in the client instead of opening
/// more connections: what a registry is asked to take from one client, and what bounds a
/// process's connections (and memory) when hundreds of jobs check their destinations.
pub(crate) const REQUESTS_PER_REGISTRY: usize = 128;

/// A request body that can be sent again on a retry.
pub(crate) enum Body {
    Empty,
    Bytes(bytes::Bytes),
}

/// How long the response may take: all of it within the request limit (manifests, HEADs,
/// tag lists), or only its head, the body then streaming under the idle limit (blobs).
#[derive(Clone, Copy, PartialEq, Eq)]
pub(crate) enum Transfer {
    Whole,
    Streamed,
}

impl RegistryClient {
    /// Builds a client; fails when a CA file cannot be read.
    pub fn new(opts: ClientOptions) -> Result<Self, RegistryError> {
        let plain_http = PlainHttp::new(&opts.insecure_registries, &opts.http_fallback);
        let builder = || {
            reqwest::Client::builder()
                .user_agent(concat!("image-mirror/", env!("CARGO_PKG_VERSION")))
                .connect_timeout(opts.timeouts.connect)
                .pool_max_idle_per_host(64)
        };
        let mut extra = Vec::new();
        for path in &opts.ca_files {
            let pem = std::fs::read(path)
                .map_err(|e| RegistryError::Config(format!("CA file {}: {e}", path.display())))?;
            let certs = reqwest::Certificate::from_pem_bundle(&pem).map_err(|e| {
                RegistryError::Config(format!(
                    "CA file {}: not PEM certificates: {e}",
                    path.display()
                ))
            })?;
            extra.extend(certs);
        }
        let mut verifying = builder();
        if !extra.is_empty() {
            verifying = verifying.tls_certs_merge(extra);
        }
        let build = |b: reqwest::ClientBuilder| {
            b.build()
                .map_err(|e| RegistryError::Config(format!("HTTP client: {e}")))
        };
        let verifying = build(verifying)?;
        let http = if plain_http.any_insecure() {
            HttpClients {
                verifying,
                unverified: build(
                    builder()
                        .tls_danger_accept_invalid_certs(true)
                        .redirect(plain_http.unverified_redirects()),
                )?,
            }
        } else {
            HttpClients::verifying_only(verifying)
        };
        Ok(RegistryClient {
            http,
            plain_http,
            opts,
            auth: AuthState::default(),
            no_referrers_api: parking_lot::Mutex::default(),
            quirks: super::quirks::QuirksMemory::default(),
            quotas: super::ratelimit::Quotas::default(),
            waiting: parking_lot::Mutex::default(),
        })
    }

    /// The connection pool for a request to `url` on behalf of `registry`: the one not
    /// checking certificates when the registry (or the URL's host) is insecure.
    pub(crate) fn http(&self, registry: &str, url: &url::Url) -> &reqwest::Client {
        self.plain_http.client(&self.http, registry, url)
    }

    /// The options this client was built with.
    pub fn options(&self) -> &ClientOptions {
        &self.opts
    }

    /// `http(s)://host/v2/<path>` for a registry as written in references.
    pub(crate) fn url(&self, registry: &str, path: &str) -> Result<url::Url, RegistryError> {
        let scheme = self.plain_http.scheme(registry);
        let s = format!("{scheme}://{}{path}", api_host(registry));
        url::Url::parse(&s).map_err(|e| RegistryError::Protocol {
            registry: registry.into(),
            message: format!("bad URL {s}: {e}"),
        })
    }

    /// Sends a request with authentication and retries, and returns the response for any
    /// status but 401 (authenticated again once), 429 and 5xx (retried with backoff; after
    /// the last attempt they become an error), and a manifest PUT's 400 (an error; retried
    /// when `DIGEST_INVALID`, see [`is_unread_manifest`]). The caller judges the others.
    pub(crate) async fn execute(
        &self,
        registry: &str,
        scope: &Scope,
        method: Method,
        url: url::Url,
        headers: HeaderMap,
        body: Body,
    ) -> Result<Response, RegistryError> {
        self.execute_with(registry, scope, method, url, headers, body, Transfer::Whole)
            .await
    }

    /// [`execute`](Self::execute) with the response's time limit chosen by `transfer`.
    #[allow(clippy::too_many_arguments)] // execute's, plus how the answer is timed
    pub(crate) async fn execute_with(
        &self,
        registry: &str,
        scope: &Scope,
        method: Method,
        mut url: url::Url,
        headers: HeaderMap,
        body: Body,
        transfer: Transfer,
    ) -> Result<Response, RegistryError> {
        let policy = &self.opts.retry;
        let mut attempt = 0u32;
        let mut reauthenticated = false;
        let counts_against_quota = method == Method::GET && url.path().contains("/manifests/");
        let manifest_put = method == Method::PUT && url.path().contains("/manifests/");
        loop {
            attempt += 1;
            if counts_against_quota && self.quotas.exhausted(registry) {
                return Err(RegistryError::Status {
                    registry: registry.to_string(),
                    method: method.to_string(),
                    path: url.path().to_string(),
                    status: 429,
                    code: None,
                    message: "not sent: the registry said its pull quota is used up (ratelimit-remaining: 0)".into(),
                });
            }
            let outcome = self
                .attempt(registry, scope, &method, &url, &headers, &body, transfer)
                .await;
            // Every attempt counts, retried or not: /metrics shows what registries see.
            self.observe(registry, outcome.as_ref().ok().map(|r| r.status().as_u16()));
            if let Some((left, window)) = outcome
                .as_ref()
                .ok()
                .and_then(|r| super::ratelimit::remaining(r.headers()))
            {
                self.quotas.update(registry, left, window);
                if let Some(o) = &self.opts.observer {
                    o.0.quota_remaining(registry, left);
                }
            }
            let (error, wait) = match outcome {
                Ok(resp) if resp.status() == StatusCode::UNAUTHORIZED && !reauthenticated => {
                    reauthenticated = true;
                    attempt -= 1;
                    self.learn_challenge(registry, scope, resp.headers())
                        .await?;
                    continue;
                }
                Ok(resp) if resp.status() == StatusCode::UNAUTHORIZED => {
                    return Err(self.refused(registry, scope, &method, &url, resp.headers()));
                }
                Ok(resp) if is_retryable_status(resp.status()) => {
                    let wait = retry_after(resp.headers());
                    if let (Some(gate), Some(d), true) = (
                        &self.opts.gate,
                        wait,
                        resp.status() == StatusCode::TOO_MANY_REQUESTS,
                    ) {
                        gate.0.throttled(registry, d).await;
                    }
                    (status_error(registry, &method, &url, resp).await, wait)
                }
                Ok(resp) if manifest_put && resp.status() == StatusCode::BAD_REQUEST => {
                    let error = status_error(registry, &method, &url, resp).await;
                    if !is_unread_manifest(&error) {
                        return Err(error);
                    }
                    (error, None)
                }
                Ok(resp) => return Ok(resp),
                // Found to speak plain HTTP (a loopback registry, say): asked again over it.
                Err(_) if self.plain_http.switch_to_http(registry, &url) => {
                    let _ = url.set_scheme("http");
                    attempt -= 1;
                    continue;
                }
                Err(e) if e.is_retryable() => (e, None),
                Err(e) => return Err(e),
            };
            if attempt >= policy.max_attempts {
                return Err(error);
            }
            let delay = policy.delay(attempt, wait);
            if let Some(o) = &self.opts.observer {
                o.0.retrying(registry);
            }
            tracing::warn!(registry, %method, path = url.path(), attempt, delay_ms = delay.as_millis() as u64, error = %error, "retrying registry request");
            tokio::time::sleep(delay).await;
        }
    }

    #[allow(clippy::too_many_arguments)] // one request, as execute_with takes it
    async fn attempt(
        &self,
        registry: &str,
        scope: &Scope,
        method: &Method,
        url: &url::Url,
        headers: &HeaderMap,
        body: &Body,
        transfer: Transfer,
    ) -> Result<Response, RegistryError> {
        self.admit(registry).await;
        let mut req: RequestBuilder = self
            .http(registry, url)
            .request(method.clone(), url.clone())
            .headers(headers.clone());
        if let Some(h) = self.authorization(registry, scope).await? {
            req = req.header(AUTHORIZATION, h);
        }
        req = match body {
            Body::Empty => req,
            Body::Bytes(b) => req.body(b.clone()),
        };
        let waiting = self.waiting_slots(registry);
        let _waiting = waiting.acquire().await;
        let resp = self.send(registry, method, url, req, transfer).await?;
        match self.redirect_to_verified(registry, method, url, &resp) {
            // Sent by the checking pool, without the registry's credentials; that pool
            // follows any further redirects itself.
            Some(next) => {
                let req = self
                    .http
                    .verifying
                    .request(method.clone(), next.clone())
                    .headers(headers.clone());
                self.send(registry, method, &next, req, transfer).await
            }
            None => Ok(resp),
        }
    }

    /// Sends one request under the request limit (all of it, or only the answer's head).
    async fn send(
        &self,
        registry: &str,
        method: &Method,
        url: &url::Url,
        req: RequestBuilder,
        transfer: Transfer,
    ) -> Result<Response, RegistryError> {
        let limit = self.opts.timeouts.request;
        let sent = match transfer {
            Transfer::Whole => req.timeout(limit).send().await,
            Transfer::Streamed => match tokio::time::timeout(limit, req.send()).await {
                Ok(sent) => sent,
                Err(_) => {
                    return Err(RegistryError::Transport {
                        registry: registry.to_string(),
                        method: method.to_string(),
                        path: url.path().to_string(),
                        message: format!("no answer within {}", super::idle::humanize(limit)),
                    })
                }
            },
        };
        sent.map_err(|e| {
            self.plain_http.notice(registry, &e);
            transport_error(registry, method, url, e)
        })
    }

    /// Where a GET or HEAD sent without certificate checks was redirected, when the pool
    /// stopped there because the target is an HTTPS host that is not insecure (see
    /// `insecure.rs`): that request is to be sent by the checking pool.
    fn redirect_to_verified(
        &self,
        registry: &str,
        method: &Method,
        url: &url::Url,
        resp: &Response,
    ) -> Option<url::Url> {
        if !resp.status().is_redirection()
            || !(method == Method::GET || method == Method::HEAD)
            || self.plain_http.verifies(registry, url)
        {
            return None;
        }
        let location = resp.headers().get(LOCATION)?.to_str().ok()?;
        let next = resp.url().join(location).ok()?;
        (next.scheme() == "https" && self.plain_http.verifies(registry, &next)).then_some(next)
    }

    fn waiting_slots(&self, registry: &str) -> Arc<Semaphore> {
        self.waiting
            .lock()
            .entry(registry.to_string())
            .or_insert_with(|| Arc::new(Semaphore::new(REQUESTS_PER_REGISTRY)))
            .clone()
    }

    /// Tells the observer, when there is one, how an attempt ended.
    pub(crate) fn observe(&self, registry: &str, status: Option<u16>) {
        if let Some(o) = &self.opts.observer {
            o.0.answered(registry, status);
        }
    }

    /// Waits for the gate (fleet-wide pause or rate limit), when there is one.
    pub(crate) async fn admit(&self, registry: &str) {
        if let Some(gate) = &self.opts.gate {
            gate.0.before(registry).await;
        }
    }

    pub(crate) async fn authorization(
        &self,
        registry: &str,
        scope: &Scope,
    ) -> Result<Option<reqwest::header::HeaderValue>, RegistryError> {
        let policy = TokenPolicy {
            timeout: self.opts.timeouts.request,
            insecure: &self.plain_http,
        };
        let creds = &self.opts.credentials;
        self.auth
            .authorization(&self.http, registry, scope, creds, &policy)
            .await
    }

    /// The error for a 401 that fresh credentials did not cure, saying which it was: the
    /// token service granted less than asked (anonymous push, say), or credentials refused.
    fn refused(
        &self,
        registry: &str,
        scope: &Scope,
        method: &Method,
        url: &url::Url,
        headers: &HeaderMap,
    ) -> RegistryError {
        let challenge = headers
            .get(WWW_AUTHENTICATE)
            .and_then(|v| v.to_str().ok())
            .unwrap_or("");
        let has_credentials = self.opts.credentials.get(registry).is_some();
        let message = if challenge.contains("insufficient_scope") {
            let hint = if has_credentials {
                ""
            } else {
                "; anonymous access cannot do this: add credentials to the registry config"
            };
            format!(
                "{method} {}: the token service granted less than {}{hint}",
                url.path(),
                scope.params().join(" ")
            )
        } else if has_credentials {
            format!(
                "{method} {}: the registry refused the credentials (HTTP 401)",
                url.path()
            )
        } else {
            format!("{method} {}: the registry requires credentials and the registry config has none for it (HTTP 401)", url.path())
        };
        RegistryError::Auth {
            registry: registry.to_string(),
            message,
        }
    }

    async fn learn_challenge(
        &self,
        registry: &str,
        scope: &Scope,
        headers: &HeaderMap,
    ) -> Result<(), RegistryError> {
        let value = headers
            .get(WWW_AUTHENTICATE)
            .and_then(|v| v.to_str().ok())
            .unwrap_or("");
        let challenge = Challenge::parse(value).ok_or_else(|| RegistryError::Auth {
            registry: registry.to_string(),
            message: format!("HTTP 401 without a usable WWW-Authenticate challenge (\"{value}\")"),
        })?;
        self.auth.invalidate(registry, scope).await;
        self.auth.set_challenge(registry, challenge).await;
        Ok(())
    }
}

fn is_retryable_status(s: StatusCode) -> bool {
    s == StatusCode::TOO_MANY_REQUESTS || s.is_server_error()
}

/// A manifest PUT answered `400 DIGEST_INVALID`: the bytes sent are a verified manifest,
/// so the registry failed to read back what it stores, and the PUT is tried again like a
/// 5xx. Distribution with the filesystem driver does so under load: linking a blob into a
/// repository rewrites its link file (truncated, then written), and a manifest PUT that
/// checks the blob meanwhile reads an empty link (seen in the scale benchmark's cold runs).
fn is_unread_manifest(e: &RegistryError) -> bool {
    matches!(
        e,
        RegistryError::Status {
            status: 400,
            code: Some(ErrorCode::DigestInvalid),
            ..
        }
    )
}

/// A transport failure, without the URL's query (upload state) in the message. An HTTPS
/// request answered in plain HTTP is no transport failure but a permanent mismatch, with
/// the flag that cures it.
pub(crate) fn transport_error(
    registry: &str,
    method: &Method,
    url: &url::Url,
    e: reqwest::Error,
) -> RegistryError {
    if url.scheme() == "https" && super::insecure::answered_in_plain_http(&e) {
        return super::insecure::plain_http_error(registry, method.as_str(), url.path());
    }
    let e = e.without_url();
    let mut message = e.to_string();
    let mut source = std::error::Error::source(&e);
    while let Some(s) = source {
        message.push_str(": ");
        message.push_str(&s.to_string());
        source = s.source();
    }
    RegistryError::Transport {
        registry: registry.to_string(),
        method: method.to_string(),
        path: url.path().to_string(),
        message,
    }
}

/// Turns an unexpected response into an error with the registry's own code and message.
pub(crate) async fn status_error(
    registry: &str,
    method: &Method,
    url: &url::Url,
    resp: Response,
) -> RegistryError {
    let status = resp.status().as_u16();
    let text = super::body::read_error_body(resp).await;
    let (code, message) = parse_error_body(&text);
    RegistryError::Status {
        registry: registry.to_string(),
        method: method.to_string(),
        path: url.path().to_string(),
        status,
        code,
        message,
    }
}
