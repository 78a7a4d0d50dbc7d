//! OCI artifacts pushed the way the tools that make them push them, through the registry
//! API and independently of the code under test: cosign's signatures and attestations
//! (`sha256-<hex>.sig` / `.att` tags, no `subject`), OCI 1.1 artifacts with a `subject`
//! (an SBOM, as oras or syft push them) listed in the referrers tag schema's `sha256-<hex>`
//! index for registries without the Referrers API (distribution 2.8), Helm charts, and
//! manifests with unusual config and layer media types.

use anyhow::{Context, Result};
use bytes::Bytes;
use reqwest::{Method, StatusCode};
use serde_json::{json, Value};

use crate::api::RegistryApi;
use crate::layer::{sha256_digest, Blob};
use crate::registry::Registry;

/// OCI image manifest media type.
pub const OCI_MANIFEST: &str = "application/vnd.oci.image.manifest.v1+json";
/// OCI image index media type.
pub const OCI_INDEX: &str = "application/vnd.oci.image.index.v1+json";
/// The OCI empty descriptor's media type (a 2-byte `{}` config).
pub const EMPTY_CONFIG: &str = "application/vnd.oci.empty.v1+json";
/// cosign's signature layer media type.
pub const COSIGN_SIGNATURE: &str = "application/vnd.dev.cosign.simplesigning.v1+json";
/// cosign's attestation layer media type (a DSSE envelope).
pub const DSSE_ENVELOPE: &str = "application/vnd.dsse.envelope.v1+json";
/// SPDX SBOM artifact type.
pub const SPDX: &str = "application/spdx+json";

/// A manifest as pushed: digest, bytes, media type.
#[derive(Debug, Clone)]
pub struct Pushed {
    /// `sha256:` digest.
    pub digest: String,
    /// The manifest exactly as pushed.
    pub bytes: Bytes,
    /// Its media type.
    pub media_type: String,
}

impl Pushed {
    /// The descriptor of this manifest, as a `subject` or index entry names it.
    pub fn descriptor(&self) -> Value {
        json!({"mediaType": self.media_type, "digest": self.digest, "size": self.bytes.len()})
    }

    /// The referrers tag schema's tag of this manifest (`sha256-<hex>`).
    pub fn tag_schema_tag(&self) -> String {
        self.digest.replacen(':', "-", 1)
    }

    /// cosign's tag for this manifest's signatures, attestations or SBOMs (`sig`, ...).
    pub fn cosign_tag(&self, suffix: &str) -> String {
        format!("{}.{suffix}", self.tag_schema_tag())
    }
}

/// What an artifact manifest holds.
#[derive(Debug, Clone, Default)]
pub struct ArtifactSpec {
    /// `artifactType`, if any.
    pub artifact_type: Option<String>,
    /// Config media type and bytes; `None`: the empty descriptor (`{}`).
    pub config: Option<(String, Vec<u8>)>,
    /// Layers: media type and bytes.
    pub layers: Vec<(String, Vec<u8>)>,
    /// The manifest it refers to.
    pub subject: Option<Value>,
    /// Manifest annotations.
    pub annotations: Option<Value>,
}

/// Pushes an artifact's blobs and manifest, under `tag` or by digest.
pub async fn push_artifact(
    registry: &Registry,
    repo: &str,
    tag: Option<&str>,
    spec: &ArtifactSpec,
) -> Result<Pushed> {
    let api = RegistryApi::new(registry)?;
    let (config_type, config_bytes) = spec
        .config
        .clone()
        .unwrap_or_else(|| (EMPTY_CONFIG.to_string(), b"{}".to_vec()));
    let config = Blob::new(config_type.clone(), config_bytes);
    api.push_blob(repo, &config).await?;
    let mut layers = Vec::new();
    for (media_type, bytes) in &spec.layers {
        let blob = Blob::new(media_type.clone(), bytes.clone());
        api.push_blob(repo, &blob).await?;
        layers
            .push(json!({"mediaType": media_type, "digest": blob.digest, "size": blob.data.len()}));
    }
    let mut doc = json!({
        "schemaVersion": 2,
        "mediaType": OCI_MANIFEST,
        "config": {"mediaType": config_type, "digest": config.digest, "size": config.data.len()},
        "layers": layers,
    });
    if let Some(t) = &spec.artifact_type {
        doc["artifactType"] = json!(t);
    }
    if let Some(s) = &spec.subject {
        doc["subject"] = s.clone();
    }
    if let Some(a) = &spec.annotations {
        doc["annotations"] = a.clone();
    }
    put(&api, repo, tag, OCI_MANIFEST, &doc).await
}

