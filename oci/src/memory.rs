//! Registries held in this process's memory, behind the same [`Registries`] trait as the
//! HTTP client: what the copy engine and planner are unit-tested against, in milliseconds.
//!
//! It keeps the rules of a distribution registry that the engine's decisions depend on: a
//! blob is linked per repository; a mount succeeds (201) only when the `from` repository
//! holds the blob and is declined (202, an upload session) otherwise; a manifest push is
//! refused with `MANIFEST_BLOB_UNKNOWN` when the repository lacks a blob it names; an upload
//! is committed only when its bytes hash to the digest given. Every call is recorded, so a
//! test asserts which requests a decision cost.

use parking_lot::Mutex;
use std::collections::{BTreeMap, HashMap, HashSet};

use async_trait::async_trait;
use bytes::Bytes;
use futures::{StreamExt, TryStreamExt};

use crate::digest::sha256_digest;
use crate::manifest::{Descriptor, Manifest, OCI_MANIFEST};
use crate::registry::{
    BlobBody, ByteStream, ErrorCode, MountOutcome, Registries, RegistryError, RetryPolicy, TagsPage,
};

/// A registry operation, as recorded.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Op {
    /// HEAD of a manifest.
    HeadManifest,
    /// GET of a manifest.
    GetManifest,
    /// PUT of a manifest.
    PutManifest,
    /// GET of the tag list.
    ListTags,
    /// GET of the Referrers API.
    Referrers,
    /// HEAD of a blob.
    HeadBlob,
    /// POST with `mount=`.
    Mount,
    /// POST with `mount=` from the repository itself: linked if there, else a session.
    MountOrStart,
    /// POST opening an upload session.
    StartUpload,
    /// DELETE of an upload session.
    CancelUpload,
    /// GET of a blob.
    GetBlob,
    /// PUT completing an upload.
    PutBlob,
    /// POST carrying a whole (small) blob: an upload in one request.
    PostBlob,
}

/// One recorded call: the operation and the `registry/repository` it went to.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Call {
    /// What was asked.
    pub op: Op,
    /// `registry/repository`.
    pub repo: String,
}

type Repo = (String, String);

#[derive(Default)]
struct State {
    /// Blob bytes by (registry, digest): the registry's storage.
    storage: HashMap<(String, String), Bytes>,
    /// Blobs linked into each repository.
    links: HashMap<Repo, HashSet<String>>,
    manifests: HashMap<Repo, HashMap<String, Manifest>>,
    tags: HashMap<Repo, BTreeMap<String, String>>,
    /// Open upload sessions: id -> repository.
    sessions: HashMap<String, Repo>,
    /// The id of the last session opened (ids are never reused).
    last_session: u64,
    /// Registries that answer the Referrers API (the others answer a bare 404).
    referrers_api: HashSet<String>,
    /// Registries whose small blobs are asked for with a mount probe (as a client does at
    /// distribution 2.8, which takes single-request uploads as sessions).
    probed: HashSet<String>,
    /// Registries that ignore `n` and `last` when listing tags (as distribution 2.8 does)
    /// and answer every tag, newest link first.
    unpaged: HashSet<String>,
    calls: Vec<Call>,
}

/// Registries in memory; see the module documentation.
#[derive(Default)]
pub struct MemoryRegistries {
    state: Mutex<State>,
}

fn repo(registry: &str, repository: &str) -> Repo {
    (registry.to_string(), repository.to_string())
}

impl MemoryRegistries {
    /// No registry holds anything yet.
    pub fn new() -> Self {
        Self::default()
    }

    fn record(&self, op: Op, registry: &str, repository: &str) {
        self.state.lock().calls.push(Call {
            op,
            repo: format!("{registry}/{repository}"),
        });
    }

    /// Stores `bytes` as a blob of a repository; returns its descriptor.
    pub fn add_blob(&self, registry: &str, repository: &str, bytes: &[u8]) -> Descriptor {
        let digest = sha256_digest(bytes);
        let mut s = self.state.lock();
        s.storage.insert(
            (registry.to_string(), digest.clone()),
            Bytes::copy_from_slice(bytes),
        );
        s.links
            .entry(repo(registry, repository))
            .or_default()
            .insert(digest.clone());
        Descriptor {
            media_type: "application/vnd.oci.image.layer.v1.tar+gzip".into(),
            digest,
            size: bytes.len() as u64,
            ..Descriptor::default()
        }
    }

