//! The OCI 1.1 Referrers API (`GET /v2/<name>/referrers/<digest>`): what refers to a
//! manifest (signatures, attestations, SBOMs), as an index of descriptors, paginated with
//! `Link` like tag lists.
//!
//! Many registries do not have it (CNCF distribution 2.8, older Harbor and Artifactory):
//! they answer the route with a bare 404. That answer is remembered per registry for the
//! client's life, so a registry without the API costs one request per process, not one per
//! image; the caller then reads the referrers tag schema (`sha256-<hex>`) instead.

use reqwest::header::{HeaderMap, HeaderValue, ACCEPT};
use reqwest::{Method, StatusCode};
use serde::Deserialize;

use super::auth::{Access, Scope};
use super::body::{read_limited, MAX_REFERRERS_PAGE};
use super::client::{status_error, Body, RegistryClient};
use super::error::{parse_error_body, RegistryError};
use super::tags::next_link;
use crate::manifest::{Descriptor, OCI_INDEX};

/// The most referrers one manifest may list (over every page): past this the listing is
/// refused rather than copied (real images have a handful).
pub const MAX_REFERRERS: usize = 10_000;

#[derive(Deserialize)]
struct ReferrersIndex {
    #[serde(default)]
    manifests: Vec<Descriptor>,
}

impl RegistryClient {
    /// What refers to `digest` in a repository, by the Referrers API; `None` when the
    /// registry has no such API. With `artifact_type`, the registry is asked to filter (it
    /// may not: the caller filters again).
    pub async fn referrers(
        &self,
        registry: &str,
        repository: &str,
        digest: &str,
        artifact_type: Option<&str>,
    ) -> Result<Option<Vec<Descriptor>>, RegistryError> {
        if self.lacks_referrers_api(registry) {
            return Ok(None);
        }
        let mut path = format!("/v2/{repository}/referrers/{digest}");
        if let Some(t) = artifact_type {
            path.push_str("?artifactType=");
            path.push_str(&url::form_urlencoded::byte_serialize(t.as_bytes()).collect::<String>());
        }
        let mut url = self.url(registry, &path)?;
        let scope = Scope::repo(repository, Access::Pull);
        let mut headers = HeaderMap::new();
        headers.insert(ACCEPT, HeaderValue::from_static(OCI_INDEX));
        let mut found = Vec::new();
        let mut visited = std::collections::HashSet::new();
        let refuse = |why: String| RegistryError::Protocol {
            registry: registry.into(),
            message: format!("referrers of {registry}/{repository}@{digest}: {why}"),
        };
        loop {
            if !visited.insert(url.clone()) {
                return Err(refuse(
                    "the next page was already listed: pagination loops".into(),
                ));
            }
            let resp = self
                .execute(
                    registry,
                    &scope,
                    Method::GET,
                    url.clone(),
                    headers.clone(),
                    Body::Empty,
                )
                .await?;
            match resp.status() {
                s if s.is_success() => {}
                StatusCode::NOT_FOUND => {
                    // A registry with the API answers 404 only with a distribution error
                    // (an unknown repository); a bare 404 is the route not existing.
                    let text = super::body::read_error_body(resp).await;
                    return match parse_error_body(&text) {
                        (Some(_), _) => Ok(Some(found)),
                        (None, _) => {
                            self.remember_no_referrers_api(registry);
                            Ok(None)
                        }
                    };
                }
                StatusCode::BAD_REQUEST
                | StatusCode::METHOD_NOT_ALLOWED
                | StatusCode::NOT_IMPLEMENTED => {
                    self.remember_no_referrers_api(registry);
                    return Ok(None);
                }
                _ => return Err(status_error(registry, &Method::GET, &url, resp).await),
            }
            let next = next_link(resp.headers());
            let bytes = read_limited(resp, MAX_REFERRERS_PAGE)
                .await
                .map_err(|e| refuse(format!("a page: {e}")))?;
            let page: ReferrersIndex =
                serde_json::from_slice(&bytes).map_err(|e| refuse(format!("not an index: {e}")))?;
            for d in &page.manifests {
                crate::digest::validate(&d.digest)
                    .map_err(|why| refuse(format!("an invalid digest: {why}")))?;
            }
            found.extend(page.manifests);
            if found.len() > MAX_REFERRERS {
                return Err(refuse(format!("more than {MAX_REFERRERS} referrers")));
            }
            match next {
                Some(n) => {
                    url = url
                        .join(&n)
                        .map_err(|e| refuse(format!("bad Link {n}: {e}")))?
                }
                None => return Ok(Some(found)),
            }
        }
    }

    fn lacks_referrers_api(&self, registry: &str) -> bool {
        self.no_referrers_api.lock().contains(registry)
    }

    fn remember_no_referrers_api(&self, registry: &str) {
        let mut set = self.no_referrers_api.lock();
        if set.insert(registry.to_string()) {
            tracing::debug!(
                registry,
                "no Referrers API: referrers are read from and kept in the sha256-<hex> tag"
            );
        }
    }
}
