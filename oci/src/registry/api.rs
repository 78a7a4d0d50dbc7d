//! [`Registries`]: the operations the copy engine and the planner need from "the
//! registries this process talks to", as object-safe traits by area of the distribution
//! spec ([`Manifests`], [`Referrers`], [`Tags`], [`Blobs`], [`Uploads`]) and their sum.
//! [`RegistryClient`](super::RegistryClient) implements each in the file that does that
//! work (`manifests.rs`, `referrers.rs`, `tags.rs`, `blobs.rs`, `upload.rs`); the in-memory
//! registries of the `testing` feature (`crate::memory`) implement them too, so the
//! engine's decisions (skip, mount, upload, stale-index recovery, dry run) are tested in
//! milliseconds, while the real-registry tests prove the HTTP side.
//!
//! A caller holding a `dyn Registries` brings the area traits it calls into scope.

use async_trait::async_trait;
use bytes::Bytes;
use futures::stream::BoxStream;

use super::error::RegistryError;
use super::retry::RetryPolicy;
use crate::manifest::{Descriptor, Manifest};
use crate::name::{Reference, Repository};

/// Blob bytes on their way, in chunks.
pub type ByteStream = BoxStream<'static, Result<Bytes, std::io::Error>>;

/// A blob being downloaded.
pub struct BlobBody {
    /// The length the registry announced, if it did.
    pub size: Option<u64>,
    /// The bytes.
    pub stream: ByteStream,
}

/// What a registry did with a mount request.
#[derive(Debug)]
pub enum MountOutcome {
    /// 201: the blob is now in the target repository.
    Mounted,
    /// 202: the registry declined (the `from` repository lacks the blob, or mounts are off)
    /// and opened an upload session instead, at this location.
    Declined(url::Url),
}

/// One page of a tag listing: its tags and whether the registry named a next page.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct TagsPage {
    /// The tags, in the registry's order.
    pub tags: Vec<String>,
    /// The registry answered with a `Link` to a next page.
    pub more: bool,
}

/// Every registry operation the engine and the planner use: the sum of the area traits,
/// implemented for whatever implements them all.
pub trait Registries: Manifests + Referrers + Tags + Blobs + Uploads {}

impl<T: Manifests + Referrers + Tags + Blobs + Uploads + ?Sized> Registries for T {}

/// Manifests by tag or digest.
#[async_trait]
pub trait Manifests: Send + Sync {
    /// The digest `reference` points at, `None` when it does not exist. `push` asks for
    /// push rights already, so a destination check and the push after it share a token.
    async fn head_manifest(
        &self,
        repository: &Repository,
        reference: &Reference,
        push: bool,
    ) -> Result<Option<String>, RegistryError>;
    /// A manifest by tag or digest, its digest verified.
    async fn get_manifest(
        &self,
        repository: &Repository,
        reference: &Reference,
    ) -> Result<Manifest, RegistryError>;
    /// Pushes the manifest's exact bytes under a tag or digest.
    async fn put_manifest(
        &self,
        repository: &Repository,
        reference: &Reference,
        manifest: &Manifest,
    ) -> Result<(), RegistryError>;
}

/// What refers to a manifest.
#[async_trait]
pub trait Referrers: Send + Sync {
    /// What refers to `digest` (OCI 1.1 Referrers API), `None` when the registry has no
    /// such API; `artifact_type` asks the registry to filter (it may ignore it).
    async fn referrers(
        &self,
        repository: &Repository,
        digest: &str,
        artifact_type: Option<&str>,
    ) -> Result<Option<Vec<Descriptor>>, RegistryError>;
}

/// Tag listings.
#[async_trait]
pub trait Tags: Send + Sync {
    /// Every tag of a repository.
    async fn list_tags(&self, repository: &Repository) -> Result<Vec<String>, RegistryError>;
    /// One page of tags after `last` (`?n=N&last=LAST`), or the first page without it, as
    /// the registry answered it (some ignore both parameters and answer every tag). `push`
    /// asks with push rights (a destination's listing shares its push token).
    async fn tags_after(
        &self,
        repository: &Repository,
        last: Option<&str>,
        n: usize,
        push: bool,
    ) -> Result<TagsPage, RegistryError>;
}

/// Blobs already somewhere: their presence, mounts, downloads.
#[async_trait]
pub trait Blobs: Send + Sync {
    /// The size of a blob in a repository, `None` when it is not there.
    async fn head_blob(
        &self,
        repository: &Repository,
        digest: &str,
        push: bool,
    ) -> Result<Option<u64>, RegistryError>;
    /// Links a blob from another repository (`from`, a path) of the same registry.
    async fn mount_blob(
        &self,
        repository: &Repository,
        digest: &str,
        from: &str,
    ) -> Result<MountOutcome, RegistryError>;
    /// Links a blob the repository already has (`Mounted`), else opens an upload session
    /// (`Declined` with it): a HEAD and a session in one request.
    async fn mount_or_start(
        &self,
        repository: &Repository,
        digest: &str,
    ) -> Result<MountOutcome, RegistryError>;
    /// Starts downloading a blob.
    async fn open_blob(
        &self,
        repository: &Repository,
        digest: &str,
    ) -> Result<BlobBody, RegistryError>;
    /// Whether `registry` is worth asking for cross-repository mounts (not when it
    /// declined every one asked).
    async fn mounts(&self, registry: &str) -> bool;
}

/// Uploads of blobs.
#[async_trait]
pub trait Uploads: Send + Sync {
    /// Opens an upload session; returns where the bytes go.
    async fn start_upload(&self, repository: &Repository) -> Result<url::Url, RegistryError>;
    /// Abandons an upload session (best effort).
    async fn cancel_upload(&self, repository: &Repository, session: url::Url);
    /// Completes an upload session with `body` (`size` bytes), committed as `digest`.
    async fn finish_upload(
        &self,
        repository: &Repository,
        session: url::Url,
        digest: &str,
        size: u64,
        body: ByteStream,
    ) -> Result<(), RegistryError>;
    /// Uploads a small blob held in memory (one request where the registry takes it).
    async fn upload_small(
        &self,
        repository: &Repository,
        digest: &str,
        bytes: Bytes,
    ) -> Result<(), RegistryError>;
    /// Whether a small blob is best asked for with
    /// [`mount_or_start`](Blobs::mount_or_start) (one request if present, its upload
    /// session if not) rather than a HEAD and an upload: at registries that mount and
    /// answer a single-request upload with a session anyway (distribution 2.8), where that
    /// saves a request per new blob.
    async fn probes_small_blobs(&self, registry: &str) -> bool;
    /// How a transfer that failed while streaming is restarted (attempts, backoff).
    fn retry_policy(&self) -> RetryPolicy;
}
