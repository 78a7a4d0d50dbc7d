//! The simulated images: every manifest, index and blob of the set made on demand from its
//! name, so 400,000 images cost no memory until asked for and the same name always gives the
//! same bytes (and so the same digest) in every process started with the same seed.
//!
//! Source image `scale/r<r>:v<k>` is image number `n` of the set (see
//! [`Shape::image_number`]): every 10th (`n % 10 == 9`) a 2-platform OCI index, the others
//! one OCI image; each image on one of three shared 4 KiB base layers (`n % 3`) and a
//! 1 KiB layer and a small config of its own. A *generation* other than 0 is the same
//! image before its source changed: what a destination holds when its tag is stale.
//! Generation 1 is the destination's stale one; [`Generator::change_sources`] moves a share
//! of the source's images to generations 2, 3, ... (one per call), so that a benchmark can
//! change sources between runs without restarting the simulator and losing what was pushed.

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};

use bytes::Bytes;
use parking_lot::RwLock;
use sha2::{Digest, Sha256};

use crate::scale::Shape;

/// The OCI media types the simulator serves.
pub const MANIFEST: &str = "application/vnd.oci.image.manifest.v1+json";
/// An OCI image index.
pub const INDEX: &str = "application/vnd.oci.image.index.v1+json";
const CONFIG: &str = "application/vnd.oci.image.config.v1+json";
const LAYER: &str = "application/vnd.oci.image.layer.v1.tar+gzip";

/// Bytes of a shared base layer and of an image's own layer.
const BASE_SIZE: usize = 4096;
const OWN_SIZE: usize = 1024;

/// Some bytes and their `sha256:<hex>` digest.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Content {
    /// The bytes served.
    pub bytes: Bytes,
    /// `sha256:` and the hex sha256 of [`Content::bytes`].
    pub digest: String,
}

impl Content {
    /// `bytes` with their digest.
    pub fn new(bytes: impl Into<Bytes>) -> Content {
        let bytes = bytes.into();
        Content {
            digest: digest_of(&bytes),
            bytes,
        }
    }
}

/// `sha256:<hex>` of `bytes`.
pub fn digest_of(bytes: &[u8]) -> String {
    format!("sha256:{}", hex::encode(Sha256::digest(bytes)))
}

/// One manifest: its media type and content.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Manifest {
    /// [`MANIFEST`] or [`INDEX`].
    pub media_type: &'static str,
    /// The JSON and its digest.
    pub content: Content,
}

/// Everything one source image is made of, but its base layers (shared, in
/// [`Generator::bases`]).
#[derive(Debug, Clone)]
pub struct Image {
    /// What its tag names: an image manifest or an index.
    pub top: Manifest,
    /// An index's two platform manifests (none for an image).
    pub children: Vec<Manifest>,
    /// Its own configs and layers.
    pub blobs: Vec<Content>,
}

impl Image {
    /// The manifest with `digest`: the top one or a child.
    pub fn manifest(&self, digest: &str) -> Option<&Manifest> {
        std::iter::once(&self.top)
            .chain(&self.children)
            .find(|m| m.content.digest == digest)
    }
}

/// The deterministic generator of one set.
#[derive(Debug)]
pub struct Generator {
    /// The set's size and lines.
    pub shape: Shape,
    /// Mixed into every byte made, and into which tags start changed.
    pub seed: u64,
    /// The three shared base layers.
    pub bases: Vec<Content>,
    /// The source's generation of each image `(r, k)` changed since the start (absent: 0).
    /// The only mutable part: everything else is made from names and the seed.
    changed: RwLock<HashMap<(usize, usize), u64>>,
    /// Calls of [`Generator::change_sources`] so far.
    rounds: AtomicU64,
}

impl Generator {
    /// The generator of `shape` with `seed`.
    pub fn new(shape: Shape, seed: u64) -> Generator {
        let bases = (0..3)
            .map(|i| Content::new(noise(mix(seed, &[1, i]), BASE_SIZE)))
            .collect();
        Generator {
            shape,
            seed,
            bases,
            changed: RwLock::new(HashMap::new()),
            rounds: AtomicU64::new(0),
        }
    }

    /// The source's current generation of image `v<k>` of repository `r`.
    pub fn source_generation(&self, r: usize, k: usize) -> u64 {
        self.changed.read().get(&(r, k)).copied().unwrap_or(0)
    }

    /// Changes `percent` of the source images (each drawn anew per call, so calls change
    /// different ones) to a generation no image had before, so their tags get a new digest
    /// and a run has to copy them; returns how many changed and the call's round (1, 2, ...).
    pub fn change_sources(&self, percent: f64) -> (usize, u64) {
        let round = self.rounds.fetch_add(1, Ordering::Relaxed) + 1;
        // Generation 1 is the destination's stale one: a change never goes back to it.
        let generation = round + 1;
        let per_10000 = (percent * 100.0).round().clamp(0.0, 10_000.0) as u64;
        let mut changed = self.changed.write();
        let mut n = 0;
        for r in 0..self.shape.repos {
            for k in 0..self.shape.tags_of(r) {
                if mix(self.seed, &[4, round, r as u64, k as u64]) % 10_000 < per_10000 {
                    changed.insert((r, k), generation);
                    n += 1;
                }
            }
        }
        (n, round)
    }

    /// `r` of a repository named `scale/r<r>` in the set.
    pub fn repo_number(&self, name: &str) -> Option<usize> {
        let r: usize = name.strip_prefix("scale/r")?.parse().ok()?;
        (r < self.shape.repos && name == format!("scale/r{r}")).then_some(r)
    }

