//! Manifests as the copy engine needs them: the exact bytes (pushed unchanged so digests
//! stay equal), the media type, and the descriptors they point at (blobs, child manifests).
//!
//! Only the fields needed for copying are parsed; everything else stays in the raw bytes.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use crate::digest::sha256_digest;

/// Media type of a Docker image manifest (schema 2).
pub const DOCKER_MANIFEST: &str = "application/vnd.docker.distribution.manifest.v2+json";
/// Media type of a Docker manifest list (one image per platform).
pub const DOCKER_MANIFEST_LIST: &str = "application/vnd.docker.distribution.manifest.list.v2+json";
/// Media type of an OCI image manifest.
pub const OCI_MANIFEST: &str = "application/vnd.oci.image.manifest.v1+json";
/// Media type of an OCI image index (one image per platform).
pub const OCI_INDEX: &str = "application/vnd.oci.image.index.v1+json";
/// Media type of a signed Docker schema 1 manifest (legacy; its digest leaves out the signatures).
pub const DOCKER_SCHEMA1_SIGNED: &str = "application/vnd.docker.distribution.manifest.v1+prettyjws";
/// Media type of an unsigned Docker schema 1 manifest (legacy).
pub const DOCKER_SCHEMA1: &str = "application/vnd.docker.distribution.manifest.v1+json";

/// The `Accept` header for manifest requests: every type we can copy.
pub const ACCEPT_ALL: &str = "application/vnd.docker.distribution.manifest.v2+json, \
application/vnd.docker.distribution.manifest.list.v2+json, \
application/vnd.oci.image.manifest.v1+json, application/vnd.oci.image.index.v1+json, \
application/vnd.docker.distribution.manifest.v1+prettyjws;q=0.5, \
application/vnd.docker.distribution.manifest.v1+json;q=0.5";

/// A platform as written in an index entry.
#[derive(Clone, Debug, Default, Deserialize, Serialize, PartialEq, Eq)]
pub struct Platform {
    /// Operating system (`linux`, `windows`); empty when not given.
    #[serde(default)]
    pub os: String,
    /// CPU architecture (`amd64`, `arm64`, `s390x`); empty when not given.
    #[serde(default)]
    pub architecture: String,
    /// CPU variant (`v7`, `v8`), for architectures that have several.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub variant: Option<String>,
}

impl Platform {
    /// `os/arch[/variant]`, the string `--filter-by-os` is matched against (as oc does).
    pub fn spec(&self) -> String {
        match &self.variant {
            Some(v) if !v.is_empty() => format!("{}/{}/{}", self.os, self.architecture, v),
            _ => format!("{}/{}", self.os, self.architecture),
        }
    }
}

/// The largest manifest accepted, the distribution spec's limit for registries (4 MiB): a
/// source serving more is refused before it is read whole, let alone copied.
pub const MAX_MANIFEST_BYTES: u64 = 4 * 1024 * 1024;

/// A content descriptor: what a manifest points at. Serializes back to the OCI shape, so
/// the referrers index kept at a destination lists descriptors as the spec writes them.
#[derive(Clone, Debug, Default, Deserialize, Serialize, PartialEq, Eq)]
pub struct Descriptor {
    /// Media type of the content pointed at; empty when not given (schema 1 layers).
    #[serde(rename = "mediaType", default)]
    pub media_type: String,
    /// Digest of the content pointed at (`sha256:…`).
    pub digest: String,
    /// Size in bytes; 0 when not given.
    #[serde(default)]
    pub size: u64,
    /// The platform of a child manifest, in an index entry.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub platform: Option<Platform>,
    /// Where a foreign layer can be downloaded from (foreign layers are not copied).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub urls: Vec<String>,
    /// The kind of artifact pointed at, in a referrers listing (OCI 1.1).
    #[serde(
        rename = "artifactType",
        default,
        skip_serializing_if = "Option::is_none"
    )]
    pub artifact_type: Option<String>,
    /// Annotations, in a referrers listing (the referrer's own, copied there).
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub annotations: BTreeMap<String, String>,
}

