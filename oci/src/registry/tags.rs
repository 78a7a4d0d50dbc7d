//! Tag listing ([`Tags`] for the HTTP client), paginated with `n` and the `Link: <...>; rel="next"` header, and the tag
//! grammar: a listed tag goes into URLs and destination references, so one that is not a
//! tag (10 KB long, with a `/` or a `?`) is left out of the listing, with a warning naming
//! the repository, instead of failing the other tags of its job.

use async_trait::async_trait;
use reqwest::header::{HeaderMap, LINK};
use reqwest::StatusCode;
use serde::Deserialize;

use super::api::{Tags, TagsPage};
use super::client::RegistryClient;
use super::code::ErrorCode;
use super::error::RegistryError;
use super::request::{Operation, Request};
use crate::name::Repository;

/// Tags asked for per page; registries may answer with fewer.
const PAGE: usize = 1000;

/// The most tags one repository may list: past this, the listing is refused rather than
/// held in memory (the largest real repositories have tens of thousands).
pub const MAX_TAGS: usize = 1_000_000;

/// The longest tag the distribution grammar allows.
pub const MAX_TAG_LEN: usize = 128;

/// Whether `tag` is a tag by the distribution grammar, `[A-Za-z0-9_][A-Za-z0-9._-]{0,127}`;
/// why not when it is not.
pub fn validate_tag(tag: &str) -> Result<(), String> {
    let word = |c: char| c.is_ascii_alphanumeric() || c == '_';
    if tag.is_empty() {
        return Err("a tag is empty".into());
    }
    if tag.len() > MAX_TAG_LEN {
        return Err(format!(
            "a tag is longer than {MAX_TAG_LEN} characters ({} bytes)",
            tag.len()
        ));
    }
    if !tag.starts_with(word) {
        return Err("a tag starts with a letter, a digit or _".into());
    }
    if let Some(c) = tag.chars().find(|c| !(word(*c) || *c == '.' || *c == '-')) {
        return Err(format!(
            "a tag has only letters, digits, _ . and - (not {:?})",
            c
        ));
    }
    Ok(())
}

#[derive(Deserialize)]
struct TagList {
    #[serde(default)]
    tags: Option<Vec<String>>,
}

#[async_trait]
impl Tags for RegistryClient {
    /// Every tag of a repository, following pagination until the registry has no next page.
    async fn list_tags(&self, repository: &Repository) -> Result<Vec<String>, RegistryError> {
        self.list_tags_paged(repository, PAGE).await
    }

    /// One answer to `tags/list?n=N[&last=LAST]`, as the registry gave it: the tags after
    /// `last` (or the first ones) in lexical order where it pages (the OCI distribution
    /// spec), every tag in its own order where it does not (distribution 2.8 ignores both
    /// parameters). The caller tells which from the answer; see [`TagsPage`]. `push` asks
    /// with push rights, so that a destination's listing shares the push token.
    async fn tags_after(
        &self,
        repository: &Repository,
        last: Option<&str>,
        n: usize,
        push: bool,
    ) -> Result<TagsPage, RegistryError> {
        let mut url = self
            .request(Operation::ListTags, repository, "tags/list")?
            .url;
        url.query_pairs_mut().append_pair("n", &n.to_string());
        if let Some(last) = last {
            url.query_pairs_mut().append_pair("last", last);
        }
        let (tags, next) = self.tags_page(repository, url, push).await?;
        Ok(TagsPage {
            tags,
            more: next.is_some(),
        })
    }
}

