//! [`Registries`]: the few operations the copy engine and the planner need from "the
//! registries this process talks to", as one object-safe trait. [`RegistryClient`] speaks
//! HTTP; [`MemoryRegistries`](crate::memory::MemoryRegistries) keeps images in memory, so
//! the engine's decisions (skip, mount, upload, stale-index recovery, dry run) are tested in
//! milliseconds, while the real-registry tests prove the HTTP side.

use async_trait::async_trait;
use bytes::Bytes;
use futures::stream::BoxStream;
use futures::{StreamExt, TryStreamExt};

use super::blobs::MountOutcome;
use super::client::RegistryClient;
use super::error::RegistryError;
use super::idle::{humanize, IdleLimited};
use super::retry::RetryPolicy;
use super::tags::TagsPage;
use crate::manifest::{Descriptor, Manifest};

/// Blob bytes on their way, in chunks.
pub type ByteStream = BoxStream<'static, Result<Bytes, std::io::Error>>;

/// A blob being downloaded.
pub struct BlobBody {
    /// The length the registry announced, if it did.
    pub size: Option<u64>,
    /// The bytes.
    pub stream: ByteStream,
}

/// Registry operations by registry host (`host[:port]` as written in references),
/// repository and reference, as the distribution spec names them.
#[async_trait]
pub trait Registries: Send + Sync {
    /// The digest `reference` points at, `None` when it does not exist. `push` asks for
    /// push rights already, so a destination check and the push after it share a token.
    async fn head_manifest(
        &self,
        registry: &str,
        repository: &str,
        reference: &str,
        push: bool,
    ) -> Result<Option<String>, RegistryError>;
    /// A manifest by tag or digest, its digest verified.
    async fn get_manifest(
        &self,
        registry: &str,
        repository: &str,
        reference: &str,
    ) -> Result<Manifest, RegistryError>;
    /// Pushes the manifest's exact bytes under a tag or digest.
    async fn put_manifest(
        &self,
        registry: &str,
        repository: &str,
        reference: &str,
        manifest: &Manifest,
    ) -> Result<(), RegistryError>;
    /// What refers to `digest` (OCI 1.1 Referrers API), `None` when the registry has no
    /// such API; `artifact_type` asks the registry to filter (it may ignore it).
    async fn referrers(
        &self,
        registry: &str,
        repository: &str,
        digest: &str,
        artifact_type: Option<&str>,
    ) -> Result<Option<Vec<Descriptor>>, RegistryError>;
    /// Every tag of a repository.
    async fn list_tags(
        &self,
        registry: &str,
        repository: &str,
    ) -> Result<Vec<String>, RegistryError>;
    /// One page of tags after `last` (`?n=N&last=LAST`), or the first page without it, as
    /// the registry answered it (some ignore both parameters and answer every tag). `push`
    /// asks with push rights (a destination's listing shares its push token).
    async fn tags_after(
        &self,
        registry: &str,
        repository: &str,
        last: Option<&str>,
        n: usize,
        push: bool,
    ) -> Result<TagsPage, RegistryError>;
    /// The size of a blob in a repository, `None` when it is not there.
    async fn head_blob(
        &self,
        registry: &str,
        repository: &str,
        digest: &str,
        push: bool,
    ) -> Result<Option<u64>, RegistryError>;
    /// Links a blob from another repository of the same registry.
    async fn mount_blob(
        &self,
        registry: &str,
        repository: &str,
        digest: &str,
        from: &str,
    ) -> Result<MountOutcome, RegistryError>;
    /// Links a blob the repository already has (`Mounted`), else opens an upload session
    /// (`Declined` with it): a HEAD and a session in one request.
    async fn mount_or_start(
        &self,
        registry: &str,
        repository: &str,
        digest: &str,
    ) -> Result<MountOutcome, RegistryError>;
    /// Opens an upload session; returns where the bytes go.
    async fn start_upload(
        &self,
        registry: &str,
        repository: &str,
    ) -> Result<url::Url, RegistryError>;
    /// Abandons an upload session (best effort).
    async fn cancel_upload(&self, registry: &str, repository: &str, session: url::Url);
    /// Starts downloading a blob.
    async fn open_blob(
        &self,
        registry: &str,
        repository: &str,
        digest: &str,
    ) -> Result<BlobBody, RegistryError>;
    /// Completes an upload session with `body` (`size` bytes), committed as `digest`.
    async fn finish_upload(
        &self,
        registry: &str,
        repository: &str,
        session: url::Url,
        digest: &str,
        size: u64,
        body: ByteStream,
    ) -> Result<(), RegistryError>;
    /// Uploads a small blob held in memory (one request where the registry takes it).
    async fn upload_small(
        &self,
        registry: &str,
        repository: &str,
        digest: &str,
        bytes: Bytes,
    ) -> Result<(), RegistryError>;
    /// Whether `registry` is worth asking for cross-repository mounts (not when it
    /// declined every one asked).
    async fn mounts(&self, registry: &str) -> bool;
    /// Whether a small blob is best asked for with [`mount_or_start`](Self::mount_or_start)
    /// (one request if present, its upload session if not) rather than a HEAD and an
    /// upload: at registries that mount and answer a single-request upload with a session
    /// anyway (distribution 2.8), where that saves a request per new blob.
    async fn probes_small_blobs(&self, registry: &str) -> bool;
    /// How a transfer that failed while streaming is restarted (attempts, backoff).
    fn retry_policy(&self) -> RetryPolicy;
}

