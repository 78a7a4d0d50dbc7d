//! What a test puts into the in-memory registries: blobs, images, indexes, any manifest
//! document, and the behaviours of particular registries (a Referrers API, tag listings
//! that ignore paging, small blobs by mount probe); and a blob lost behind everyone's back.

use bytes::Bytes;

use super::MemoryRegistries;
use crate::digest::sha256_digest;
use crate::manifest::{Descriptor, Manifest, OCI_INDEX, OCI_MANIFEST};
use crate::name::Repository;

impl MemoryRegistries {
    /// Stores `bytes` as a blob of a repository; returns its descriptor.
    pub fn add_blob(&self, registry: &str, repository: &str, bytes: &[u8]) -> Descriptor {
        let digest = sha256_digest(bytes);
        self.state.lock().store(
            &Repository::new(registry, repository),
            &digest,
            Bytes::copy_from_slice(bytes),
        );
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
        self.add_document(registry, repository, Some(tag), &doc)
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
            "mediaType": OCI_INDEX,
            "manifests": list,
        });
        self.add_document(registry, repository, Some(tag), &doc)
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
        self.state
            .lock()
            .put(&Repository::new(registry, repository), tag, &manifest);
        manifest
    }

    /// Makes small blobs to `registry` go by mount probe and session (see
    /// [`Uploads::probes_small_blobs`](crate::registry::Uploads::probes_small_blobs)).
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

    /// Removes a blob from a repository behind everyone's back (a registry that lost it).
    pub fn unlink_blob(&self, registry: &str, repository: &str, digest: &str) {
        let repository = Repository::new(registry, repository);
        if let Some(set) = self.state.lock().links.get_mut(&repository) {
            set.remove(digest);
        }
    }
}
