//! [`Referrers`] in memory: at registries with the API enabled, every manifest of the
//! repository whose `subject` is the digest, by digest; elsewhere no API.

use async_trait::async_trait;

use super::{MemoryRegistries, Op};
use crate::manifest::{Descriptor, Manifest};
use crate::name::Repository;
use crate::registry::{Referrers, RegistryError};

#[async_trait]
impl Referrers for MemoryRegistries {
    async fn referrers(
        &self,
        repository: &Repository,
        digest: &str,
        artifact_type: Option<&str>,
    ) -> Result<Option<Vec<Descriptor>>, RegistryError> {
        self.record(Op::Referrers, repository);
        let s = self.state.lock();
        if !s.referrers_api.contains(repository.registry()) {
            return Ok(None);
        }
        let mut found: Vec<Descriptor> = s
            .manifests
            .get(repository)
            .map(|all| {
                all.values()
                    .filter(|m| m.subject.as_ref().is_some_and(|d| d.digest == digest))
                    .filter(|m| artifact_type.is_none_or(|t| m.artifact_type.as_deref() == Some(t)))
                    .map(Manifest::as_referrer)
                    .collect()
            })
            .unwrap_or_default();
        found.sort_by(|a, b| a.digest.cmp(&b.digest));
        Ok(Some(found))
    }
}