impl Descriptor {
    /// Foreign / non-distributable layers: their bytes may not be redistributed, so they
    /// are not copied unless asked (`--include-nondistributable`).
    pub fn is_foreign(&self) -> bool {
        self.media_type.contains("foreign") || self.media_type.contains("nondistributable")
    }
}

#[derive(Deserialize)]
struct Shape {
    #[serde(rename = "mediaType", default)]
    media_type: Option<String>,
    #[serde(default)]
    config: Option<Descriptor>,
    #[serde(default)]
    layers: Vec<Descriptor>,
    #[serde(default)]
    manifests: Option<Vec<Descriptor>>,
    #[serde(rename = "fsLayers", default)]
    fs_layers: Vec<FsLayer>,
    #[serde(rename = "artifactType", default)]
    artifact_type: Option<String>,
    #[serde(default)]
    subject: Option<Descriptor>,
    #[serde(default)]
    annotations: BTreeMap<String, String>,
}

#[derive(Deserialize)]
struct FsLayer {
    #[serde(rename = "blobSum")]
    blob_sum: String,
}

impl Shape {
    /// Every digest it names (config, layers, children, subject) is a valid one.
    fn validate_digests(&self) -> Result<(), String> {
        let children = self.manifests.iter().flatten();
        let named = self.config.iter().chain(&self.layers).chain(children);
        for d in named {
            crate::digest::validate(&d.digest)
                .map_err(|why| format!("manifest names an invalid digest: {why}"))?;
        }
        if let Some(s) = &self.subject {
            crate::digest::validate(&s.digest)
                .map_err(|why| format!("manifest names an invalid subject digest: {why}"))?;
        }
        Ok(())
    }

    /// The document's own media type, else the `Content-Type` header's (unless it is a
    /// generic one), else the one its shape says.
    fn media_type(&self, content_type: Option<&str>) -> String {
        let header_type = content_type
            .map(|c| c.split(';').next().unwrap_or(c).trim().to_string())
            .filter(|c| {
                !c.is_empty()
                    && c != "application/json"
                    && c != "text/plain"
                    && c != "application/octet-stream"
            });
        self.media_type
            .clone()
            .filter(|m| !m.is_empty())
            .or(header_type)
            .unwrap_or_else(|| {
                if self.manifests.is_some() {
                    OCI_INDEX.to_string()
                } else if !self.fs_layers.is_empty() {
                    DOCKER_SCHEMA1_SIGNED.to_string()
                } else {
                    OCI_MANIFEST.to_string()
                }
            })
    }

    /// Its `artifactType`, else its config's media type.
    fn artifact_type(&self) -> Option<String> {
        self.artifact_type
            .clone()
            .filter(|t| !t.is_empty())
            .or_else(|| self.config.as_ref().map(|c| c.media_type.clone()))
            .filter(|t| !t.is_empty())
    }
}

/// Blobs in the order named, de-duplicated: those to copy, and the foreign ones.
fn split_blobs(named: impl Iterator<Item = Descriptor>) -> (Vec<Descriptor>, Vec<Descriptor>) {
    let mut blobs: Vec<Descriptor> = Vec::new();
    let mut foreign: Vec<Descriptor> = Vec::new();
    for d in named {
        let list = if d.is_foreign() {
            &mut foreign
        } else {
            &mut blobs
        };
        if !list.iter().any(|b| b.digest == d.digest) {
            list.push(d);
        }
    }
    (blobs, foreign)
}