    /// Pushes an OCI image (a config blob and `layers`) and tags it; returns its manifest.
    pub fn add_image(
        &self,
        registry: &str,
        repository: &str,
        tag: &str,
        layers: &[&[u8]],
    ) -> Manifest {
        let config_json = format!("{{\"repository\":\"{repository}\",\"tag\":\"{tag}\"}}");
        let config = self.add_blob(registry, repository, config_json.as_bytes());
        let layers: Vec<serde_json::Value> = layers
            .iter()
            .map(|l| {
                let d = self.add_blob(registry, repository, l);
                serde_json::json!({"mediaType": d.media_type, "digest": d.digest, "size": d.size})
            })
            .collect();
        let doc = serde_json::json!({
            "schemaVersion": 2,
            "mediaType": OCI_MANIFEST,
            "config": {"mediaType": "application/vnd.oci.image.config.v1+json", "digest": config.digest, "size": config.size},
            "layers": layers,
        });
        self.tag_document(registry, repository, tag, &doc)
    }

    /// Pushes an OCI index of images already in the repository, each with its `os/arch`,
    /// and tags it; returns its manifest.
    pub fn add_index(
        &self,
        registry: &str,
        repository: &str,
        tag: &str,
        children: &[(&Manifest, &str, &str)],
    ) -> Manifest {
        let list: Vec<serde_json::Value> = children
            .iter()
            .map(|(m, os, arch)| {
                serde_json::json!({
                    "mediaType": m.media_type,
                    "digest": m.digest,
                    "size": m.bytes.len(),
                    "platform": {"os": os, "architecture": arch},
                })
            })
            .collect();
        let doc = serde_json::json!({
            "schemaVersion": 2,
            "mediaType": crate::manifest::OCI_INDEX,
            "manifests": list,
        });
        self.tag_document(registry, repository, tag, &doc)
    }

    /// Stores a manifest document under its digest and `tag`; returns it parsed.
    fn tag_document(
        &self,
        registry: &str,
        repository: &str,
        tag: &str,
        doc: &serde_json::Value,
    ) -> Manifest {
        self.add_document(registry, repository, Some(tag), doc)
    }

    /// Makes small blobs to `registry` go by mount probe and session (see
    /// [`Registries::probes_small_blobs`]).
    pub fn probe_small_blobs(&self, registry: &str) {
        self.state.lock().probed.insert(registry.to_string());
    }

    /// Makes `registry` list tags as distribution 2.8 does: `n` and `last` ignored, every
    /// tag answered, not in lexical order.
    pub fn ignore_tag_paging(&self, registry: &str) {
        self.state.lock().unpaged.insert(registry.to_string());
    }

    /// Makes `registry` answer the Referrers API, indexing every manifest with a `subject`
    /// as it is pushed (as OCI 1.1 registries do); by default it has no such API, as
    /// distribution 2.8.
    pub fn enable_referrers_api(&self, registry: &str) {
        self.state.lock().referrers_api.insert(registry.to_string());
    }

    /// Stores a manifest document (any shape) under its digest and, when given, a tag;
    /// returns it parsed. Its blobs must have been added.
    pub fn add_document(
        &self,
        registry: &str,
        repository: &str,
        tag: Option<&str>,
        doc: &serde_json::Value,
    ) -> Manifest {
        let bytes = Bytes::from(serde_json::to_vec(doc).unwrap_or_default());
        let manifest = Manifest::parse(bytes, None).unwrap_or_else(|e| panic!("{e}"));
        let mut s = self.state.lock();
        let key = repo(registry, repository);
        s.manifests
            .entry(key.clone())
            .or_default()
            .insert(manifest.digest.clone(), manifest.clone());
        if let Some(tag) = tag {
            s.tags
                .entry(key)
                .or_default()
                .insert(tag.to_string(), manifest.digest.clone());
        }
        manifest
    }

