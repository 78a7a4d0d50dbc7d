//! The OCI 1.1 Referrers API (`GET /v2/<name>/referrers/<digest>`, [`Referrers`] for the
//! HTTP client): what refers to a
//! manifest (signatures, attestations, SBOMs), as an index of descriptors, paginated with
//! `Link` like tag lists.
//!
//! Many registries do not have it (CNCF distribution 2.8, older Harbor and Artifactory):
//! they answer the route with a bare 404. That answer is remembered per registry for the
//! client's life, so a registry without the API costs one request per process, not one per
//! image; the caller then reads the referrers tag schema (`sha256-<hex>`) instead.

use async_trait::async_trait;
use reqwest::header::{HeaderMap, HeaderValue, ACCEPT};
use reqwest::StatusCode;
use serde::Deserialize;

use super::api::Referrers;
use super::body::{read_limited, MAX_REFERRERS_PAGE};
use super::client::RegistryClient;
use super::error::{parse_error_body, RegistryError};
use super::request::{Operation, Request};
use super::tags::next_link;
use crate::manifest::{Descriptor, OCI_INDEX};
use crate::name::Repository;

/// The most referrers one manifest may list (over every page): past this the listing is
/// refused rather than copied (real images have a handful).
pub const MAX_REFERRERS: usize = 10_000;

#[derive(Deserialize)]
struct ReferrersIndex {
    #[serde(default)]
    manifests: Vec<Descriptor>,
}

/// One answer of the Referrers API.
enum Page {
    /// Descriptors, and the next page's link when the registry named one.
    Listed(Vec<Descriptor>, Option<String>),
    /// A distribution error for a 404: the API is there, the repository is not.
    NoRepository,
    /// The registry has no such API.
    NoApi,
}

#[async_trait]
impl Referrers for RegistryClient {
    /// What refers to `digest` in a repository, by the Referrers API; `None` when the
    /// registry has no such API. With `artifact_type`, the registry is asked to filter (it
    /// may not: the caller filters again).
    async fn referrers(
        &self,
        repository: &Repository,
        digest: &str,
        artifact_type: Option<&str>,
    ) -> Result<Option<Vec<Descriptor>>, RegistryError> {
        let registry = repository.registry();
        if self.lacks_referrers_api(registry) {
            return Ok(None);
        }
        let mut tail = format!("referrers/{digest}");
        if let Some(t) = artifact_type {
            tail.push_str("?artifactType=");
            tail.push_str(&url::form_urlencoded::byte_serialize(t.as_bytes()).collect::<String>());
        }
        let mut url = self.request(Operation::Referrers, repository, &tail)?.url;
        let mut found = Vec::new();
        let mut visited = std::collections::HashSet::new();
        let refuse = |why: String| refusal(repository, digest, why);
        loop {
            if !visited.insert(url.clone()) {
                return Err(refuse(
                    "the next page was already listed: pagination loops".into(),
                ));
            }
            let (page, next) = match self.referrers_page(repository, digest, url.clone()).await? {
                Page::Listed(page, next) => (page, next),
                Page::NoRepository => return Ok(Some(found)),
                Page::NoApi => {
                    self.remember_no_referrers_api(registry);
                    return Ok(None);
                }
            };
            found.extend(page);
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
}

impl RegistryClient {
    /// One page of the referrers of `digest` at `url`, its digests checked.
    async fn referrers_page(
        &self,
        repository: &Repository,
        digest: &str,
        url: url::Url,
    ) -> Result<Page, RegistryError> {
        let mut headers = HeaderMap::new();
        headers.insert(ACCEPT, HeaderValue::from_static(OCI_INDEX));
        let req = Request::new(Operation::Referrers, repository, url).headers(headers);
        let resp = self.execute(&req).await?;
        match resp.status() {
            s if s.is_success() => {}
            StatusCode::NOT_FOUND => {
                // A registry with the API answers 404 only with a distribution error
                // (an unknown repository); a bare 404 is the route not existing.
                let text = super::body::read_error_body(resp).await;
                return Ok(match parse_error_body(&text) {
                    (Some(_), _) => Page::NoRepository,
                    (None, _) => Page::NoApi,
                });
            }
            StatusCode::BAD_REQUEST
            | StatusCode::METHOD_NOT_ALLOWED
            | StatusCode::NOT_IMPLEMENTED => return Ok(Page::NoApi),
            _ => return Err(req.status_error(resp).await),
        }
        let refuse = |why: String| refusal(repository, digest, why);
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
        Ok(Page::Listed(page.manifests, next))
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

/// A listing of the referrers of `digest` refused, saying why.
fn refusal(repository: &Repository, digest: &str, why: String) -> RegistryError {
    RegistryError::Protocol {
        registry: repository.registry().into(),
        message: format!("referrers of {repository}@{digest}: {why}"),
    }
}
