//! Manifest operations: GET (with digest verification), HEAD, PUT.

use reqwest::header::{HeaderMap, HeaderValue, ACCEPT, CONTENT_TYPE};
use reqwest::{Method, StatusCode};

use super::auth::{Access, Scope};
use super::client::{status_error, Body, RegistryClient};
use super::code::ErrorCode;
use super::error::RegistryError;
use crate::manifest::{Manifest, ACCEPT_ALL, MAX_MANIFEST_BYTES};

const DOCKER_CONTENT_DIGEST: &str = "docker-content-digest";

fn accept_headers() -> HeaderMap {
    let mut h = HeaderMap::new();
    h.insert(ACCEPT, HeaderValue::from_static(ACCEPT_ALL));
    h
}

impl RegistryClient {
    /// Fetches a manifest by tag or digest and checks that the bytes received hash to the
    /// digest asked for (or announced by the registry).
    pub async fn get_manifest(
        &self,
        registry: &str,
        repository: &str,
        reference: &str,
    ) -> Result<Manifest, RegistryError> {
        let url = self.url(registry, &format!("/v2/{repository}/manifests/{reference}"))?;
        let scope = Scope::repo(repository, Access::Pull);
        let resp = self
            .execute(
                registry,
                &scope,
                Method::GET,
                url.clone(),
                accept_headers(),
                Body::Empty,
            )
            .await?;
        let name = display_ref(registry, repository, reference);
        if resp.status() == StatusCode::NOT_FOUND {
            return Err(not_found(registry, &name, resp).await);
        }
        if !resp.status().is_success() {
            return Err(status_error(registry, &Method::GET, &url, resp).await);
        }
        let content_type = resp
            .headers()
            .get(CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            .map(str::to_string);
        let announced = header_digest(resp.headers());
        let too_big = |size: u64| {
            RegistryError::Protocol {
            registry: registry.into(),
            message: format!(
                "{name}: the manifest is {size} bytes or more, over the {MAX_MANIFEST_BYTES}-byte limit"
            ),
        }
        };
        if let Some(size) = resp.content_length().filter(|n| *n > MAX_MANIFEST_BYTES) {
            return Err(too_big(size));
        }
        // Read chunk by chunk: a missing or false Content-Length must not make us buffer
        // more than the limit either.
        let mut resp = resp;
        let mut bytes = Vec::new();
        while let Some(chunk) = resp
            .chunk()
            .await
            .map_err(|e| super::client::transport_error(registry, &Method::GET, &url, e))?
        {
            bytes.extend_from_slice(&chunk);
            if bytes.len() as u64 > MAX_MANIFEST_BYTES {
                return Err(too_big(bytes.len() as u64));
            }
        }
        let bytes = bytes::Bytes::from(bytes);
        let mut manifest = Manifest::parse(bytes, content_type.as_deref()).map_err(|e| {
            RegistryError::Protocol {
                registry: registry.into(),
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
        let expected = if reference.starts_with("sha256:") {
            Some(reference.to_string())
        } else {
            announced
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

    /// The digest a tag (or digest) currently points at, `None` when it does not exist.
    /// `push` asks for a pull+push token, so a destination check and the later push
    /// share one token.
    pub async fn head_manifest(
        &self,
        registry: &str,
        repository: &str,
        reference: &str,
        push: bool,
    ) -> Result<Option<String>, RegistryError> {
        let url = self.url(registry, &format!("/v2/{repository}/manifests/{reference}"))?;
        let scope = Scope::repo(repository, if push { Access::Push } else { Access::Pull });
        let resp = self
            .execute(
                registry,
                &scope,
                Method::HEAD,
                url.clone(),
                accept_headers(),
                Body::Empty,
            )
            .await?;
        match resp.status() {
            StatusCode::NOT_FOUND => Ok(None),
            s if s.is_success() => match header_digest(resp.headers()) {
                Some(d) => Ok(Some(d)),
                // A registry that does not announce digests: fetch and hash.
                None => Ok(Some(
                    self.get_manifest(registry, repository, reference)
                        .await?
                        .digest,
                )),
            },
            _ => Err(status_error(registry, &Method::HEAD, &url, resp).await),
        }
    }

    /// Pushes manifest bytes unchanged under a tag or digest. (A `400 DIGEST_INVALID`
    /// answer is tried again by the retry loop: see `client.rs`.)
    pub async fn put_manifest(
        &self,
        registry: &str,
        repository: &str,
        reference: &str,
        manifest: &Manifest,
    ) -> Result<(), RegistryError> {
        let url = self.url(registry, &format!("/v2/{repository}/manifests/{reference}"))?;
        let scope = Scope::repo(repository, Access::Push);
        let mut headers = HeaderMap::new();
        let ct =
            HeaderValue::from_str(&manifest.media_type).map_err(|_| RegistryError::Protocol {
                registry: registry.into(),
                message: format!("bad media type {}", manifest.media_type),
            })?;
        headers.insert(CONTENT_TYPE, ct);
        let resp = self
            .execute(
                registry,
                &scope,
                Method::PUT,
                url.clone(),
                headers,
                Body::Bytes(manifest.bytes.clone()),
            )
            .await?;
        if resp.status().is_success() {
            Ok(())
        } else {
            Err(status_error(registry, &Method::PUT, &url, resp).await)
        }
    }
}

pub(crate) fn header_digest(headers: &HeaderMap) -> Option<String> {
    headers
        .get(DOCKER_CONTENT_DIGEST)
        .and_then(|v| v.to_str().ok())
        .map(|s| s.trim().to_string())
}

fn display_ref(registry: &str, repository: &str, reference: &str) -> String {
    let sep = if reference.contains(':') { '@' } else { ':' };
    format!("{registry}/{repository}{sep}{reference}")
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
