//! Registries held in this process's memory, behind the same [`Registries`] traits as the
//! HTTP client: what the copy engine and planner are unit-tested against, in milliseconds.
//! Compiled with the `testing` feature (and in this crate's own tests) only.
//!
//! It keeps the rules of a distribution registry that the engine's decisions depend on: a
//! blob is linked per repository; a mount succeeds (201) only when the `from` repository
//! holds the blob and is declined (202, an upload session) otherwise; a manifest push is
//! refused with `MANIFEST_BLOB_UNKNOWN` when the repository lacks a blob it names; an upload
//! is committed only when its bytes hash to the digest given. Every call is recorded, so a
//! test asserts which requests a decision cost.
//!
//! Laid out like the HTTP client: this file holds the state, the recorded calls and what
//! a test asks of them; `fixtures.rs` what a test puts in; `manifests.rs`, `referrers.rs`,
//! `tags.rs`, `blobs.rs` and `uploads.rs` the traits of those areas.
//!
//! [`Registries`]: crate::Registries

use parking_lot::Mutex;
use std::collections::{BTreeMap, HashMap, HashSet};

use bytes::Bytes;

use crate::manifest::Manifest;
use crate::name::{Reference, Repository};
use crate::registry::{ErrorCode, RegistryError};

mod blobs;
mod fixtures;
mod manifests;
mod referrers;
mod tags;
#[cfg(test)]
mod tests;
mod uploads;

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

#[derive(Default)]
struct State {
    /// Blob bytes by registry, then digest: the registry's storage.
    storage: HashMap<String, HashMap<String, Bytes>>,
    /// Blobs linked into each repository.
    links: HashMap<Repository, HashSet<String>>,
    manifests: HashMap<Repository, HashMap<String, Manifest>>,
    tags: HashMap<Repository, BTreeMap<String, String>>,
    /// Open upload sessions: id -> repository.
    sessions: HashMap<String, Repository>,
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

impl State {
    /// A blob's bytes in a registry's storage (linked to a repository or not).
    fn stored(&self, registry: &str, digest: &str) -> Option<&Bytes> {
        self.storage.get(registry)?.get(digest)
    }

    /// Stores a blob and links it into the repository.
    fn store(&mut self, repository: &Repository, digest: &str, bytes: Bytes) {
        self.storage
            .entry(repository.registry().to_string())
            .or_default()
            .insert(digest.to_string(), bytes);
        self.link(repository, digest);
    }

    /// Links a blob into a repository.
    fn link(&mut self, repository: &Repository, digest: &str) {
        self.links
            .entry(repository.clone())
            .or_default()
            .insert(digest.to_string());
    }

    /// Whether a repository holds a blob.
    fn has(&self, repository: &Repository, digest: &str) -> bool {
        self.links
            .get(repository)
            .is_some_and(|s| s.contains(digest))
    }

    /// Stores a manifest under its digest and, for a tag, tags it.
    fn put(&mut self, repository: &Repository, tag: Option<&str>, manifest: &Manifest) {
        self.manifests
            .entry(repository.clone())
            .or_default()
            .insert(manifest.digest.clone(), manifest.clone());
        if let Some(tag) = tag {
            self.tags
                .entry(repository.clone())
                .or_default()
                .insert(tag.to_string(), manifest.digest.clone());
        }
    }
}

/// Registries in memory; see the module documentation.
#[derive(Default)]
pub struct MemoryRegistries {
    state: Mutex<State>,
}

impl MemoryRegistries {
    /// No registry holds anything yet.
    pub fn new() -> Self {
        Self::default()
    }

    fn record(&self, op: Op, repository: &Repository) {
        self.state.lock().calls.push(Call {
            op,
            repo: repository.to_string(),
        });
    }

    /// Whether a repository holds a blob.
    pub fn has_blob(&self, registry: &str, repository: &str, digest: &str) -> bool {
        self.state
            .lock()
            .has(&Repository::new(registry, repository), digest)
    }

    /// The digest a tag points at.
    pub fn tag(&self, registry: &str, repository: &str, tag: &str) -> Option<String> {
        self.state
            .lock()
            .tags
            .get(&Repository::new(registry, repository))
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

    /// Opens an upload session of a repository; returns its id.
    fn open_session(&self, repository: &Repository) -> String {
        let mut s = self.state.lock();
        s.last_session += 1;
        let id = s.last_session.to_string();
        s.sessions.insert(id.clone(), repository.clone());
        id
    }

    fn manifest(&self, repository: &Repository, reference: &Reference) -> Option<Manifest> {
        let s = self.state.lock();
        let digest = match reference {
            Reference::Digest(d) => d.clone(),
            Reference::Tag(t) => s.tags.get(repository)?.get(t)?.clone(),
        };
        s.manifests.get(repository)?.get(&digest).cloned()
    }
}

fn not_found(repository: &Repository, what: String, code: ErrorCode) -> RegistryError {
    RegistryError::NotFound {
        registry: repository.registry().to_string(),
        reference: what,
        code,
    }
}

fn refused(
    repository: &Repository,
    method: &str,
    path: String,
    code: ErrorCode,
    message: &str,
) -> RegistryError {
    RegistryError::Status {
        registry: repository.registry().to_string(),
        method: method.to_string(),
        path,
        status: 400,
        code: Some(code),
        message: message.to_string(),
    }
}

fn session_url(repository: &Repository, id: &str) -> url::Url {
    let s = format!(
        "memory://{}/v2/{}/blobs/uploads/{id}",
        repository.registry(),
        repository.path()
    );
    url::Url::parse(&s).unwrap_or_else(|e| panic!("upload URL {s}: {e}"))
}

/// The id of an upload session from its URL.
fn session_id(session: &url::Url) -> &str {
    session
        .path_segments()
        .and_then(|mut s| s.next_back())
        .unwrap_or("")
}
