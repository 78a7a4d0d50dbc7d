//! Upload sessions and sending a blob's bytes into them, the way each registry takes them
//! ([`Uploads`] for the HTTP client):
//!
//! - **whole**: one streamed `PUT ?digest=` (the default; nothing buffered);
//! - **chunked**: `PATCH` chunks with `Content-Range`, then an empty `PUT ?digest=`, for
//!   registries and proxies that refuse large bodies (a 413: Cloudflare stops at 100 MB).
//!   Chosen per registry by `--chunk-size REGISTRY=SIZE`, or after a 413, remembered for
//!   the process and shared through the fleet (see `quirks.rs`). A chunk that fails on the
//!   way is resumed from the offset the registry reports (`GET` on the session), not by a
//!   new session: only the current chunk is held in memory, so that is what can be resent;
//! - **single request** for small blobs: `POST ?digest=` with the bytes, one round trip
//!   instead of two where the registry completes it (201); a registry that opens a session
//!   instead (202, as distribution 2.8) gets the bytes by `PUT` there and is not offered
//!   the single request again.
//!
//! The session's `Location` may be relative, absolute, or on another host (object
//! storage): the registry's credentials go only to the registry's own host.
//!
//! A closing request (the `PUT ?digest=`, the single `POST ?digest=`) whose answer is an
//! error that may hide a commit (a 5xx or no answer: a load balancer that lost the
//! registry's 201; or, on a retry, `404 BLOB_UPLOAD_UNKNOWN` because the first one closed
//! the session) is followed by a HEAD of the blob: there with its size, the upload is
//! done; absent, it is sent again, in a new session when the old one is gone.

use async_trait::async_trait;
use bytes::Bytes;
use futures::Stream;
use reqwest::header::{HeaderValue, AUTHORIZATION, CONTENT_LENGTH, CONTENT_TYPE};
use reqwest::{Method, RequestBuilder, Response, StatusCode};

use super::api::{Blobs, ByteStream, Uploads};
use super::blobs::{location, zero_length};
use super::client::RegistryClient;
use super::error::RegistryError;
use super::failure::{status_error, transport_error};
use super::idle;
use super::request::{Operation, Request};
use super::retry::RetryPolicy;
use super::scope::{Access, Scope};
use crate::name::{api_host, Repository};

/// Blobs up to this size are read whole and offered in a single `POST ?digest=`.
pub const SINGLE_REQUEST_MAX: u64 = 1024 * 1024;

/// New sessions a small blob (its bytes in memory) is sent in after its session was lost.
const SESSION_RESTARTS: u32 = 2;

#[async_trait]
impl Uploads for RegistryClient {
    /// Opens an upload session and returns where to send the bytes.
    async fn start_upload(&self, repository: &Repository) -> Result<url::Url, RegistryError> {
        let req = self
            .request(Operation::StartUpload, repository, "blobs/uploads/")?
            .headers(zero_length());
        let resp = self.execute(&req).await?;
        if resp.status() != StatusCode::ACCEPTED {
            return Err(req.status_error(resp).await);
        }
        location(repository.registry(), &req.url, resp.headers())
    }

    /// Abandons an upload session (best effort: the registry expires it anyway).
    async fn cancel_upload(&self, repository: &Repository, session: url::Url) {
        let req = Request::new(Operation::CancelUpload, repository, session);
        if let Err(e) = self.execute(&req).await {
            tracing::debug!(registry = repository.registry(), repository = repository.path(), error = %e, "cancelling upload session failed");
        }
    }

    /// Completes an upload session with `body` (`size` bytes): in one streamed PUT, or in
    /// chunks where the registry needs them. Not retried as a whole: the stream cannot be
    /// replayed, so the caller restarts the transfer (a new download and a new session)
    /// when this fails with a retryable error, or with a 413 (the next try goes in chunks).
    /// No limit on the total time; the upload fails when the destination takes no bytes
    /// for the idle limit, or does not answer within it once it has them all.
    async fn finish_upload(
        &self,
        repository: &Repository,
        session: url::Url,
        digest: &str,
        size: u64,
        body: ByteStream,
    ) -> Result<(), RegistryError> {
        let registry = repository.registry();
        let quirks = self.quirks(registry).await;
        match quirks.chunk_size {
            Some(chunk) if size > chunk || size == 0 => {
                self.upload_chunked(repository, session, digest, body, chunk)
                    .await
            }
            _ => {
                let result = self
                    .upload_whole(repository, session, digest, size, body)
                    .await;
                if let Err(RegistryError::Status { status: 413, .. }) = &result {
                    let chunk = quirks.chunk_after_413(size);
                    self.learn(registry, |q| q.chunk_size = Some(chunk)).await;
                    tracing::warn!(
                        registry,
                        chunk_bytes = chunk,
                        "the registry refused a whole blob as too large (413): uploading in chunks from now on"
                    );
                }
                result
            }
        }
    }

