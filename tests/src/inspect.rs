//! Read-only questions to a registry: does it have this manifest, blob, repo, tag?
//!
//! Why: tests check the mirror's result in the target registry through the
//! same public API any client would use, independent of the code under test.

use anyhow::{bail, Context, Result};
use bytes::Bytes;
use reqwest::{Method, StatusCode};
use serde::Deserialize;

use crate::api::{expect, header, RegistryApi};
use crate::layer::sha256_digest;
use crate::media_types::accept_all_manifests;
use crate::registry::Registry;

/// The digest of `repo:reference` (tag or digest), or `None` when unknown.
/// Uses `HEAD` with every manifest type accepted and falls back to hashing the
/// body when the registry sends no `Docker-Content-Digest`.
pub async fn manifest_digest(
    registry: &Registry,
    repo: &str,
    reference: &str,
) -> Result<Option<String>> {
    let api = RegistryApi::new(registry)?;
    let resp = api
        .request(Method::HEAD, &format!("/v2/{repo}/manifests/{reference}"))
        .header("Accept", accept_all_manifests())
        .send()
        .await
        .with_context(|| format!("HEAD manifest {repo}:{reference}"))?;
    match resp.status() {
        StatusCode::NOT_FOUND => Ok(None),
        StatusCode::OK => match header(&resp, "Docker-Content-Digest") {
            Some(digest) => Ok(Some(digest)),
            None => Ok(get_manifest(registry, repo, reference)
                .await?
                .map(|(_, bytes)| sha256_digest(&bytes))),
        },
        other => bail!("HEAD manifest {repo}:{reference}: unexpected status {other}"),
    }
}

/// `(media type, bytes)` of `repo:reference`, or `None` when unknown.
pub async fn get_manifest(
    registry: &Registry,
    repo: &str,
    reference: &str,
) -> Result<Option<(String, Bytes)>> {
    let api = RegistryApi::new(registry)?;
    let resp = api
        .request(Method::GET, &format!("/v2/{repo}/manifests/{reference}"))
        .header("Accept", accept_all_manifests())
        .send()
        .await
        .with_context(|| format!("GET manifest {repo}:{reference}"))?;
    if resp.status() == StatusCode::NOT_FOUND {
        return Ok(None);
    }
    let resp = expect(resp, StatusCode::OK, "GET manifest").await?;
    let media_type = header(&resp, "Content-Type").unwrap_or_default();
    let bytes = resp.bytes().await.context("reading the manifest")?;
    Ok(Some((media_type, bytes)))
}

/// The bytes the registry serves for a blob (unverified), or `None` when unknown.
pub async fn get_blob(registry: &Registry, repo: &str, digest: &str) -> Result<Option<Bytes>> {
    let api = RegistryApi::new(registry)?;
    let resp = api
        .request(Method::GET, &format!("/v2/{repo}/blobs/{digest}"))
        .send()
        .await
        .with_context(|| format!("GET blob {digest} in {repo}"))?;
    if resp.status() == StatusCode::NOT_FOUND {
        return Ok(None);
    }
    let resp = expect(resp, StatusCode::OK, "GET blob").await?;
    Ok(Some(resp.bytes().await.context("reading the blob")?))
}

/// Whether `repo` has the blob.
pub async fn blob_exists(registry: &Registry, repo: &str, digest: &str) -> Result<bool> {
    RegistryApi::new(registry)?.blob_exists(repo, digest).await
}

/// All repositories, following `Link` pagination.
pub async fn catalog(registry: &Registry) -> Result<Vec<String>> {
    #[derive(Deserialize)]
    struct Catalog {
        #[serde(default)]
        repositories: Vec<String>,
    }
    let api = RegistryApi::new(registry)?;
    let mut repos = Vec::new();
    let mut next = Some("/v2/_catalog?n=1000".to_string());
    while let Some(path) = next {
        let resp = api
            .request(Method::GET, &path)
            .send()
            .await
            .context("GET catalog")?;
        let resp = expect(resp, StatusCode::OK, "GET catalog").await?;
        next = next_link(&resp);
        let page: Catalog = resp.json().await.context("parsing the catalog")?;
        repos.extend(page.repositories);
    }
    Ok(repos)
}

/// The tags of `repo` (empty when the repository is unknown).
pub async fn tags(registry: &Registry, repo: &str) -> Result<Vec<String>> {
    #[derive(Deserialize)]
    struct TagList {
        tags: Option<Vec<String>>,
    }
    let api = RegistryApi::new(registry)?;
    let mut tags = Vec::new();
    let mut next = Some(format!("/v2/{repo}/tags/list?n=1000"));
    while let Some(path) = next {
        let resp = api
            .request(Method::GET, &path)
            .send()
            .await
            .with_context(|| format!("GET tags of {repo}"))?;
        if resp.status() == StatusCode::NOT_FOUND {
            break;
        }
        let resp = expect(resp, StatusCode::OK, "GET tags").await?;
        next = next_link(&resp);
        let page: TagList = resp.json().await.context("parsing the tag list")?;
        tags.extend(page.tags.unwrap_or_default());
    }
    Ok(tags)
}

/// The path of a `Link: </v2/...>; rel="next"` header.
fn next_link(resp: &reqwest::Response) -> Option<String> {
    let link = header(resp, "Link")?;
    let start = link.find('<')? + 1;
    let end = link.find('>')?;
    Some(link.get(start..end)?.to_string())
}
