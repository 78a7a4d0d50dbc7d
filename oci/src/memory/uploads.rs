//! [`Uploads`] in memory: sessions by id, and a blob committed only when its bytes hash
//! to the digest given.

use async_trait::async_trait;
use bytes::Bytes;
use futures::TryStreamExt;

use super::{refused, session_id, session_url, MemoryRegistries, Op};
use crate::digest::sha256_digest;
use crate::name::Repository;
use crate::registry::{ByteStream, ErrorCode, RegistryError, RetryPolicy, Uploads};

#[async_trait]
impl Uploads for MemoryRegistries {
    async fn start_upload(&self, repository: &Repository) -> Result<url::Url, RegistryError> {
        self.record(Op::StartUpload, repository);
        let id = self.open_session(repository);
        Ok(session_url(repository, &id))
    }

    async fn cancel_upload(&self, repository: &Repository, session: url::Url) {
        self.record(Op::CancelUpload, repository);
        self.state.lock().sessions.remove(session_id(&session));
    }

    async fn finish_upload(
        &self,
        repository: &Repository,
        session: url::Url,
        digest: &str,
        _size: u64,
        body: ByteStream,
    ) -> Result<(), RegistryError> {
        self.record(Op::PutBlob, repository);
        let transport = |message: String| RegistryError::Transport {
            registry: repository.registry().to_string(),
            method: "PUT".into(),
            path: session.path().to_string(),
            message,
        };
        let chunks: Vec<Bytes> = body
            .try_collect()
            .await
            .map_err(|e| transport(e.to_string()))?;
        let bytes: Bytes = chunks.concat().into();
        if sha256_digest(&bytes) != digest {
            let path = session.path().to_string();
            return Err(refused(
                repository,
                "PUT",
                path,
                ErrorCode::DigestInvalid,
                "digest does not match content",
            ));
        }
        let mut s = self.state.lock();
        s.sessions.remove(session_id(&session));
        s.store(repository, digest, bytes);
        Ok(())
    }

    async fn upload_small(
        &self,
        repository: &Repository,
        digest: &str,
        bytes: Bytes,
    ) -> Result<(), RegistryError> {
        // One request, as a registry that completes `POST ?digest=` takes it.
        self.record(Op::PostBlob, repository);
        if sha256_digest(&bytes) != digest {
            return Err(refused(
                repository,
                "POST",
                format!("/v2/{}/blobs/uploads/", repository.path()),
                ErrorCode::DigestInvalid,
                "digest does not match content",
            ));
        }
        self.state.lock().store(repository, digest, bytes);
        Ok(())
    }

    async fn probes_small_blobs(&self, registry: &str) -> bool {
        self.state.lock().probed.contains(registry)
    }

    fn retry_policy(&self) -> RetryPolicy {
        RetryPolicy {
            max_attempts: 1,
            ..RetryPolicy::default()
        }
    }
}
