//! Manifest operations: GET (with digest verification), HEAD, PUT: [`Manifests`] for the
//! HTTP client.

use async_trait::async_trait;
use reqwest::header::{HeaderMap, HeaderValue, ACCEPT, CONTENT_TYPE};
use reqwest::{Response, StatusCode};

use super::api::Manifests;
use super::client::RegistryClient;
use super::code::ErrorCode;
use super::error::RegistryError;
use super::failure::transport_error;
use super::request::{Operation, Request};
use crate::manifest::{Manifest, ACCEPT_ALL, MAX_MANIFEST_BYTES};
use crate::name::{Reference, Repository};

const DOCKER_CONTENT_DIGEST: &str = "docker-content-digest";

fn accept_headers() -> HeaderMap {
    let mut h = HeaderMap::new();
    h.insert(ACCEPT, HeaderValue::from_static(ACCEPT_ALL));
    h
}

#[async_trait]
impl Manifests for RegistryClient {
    /// The digest a tag (or digest) currently points at, `None` when it does not exist.
    /// `push` asks for a pull+push token, so a destination check and the later push
    /// share one token.
    async fn head_manifest(
        &self,
        repository: &Repository,
        reference: &Reference,
        push: bool,
    ) -> Result<Option<String>, RegistryError> {
        let req = self
            .request(
                Operation::HeadManifest,
                repository,
                &format!("manifests/{reference}"),
            )?
            .push(push)
            .headers(accept_headers());
        let resp = self.execute(&req).await?;
        match resp.status() {
            StatusCode::NOT_FOUND => Ok(None),
            s if s.is_success() => match header_digest(resp.headers()) {
                Some(d) => Ok(Some(d)),
                // A registry that does not announce digests: fetch and hash.
                None => Ok(Some(self.get_manifest(repository, reference).await?.digest)),
            },
            _ => Err(req.status_error(resp).await),
        }
    }

    /// Fetches a manifest by tag or digest and checks that the bytes received hash to the
    /// digest asked for (or announced by the registry).
    async fn get_manifest(
        &self,
        repository: &Repository,
        reference: &Reference,
    ) -> Result<Manifest, RegistryError> {
        let req = self
            .request(
                Operation::GetManifest,
                repository,
                &format!("manifests/{reference}"),
            )?
            .headers(accept_headers());
        let resp = self.execute(&req).await?;
        let name = repository.at(reference);
        if resp.status() == StatusCode::NOT_FOUND {
            return Err(not_found(repository.registry(), &name, resp).await);
        }
        if !resp.status().is_success() {
            return Err(req.status_error(resp).await);
        }
        let content_type = resp
            .headers()
            .get(CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            .map(str::to_string);
        let announced = header_digest(resp.headers());
        let bytes = read_manifest(&req, &name, resp).await?;
        let mut manifest = Manifest::parse(bytes, content_type.as_deref()).map_err(|e| {
            RegistryError::Protocol {
                registry: repository.registry().into(),
                message: format!("{name}: {e}"),
            }
        })?;
        if manifest.is_schema1() {
            // Schema1 digests cover the payload without its signatures: trust the registry.
            if let Some(d) = announced {
                manifest.digest = d;
            }
            return Ok(manifest);
        }
        let expected = match reference.as_digest() {
            Some(d) if d.starts_with("sha256:") => Some(d.to_string()),
            _ => announced,
        };
        if let Some(expected) = expected {
            if expected != manifest.digest {
                return Err(RegistryError::DigestMismatch {
                    what: name,
                    expected,
                    actual: manifest.digest,
                });
            }
        }
        Ok(manifest)
    }

    /// Pushes manifest bytes unchanged under a tag or digest. (A `400 DIGEST_INVALID`
    /// answer is tried again by the retry loop: see `execute.rs`.)
    async fn put_manifest(
        &self,
        repository: &Repository,
        reference: &Reference,
        manifest: &Manifest,
    ) -> Result<(), RegistryError> {
        let mut headers = HeaderMap::new();
        let ct =
            HeaderValue::from_str(&manifest.media_type).map_err(|_| RegistryError::Protocol {
                registry: repository.registry().into(),
                message: format!("bad media type {}", manifest.media_type),
            })?;
        headers.insert(CONTENT_TYPE, ct);
        let req = self
            .request(
                Operation::PutManifest,
                repository,
                &format!("manifests/{reference}"),
            )?
            .headers(headers)
            .bytes(manifest.bytes.clone());
        let resp = self.execute(&req).await?;
        if resp.status().is_success() {
            Ok(())
        } else {
            Err(req.status_error(resp).await)
        }
    }
}

/// A manifest's bytes, refused past [`MAX_MANIFEST_BYTES`]: read chunk by chunk, so that a
/// missing or false Content-Length does not make us buffer more than the limit either.
async fn read_manifest(
    req: &Request<'_>,
    name: &str,
    mut resp: Response,
) -> Result<bytes::Bytes, RegistryError> {
    let too_big = |size: u64| RegistryError::Protocol {
        registry: req.registry().into(),
        message: format!(
            "{name}: the manifest is {size} bytes or more, over the {MAX_MANIFEST_BYTES}-byte limit"
        ),
    };
    if let Some(size) = resp.content_length().filter(|n| *n > MAX_MANIFEST_BYTES) {
        return Err(too_big(size));
    }
    let mut bytes = Vec::new();
    while let Some(chunk) = resp
        .chunk()
        .await
        .map_err(|e| transport_error(req.registry(), &req.method(), &req.url, e))?
    {
        bytes.extend_from_slice(&chunk);
        if bytes.len() as u64 > MAX_MANIFEST_BYTES {
            return Err(too_big(bytes.len() as u64));
        }
    }
    Ok(bytes::Bytes::from(bytes))
}

pub(crate) fn header_digest(headers: &HeaderMap) -> Option<String> {
    headers
        .get(DOCKER_CONTENT_DIGEST)
        .and_then(|v| v.to_str().ok())
        .map(|s| s.trim().to_string())
}

async fn not_found(registry: &str, name: &str, resp: reqwest::Response) -> RegistryError {
    let text = super::body::read_error_body(resp).await;
    let (code, _) = super::error::parse_error_body(&text);
    RegistryError::NotFound {
        registry: registry.into(),
        reference: name.to_string(),
        code: code.unwrap_or_else(|| ErrorCode::Other("404".into())),
    }
}
