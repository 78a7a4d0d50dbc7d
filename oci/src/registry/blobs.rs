//! Blob operations: HEAD, cross-repository mount, opening and cancelling an upload session,
//! and the download a blob copy streams from. Sending the bytes is `upload.rs`'s;
//! verification of what streams is the copy engine's (see `copy::transfer`).

use reqwest::header::{HeaderMap, HeaderValue, CONTENT_LENGTH, LOCATION};
use reqwest::{Method, StatusCode};

use super::auth::{Access, Scope};
use super::client::{status_error, Body, RegistryClient, Transfer};
use super::code::ErrorCode;
use super::error::RegistryError;
use super::quirks::Quirks;

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
            // From the header: the body of a HEAD answer is empty, whatever it announces.
            s if s.is_success() => Ok(Some(
                resp.headers()
                    .get(CONTENT_LENGTH)
                    .and_then(|v| v.to_str().ok())
                    .and_then(|v| v.trim().parse().ok())
                    .unwrap_or(0),
            )),
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
        let outcome = self
            .mount_request(registry, repository, digest, from)
            .await?;
        match &outcome {
            MountOutcome::Mounted => self.learn(registry, |q| q.mounts_work = true).await,
            MountOutcome::Declined(_) => {
                let mut now_refused = false;
                self.learn(registry, |q| {
                    q.mounts_declined += 1;
                    now_refused = !q.mounts() && q.mounts_declined == Quirks::NEVER_MOUNTS_AFTER;
                })
                .await;
                if now_refused {
                    tracing::info!(
                        registry,
                        declined = Quirks::NEVER_MOUNTS_AFTER,
                        "the registry declined every mount asked: blobs are uploaded without asking"
                    );
                }
            }
        }
        Ok(outcome)
    }

    /// Links the blob if the repository already has it, else opens an upload session: a
    /// mount from the repository itself, one request where a HEAD and a session would be
    /// two. Not counted as a declined mount (the blob was not expected to be there).
    pub async fn mount_or_start(
        &self,
        registry: &str,
        repository: &str,
        digest: &str,
    ) -> Result<MountOutcome, RegistryError> {
        self.mount_request(registry, repository, digest, repository)
            .await
    }

    /// `POST ?mount=DIGEST&from=FROM`: 201 mounted, 202 declined with a session.
    async fn mount_request(
        &self,
        registry: &str,
        repository: &str,
        digest: &str,
        from: &str,
    ) -> Result<MountOutcome, RegistryError> {
        let path = format!("/v2/{repository}/blobs/uploads/?mount={digest}&from={from}");
        let url = self.url(registry, &path)?;
        let scope = Scope::repo(repository, Access::Push).and_pull(from);
        let resp = self.post_empty(registry, &scope, &url).await?;
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
        let resp = self.post_empty(registry, &scope, &url).await?;
        if resp.status() != StatusCode::ACCEPTED {
            return Err(status_error(registry, &Method::POST, &url, resp).await);
        }
        location(registry, &url, resp.headers())
    }

    /// A bodiless POST (a session or a mount asked for).
    async fn post_empty(
        &self,
        registry: &str,
        scope: &Scope,
        url: &url::Url,
    ) -> Result<reqwest::Response, RegistryError> {
        self.execute(
            registry,
            scope,
            Method::POST,
            url.clone(),
            zero_length(),
            Body::Empty,
        )
        .await
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
}

pub(crate) fn zero_length() -> HeaderMap {
    let mut h = HeaderMap::new();
    h.insert(CONTENT_LENGTH, HeaderValue::from_static("0"));
    h
}

/// The upload session URL from `Location`, which may be relative to the request.
pub(crate) fn location(
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
