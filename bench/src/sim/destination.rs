//! The simulated destination registry's state: what it starts with is generated (every
//! destination tag of the set present with its source's digest, but the `--changed-percent`
//! whose source image changed since: half of them absent, half on the image's previous
//! generation, with that image's own blobs missing), and only what is pushed is kept, in
//! memory, compactly: a pushed blob is its digest and size (its bytes are hashed while they
//! stream in and dropped), a pushed manifest the set's image it is when it is one.

use std::collections::{HashMap, HashSet};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

use bytes::Bytes;
use parking_lot::Mutex;
use sha2::{Digest, Sha256};

use super::generator::{digest_of, Content, Generator, Manifest};

/// A manifest the destination holds.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Stored {
    /// A manifest of the set's image `v<k>` of the repository, found by its digest.
    Generated { k: usize, generation: u64 },
    /// Anything else, as pushed.
    Pushed { media_type: String, bytes: Bytes },
}

/// What was pushed to one repository.
#[derive(Debug, Default)]
struct Pushed {
    tags: HashMap<String, (Stored, String)>,
    manifests: HashMap<String, Stored>,
    blobs: HashMap<String, u64>,
}

/// An open upload session: the sha256 so far and the bytes counted.
struct Upload {
    repo: String,
    hasher: Sha256,
    size: u64,
}

/// The destination registry.
pub struct Destination {
    generator: Arc<Generator>,
    changed_percent: u64,
    pushed: Mutex<HashMap<String, Pushed>>,
    uploads: Mutex<HashMap<u64, Upload>>,
    next_upload: AtomicU64,
}

/// A manifest answered: media type, bytes, digest.
pub type Answered = (String, Bytes, String);

impl Destination {
    /// A destination over `generator`'s set with `changed_percent` of its images changed.
    pub fn new(generator: Arc<Generator>, changed_percent: u64) -> Destination {
        Destination {
            generator,
            changed_percent,
            pushed: Mutex::new(HashMap::new()),
            uploads: Mutex::new(HashMap::new()),
            next_upload: AtomicU64::new(1),
        }
    }

    /// The generation of image `v<k>` of repository `r` the destination starts with:
    /// `Some(0)` up to date, `Some(1)` stale, `None` absent.
    fn initial(&self, r: usize, k: usize) -> Option<u64> {
        let (draw, coin) = self.generator.draw(r, k);
        match (draw < self.changed_percent, coin) {
            (false, _) => Some(0),
            (true, true) => Some(1),
            (true, false) => None,
        }
    }

    /// The manifest tag `tag` of `repo` names, if any.
    pub fn tag(&self, repo: &str, tag: &str) -> Option<Answered> {
        let stored = self
            .pushed
            .lock()
            .get(repo)
            .and_then(|p| p.tags.get(tag).cloned());
        if let Some((stored, digest)) = stored {
            return self.answer(repo, stored, &digest);
        }
        let r = self.generator.repo_number(repo)?;
        let (_, k) = self
            .generator
            .shape
            .dest_tags_of(r)
            .into_iter()
            .find(|(t, _)| t == tag)?;
        let top = self.generator.image(r, k, self.initial(r, k)?).top;
        Some(answered(top))
    }

    /// The manifest of `repo` with `digest`, if it holds it.
    pub fn manifest(&self, repo: &str, digest: &str) -> Option<Answered> {
        let stored = self
            .pushed
            .lock()
            .get(repo)
            .and_then(|p| p.manifests.get(digest).cloned());
        if let Some(stored) = stored {
            return self.answer(repo, stored, digest);
        }
        let r = self.generator.repo_number(repo)?;
        let (_, m) = self.generator.manifest(r, digest, |k| self.initial(r, k))?;
        Some(answered(m))
    }

    /// A stored manifest's answer (`digest` picks an index's child).
    fn answer(&self, repo: &str, stored: Stored, digest: &str) -> Option<Answered> {
        match stored {
            Stored::Pushed { media_type, bytes } => Some((media_type, bytes, digest.to_string())),
            Stored::Generated { k, generation } => {
                let r = self.generator.repo_number(repo)?;
                let image = self.generator.image(r, k, generation);
                image.manifest(digest).cloned().map(answered)
            }
        }
    }

