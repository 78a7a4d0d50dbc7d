//! The retry loop every registry request goes through: authentication (a 401 learns the
//! challenge and is sent again once), retries with backoff of 429s, 5xx and transport
//! failures, the switch to plain HTTP of a registry found to speak it, the pull quota, and
//! redirects from an insecure registry to a host whose certificates are checked.

use std::time::Duration;

use reqwest::header::{HeaderMap, AUTHORIZATION, LOCATION, WWW_AUTHENTICATE};
use reqwest::{Method, RequestBuilder, Response, StatusCode};

use super::auth::Challenge;
use super::client::RegistryClient;
use super::code::ErrorCode;
use super::error::RegistryError;
use super::failure::{status_error, transport_error};
use super::request::{Body, Request, Transfer};
use super::retry::retry_after;
use super::scope::Scope;

/// What one attempt's outcome asks for next.
enum Step {
    /// The answer, for the caller to judge.
    Answer(Response),
    /// Sent again at once, not counted as an attempt (credentials renewed, plain HTTP).
    Again,
    /// A failure that may pass: retried after the backoff (or the registry's wait).
    Retry(RegistryError, Option<Duration>),
}

impl RegistryClient {
    /// Sends a request with authentication and retries, and returns the response for any
    /// status but 401 (authenticated again once), 429 and 5xx (retried with backoff; after
    /// the last attempt they become an error), and a manifest PUT's 400 (an error; retried
    /// when `DIGEST_INVALID`, see [`is_unread_manifest`]). The caller judges the others.
    /// The answer is timed as the operation's [`Transfer`] says.
    pub(crate) async fn execute(&self, req: &Request<'_>) -> Result<Response, RegistryError> {
        let registry = req.registry();
        let policy = &self.opts.retry;
        let mut url = req.url.clone();
        let mut attempt = 0u32;
        let mut reauthenticated = false;
        loop {
            attempt += 1;
            if req.op.counts_against_pull_quota() && self.quotas.exhausted(registry) {
                return Err(quota_used_up(req, &url));
            }
            let outcome = self.attempt(req, &url).await;
            self.count(registry, &outcome);
            let (error, wait) = match self
                .judge(req, &mut url, outcome, &mut reauthenticated)
                .await?
            {
                Step::Answer(resp) => return Ok(resp),
                Step::Again => {
                    attempt -= 1;
                    continue;
                }
                Step::Retry(error, wait) => (error, wait),
            };
            if attempt >= policy.max_attempts {
                return Err(error);
            }
            let delay = policy.delay(attempt, wait);
            if let Some(o) = &self.opts.observer {
                o.0.retrying(registry);
            }
            let method = req.method();
            tracing::warn!(registry, %method, path = url.path(), attempt, delay_ms = delay.as_millis() as u64, error = %error, "retrying registry request");
            tokio::time::sleep(delay).await;
        }
    }

    /// Every attempt counts, retried or not: /metrics shows what registries see; and what
    /// a registry says of its pull quota is kept.
    fn count(&self, registry: &str, outcome: &Result<Response, RegistryError>) {
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
    }

    /// What an attempt's outcome asks for: the caller's answer, another try, or an error.
    async fn judge(
        &self,
        req: &Request<'_>,
        url: &mut url::Url,
        outcome: Result<Response, RegistryError>,
        reauthenticated: &mut bool,
    ) -> Result<Step, RegistryError> {
        let registry = req.registry();
        let method = req.method();
        Ok(match outcome {
            Ok(resp) if resp.status() == StatusCode::UNAUTHORIZED && !*reauthenticated => {
                *reauthenticated = true;
                self.learn_challenge(registry, &req.scope, resp.headers())
                    .await?;
                Step::Again
            }
            Ok(resp) if resp.status() == StatusCode::UNAUTHORIZED => {
                return Err(self.refused(req, url, resp.headers()));
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
                Step::Retry(status_error(registry, &method, url, resp).await, wait)
            }
            Ok(resp)
                if req.op.retries_unread_manifest() && resp.status() == StatusCode::BAD_REQUEST =>
            {
                let error = status_error(registry, &method, url, resp).await;
                if !is_unread_manifest(&error) {
                    return Err(error);
                }
                Step::Retry(error, None)
            }
            Ok(resp) => Step::Answer(resp),
            // Found to speak plain HTTP (a loopback registry, say): asked again over it.
            Err(_) if self.plain_http.switch_to_http(registry, url) => {
                let _ = url.set_scheme("http");
                Step::Again
            }
            Err(e) if e.is_retryable() => Step::Retry(e, None),
            Err(e) => return Err(e),
        })
    }

    /// One attempt of `req` at `url` (its URL, or the plain-HTTP one).
    async fn attempt(&self, req: &Request<'_>, url: &url::Url) -> Result<Response, RegistryError> {
        let registry = req.registry();
        let method = req.method();
        let transfer = req.op.transfer();
        self.admit(registry).await;
        let mut builder: RequestBuilder = self
            .http(registry, url)
            .request(method.clone(), url.clone())
            .headers(req.headers.clone());
        if let Some(h) = self.authorization(registry, &req.scope).await? {
            builder = builder.header(AUTHORIZATION, h);
        }
        builder = match &req.body {
            Body::Empty => builder,
            Body::Bytes(b) => builder.body(b.clone()),
        };
        let waiting = self.waiting_slots(registry);
        let _waiting = waiting.acquire().await;
        let resp = self.send(registry, &method, url, builder, transfer).await?;
        match self.redirect_to_verified(registry, &method, url, &resp) {
            // Sent by the checking pool, without the registry's credentials; that pool
            // follows any further redirects itself.
            Some(next) => {
                let builder = self
                    .http
                    .verifying
                    .request(method.clone(), next.clone())
                    .headers(req.headers.clone());
                self.send(registry, &method, &next, builder, transfer).await
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

    /// The error for a 401 that fresh credentials did not cure, saying which it was: the
    /// token service granted less than asked (anonymous push, say), or credentials refused.
    fn refused(&self, req: &Request<'_>, url: &url::Url, headers: &HeaderMap) -> RegistryError {
        let registry = req.registry();
        let method = req.method();
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
                req.scope.params().join(" ")
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

/// The error of a request not sent because the registry's pull quota is used up.
fn quota_used_up(req: &Request<'_>, url: &url::Url) -> RegistryError {
    RegistryError::Status {
        registry: req.registry().to_string(),
        method: req.method().to_string(),
        path: url.path().to_string(),
        status: 429,
        code: None,
        message: "not sent: the registry said its pull quota is used up (ratelimit-remaining: 0)"
            .into(),
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