    /// Uploads a small blob held in memory: one `POST ?digest=` where the registry
    /// completes it, else a session and one `PUT`. Each request is retried here (the bytes
    /// are at hand), and a lost session is replaced by a new one, so the caller does not
    /// retry the upload as a whole.
    async fn upload_small(
        &self,
        repository: &Repository,
        digest: &str,
        bytes: Bytes,
    ) -> Result<(), RegistryError> {
        let mut restarts = 0;
        loop {
            match self
                .upload_small_once(repository, digest, bytes.clone())
                .await
            {
                Err(e) if e.is_upload_session_lost() && restarts < SESSION_RESTARTS => {
                    restarts += 1;
                    tracing::warn!(registry = repository.registry(), repository = repository.path(), digest, error = %e, "the upload session was lost and the blob is not there; sending it in a new session");
                }
                other => return other,
            }
        }
    }

    async fn probes_small_blobs(&self, registry: &str) -> bool {
        let q = self.quirks(registry).await;
        q.mounts() && q.single_post == Some(false)
    }

    fn retry_policy(&self) -> RetryPolicy {
        self.options().retry.clone()
    }
}

impl RegistryClient {
    /// One streamed `PUT ?digest=` with the whole blob.
    async fn upload_whole<S>(
        &self,
        repository: &Repository,
        session: url::Url,
        digest: &str,
        size: u64,
        body: S,
    ) -> Result<(), RegistryError>
    where
        S: Stream<Item = Result<Bytes, std::io::Error>> + Send + Unpin + 'static,
    {
        let registry = repository.registry();
        let mut url = session;
        url.query_pairs_mut().append_pair("digest", digest);
        let (body, watch) = idle::watch(Box::pin(body));
        let req = self
            .http(registry, &url)
            .put(url.clone())
            .header(CONTENT_TYPE, "application/octet-stream")
            .header(CONTENT_LENGTH, size)
            .body(reqwest::Body::wrap_stream(body));
        let req = self.session_request(repository, &url, req).await?;
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
        match self.finish(registry, &Method::PUT, &url, sent).await {
            Err(e) if self.committed(repository, digest, size, &e).await => Ok(()),
            other => other,
        }
    }

    async fn upload_small_once(
        &self,
        repository: &Repository,
        digest: &str,
        bytes: Bytes,
    ) -> Result<(), RegistryError> {
        let registry = repository.registry();
        let size = bytes.len() as u64;
        if self.quirks(registry).await.single_post != Some(false) {
            let req = self
                .request(
                    Operation::PostBlob,
                    repository,
                    &format!("blobs/uploads/?digest={digest}"),
                )?
                .headers(octet_stream(bytes.len()))
                .bytes(bytes.clone());
            let resp = match self.execute(&req).await {
                Ok(resp) => resp,
                Err(e) if self.committed(repository, digest, size, &e).await => return Ok(()),
                Err(e) => return Err(e),
            };
            match resp.status() {
                StatusCode::CREATED => {
                    self.learn(registry, |q| q.single_post = Some(true)).await;
                    return Ok(());
                }
                StatusCode::ACCEPTED => {
                    // A session was opened and the bytes ignored: send them there.
                    self.learn(registry, |q| q.single_post = Some(false)).await;
                    let session = location(registry, &req.url, resp.headers())?;
                    return self
                        .put_bytes(repository, session, digest, bytes, size)
                        .await;
                }
                _ => return Err(req.status_error(resp).await),
            }
        }
        let session = self.start_upload(repository).await?;
        self.put_bytes(repository, session, digest, bytes, size)
            .await
    }

    /// The closing `PUT ?digest=` of a session, with `bytes` (all of the blob, or none
    /// when chunks brought them), retried while its failure may pass; a failure that may
    /// hide a commit first checks whether the blob of `size` bytes is there.
    pub(super) async fn put_bytes(
        &self,
        repository: &Repository,
        session: url::Url,
        digest: &str,
        bytes: Bytes,
        size: u64,
    ) -> Result<(), RegistryError> {
        let registry = repository.registry();
        let mut url = session;
        url.query_pairs_mut().append_pair("digest", digest);
        // The bytes are in memory, so a failed PUT is simply sent again, as `execute` does
        // for other requests (its retries are by the registry's URL; this is the session's).
        let policy = &self.options().retry;
        let mut attempt = 0;
        loop {
            attempt += 1;
            let req = self
                .http(registry, &url)
                .put(url.clone())
                .headers(octet_stream(bytes.len()))
                .timeout(self.options().timeouts.request)
                .body(bytes.clone());
            let req = self.session_request(repository, &url, req).await?;
            let sent = req.send().await;
            let e = match self.finish(registry, &Method::PUT, &url, sent).await {
                Err(e) if may_hide_a_commit(&e) => e,
                other => return other,
            };
            if self.committed(repository, digest, size, &e).await {
                return Ok(());
            }
            if !e.is_retryable() || attempt >= policy.max_attempts {
                return Err(e);
            }
            tokio::time::sleep(policy.delay(attempt, None)).await;
        }
    }

