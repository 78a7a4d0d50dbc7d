//! [`Tags`] in memory: pages in lexical order, or every tag at once at a registry that
//! ignores paging (as distribution 2.8).

use async_trait::async_trait;

use super::{not_found, MemoryRegistries, Op};
use crate::name::Repository;
use crate::registry::{ErrorCode, RegistryError, Tags, TagsPage};

#[async_trait]
impl Tags for MemoryRegistries {
    async fn list_tags(&self, repository: &Repository) -> Result<Vec<String>, RegistryError> {
        self.record(Op::ListTags, repository);
        self.state
            .lock()
            .tags
            .get(repository)
            .map(|t| t.keys().cloned().collect())
            .ok_or_else(|| not_found(repository, repository.to_string(), ErrorCode::NameUnknown))
    }

    async fn tags_after(
        &self,
        repository: &Repository,
        last: Option<&str>,
        n: usize,
        _push: bool,
    ) -> Result<TagsPage, RegistryError> {
        self.record(Op::ListTags, repository);
        let last = last.unwrap_or("");
        let state = self.state.lock();
        let tags = state
            .tags
            .get(repository)
            .ok_or_else(|| not_found(repository, repository.to_string(), ErrorCode::NameUnknown))?;
        if state.unpaged.contains(repository.registry()) {
            return Ok(TagsPage {
                tags: tags.keys().rev().cloned().collect(),
                more: false,
            });
        }
        let after: Vec<String> = tags
            .range::<str, _>((std::ops::Bound::Excluded(last), std::ops::Bound::Unbounded))
            .map(|(t, _)| t.clone())
            .collect();
        Ok(TagsPage {
            more: after.len() > n,
            tags: after.into_iter().take(n).collect(),
        })
    }
}