/// A manifest as received: bytes, media type, digest and what it references.
#[derive(Clone, Debug)]
pub struct Manifest {
    /// The document exactly as received, pushed unchanged so that its digest stays the same.
    pub bytes: bytes::Bytes,
    /// Media type: the document's own, else the `Content-Type` header, else guessed from its shape.
    pub media_type: String,
    /// The `sha256:` digest of `bytes` (for schema 1, the digest the registry announced).
    pub digest: String,
    /// Child manifests, for an index / manifest list.
    pub children: Vec<Descriptor>,
    /// Config and layer blobs (de-duplicated, foreign layers left out), for an image.
    pub blobs: Vec<Descriptor>,
    /// Non-distributable (foreign) layers, left out of [`blobs`](Self::blobs).
    pub foreign: Vec<Descriptor>,
    /// The manifest this one refers to (a signature's image, an SBOM's image), OCI 1.1.
    pub subject: Option<Descriptor>,
    /// What kind of artifact this is: its `artifactType`, else its config's media type
    /// (how the OCI spec lists referrers), else none.
    pub artifact_type: Option<String>,
    /// The manifest's annotations (listed with it in a referrers index).
    pub annotations: BTreeMap<String, String>,
    /// The media type of its first layer, if any (what a cosign signature or attestation
    /// is recognised by: they carry no `artifactType`).
    pub first_layer_type: Option<String>,
}

impl Manifest {
    /// Parses received bytes. `content_type` is the response's header, used when the
    /// document does not name its own media type (OCI makes `mediaType` optional).
    pub fn parse(bytes: bytes::Bytes, content_type: Option<&str>) -> Result<Manifest, String> {
        let shape: Shape = serde_json::from_slice(&bytes)
            .map_err(|e| format!("manifest is not valid JSON: {e}"))?;
        shape.validate_digests()?;
        let media_type = shape.media_type(content_type);
        let artifact_type = shape.artifact_type();
        let first_layer_type = shape.layers.first().map(|l| l.media_type.clone());
        let digest = sha256_digest(&bytes);
        let children = shape.manifests.unwrap_or_default();
        let fs_layers = shape.fs_layers.into_iter().map(|l| Descriptor {
            digest: l.blob_sum,
            ..Descriptor::default()
        });
        let (blobs, foreign) = split_blobs(
            shape
                .config
                .into_iter()
                .chain(shape.layers)
                .chain(fs_layers),
        );
        Ok(Manifest {
            bytes,
            media_type,
            digest,
            children,
            blobs,
            foreign,
            subject: shape.subject,
            artifact_type,
            annotations: shape.annotations,
            first_layer_type,
        })
    }

    /// This manifest as an entry of a referrers index: its media type, digest and size,
    /// with its artifact type and annotations, as the OCI spec lists referrers.
    pub fn as_referrer(&self) -> Descriptor {
        Descriptor {
            media_type: self.media_type.clone(),
            digest: self.digest.clone(),
            size: self.bytes.len() as u64,
            artifact_type: self.artifact_type.clone(),
            annotations: self.annotations.clone(),
            ..Descriptor::default()
        }
    }

    /// True for a manifest list / OCI index.
    pub fn is_index(&self) -> bool {
        self.media_type == DOCKER_MANIFEST_LIST || self.media_type == OCI_INDEX
    }

    /// True for schema1, whose digest is computed over the payload without signatures.
    pub fn is_schema1(&self) -> bool {
        self.media_type == DOCKER_SCHEMA1_SIGNED || self.media_type == DOCKER_SCHEMA1
    }

