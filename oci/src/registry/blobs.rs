//! Blob operations: HEAD, cross-repository mount and the download a blob copy streams
//! from ([`Blobs`] for the HTTP client). Upload sessions and sending the bytes are
//! `upload.rs`'s; verification of what streams is the copy engine's (see `copy::transfer`).

use async_trait::async_trait;
use futures::{StreamExt, TryStreamExt};
use reqwest::header::{HeaderMap, HeaderValue, CONTENT_LENGTH, LOCATION};
use reqwest::StatusCode;

use super::api::{BlobBody, Blobs, MountOutcome};
use super::client::RegistryClient;
use super::code::ErrorCode;
use super::error::RegistryError;
use super::idle::{humanize, IdleLimited};
use super::quirks::Quirks;
use super::request::Operation;
use crate::name::Repository;

#[async_trait]
impl Blobs for RegistryClient {
    /// Size of a blob in a repository, `None` when it is not there.
    async fn head_blob(
        &self,
        repository: &Repository,
        digest: &str,
        push: bool,
    ) -> Result<Option<u64>, RegistryError> {
        let req = self
            .request(Operation::HeadBlob, repository, &format!("blobs/{digest}"))?
            .push(push);
        let resp = self.execute(&req).await?;
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
            _ => Err(req.status_error(resp).await),
        }
    }

    /// Asks the registry to link a blob from another of its repositories.
    async fn mount_blob(
        &self,
        repository: &Repository,
        digest: &str,
        from: &str,
    ) -> Result<MountOutcome, RegistryError> {
        let outcome = self.mount_request(repository, digest, from).await?;
        let registry = repository.registry();
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
    async fn mount_or_start(
        &self,
        repository: &Repository,
        digest: &str,
    ) -> Result<MountOutcome, RegistryError> {
        self.mount_request(repository, digest, repository.path())
            .await
    }

    /// Starts a blob download. Only the response head is held to the request limit: the
    /// body may take as long as it keeps flowing, each chunk within the idle limit.
    /// Redirects (to object storage) are followed without the registry's credentials.
    async fn open_blob(
        &self,
        repository: &Repository,
        digest: &str,
    ) -> Result<BlobBody, RegistryError> {
        let req = self.request(Operation::GetBlob, repository, &format!("blobs/{digest}"))?;
        let resp = self.execute(&req).await?;
        let resp = match resp.status() {
            s if s.is_success() => resp,
            StatusCode::NOT_FOUND => {
                return Err(RegistryError::NotFound {
                    registry: repository.registry().into(),
                    reference: format!("{repository}@{digest}"),
                    code: ErrorCode::BlobUnknown,
                })
            }
            _ => return Err(req.status_error(resp).await),
        };
        let size = resp.content_length();
        let idle = self.options().timeouts.idle;
        let stream = resp
            .bytes_stream()
            .map_err(|e| std::io::Error::other(e.without_url()))
            .boxed();
        let stream = IdleLimited::new(stream, idle, move || {
            std::io::Error::other(format!("the source sent nothing for {}", humanize(idle)))
        });
        Ok(BlobBody {
            size,
            stream: stream.boxed(),
        })
    }

    async fn mounts(&self, registry: &str) -> bool {
        self.quirks(registry).await.mounts()
    }
}

impl RegistryClient {
    /// `POST ?mount=DIGEST&from=FROM`: 201 mounted, 202 declined with a session.
    async fn mount_request(
        &self,
        repository: &Repository,
        digest: &str,
        from: &str,
    ) -> Result<MountOutcome, RegistryError> {
        let tail = format!("blobs/uploads/?mount={digest}&from={from}");
        let req = self
            .request(Operation::MountBlob, repository, &tail)?
            .and_pull(from)
            .headers(zero_length());
        let resp = self.execute(&req).await?;
        match resp.status() {
            StatusCode::CREATED => Ok(MountOutcome::Mounted),
            StatusCode::ACCEPTED => Ok(MountOutcome::Declined(location(
                repository.registry(),
                &req.url,
                resp.headers(),
            )?)),
            _ => Err(req.status_error(resp).await),
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