    /// Whether the blob is in the repository with `size` bytes (0: any size) after all,
    /// asked (HEAD) after `failure` of a closing request when that failure may hide a
    /// commit. A HEAD that fails says no: the closing request's own failure then stands.
    async fn committed(
        &self,
        repository: &Repository,
        digest: &str,
        size: u64,
        failure: &RegistryError,
    ) -> bool {
        if !may_hide_a_commit(failure) {
            return false;
        }
        let (registry, path) = (repository.registry(), repository.path());
        match self.head_blob(repository, digest, true).await {
            Ok(Some(have)) if have == size || size == 0 => {
                tracing::warn!(registry, repository = path, digest, error = %failure, "the upload's closing request failed, but the blob is at the destination: upload done (its answer was lost)");
                true
            }
            Ok(Some(have)) => {
                tracing::warn!(registry, repository = path, digest, size, have, error = %failure, "after a failed upload the destination has the blob with another size; sending it again");
                false
            }
            Ok(None) => false,
            Err(e) => {
                tracing::debug!(registry, repository = path, digest, error = %e, "checking for the blob after a failed upload failed");
                false
            }
        }
    }

    /// Admits a request to an upload session and authorizes it, but only when the session
    /// lives on the registry's own host: a session elsewhere (object storage) is addressed
    /// by its URL alone, and the registry's credentials must not travel there.
    pub(super) async fn session_request(
        &self,
        repository: &Repository,
        url: &url::Url,
        req: RequestBuilder,
    ) -> Result<RequestBuilder, RegistryError> {
        let registry = repository.registry();
        self.admit(registry).await;
        if !on_registry_host(registry, url) {
            return Ok(req);
        }
        let scope = Scope::repo(repository.path(), Access::Push);
        Ok(match self.authorization(registry, &scope).await? {
            Some(h) => req.header(AUTHORIZATION, h),
            None => req,
        })
    }

    /// Counts the answer and turns anything but success into an error.
    async fn finish(
        &self,
        registry: &str,
        method: &Method,
        url: &url::Url,
        sent: Result<Response, reqwest::Error>,
    ) -> Result<(), RegistryError> {
        self.observe(registry, sent.as_ref().ok().map(|r| r.status().as_u16()));
        let resp = sent.map_err(|e| transport_error(registry, method, url, e))?;
        if resp.status().is_success() {
            Ok(())
        } else {
            Err(status_error(registry, method, url, resp).await)
        }
    }
}

/// A closing request's failure after which the blob may be committed all the same: a
/// server error or no answer (the registry's may have been lost on the way), or a lost
/// session (closed by an earlier try whose answer was lost).
fn may_hide_a_commit(e: &RegistryError) -> bool {
    match e {
        RegistryError::Transport { .. } => true,
        RegistryError::Status { status, .. } if *status >= 500 => true,
        e => e.is_upload_session_lost(),
    }
}

/// Whether an upload session URL is on the registry's own API host (credentials go
/// there) rather than elsewhere (object storage: they must not).
fn on_registry_host(registry: &str, url: &url::Url) -> bool {
    url.host_str()
        .map(|h| match url.port() {
            Some(p) => format!("{h}:{p}"),
            None => h.to_string(),
        })
        .is_some_and(|h| h == api_host(registry))
}

fn octet_stream(len: usize) -> reqwest::header::HeaderMap {
    let mut h = reqwest::header::HeaderMap::new();
    h.insert(
        CONTENT_TYPE,
        HeaderValue::from_static("application/octet-stream"),
    );
    h.insert(CONTENT_LENGTH, HeaderValue::from(len));
    h
}

#[cfg(test)]
mod tests {
    use super::*;
    use reqwest::header::{HeaderMap, LOCATION};

    fn located(base: &str, loc: &str) -> url::Url {
        let mut h = HeaderMap::new();
        h.insert(LOCATION, HeaderValue::from_str(loc).unwrap());
        location("r.io", &url::Url::parse(base).unwrap(), &h).unwrap()
    }

    #[test]
    fn relative_and_absolute_session_locations_resolve_against_the_request() {
        let base = "https://r.io/v2/a/blobs/uploads/";
        assert_eq!(
            located(base, "/v2/a/blobs/uploads/u1?_state=x").as_str(),
            "https://r.io/v2/a/blobs/uploads/u1?_state=x"
        );
        assert_eq!(
            located(base, "https://storage.example.com/up/u1?sig=1").as_str(),
            "https://storage.example.com/up/u1?sig=1"
        );
    }

    #[test]
    fn credentials_go_to_sessions_on_the_registry_host_only() {
        let own = url::Url::parse("https://r.io:5000/v2/a/blobs/uploads/u1").unwrap();
        let elsewhere = url::Url::parse("https://storage.example.com/up/u1").unwrap();
        assert!(on_registry_host("r.io:5000", &own));
        assert!(!on_registry_host("r.io:5000", &elsewhere));
        let hub = url::Url::parse("https://registry-1.docker.io/v2/x/blobs/uploads/u").unwrap();
        assert!(on_registry_host("docker.io", &hub), "docker.io's API host");
    }
}
