//! Blob operations: HEAD, cross-repository mount, and the upload session (POST, then one
//! streamed PUT) that a blob copy uses. Streaming lives here; verification of what streams
//! is the copy engine's (see `copy::transfer`).

use bytes::Bytes;
use futures::Stream;
use reqwest::header::{
    HeaderMap, HeaderValue, AUTHORIZATION, CONTENT_LENGTH, CONTENT_TYPE, LOCATION,
};
use reqwest::{Method, StatusCode};

use super::auth::{Access, Scope};
use super::client::{status_error, transport_error, Body, RegistryClient, Transfer};
use super::code::ErrorCode;
use super::error::RegistryError;
use super::idle;

/// What a registry did with a mount request.
#[derive(Debug)]
pub enum MountOutcome {
    /// 201: the blob is now in the target repository.
    Mounted,
    /// 202: the registry declined (the `from` repository lacks the blob, or mounts are off)
    /// and opened an upload session instead, at this location.
    Declined(url::Url),
}

impl RegistryClient {
    /// Size of a blob in a repository, `None` when it is not there.
    pub async fn head_blob(
        &self,
        registry: &str,
        repository: &str,
        digest: &str,
        push: bool,
    ) -> Result<Option<u64>, RegistryError> {
        let url = self.url(registry, &format!("/v2/{repository}/blobs/{digest}"))?;
        let scope = Scope::repo(repository, if push { Access::Push } else { Access::Pull });
        let resp = self
            .execute(
                registry,
                &scope,
                Method::HEAD,
                url.clone(),
                HeaderMap::new(),
                Body::Empty,
            )
            .await?;
        match resp.status() {
            StatusCode::NOT_FOUND => Ok(None),
            s if s.is_success() => Ok(Some(resp.content_length().unwrap_or(0))),
            _ => Err(status_error(registry, &Method::HEAD, &url, resp).await),
        }
    }

    /// Asks the registry to link a blob from another of its repositories.
    pub async fn mount_blob(
        &self,
        registry: &str,
        repository: &str,
        digest: &str,
        from: &str,
    ) -> Result<MountOutcome, RegistryError> {
        let path = format!("/v2/{repository}/blobs/uploads/?mount={digest}&from={from}");
        let url = self.url(registry, &path)?;
        let scope = Scope::repo(repository, Access::Push).and_pull(from);
        let resp = self
            .execute(
                registry,
                &scope,
                Method::POST,
                url.clone(),
                zero_length(),
                Body::Empty,
            )
            .await?;
        match resp.status() {
            StatusCode::CREATED => Ok(MountOutcome::Mounted),
            StatusCode::ACCEPTED => Ok(MountOutcome::Declined(location(
                registry,
                &url,
                resp.headers(),
            )?)),
            _ => Err(status_error(registry, &Method::POST, &url, resp).await),
        }
    }

    /// Opens an upload session and returns where to send the bytes.
    pub async fn start_upload(
        &self,
        registry: &str,
        repository: &str,
    ) -> Result<url::Url, RegistryError> {
        let url = self.url(registry, &format!("/v2/{repository}/blobs/uploads/"))?;
        let scope = Scope::repo(repository, Access::Push);
        let resp = self
            .execute(
                registry,
                &scope,
                Method::POST,
                url.clone(),
                zero_length(),
                Body::Empty,
            )
            .await?;
        if resp.status() != StatusCode::ACCEPTED {
            return Err(status_error(registry, &Method::POST, &url, resp).await);
        }
        location(registry, &url, resp.headers())
    }

    /// Abandons an upload session (best effort: the registry expires it anyway).
    pub async fn cancel_upload(&self, registry: &str, repository: &str, session: url::Url) {
        let scope = Scope::repo(repository, Access::Push);
        if let Err(e) = self
            .execute(
                registry,
                &scope,
                Method::DELETE,
                session,
                HeaderMap::new(),
                Body::Empty,
            )
            .await
        {
            tracing::debug!(registry, repository, error = %e, "cancelling upload session failed");
        }
    }

