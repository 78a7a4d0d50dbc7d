//! A minimal client for the registry HTTP API (OCI distribution spec).
//!
//! Why: fixtures must be built independently of the code under test, so the
//! test bed has its own few dozen lines of reqwest instead of mirror-common's
//! client. It sends Basic auth when the registry has htpasswd and trusts the
//! registry's test CA.

use anyhow::{bail, Context, Result};
use bytes::Bytes;
use reqwest::{Method, RequestBuilder, Response, StatusCode};

use crate::layer::{sha256_digest, Blob, Layer, UPLOAD_CHUNK};
use crate::registry::Registry;

/// An authenticated HTTP client bound to one [`Registry`].
#[derive(Debug, Clone)]
pub struct RegistryApi {
    client: reqwest::Client,
    base: String,
    auth: Option<(String, String)>,
}

impl RegistryApi {
    /// A client for `registry`, with its CA and credentials.
    pub fn new(registry: &Registry) -> Result<RegistryApi> {
        Ok(RegistryApi {
            client: registry.client()?,
            base: registry.url(),
            auth: registry
                .credentials()
                .map(|(u, p)| (u.to_string(), p.to_string())),
        })
    }

    /// A request to `path_or_url` (a `/v2/...` path, or an absolute URL as
    /// returned in `Location`), with Basic auth when configured.
    pub fn request(&self, method: Method, path_or_url: &str) -> RequestBuilder {
        let url = if path_or_url.starts_with("http://") || path_or_url.starts_with("https://") {
            path_or_url.to_string()
        } else {
            format!("{}{}", self.base, path_or_url)
        };
        let builder = self.client.request(method, url);
        match &self.auth {
            Some((user, pass)) => builder.basic_auth(user, Some(pass)),
            None => builder,
        }
    }

    /// Whether `repo` has the blob (`HEAD /v2/<repo>/blobs/<digest>`).
    pub async fn blob_exists(&self, repo: &str, digest: &str) -> Result<bool> {
        let resp = self
            .request(Method::HEAD, &format!("/v2/{repo}/blobs/{digest}"))
            .send()
            .await
            .with_context(|| format!("HEAD blob {digest} in {repo}"))?;
        match resp.status() {
            StatusCode::OK => Ok(true),
            StatusCode::NOT_FOUND => Ok(false),
            other => bail!("HEAD blob {digest} in {repo}: unexpected status {other}"),
        }
    }

    /// Uploads an in-memory blob (POST, then PUT with the body), unless present.
    pub async fn push_blob(&self, repo: &str, blob: &Blob) -> Result<()> {
        self.push_bytes(repo, &blob.digest, blob.data.clone()).await
    }

    /// Uploads a layer unless the repository already has it: in one PUT when
    /// it is in memory, else as chunked PATCHes closed by `PUT ?digest=`.
    pub async fn push_layer(&self, repo: &str, layer: &Layer) -> Result<()> {
        match layer.bytes() {
            Some(bytes) => self.push_bytes(repo, layer.digest(), bytes.clone()).await,
            None => self.push_chunked(repo, layer).await,
        }
    }

    /// PUTs a manifest under `reference` (tag or digest) and returns the digest
    /// the registry reports, checked against the sha256 of `bytes`.
    pub async fn put_manifest(
        &self,
        repo: &str,
        reference: &str,
        media_type: &str,
        bytes: Bytes,
    ) -> Result<String> {
        let expected = sha256_digest(&bytes);
        let resp = self
            .request(Method::PUT, &format!("/v2/{repo}/manifests/{reference}"))
            .header("Content-Type", media_type)
            .body(bytes)
            .send()
            .await
            .with_context(|| format!("PUT manifest {repo}:{reference}"))?;
        let resp = expect(resp, StatusCode::CREATED, "PUT manifest").await?;
        if let Some(reported) = header(&resp, "Docker-Content-Digest") {
            if reported != expected {
                bail!("registry reports manifest digest {reported}, expected {expected}");
            }
        }
        Ok(expected)
    }

    async fn push_bytes(&self, repo: &str, digest: &str, data: Bytes) -> Result<()> {
        if self.blob_exists(repo, digest).await? {
            return Ok(());
        }
        let location = self.start_upload(repo).await?;
        let resp = self
            .request(Method::PUT, &with_digest(&location, digest))
            .header("Content-Type", "application/octet-stream")
            .body(data)
            .send()
            .await
            .with_context(|| format!("PUT blob {digest} to {repo}"))?;
        expect(resp, StatusCode::CREATED, "PUT blob").await?;
        Ok(())
    }

    async fn push_chunked(&self, repo: &str, layer: &Layer) -> Result<()> {
        let digest = layer.digest();
        if self.blob_exists(repo, digest).await? {
            return Ok(());
        }
        let mut location = self.start_upload(repo).await?;
        let mut offset = 0u64;
        for chunk in layer.chunks(UPLOAD_CHUNK) {
            let len = chunk.len() as u64;
            let resp = self
                .request(Method::PATCH, &location)
                .header("Content-Type", "application/octet-stream")
                .header("Content-Range", format!("{}-{}", offset, offset + len - 1))
                .body(chunk)
                .send()
                .await
                .with_context(|| format!("PATCH blob {digest} at offset {offset}"))?;
            let resp = expect(resp, StatusCode::ACCEPTED, "PATCH blob chunk").await?;
            location = header(&resp, "Location").context("PATCH answer has no Location")?;
            offset += len;
        }
        let resp = self
            .request(Method::PUT, &with_digest(&location, digest))
            .send()
            .await
            .with_context(|| format!("closing upload of {digest}"))?;
        expect(resp, StatusCode::CREATED, "PUT blob (close upload)").await?;
        Ok(())
    }

    /// `POST /v2/<repo>/blobs/uploads/`, returning the upload's Location.
    async fn start_upload(&self, repo: &str) -> Result<String> {
        let resp = self
            .request(Method::POST, &format!("/v2/{repo}/blobs/uploads/"))
            .send()
            .await
            .with_context(|| format!("starting an upload to {repo}"))?;
        let resp = expect(resp, StatusCode::ACCEPTED, "POST blob upload").await?;
        header(&resp, "Location").context("upload answer has no Location")
    }
}

/// Appends `digest=` to an upload location that may already carry a query.
fn with_digest(location: &str, digest: &str) -> String {
    let sep = if location.contains('?') { '&' } else { '?' };
    format!("{location}{sep}digest={digest}")
}

/// A header's value as a string, if present and ASCII.
pub(crate) fn header(resp: &Response, name: &str) -> Option<String> {
    resp.headers()
        .get(name)
        .and_then(|v| v.to_str().ok())
        .map(str::to_string)
}

/// Passes the response on when it has `status`, else fails with its body.
pub(crate) async fn expect(resp: Response, status: StatusCode, what: &str) -> Result<Response> {
    if resp.status() == status {
        return Ok(resp);
    }
    let got = resp.status();
    let body = resp.text().await.unwrap_or_default();
    bail!("{what}: expected {status}, got {got}: {body}")
}