    /// A new index holding only the children `keep` selects, every other field unchanged.
    /// Returns `None` when every child is kept (the original bytes must then be pushed).
    pub fn filter_children(
        &self,
        keep: impl Fn(&Descriptor) -> bool,
    ) -> Result<Option<Manifest>, String> {
        if self.children.iter().all(&keep) {
            return Ok(None);
        }
        let mut doc: serde_json::Value =
            serde_json::from_slice(&self.bytes).map_err(|e| e.to_string())?;
        let list = doc
            .get_mut("manifests")
            .and_then(|m| m.as_array_mut())
            .ok_or("index has no manifests array")?;
        let mut i = 0;
        list.retain(|_| {
            let k = keep(&self.children[i]);
            i += 1;
            k
        });
        let bytes = serde_json::to_vec_pretty(&doc).map_err(|e| e.to_string())?;
        Manifest::parse(bytes.into(), Some(&self.media_type)).map(Some)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const INDEX: &str = r#"{"schemaVersion":2,"mediaType":"application/vnd.oci.image.index.v1+json","manifests":[
      {"mediaType":"application/vnd.oci.image.manifest.v1+json","digest":"sha256:aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa","size":1,"platform":{"os":"linux","architecture":"amd64"}},
      {"mediaType":"application/vnd.oci.image.manifest.v1+json","digest":"sha256:bbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbb","size":1,"platform":{"os":"linux","architecture":"arm64","variant":"v8"}}],
      "annotations":{"keep":"me"}}"#;

    #[test]
    fn image_manifest_lists_config_and_layers_once_without_foreign_layers() {
        let m = Manifest::parse(
            bytes::Bytes::from_static(br#"{"schemaVersion":2,"mediaType":"application/vnd.docker.distribution.manifest.v2+json",
            "config":{"mediaType":"c","digest":"sha256:cccccccccccccccccccccccccccccccccccccccccccccccccccccccccccccccc","size":2},
            "layers":[{"mediaType":"l","digest":"sha256:dddddddddddddddddddddddddddddddddddddddddddddddddddddddddddddddd","size":3},{"mediaType":"l","digest":"sha256:dddddddddddddddddddddddddddddddddddddddddddddddddddddddddddddddd","size":3},
            {"mediaType":"application/vnd.docker.image.rootfs.foreign.diff.tar.gzip","digest":"sha256:ffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffff","size":9,"urls":["https://x"]}]}"#),
            None,
        )
        .unwrap();
        assert_eq!(m.media_type, DOCKER_MANIFEST);
        let digests: Vec<_> = m.blobs.iter().map(|b| b.digest.as_str()).collect();
        assert_eq!(
            digests,
            [
                "sha256:cccccccccccccccccccccccccccccccccccccccccccccccccccccccccccccccc",
                "sha256:dddddddddddddddddddddddddddddddddddddddddddddddddddddddddddddddd"
            ]
        );
        assert!(!m.is_index());
    }

    #[test]
    fn a_manifest_naming_a_malformed_digest_is_refused() {
        let e = Manifest::parse(
            bytes::Bytes::from_static(
                br#"{"schemaVersion":2,"layers":[{"digest":"sha256:../../_catalog","size":1}]}"#,
            ),
            None,
        )
        .unwrap_err();
        assert!(e.contains("invalid digest"), "{e}");
    }

    #[test]
    fn media_type_falls_back_to_content_type_then_shape() {
        let m = Manifest::parse(
            bytes::Bytes::from_static(br#"{"schemaVersion":2,"manifests":[]}"#),
            Some(DOCKER_MANIFEST_LIST),
        )
        .unwrap();
        assert_eq!(m.media_type, DOCKER_MANIFEST_LIST);
        let m = Manifest::parse(
            bytes::Bytes::from_static(br#"{"schemaVersion":2,"manifests":[]}"#),
            Some("application/json"),
        )
        .unwrap();
        assert_eq!(m.media_type, OCI_INDEX);
    }

    #[test]
    fn filtering_an_index_keeps_other_fields_and_changes_the_digest() {
        let m = Manifest::parse(bytes::Bytes::from_static(INDEX.as_bytes()), None).unwrap();
        assert_eq!(
            m.children[1].platform.as_ref().unwrap().spec(),
            "linux/arm64/v8"
        );
        assert!(
            m.filter_children(|_| true).unwrap().is_none(),
            "keeping all keeps the original bytes"
        );
        let f = m
            .filter_children(|d| {
                d.digest
                    == "sha256:bbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbb"
            })
            .unwrap()
            .unwrap();
        assert_eq!(f.children.len(), 1);
        assert_ne!(f.digest, m.digest);
        assert!(String::from_utf8_lossy(&f.bytes).contains("\"keep\""));
    }
}