    /// Starts a blob download; the caller streams `bytes_stream()` of the response. Only
    /// the response head is held to the request limit: the body may take as long as it
    /// keeps flowing (see [`Registries::open_blob`](super::Registries::open_blob)).
    /// Redirects (to object storage) are followed without the registry's credentials.
    pub async fn open_blob(
        &self,
        registry: &str,
        repository: &str,
        digest: &str,
    ) -> Result<reqwest::Response, RegistryError> {
        let url = self.url(registry, &format!("/v2/{repository}/blobs/{digest}"))?;
        let scope = Scope::repo(repository, Access::Pull);
        let resp = self
            .execute_with(
                registry,
                &scope,
                Method::GET,
                url.clone(),
                HeaderMap::new(),
                Body::Empty,
                Transfer::Streamed,
            )
            .await?;
        match resp.status() {
            s if s.is_success() => Ok(resp),
            StatusCode::NOT_FOUND => Err(RegistryError::NotFound {
                registry: registry.into(),
                reference: format!("{registry}/{repository}@{digest}"),
                code: ErrorCode::BlobUnknown,
            }),
            _ => Err(status_error(registry, &Method::GET, &url, resp).await),
        }
    }

    /// Completes an upload session with one PUT whose body streams `body` (`size` bytes).
    /// Not retried here: the stream cannot be replayed, so the caller restarts the whole
    /// transfer (a new download and a new session) when this fails with a retryable error.
    /// No limit on the total time; the upload fails when the destination takes no bytes
    /// for the idle limit, or does not answer within it once it has them all.
    pub async fn finish_upload<S>(
        &self,
        registry: &str,
        repository: &str,
        session: url::Url,
        digest: &str,
        size: u64,
        body: S,
    ) -> Result<(), RegistryError>
    where
        S: Stream<Item = Result<Bytes, std::io::Error>> + Send + 'static,
    {
        let mut url = session;
        url.query_pairs_mut().append_pair("digest", digest);
        self.admit(registry).await;
        let scope = Scope::repo(repository, Access::Push);
        let (body, watch) = idle::watch(Box::pin(body));
        let mut req = self
            .http
            .put(url.clone())
            .header(CONTENT_TYPE, "application/octet-stream")
            .header(CONTENT_LENGTH, size)
            .body(reqwest::Body::wrap_stream(body));
        if let Some(h) = self.authorization(registry, &scope).await? {
            req = req.header(AUTHORIZATION, h);
        }
        let idle = self.options().timeouts.idle;
        let sent = tokio::select! {
            sent = req.send() => sent,
            why = watch.stalled(idle) => {
                self.observe(registry, None);
                return Err(RegistryError::Transport {
                    registry: registry.to_string(),
                    method: "PUT".into(),
                    path: url.path().to_string(),
                    message: why,
                });
            }
        };
        self.observe(registry, sent.as_ref().ok().map(|r| r.status().as_u16()));
        let resp = sent.map_err(|e| transport_error(registry, &Method::PUT, &url, e))?;
        if resp.status() == StatusCode::CREATED || resp.status().is_success() {
            Ok(())
        } else {
            Err(status_error(registry, &Method::PUT, &url, resp).await)
        }
    }
}

fn zero_length() -> HeaderMap {
    let mut h = HeaderMap::new();
    h.insert(CONTENT_LENGTH, HeaderValue::from_static("0"));
    h
}

/// The upload session URL from `Location`, which may be relative to the request.
fn location(
    registry: &str,
    base: &url::Url,
    headers: &HeaderMap,
) -> Result<url::Url, RegistryError> {
    let loc = headers
        .get(LOCATION)
        .and_then(|v| v.to_str().ok())
        .ok_or_else(|| RegistryError::Protocol {
            registry: registry.into(),
            message: format!(
                "POST {}: no Location header for the upload session",
                base.path()
            ),
        })?;
    base.join(loc).map_err(|e| RegistryError::Protocol {
        registry: registry.into(),
        message: format!("bad upload Location {loc}: {e}"),
    })
}
