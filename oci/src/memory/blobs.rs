//! [`Blobs`] in memory: blobs are linked per repository; a mount succeeds only from a
//! repository holding the blob and is declined with an upload session otherwise.

use async_trait::async_trait;
use futures::StreamExt;

use super::{not_found, session_url, MemoryRegistries, Op};
use crate::name::Repository;
use crate::registry::{BlobBody, Blobs, ErrorCode, MountOutcome, RegistryError};

#[async_trait]
impl Blobs for MemoryRegistries {
    async fn head_blob(
        &self,
        repository: &Repository,
        digest: &str,
        _push: bool,
    ) -> Result<Option<u64>, RegistryError> {
        self.record(Op::HeadBlob, repository);
        let s = self.state.lock();
        if !s.has(repository, digest) {
            return Ok(None);
        }
        Ok(s.stored(repository.registry(), digest)
            .map(|b| b.len() as u64))
    }

    async fn mount_blob(
        &self,
        repository: &Repository,
        digest: &str,
        from: &str,
    ) -> Result<MountOutcome, RegistryError> {
        self.record(Op::Mount, repository);
        let mut s = self.state.lock();
        if s.has(&repository.sibling(from), digest) {
            s.link(repository, digest);
            return Ok(MountOutcome::Mounted);
        }
        let id = format!("{}", s.sessions.len() + 1);
        s.sessions.insert(id.clone(), repository.clone());
        Ok(MountOutcome::Declined(session_url(repository, &id)))
    }

    async fn mount_or_start(
        &self,
        repository: &Repository,
        digest: &str,
    ) -> Result<MountOutcome, RegistryError> {
        self.record(Op::MountOrStart, repository);
        if self.state.lock().has(repository, digest) {
            return Ok(MountOutcome::Mounted);
        }
        let id = self.open_session(repository);
        Ok(MountOutcome::Declined(session_url(repository, &id)))
    }

    async fn open_blob(
        &self,
        repository: &Repository,
        digest: &str,
    ) -> Result<BlobBody, RegistryError> {
        self.record(Op::GetBlob, repository);
        let bytes = {
            let s = self.state.lock();
            match s.has(repository, digest) {
                true => s.stored(repository.registry(), digest).cloned(),
                false => None,
            }
        }
        .ok_or_else(|| {
            not_found(
                repository,
                format!("{repository}@{digest}"),
                ErrorCode::BlobUnknown,
            )
        })?;
        // Two chunks, so that streaming code sees more than one.
        let mid = bytes.len() / 2;
        let chunks = vec![Ok(bytes.slice(..mid)), Ok(bytes.slice(mid..))];
        Ok(BlobBody {
            size: Some(bytes.len() as u64),
            stream: futures::stream::iter(chunks).boxed(),
        })
    }

    async fn mounts(&self, _registry: &str) -> bool {
        true
    }
}
