//! Fixture images and indexes pushed through a registry's HTTP API.
//!
//! Why: tests need real, spec-conformant images (Docker schema 2 and OCI,
//! single- and multi-platform, with shared base layers) in a source registry
//! before the mirror copies them; building them here through the API keeps
//! the fixtures independent of the code under test.

use anyhow::{Context, Result};
use bytes::Bytes;
use serde_json::{json, Value};

use crate::api::RegistryApi;
use crate::layer::{Blob, Layer};
use crate::media_types;
use crate::registry::Registry;

pub use crate::inspect::{blob_exists, catalog, get_blob, get_manifest, manifest_digest, tags};

/// Which manifest family to push.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Format {
    /// Docker schema 2 manifests and manifest lists.
    #[default]
    Docker,
    /// OCI image manifests and indexes.
    Oci,
}

impl Format {
    /// Media type of an image manifest.
    pub fn manifest_media_type(self) -> &'static str {
        match self {
            Format::Docker => media_types::DOCKER_MANIFEST,
            Format::Oci => media_types::OCI_MANIFEST,
        }
    }

    /// Media type of a multi-platform index.
    pub fn index_media_type(self) -> &'static str {
        match self {
            Format::Docker => media_types::DOCKER_MANIFEST_LIST,
            Format::Oci => media_types::OCI_INDEX,
        }
    }

    /// Media type of an image config.
    pub fn config_media_type(self) -> &'static str {
        match self {
            Format::Docker => media_types::DOCKER_CONFIG,
            Format::Oci => media_types::OCI_CONFIG,
        }
    }
}

/// What to push as one image.
#[derive(Debug, Clone)]
pub struct ImageSpec {
    /// Layers, base first. Clone a [`Layer`] into several specs to share it.
    pub layers: Vec<Layer>,
    /// Manifest family.
    pub format: Format,
    /// Platform OS, e.g. `linux`.
    pub os: String,
    /// Platform architecture, e.g. `amd64`.
    pub arch: String,
    /// Platform variant, e.g. `v8` for arm64.
    pub variant: Option<String>,
}

impl ImageSpec {
    /// A linux/amd64 Docker image with these layers.
    pub fn new(layers: Vec<Layer>) -> ImageSpec {
        ImageSpec {
            layers,
            format: Format::Docker,
            os: "linux".into(),
            arch: "amd64".into(),
            variant: None,
        }
    }

    /// The same spec in another format.
    pub fn with_format(mut self, format: Format) -> ImageSpec {
        self.format = format;
        self
    }

    /// The same spec for another platform.
    pub fn with_platform(mut self, os: &str, arch: &str, variant: Option<&str>) -> ImageSpec {
        self.os = os.into();
        self.arch = arch.into();
        self.variant = variant.map(str::to_string);
        self
    }

    /// The `platform` object of an index entry (also the config's fields).
    fn platform(&self) -> Value {
        let mut platform = json!({ "architecture": self.arch, "os": self.os });
        if let Some(variant) = &self.variant {
            platform["variant"] = json!(variant);
        }
        platform
    }
}

/// One image as pushed.
#[derive(Debug, Clone)]
pub struct PushedImage {
    /// `sha256:` digest of the manifest.
    pub digest: String,
    /// The manifest exactly as pushed.
    pub manifest_bytes: Bytes,
    /// The manifest's media type.
    pub media_type: String,
    /// `(digest, size)` of the config first, then of each layer in order.
    pub blobs: Vec<(String, u64)>,
}

/// A multi-platform index as pushed.
#[derive(Debug, Clone)]
pub struct PushedIndex {
    /// `sha256:` digest of the index.
    pub digest: String,
    /// The index exactly as pushed.
    pub bytes: Bytes,
    /// The index's media type.
    pub media_type: String,
    /// The child images, in index order.
    pub children: Vec<PushedImage>,
}

/// Pushes the layers, config and manifest of `spec` and tags it `repo:tag`.
pub async fn push_image(
    registry: &Registry,
    repo: &str,
    tag: &str,
    spec: ImageSpec,
) -> Result<PushedImage> {
    let api = RegistryApi::new(registry)?;
    push_image_as(&api, repo, Some(tag), &spec).await
}

/// `bad/app:1`, whose layer is then corrupted on the registry's disk (a copy of it fails
/// with a digest mismatch), and `good/app:1`, at `registry`: a run with one tag that fails
/// at the worker and one that makes it.
pub async fn push_bad_and_good(registry: &Registry) -> Result<()> {
    let bad = push_image(
        registry,
        "bad/app",
        "1",
        ImageSpec::new(vec![Layer::random(20_000)]),
    )
    .await?;
    push_image(
        registry,
        "good/app",
        "1",
        ImageSpec::new(vec![Layer::random(1_000)]),
    )
    .await?;
    registry.corrupt_blob(&bad.blobs[1].0)
}

