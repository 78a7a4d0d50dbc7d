//! [`Manifests`] in memory: a push is refused with `MANIFEST_BLOB_UNKNOWN` when the
//! repository lacks a blob or a child manifest it names.

use async_trait::async_trait;

use super::{not_found, refused, MemoryRegistries, Op};
use crate::manifest::Manifest;
use crate::name::{Reference, Repository};
use crate::registry::{ErrorCode, Manifests, RegistryError};

#[async_trait]
impl Manifests for MemoryRegistries {
    async fn head_manifest(
        &self,
        repository: &Repository,
        reference: &Reference,
        _push: bool,
    ) -> Result<Option<String>, RegistryError> {
        self.record(Op::HeadManifest, repository);
        Ok(self.manifest(repository, reference).map(|m| m.digest))
    }

    async fn get_manifest(
        &self,
        repository: &Repository,
        reference: &Reference,
    ) -> Result<Manifest, RegistryError> {
        self.record(Op::GetManifest, repository);
        self.manifest(repository, reference).ok_or_else(|| {
            not_found(
                repository,
                format!("{repository}:{reference}"),
                ErrorCode::ManifestUnknown,
            )
        })
    }

    async fn put_manifest(
        &self,
        repository: &Repository,
        reference: &Reference,
        manifest: &Manifest,
    ) -> Result<(), RegistryError> {
        self.record(Op::PutManifest, repository);
        let mut s = self.state.lock();
        let path = format!("/v2/{}/manifests/{reference}", repository.path());
        let links = s.links.get(repository).cloned().unwrap_or_default();
        if let Some(b) = manifest.blobs.iter().find(|b| !links.contains(&b.digest)) {
            return Err(refused(
                repository,
                "PUT",
                path,
                ErrorCode::ManifestBlobUnknown,
                &format!("blob unknown to registry: {}", b.digest),
            ));
        }
        let known = s.manifests.get(repository);
        if manifest
            .children
            .iter()
            .any(|c| !known.is_some_and(|m| m.contains_key(&c.digest)))
        {
            return Err(refused(
                repository,
                "PUT",
                path,
                ErrorCode::ManifestBlobUnknown,
                "child manifest unknown",
            ));
        }
        s.put(repository, reference.as_tag(), manifest);
        Ok(())
    }
}