async fn put(
    api: &RegistryApi,
    repo: &str,
    tag: Option<&str>,
    media_type: &str,
    doc: &Value,
) -> Result<Pushed> {
    let bytes = Bytes::from(serde_json::to_vec(doc).context("serialising a manifest")?);
    let digest = sha256_digest(&bytes);
    let reference = tag.unwrap_or(&digest).to_string();
    api.put_manifest(repo, &reference, media_type, bytes.clone())
        .await?;
    Ok(Pushed {
        digest,
        bytes,
        media_type: media_type.to_string(),
    })
}

/// What cosign pushes under its tags: an empty image config and `layers`.
fn cosign_spec(layers: Vec<(String, Vec<u8>)>) -> ArtifactSpec {
    ArtifactSpec {
        config: Some((
            "application/vnd.oci.image.config.v1+json".into(),
            br#"{"architecture":"","os":"","config":{},"rootfs":{"type":"layers","diff_ids":[]}}"#
                .to_vec(),
        )),
        layers,
        ..ArtifactSpec::default()
    }
}

/// A cosign-style signature of `subject` (`payload` stands for the signed payload), under
/// cosign's `.sig` tag, replacing what that tag held (cosign appends a layer per signature,
/// which gives the tag a new digest: `payloads` lists every signature).
pub async fn cosign_sign(
    registry: &Registry,
    repo: &str,
    subject: &Pushed,
    payloads: &[&str],
) -> Result<Pushed> {
    let layers = payloads
        .iter()
        .map(|p| (COSIGN_SIGNATURE.to_string(), p.as_bytes().to_vec()))
        .collect();
    let spec = cosign_spec(layers);
    push_artifact(registry, repo, Some(&subject.cosign_tag("sig")), &spec).await
}

/// A cosign-style attestation of `subject` (an in-toto statement in a DSSE envelope),
/// under cosign's `.att` tag.
pub async fn cosign_attest(
    registry: &Registry,
    repo: &str,
    subject: &Pushed,
    statement: &str,
) -> Result<Pushed> {
    let spec = cosign_spec(vec![(DSSE_ENVELOPE.into(), statement.as_bytes().to_vec())]);
    push_artifact(registry, repo, Some(&subject.cosign_tag("att")), &spec).await
}

/// An OCI 1.1 artifact with a `subject`, pushed by digest and added to the source's
/// referrers tag schema index (`sha256-<hex>`, merged with what it lists), as oras does on
/// a registry without the Referrers API.
pub async fn attach(
    registry: &Registry,
    repo: &str,
    subject: &Pushed,
    artifact_type: &str,
    content: &str,
) -> Result<Pushed> {
    let spec = ArtifactSpec {
        artifact_type: Some(artifact_type.to_string()),
        config: None,
        layers: vec![(artifact_type.to_string(), content.as_bytes().to_vec())],
        subject: Some(subject.descriptor()),
        annotations: Some(json!({"org.opencontainers.image.created": "2026-11-30T00:00:00Z"})),
    };
    let artifact = push_artifact(registry, repo, None, &spec).await?;
    let tag = subject.tag_schema_tag();
    let mut listed = referrers_listed(registry, repo, &tag).await?;
    let mut entry = artifact.descriptor();
    entry["artifactType"] = json!(artifact_type);
    entry["annotations"] = spec.annotations.clone().unwrap_or(json!({}));
    listed.push(entry);
    let api = RegistryApi::new(registry)?;
    let index = json!({"schemaVersion": 2, "mediaType": OCI_INDEX, "manifests": listed});
    put(&api, repo, Some(&tag), OCI_INDEX, &index).await?;
    Ok(artifact)
}

/// The entries of a referrers tag schema index (`sha256-<hex>`), empty when there is none.
pub async fn referrers_listed(registry: &Registry, repo: &str, tag: &str) -> Result<Vec<Value>> {
    let api = RegistryApi::new(registry)?;
    let resp = api
        .request(Method::GET, &format!("/v2/{repo}/manifests/{tag}"))
        .header("Accept", OCI_INDEX)
        .send()
        .await
        .with_context(|| format!("GET {repo}:{tag}"))?;
    if resp.status() == StatusCode::NOT_FOUND {
        return Ok(Vec::new());
    }
    let doc: Value = resp
        .error_for_status()
        .with_context(|| format!("GET {repo}:{tag}"))?
        .json()
        .await?;
    Ok(doc["manifests"].as_array().cloned().unwrap_or_default())
}

/// The digests a referrers tag schema index lists.
pub async fn referrer_digests(registry: &Registry, repo: &str, tag: &str) -> Result<Vec<String>> {
    let mut digests: Vec<String> = referrers_listed(registry, repo, tag)
        .await?
        .iter()
        .filter_map(|e| e["digest"].as_str().map(str::to_string))
        .collect();
    digests.sort();
    Ok(digests)
}