    /// Removes a blob from a repository behind everyone's back (a registry that lost it).
    pub fn unlink_blob(&self, registry: &str, repository: &str, digest: &str) {
        if let Some(set) = self.state.lock().links.get_mut(&repo(registry, repository)) {
            set.remove(digest);
        }
    }

    /// Whether a repository holds a blob.
    pub fn has_blob(&self, registry: &str, repository: &str, digest: &str) -> bool {
        self.state
            .lock()
            .links
            .get(&repo(registry, repository))
            .is_some_and(|s| s.contains(digest))
    }

    /// The digest a tag points at.
    pub fn tag(&self, registry: &str, repository: &str, tag: &str) -> Option<String> {
        self.state
            .lock()
            .tags
            .get(&repo(registry, repository))
            .and_then(|t| t.get(tag).cloned())
    }

    /// Every call so far, in order.
    pub fn calls(&self) -> Vec<Call> {
        self.state.lock().calls.clone()
    }

    /// How many calls of `op` were made.
    pub fn count(&self, op: Op) -> usize {
        self.state
            .lock()
            .calls
            .iter()
            .filter(|c| c.op == op)
            .count()
    }

    /// How many calls of `op` went to `registry`.
    pub fn count_at(&self, op: Op, registry: &str) -> usize {
        let prefix = format!("{registry}/");
        self.state
            .lock()
            .calls
            .iter()
            .filter(|c| c.op == op && c.repo.starts_with(&prefix))
            .count()
    }

    /// Forgets the calls recorded so far.
    pub fn clear_calls(&self) {
        self.state.lock().calls.clear();
    }

    /// Stores an uploaded blob and links it into the repository.
    fn commit_blob(&self, registry: &str, repository: &str, digest: &str, bytes: Bytes) {
        let mut s = self.state.lock();
        s.storage
            .insert((registry.to_string(), digest.to_string()), bytes);
        s.links
            .entry(repo(registry, repository))
            .or_default()
            .insert(digest.to_string());
    }

    /// Opens an upload session of a repository; returns its id.
    fn open_session(&self, registry: &str, repository: &str) -> String {
        let mut s = self.state.lock();
        s.last_session += 1;
        let id = s.last_session.to_string();
        s.sessions.insert(id.clone(), repo(registry, repository));
        id
    }

    fn manifest(&self, registry: &str, repository: &str, reference: &str) -> Option<Manifest> {
        let s = self.state.lock();
        let key = repo(registry, repository);
        let digest = if reference.starts_with("sha256:") {
            reference.to_string()
        } else {
            s.tags.get(&key)?.get(reference)?.clone()
        };
        s.manifests.get(&key)?.get(&digest).cloned()
    }
}

fn not_found(registry: &str, what: String, code: ErrorCode) -> RegistryError {
    RegistryError::NotFound {
        registry: registry.to_string(),
        reference: what,
        code,
    }
}

fn refused(
    registry: &str,
    method: &str,
    path: String,
    code: ErrorCode,
    message: &str,
) -> RegistryError {
    RegistryError::Status {
        registry: registry.to_string(),
        method: method.to_string(),
        path,
        status: 400,
        code: Some(code),
        message: message.to_string(),
    }
}

#[async_trait]
impl Registries for MemoryRegistries {
    async fn head_manifest(
        &self,
        registry: &str,
        repository: &str,
        reference: &str,
        _push: bool,
    ) -> Result<Option<String>, RegistryError> {
        self.record(Op::HeadManifest, registry, repository);
        Ok(self
            .manifest(registry, repository, reference)
            .map(|m| m.digest))
    }

    async fn get_manifest(
        &self,
        registry: &str,
        repository: &str,
        reference: &str,
    ) -> Result<Manifest, RegistryError> {
        self.record(Op::GetManifest, registry, repository);
        self.manifest(registry, repository, reference)
            .ok_or_else(|| {
                not_found(
                    registry,
                    format!("{registry}/{repository}:{reference}"),
                    ErrorCode::ManifestUnknown,
                )
            })
    }