/// Pushes each child by digest (in the index's `format`, whatever the child
/// spec says, so a Docker list holds schema-2 images and an OCI index OCI
/// manifests), then the index itself as `repo:tag`.
pub async fn push_index(
    registry: &Registry,
    repo: &str,
    tag: &str,
    children: Vec<ImageSpec>,
    format: Format,
) -> Result<PushedIndex> {
    let api = RegistryApi::new(registry)?;
    let mut pushed = Vec::with_capacity(children.len());
    let mut entries = Vec::with_capacity(children.len());
    for child in children {
        let child = child.with_format(format);
        let image = push_image_as(&api, repo, None, &child).await?;
        entries.push(json!({
            "mediaType": image.media_type,
            "size": image.manifest_bytes.len(),
            "digest": image.digest,
            "platform": child.platform(),
        }));
        pushed.push(image);
    }
    let media_type = format.index_media_type();
    let index = json!({ "schemaVersion": 2, "mediaType": media_type, "manifests": entries });
    let bytes = Bytes::from(serde_json::to_vec_pretty(&index).context("serialising the index")?);
    let digest = api
        .put_manifest(repo, tag, media_type, bytes.clone())
        .await?;
    Ok(PushedIndex {
        digest,
        bytes,
        media_type: media_type.to_string(),
        children: pushed,
    })
}

/// linux/amd64, linux/arm64/v8 and linux/s390x images that share one random
/// base layer and each have one small layer of their own.
pub fn three_platform_index_spec() -> Vec<ImageSpec> {
    let base = Layer::random(16 * 1024);
    [("amd64", None), ("arm64", Some("v8")), ("s390x", None)]
        .into_iter()
        .map(|(arch, variant)| {
            ImageSpec::new(vec![base.clone(), Layer::random(4 * 1024)])
                .with_platform("linux", arch, variant)
        })
        .collect()
}

/// Pushes one image; by digest only when `tag` is `None`.
async fn push_image_as(
    api: &RegistryApi,
    repo: &str,
    tag: Option<&str>,
    spec: &ImageSpec,
) -> Result<PushedImage> {
    for layer in &spec.layers {
        api.push_layer(repo, layer)
            .await
            .with_context(|| format!("pushing layer {} to {repo}", layer.digest()))?;
    }
    let config = config_blob(spec)?;
    api.push_blob(repo, &config)
        .await
        .with_context(|| format!("pushing config {} to {repo}", config.digest))?;

    let layers: Vec<Value> = spec
        .layers
        .iter()
        .map(|l| json!({ "mediaType": l.media_type(spec.format), "size": l.size(), "digest": l.digest() }))
        .collect();
    let media_type = spec.format.manifest_media_type();
    let manifest = json!({
        "schemaVersion": 2,
        "mediaType": media_type,
        "config": { "mediaType": config.media_type, "size": config.size, "digest": config.digest },
        "layers": layers,
    });
    let bytes =
        Bytes::from(serde_json::to_vec_pretty(&manifest).context("serialising the manifest")?);
    let digest = crate::layer::sha256_digest(&bytes);
    let reference = tag.unwrap_or(&digest);
    api.put_manifest(repo, reference, media_type, bytes.clone())
        .await?;

    let mut blobs = vec![(config.digest.clone(), config.size)];
    blobs.extend(
        spec.layers
            .iter()
            .map(|l| (l.digest().to_string(), l.size())),
    );
    Ok(PushedImage {
        digest,
        manifest_bytes: bytes,
        media_type: media_type.to_string(),
        blobs,
    })
}

/// The image config: platform plus `rootfs.diff_ids`.
fn config_blob(spec: &ImageSpec) -> Result<Blob> {
    let diff_ids: Vec<&str> = spec.layers.iter().map(Layer::diff_id).collect();
    let mut config = spec.platform();
    config["config"] = json!({});
    config["rootfs"] = json!({ "type": "layers", "diff_ids": diff_ids });
    let data = serde_json::to_vec(&config).context("serialising the image config")?;
    Ok(Blob::new(spec.format.config_media_type(), data))
}

/// Images seeded by [`seed_numbered`] and the mapping file that mirrors them.
pub struct Seeded {
    /// Path of the mapping file (`SRC/NAMEi:1 DST/NAMEi:1` per line).
    pub mapping: String,
    /// The images, in repository order.
    pub images: Vec<PushedImage>,
}

/// Pushes one image tagged `1` into each of `NAME0` .. `NAME{n-1}` (its layers from
/// `layers(i)`, so tests choose what is shared) and writes, in `dir`, the mapping file that
/// mirrors each to the same repository at `dst_host`: the setup most fleet tests start from.
pub async fn seed_numbered(
    src: &Registry,
    dst_host: &str,
    name: &str,
    n: usize,
    dir: &std::path::Path,
    layers: impl Fn(usize) -> Vec<Layer>,
) -> Result<Seeded> {
    let (s, d) = (src.host(), dst_host);
    let mut lines = String::new();
    let mut images = Vec::new();
    for i in 0..n {
        let repo = format!("{name}{i}");
        images.push(push_image(src, &repo, "1", ImageSpec::new(layers(i))).await?);
        lines.push_str(&format!("{s}/{repo}:1 {d}/{repo}:1\n"));
    }
    let file = format!("mapping_{}", name.replace('/', "_"));
    Ok(Seeded {
        mapping: crate::test_io::write(dir, &file, &lines),
        images,
    })
}