    /// Stores a manifest pushed as `reference` (a tag or its digest); its digest.
    pub fn put_manifest(
        &self,
        repo: &str,
        reference: &str,
        media_type: &str,
        body: Bytes,
    ) -> String {
        let digest = digest_of(&body);
        // Recognised at the source's current generation: a copy of a changed source is
        // kept as compactly as one of an unchanged one.
        let generated = self.generator.repo_number(repo).and_then(|r| {
            let current = |k| Some(self.generator.source_generation(r, k));
            let (k, _) = self.generator.manifest(r, &digest, current)?;
            let generation = self.generator.source_generation(r, k);
            Some(Stored::Generated { k, generation })
        });
        let stored = generated.unwrap_or(Stored::Pushed {
            media_type: media_type.to_string(),
            bytes: body,
        });
        let mut pushed = self.pushed.lock();
        let repo = pushed.entry(repo.to_string()).or_default();
        repo.manifests.insert(digest.clone(), stored.clone());
        if !reference.starts_with("sha256:") {
            repo.tags
                .insert(reference.to_string(), (stored, digest.clone()));
        }
        digest
    }

    /// The size of blob `digest` of `repo`, if it holds it.
    pub fn blob_size(&self, repo: &str, digest: &str) -> Option<u64> {
        let size = self
            .pushed
            .lock()
            .get(repo)
            .and_then(|p| p.blobs.get(digest).copied());
        size.or_else(|| {
            self.generated_blob(repo, digest)
                .map(|b| b.bytes.len() as u64)
        })
    }

    /// Blob `digest` of `repo` when it is one of the set's (its bytes can be made again).
    pub fn generated_blob(&self, repo: &str, digest: &str) -> Option<Content> {
        let r = self.generator.repo_number(repo)?;
        self.generator
            .blob(r, digest, |k| self.initial(r, k).filter(|g| *g == 0))
    }

    /// Mounts `digest` from `from` into `repo` when `from` holds it.
    pub fn mount(&self, repo: &str, digest: &str, from: &str) -> bool {
        let Some(size) = self.blob_size(from, digest) else {
            return false;
        };
        self.add_blob(repo, digest, size);
        true
    }

    fn add_blob(&self, repo: &str, digest: &str, size: u64) {
        let mut pushed = self.pushed.lock();
        let entry = pushed.entry(repo.to_string()).or_default();
        entry.blobs.insert(digest.to_string(), size);
    }

    /// Opens an upload session into `repo`; its id.
    pub fn start_upload(&self, repo: &str) -> u64 {
        let id = self.next_upload.fetch_add(1, Ordering::Relaxed);
        let upload = Upload {
            repo: repo.to_string(),
            hasher: Sha256::new(),
            size: 0,
        };
        self.uploads.lock().insert(id, upload);
        id
    }

    /// Adds `chunk` to session `id`; the bytes received so far, `None` for no such session.
    pub fn append(&self, id: u64, chunk: &[u8]) -> Option<u64> {
        let mut uploads = self.uploads.lock();
        let upload = uploads.get_mut(&id)?;
        upload.hasher.update(chunk);
        upload.size += chunk.len() as u64;
        Some(upload.size)
    }

    /// Closes session `id` as blob `digest`: `Err` with the digest received when they differ.
    pub fn finish(&self, id: u64, digest: &str) -> Result<(), String> {
        let upload = self.uploads.lock().remove(&id).ok_or_else(String::new)?;
        let got = format!("sha256:{}", hex::encode(upload.hasher.finalize()));
        if got != digest {
            return Err(got);
        }
        self.add_blob(&upload.repo, digest, upload.size);
        Ok(())
    }

    /// Whether session `id` is open.
    pub fn has_upload(&self, id: u64) -> bool {
        self.uploads.lock().contains_key(&id)
    }

    /// Every tag of `repo`, sorted.
    pub fn tags(&self, repo: &str) -> Vec<String> {
        let mut tags: HashSet<String> = HashSet::new();
        if let Some(r) = self.generator.repo_number(repo) {
            let generated = self.generator.shape.dest_tags_of(r).into_iter();
            tags.extend(
                generated
                    .filter(|(_, k)| self.initial(r, *k).is_some())
                    .map(|(t, _)| t),
            );
        }
        if let Some(p) = self.pushed.lock().get(repo) {
            tags.extend(p.tags.keys().cloned());
        }
        let mut tags: Vec<String> = tags.into_iter().collect();
        tags.sort();
        tags
    }
}

fn answered(m: Manifest) -> Answered {
    (m.media_type.to_string(), m.content.bytes, m.content.digest)
}