    async fn put_manifest(
        &self,
        registry: &str,
        repository: &str,
        reference: &str,
        manifest: &Manifest,
    ) -> Result<(), RegistryError> {
        self.record(Op::PutManifest, registry, repository);
        let mut s = self.state.lock();
        let key = repo(registry, repository);
        let path = format!("/v2/{repository}/manifests/{reference}");
        let links = s.links.get(&key).cloned().unwrap_or_default();
        if let Some(b) = manifest.blobs.iter().find(|b| !links.contains(&b.digest)) {
            return Err(refused(
                registry,
                "PUT",
                path,
                ErrorCode::ManifestBlobUnknown,
                &format!("blob unknown to registry: {}", b.digest),
            ));
        }
        let known = s.manifests.get(&key);
        if manifest
            .children
            .iter()
            .any(|c| !known.is_some_and(|m| m.contains_key(&c.digest)))
        {
            return Err(refused(
                registry,
                "PUT",
                path,
                ErrorCode::ManifestBlobUnknown,
                "child manifest unknown",
            ));
        }
        s.manifests
            .entry(key.clone())
            .or_default()
            .insert(manifest.digest.clone(), manifest.clone());
        if !reference.starts_with("sha256:") {
            s.tags
                .entry(key)
                .or_default()
                .insert(reference.to_string(), manifest.digest.clone());
        }
        Ok(())
    }