    /// `k` of a source tag `v<k>` of repository `r`.
    pub fn tag_number(&self, r: usize, tag: &str) -> Option<usize> {
        let k: usize = tag.strip_prefix('v')?.parse().ok()?;
        (k < self.shape.tags_of(r) && tag == format!("v{k}")).then_some(k)
    }

    /// Source tags of repository `r`.
    pub fn tags(&self, r: usize) -> Vec<String> {
        (0..self.shape.tags_of(r))
            .map(|k| format!("v{k}"))
            .collect()
    }

    /// Image `v<k>` of repository `r` at `generation` (0: the source's current one).
    pub fn image(&self, r: usize, k: usize, generation: u64) -> Image {
        let n = self.shape.image_number(r, k);
        let base = &self.bases[n % 3];
        let name = format!("scale/r{r}:v{k}");
        if n % 10 != 9 {
            let (top, blobs) = self.platform_image(&name, n, generation, base, "amd64", 0);
            return Image {
                top,
                children: Vec::new(),
                blobs,
            };
        }
        let mut children = Vec::new();
        let mut blobs = Vec::new();
        let mut entries = Vec::new();
        for (i, arch) in ["amd64", "arm64"].into_iter().enumerate() {
            let (child, own) = self.platform_image(&name, n, generation, base, arch, i as u64 + 1);
            entries.push(serde_json::json!({
                "mediaType": MANIFEST,
                "digest": child.content.digest,
                "size": child.content.bytes.len(),
                "platform": {"os": "linux", "architecture": arch},
            }));
            children.push(child);
            blobs.extend(own);
        }
        let index =
            serde_json::json!({"schemaVersion": 2, "mediaType": INDEX, "manifests": entries});
        Image {
            top: manifest(INDEX, &index),
            children,
            blobs,
        }
    }

    /// One platform's manifest of image `n` and its own config and layer.
    fn platform_image(
        &self,
        name: &str,
        n: usize,
        generation: u64,
        base: &Content,
        arch: &str,
        platform: u64,
    ) -> (Manifest, Vec<Content>) {
        let layer = Content::new(noise(
            mix(self.seed, &[2, n as u64, generation, platform]),
            OWN_SIZE,
        ));
        let config = serde_json::json!({
            "architecture": arch,
            "os": "linux",
            "config": {"Labels": {"registry-sim": format!("{name} generation {generation}")}},
            "rootfs": {"type": "layers", "diff_ids": [base.digest, layer.digest]},
        });
        let config = Content::new(serde_json::to_vec(&config).unwrap_or_default());
        let descriptor = |media: &str, c: &Content| serde_json::json!({"mediaType": media, "digest": c.digest, "size": c.bytes.len()});
        let body = serde_json::json!({
            "schemaVersion": 2,
            "mediaType": MANIFEST,
            "config": descriptor(CONFIG, &config),
            "layers": [descriptor(LAYER, base), descriptor(LAYER, &layer)],
        });
        (manifest(MANIFEST, &body), vec![config, layer])
    }

    /// The blob with `digest` among those of repository `r`'s images at `generation`
    /// of each `v<k>` (`None`: leave that image out) and the base layers.
    pub fn blob(
        &self,
        r: usize,
        digest: &str,
        generation: impl Fn(usize) -> Option<u64>,
    ) -> Option<Content> {
        if let Some(base) = self.bases.iter().find(|b| b.digest == digest) {
            return Some(base.clone());
        }
        (0..self.shape.tags_of(r))
            .filter_map(|k| generation(k).map(|g| self.image(r, k, g)))
            .find_map(|image| image.blobs.into_iter().find(|b| b.digest == digest))
    }

    /// The manifest with `digest` among those of repository `r`'s images, as [`Self::blob`];
    /// with the `k` of its image.
    pub fn manifest(
        &self,
        r: usize,
        digest: &str,
        generation: impl Fn(usize) -> Option<u64>,
    ) -> Option<(usize, Manifest)> {
        (0..self.shape.tags_of(r)).find_map(|k| {
            let image = self.image(r, k, generation(k)?);
            image.manifest(digest).cloned().map(|m| (k, m))
        })
    }

    /// A number in `0..100` for image `v<k>` of repository `r`, and a coin: which tags a
    /// destination starts changed and how.
    pub fn draw(&self, r: usize, k: usize) -> (u64, bool) {
        let x = mix(self.seed, &[3, r as u64, k as u64]);
        (x % 100, (x >> 32) & 1 == 1)
    }
}

/// `value` as compact JSON with its media type.
fn manifest(media_type: &'static str, value: &serde_json::Value) -> Manifest {
    Manifest {
        media_type,
        content: Content::new(serde_json::to_vec(value).unwrap_or_default()),
    }
}

/// A 64-bit mix of `seed` and `parts` (splitmix64 steps): the seed of one blob's bytes.
fn mix(seed: u64, parts: &[u64]) -> u64 {
    parts
        .iter()
        .fold(splitmix(seed), |acc, p| splitmix(acc ^ splitmix(*p)))
}

/// One splitmix64 step: cheap, well spread, and needs no dependency.
fn splitmix(x: u64) -> u64 {
    let mut z = x.wrapping_add(0x9E37_79B9_7F4A_7C15);
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^ (z >> 31)
}

/// `len` bytes of noise from `seed`.
fn noise(seed: u64, len: usize) -> Vec<u8> {
    let mut state = seed;
    let mut bytes = Vec::with_capacity(len + 8);
    while bytes.len() < len {
        state = splitmix(state);
        bytes.extend_from_slice(&state.to_le_bytes());
    }
    bytes.truncate(len);
    bytes
}