#[async_trait]
impl Registries for RegistryClient {
    async fn head_manifest(
        &self,
        registry: &str,
        repository: &str,
        reference: &str,
        push: bool,
    ) -> Result<Option<String>, RegistryError> {
        RegistryClient::head_manifest(self, registry, repository, reference, push).await
    }

    async fn get_manifest(
        &self,
        registry: &str,
        repository: &str,
        reference: &str,
    ) -> Result<Manifest, RegistryError> {
        RegistryClient::get_manifest(self, registry, repository, reference).await
    }

    async fn put_manifest(
        &self,
        registry: &str,
        repository: &str,
        reference: &str,
        manifest: &Manifest,
    ) -> Result<(), RegistryError> {
        RegistryClient::put_manifest(self, registry, repository, reference, manifest).await
    }

    async fn referrers(
        &self,
        registry: &str,
        repository: &str,
        digest: &str,
        artifact_type: Option<&str>,
    ) -> Result<Option<Vec<Descriptor>>, RegistryError> {
        RegistryClient::referrers(self, registry, repository, digest, artifact_type).await
    }

    async fn list_tags(
        &self,
        registry: &str,
        repository: &str,
    ) -> Result<Vec<String>, RegistryError> {
        RegistryClient::list_tags(self, registry, repository).await
    }

    async fn tags_after(
        &self,
        registry: &str,
        repository: &str,
        last: Option<&str>,
        n: usize,
        push: bool,
    ) -> Result<TagsPage, RegistryError> {
        RegistryClient::tags_after(self, registry, repository, last, n, push).await
    }

    async fn head_blob(
        &self,
        registry: &str,
        repository: &str,
        digest: &str,
        push: bool,
    ) -> Result<Option<u64>, RegistryError> {
        RegistryClient::head_blob(self, registry, repository, digest, push).await
    }

    async fn mount_blob(
        &self,
        registry: &str,
        repository: &str,
        digest: &str,
        from: &str,
    ) -> Result<MountOutcome, RegistryError> {
        RegistryClient::mount_blob(self, registry, repository, digest, from).await
    }

    async fn mount_or_start(
        &self,
        registry: &str,
        repository: &str,
        digest: &str,
    ) -> Result<MountOutcome, RegistryError> {
        RegistryClient::mount_or_start(self, registry, repository, digest).await
    }

    async fn start_upload(
        &self,
        registry: &str,
        repository: &str,
    ) -> Result<url::Url, RegistryError> {
        RegistryClient::start_upload(self, registry, repository).await
    }

    async fn cancel_upload(&self, registry: &str, repository: &str, session: url::Url) {
        RegistryClient::cancel_upload(self, registry, repository, session).await
    }

    async fn open_blob(
        &self,
        registry: &str,
        repository: &str,
        digest: &str,
    ) -> Result<BlobBody, RegistryError> {
        let resp = RegistryClient::open_blob(self, registry, repository, digest).await?;
        let size = resp.content_length();
        let idle = self.options().timeouts.idle;
        let stream = resp
            .bytes_stream()
            .map_err(|e| std::io::Error::other(e.without_url()))
            .boxed();
        let stream = IdleLimited::new(stream, idle, move || {
            std::io::Error::other(format!("the source sent nothing for {}", humanize(idle)))
        });
        Ok(BlobBody {
            size,
            stream: stream.boxed(),
        })
    }

    async fn finish_upload(
        &self,
        registry: &str,
        repository: &str,
        session: url::Url,
        digest: &str,
        size: u64,
        body: ByteStream,
    ) -> Result<(), RegistryError> {
        RegistryClient::finish_upload(self, registry, repository, session, digest, size, body).await
    }

    async fn upload_small(
        &self,
        registry: &str,
        repository: &str,
        digest: &str,
        bytes: Bytes,
    ) -> Result<(), RegistryError> {
        RegistryClient::upload_small(self, registry, repository, digest, bytes).await
    }

    async fn mounts(&self, registry: &str) -> bool {
        self.quirks(registry).await.mounts()
    }

    async fn probes_small_blobs(&self, registry: &str) -> bool {
        let q = self.quirks(registry).await;
        q.mounts() && q.single_post == Some(false)
    }

    fn retry_policy(&self) -> RetryPolicy {
        self.options().retry.clone()
    }
}