    async fn referrers(
        &self,
        registry: &str,
        repository: &str,
        digest: &str,
        artifact_type: Option<&str>,
    ) -> Result<Option<Vec<Descriptor>>, RegistryError> {
        self.record(Op::Referrers, registry, repository);
        let s = self.state.lock();
        if !s.referrers_api.contains(registry) {
            return Ok(None);
        }
        let mut found: Vec<Descriptor> = s
            .manifests
            .get(&repo(registry, repository))
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

    async fn list_tags(
        &self,
        registry: &str,
        repository: &str,
    ) -> Result<Vec<String>, RegistryError> {
        self.record(Op::ListTags, registry, repository);
        self.state
            .lock()
            .tags
            .get(&repo(registry, repository))
            .map(|t| t.keys().cloned().collect())
            .ok_or_else(|| {
                not_found(
                    registry,
                    format!("{registry}/{repository}"),
                    ErrorCode::NameUnknown,
                )
            })
    }

    async fn tags_after(
        &self,
        registry: &str,
        repository: &str,
        last: Option<&str>,
        n: usize,
        _push: bool,
    ) -> Result<TagsPage, RegistryError> {
        self.record(Op::ListTags, registry, repository);
        let last = last.unwrap_or("");
        let state = self.state.lock();
        let tags = state.tags.get(&repo(registry, repository)).ok_or_else(|| {
            not_found(
                registry,
                format!("{registry}/{repository}"),
                ErrorCode::NameUnknown,
            )
        })?;
        if state.unpaged.contains(registry) {
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

    async fn head_blob(
        &self,
        registry: &str,
        repository: &str,
        digest: &str,
        _push: bool,
    ) -> Result<Option<u64>, RegistryError> {
        self.record(Op::HeadBlob, registry, repository);
        if !self.has_blob(registry, repository, digest) {
            return Ok(None);
        }
        let s = self.state.lock();
        Ok(s.storage
            .get(&(registry.to_string(), digest.to_string()))
            .map(|b| b.len() as u64))
    }

    async fn mount_blob(
        &self,
        registry: &str,
        repository: &str,
        digest: &str,
        from: &str,
    ) -> Result<MountOutcome, RegistryError> {
        self.record(Op::Mount, registry, repository);
        if self.has_blob(registry, from, digest) {
            self.state
                .lock()
                .links
                .entry(repo(registry, repository))
                .or_default()
                .insert(digest.to_string());
            return Ok(MountOutcome::Mounted);
        }
        let id = format!("{}", self.state.lock().sessions.len() + 1);
        self.state
            .lock()
            .sessions
            .insert(id.clone(), repo(registry, repository));
        Ok(MountOutcome::Declined(session_url(
            registry, repository, &id,
        )))
    }

    async fn mount_or_start(
        &self,
        registry: &str,
        repository: &str,
        digest: &str,
    ) -> Result<MountOutcome, RegistryError> {
        self.record(Op::MountOrStart, registry, repository);
        if self.has_blob(registry, repository, digest) {
            return Ok(MountOutcome::Mounted);
        }
        let id = self.open_session(registry, repository);
        Ok(MountOutcome::Declined(session_url(
            registry, repository, &id,
        )))
    }

    async fn start_upload(
        &self,
        registry: &str,
        repository: &str,
    ) -> Result<url::Url, RegistryError> {
        self.record(Op::StartUpload, registry, repository);
        let id = self.open_session(registry, repository);
        Ok(session_url(registry, repository, &id))
    }

    async fn cancel_upload(&self, registry: &str, repository: &str, session: url::Url) {
        self.record(Op::CancelUpload, registry, repository);
        let id = session
            .path_segments()
            .and_then(|mut s| s.next_back())
            .unwrap_or("");
        self.state.lock().sessions.remove(id);
    }

    async fn open_blob(
        &self,
        registry: &str,
        repository: &str,
        digest: &str,
    ) -> Result<BlobBody, RegistryError> {
        self.record(Op::GetBlob, registry, repository);
        let bytes = match self.has_blob(registry, repository, digest) {
            true => self
                .state
                .lock()
                .storage
                .get(&(registry.to_string(), digest.to_string()))
                .cloned(),
            false => None,
        }
        .ok_or_else(|| {
            not_found(
                registry,
                format!("{registry}/{repository}@{digest}"),
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

    async fn finish_upload(
        &self,
        registry: &str,
        repository: &str,
        session: url::Url,
        digest: &str,
        _size: u64,
        body: ByteStream,
    ) -> Result<(), RegistryError> {
        self.record(Op::PutBlob, registry, repository);
        let transport = |message: String| RegistryError::Transport {
            registry: registry.to_string(),
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
                registry,
                "PUT",
                path,
                ErrorCode::DigestInvalid,
                "digest does not match content",
            ));
        }
        let id = session
            .path_segments()
            .and_then(|mut p| p.next_back())
            .unwrap_or("");
        self.state.lock().sessions.remove(id);
        self.commit_blob(registry, repository, digest, bytes);
        Ok(())
    }

    async fn upload_small(
        &self,
        registry: &str,
        repository: &str,
        digest: &str,
        bytes: Bytes,
    ) -> Result<(), RegistryError> {
        // One request, as a registry that completes `POST ?digest=` takes it.
        self.record(Op::PostBlob, registry, repository);
        if sha256_digest(&bytes) != digest {
            return Err(refused(
                registry,
                "POST",
                format!("/v2/{repository}/blobs/uploads/"),
                ErrorCode::DigestInvalid,
                "digest does not match content",
            ));
        }
        self.commit_blob(registry, repository, digest, bytes);
        Ok(())
    }

    async fn mounts(&self, _registry: &str) -> bool {
        true
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

fn session_url(registry: &str, repository: &str, id: &str) -> url::Url {
    let s = format!("memory://{registry}/v2/{repository}/blobs/uploads/{id}");
    url::Url::parse(&s).unwrap_or_else(|e| panic!("upload URL {s}: {e}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn a_manifest_naming_a_missing_blob_is_refused_with_its_code() {
        let r = MemoryRegistries::new();
        let m = r.add_image("src", "a/b", "1", &[b"layer"]);
        let e = r.put_manifest("dst", "x/y", "1", &m).await.unwrap_err();
        assert_eq!(e.code(), Some(&ErrorCode::ManifestBlobUnknown));
        assert_eq!(r.tag("dst", "x/y", "1"), None);
    }

    #[tokio::test]
    async fn mounts_succeed_only_from_a_repository_holding_the_blob() {
        let r = MemoryRegistries::new();
        let d = r.add_blob("reg", "a", b"x");
        assert!(matches!(
            r.mount_blob("reg", "b", &d.digest, "a").await.unwrap(),
            MountOutcome::Mounted
        ));
        assert!(r.has_blob("reg", "b", &d.digest));
        assert!(matches!(
            r.mount_blob("reg", "c", &d.digest, "z").await.unwrap(),
            MountOutcome::Declined(_)
        ));
        assert!(!r.has_blob("reg", "c", &d.digest));
    }
}