impl RegistryClient {
    /// [`list_tags`](Tags::list_tags) asking for `page` tags per request.
    pub async fn list_tags_paged(
        &self,
        repository: &Repository,
        page: usize,
    ) -> Result<Vec<String>, RegistryError> {
        let registry = repository.registry();
        let tail = format!("tags/list?n={page}");
        let mut url = self.request(Operation::ListTags, repository, &tail)?.url;
        let mut tags = Vec::new();
        let mut visited = std::collections::HashSet::new();
        let refuse = |why: String| RegistryError::Protocol {
            registry: registry.into(),
            message: format!("tags of {}: {why}", repository.path()),
        };
        loop {
            if !visited.insert(url.clone()) {
                return Err(refuse(format!(
                    "the registry's next page ({}) was already listed: pagination loops",
                    url.as_str()
                )));
            }
            let (page, next) = self.tags_page(repository, url.clone(), false).await?;
            tags.extend(page.into_iter().filter(|t| match validate_tag(t) {
                Ok(()) => true,
                Err(why) => {
                    let shown = super::body::quote(t);
                    tracing::warn!(registry, repository = repository.path(), tag = %shown, why = %why, "the registry listed a tag that is not one; left out");
                    false
                }
            }));
            if tags.len() > MAX_TAGS {
                return Err(refuse(format!("more than {MAX_TAGS} tags")));
            }
            match next {
                Some(n) => {
                    url = url.join(&n).map_err(|e| RegistryError::Protocol {
                        registry: registry.into(),
                        message: format!("bad Link {n}: {e}"),
                    })?
                }
                None => return Ok(tags),
            }
        }
    }

    /// One page of tags at `url` and the registry's next page, if it named one.
    async fn tags_page(
        &self,
        repository: &Repository,
        url: url::Url,
        push: bool,
    ) -> Result<(Vec<String>, Option<String>), RegistryError> {
        let registry = repository.registry();
        let req = Request::new(Operation::ListTags, repository, url).push(push);
        let resp = self.execute(&req).await?;
        if resp.status() == StatusCode::NOT_FOUND {
            return Err(RegistryError::NotFound {
                registry: registry.into(),
                reference: repository.to_string(),
                code: ErrorCode::NameUnknown,
            });
        }
        if !resp.status().is_success() {
            return Err(req.status_error(resp).await);
        }
        let next = next_link(resp.headers());
        let refuse = |why: String| RegistryError::Protocol {
            registry: registry.into(),
            message: format!("tags of {}: {why}", repository.path()),
        };
        let bytes = super::body::read_limited(resp, super::body::MAX_TAGS_PAGE)
            .await
            .map_err(|e| refuse(format!("a page: {e}")))?;
        let page: TagList = serde_json::from_slice(&bytes).map_err(|e| refuse(e.to_string()))?;
        Ok((page.tags.unwrap_or_default(), next))
    }
}

/// The target of `Link: </v2/x/tags/list?n=2&last=b>; rel="next"`.
pub(crate) fn next_link(headers: &HeaderMap) -> Option<String> {
    let v = headers.get(LINK)?.to_str().ok()?;
    v.split(',')
        .find(|part| part.contains("rel=\"next\"") || part.contains("rel=next"))
        .and_then(|part| {
            let start = part.find('<')? + 1;
            let end = part.find('>')?;
            Some(part[start..end].to_string())
        })
}

#[cfg(test)]
mod tests {
    use super::*;
    use reqwest::header::HeaderValue;

    #[test]
    fn tags_follow_the_distribution_grammar() {
        for ok in ["latest", "v1.2.3-rc_1", "_x", "A", &"a".repeat(128)] {
            assert_eq!(validate_tag(ok), Ok(()), "{ok}");
        }
        for bad in ["", ".x", "-x", "a/b", "a?b", "a:b", "vé", &"a".repeat(129)] {
            assert!(validate_tag(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn next_link_is_read_from_the_link_header() {
        let mut h = HeaderMap::new();
        h.insert(
            LINK,
            HeaderValue::from_static("</v2/a/tags/list?last=b&n=2>; rel=\"next\""),
        );
        assert_eq!(next_link(&h).as_deref(), Some("/v2/a/tags/list?last=b&n=2"));
        assert_eq!(next_link(&HeaderMap::new()), None);
    }
}
