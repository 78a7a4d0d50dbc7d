//! Blobs and image layers made of random bytes.
//!
//! Why: mirroring must move bytes faithfully, so layers are random (nothing
//! compresses or dedups by accident) and each knows its digest up front.
//! Small layers are gzip'd in memory like real ones; large ones are an
//! uncompressed, seeded pseudo-random stream that is generated twice (once to
//! hash here, once while uploading) so a 512 MiB layer never sits in memory.
//!
//! Hashing and the stream use ring (assembly, fast even in the unoptimised
//! test profile: sha2 and rand run at ~30 and ~200 MB/s there, which made a
//! 512 MiB layer cost over 20 s; ring does it in under a second).

use std::io::Write;
use std::sync::Arc;

use aws_lc_rs::aead::{Aad, LessSafeKey, Nonce, UnboundKey, CHACHA20_POLY1305};
use aws_lc_rs::digest::{Context as Sha256, SHA256};
use bytes::Bytes;
use flate2::write::GzEncoder;
use rand::RngCore;

use crate::fixtures::Format;
use crate::media_types;

/// From this size on, [`Layer::random`] makes a streamed, uncompressed layer.
pub const STREAM_THRESHOLD: u64 = 8 * 1024 * 1024;
/// The generator's unit: block `i` of a stream is the ChaCha20 keystream for
/// nonce `i`, so the stream is the same however it is cut into chunks.
const BLOCK: usize = 64 * 1024;
/// Upload chunk of streamed layers (one `PATCH` each).
pub const UPLOAD_CHUNK: usize = 8 * 1024 * 1024;

/// `sha256:<hex>` of some bytes.
pub fn sha256_digest(data: &[u8]) -> String {
    format!(
        "sha256:{}",
        hex::encode(aws_lc_rs::digest::digest(&SHA256, data))
    )
}

/// Bytes held in memory with their digest and media type (a config, a small layer, ...).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Blob {
    /// Media type used when the blob is referenced from a manifest.
    pub media_type: String,
    /// The content.
    pub data: Bytes,
    /// `sha256:<hex>` of `data`.
    pub digest: String,
    /// Length of `data`.
    pub size: u64,
}

impl Blob {
    /// Wraps bytes, computing digest and size.
    pub fn new(media_type: impl Into<String>, data: impl Into<Bytes>) -> Blob {
        let data = data.into();
        Blob {
            media_type: media_type.into(),
            digest: sha256_digest(&data),
            size: data.len() as u64,
            data,
        }
    }
}

/// A layer that can be pushed to any number of repositories and images.
/// Cloning is cheap and keeps the same content, so a cloned layer is a shared
/// base layer.
#[derive(Debug, Clone)]
pub struct Layer {
    inner: Arc<LayerInner>,
}

#[derive(Debug)]
struct LayerInner {
    content: Content,
    digest: String,
    size: u64,
    diff_id: String,
}

#[derive(Debug)]
enum Content {
    /// gzip-compressed bytes held in memory.
    Gzip(Bytes),
    /// Uncompressed pseudo-random bytes regenerated from a seed on demand.
    Seeded { seed: u64 },
}

impl Layer {
    /// `size_bytes` of random content: gzip-compressed in memory below
    /// [`STREAM_THRESHOLD`] (the blob is then slightly larger than
    /// `size_bytes`), else an uncompressed streamed layer of exactly `size_bytes`.
    pub fn random(size_bytes: u64) -> Layer {
        if size_bytes >= STREAM_THRESHOLD {
            Self::random_streamed(size_bytes)
        } else {
            let mut raw = vec![0u8; size_bytes as usize];
            rand::rng().fill_bytes(&mut raw);
            Self::gzip(&raw)
        }
    }

    /// gzip-compresses `uncompressed` into a layer whose diff_id is the sha256
    /// of `uncompressed`.
    pub fn gzip(uncompressed: &[u8]) -> Layer {
        let mut encoder = GzEncoder::new(Vec::new(), flate2::Compression::fast());
        // Writing into a Vec cannot fail.
        encoder
            .write_all(uncompressed)
            .expect("gzip into memory cannot fail");
        let compressed = Bytes::from(encoder.finish().expect("gzip into memory cannot fail"));
        Layer {
            inner: Arc::new(LayerInner {
                digest: sha256_digest(&compressed),
                size: compressed.len() as u64,
                diff_id: sha256_digest(uncompressed),
                content: Content::Gzip(compressed),
            }),
        }
    }

    /// An uncompressed layer of exactly `size_bytes` pseudo-random bytes from
    /// a random seed. Hashes the whole stream once now (about a second per
    /// few hundred MiB).
    pub fn random_streamed(size_bytes: u64) -> Layer {
        Self::seeded(rand::random(), size_bytes)
    }

    /// Like [`Layer::random_streamed`] with a chosen seed: the same seed and
    /// size always give the same layer.
    pub fn seeded(seed: u64, size_bytes: u64) -> Layer {
        let mut hasher = Sha256::new(&SHA256);
        for chunk in seeded_chunks(seed, size_bytes, UPLOAD_CHUNK) {
            hasher.update(&chunk);
        }
        let digest = format!("sha256:{}", hex::encode(hasher.finish()));
        Layer {
            inner: Arc::new(LayerInner {
                content: Content::Seeded { seed },
                diff_id: digest.clone(),
                digest,
                size: size_bytes,
            }),
        }
    }

    /// `sha256:<hex>` of the blob as stored in the registry.
    pub fn digest(&self) -> &str {
        &self.inner.digest
    }

    /// Size of the blob as stored in the registry.
    pub fn size(&self) -> u64 {
        self.inner.size
    }

    /// sha256 of the uncompressed content, for the config's `rootfs.diff_ids`.
    pub fn diff_id(&self) -> &str {
        &self.inner.diff_id
    }

    /// Whether the blob is gzip-compressed.
    pub fn is_compressed(&self) -> bool {
        matches!(self.inner.content, Content::Gzip(_))
    }

    /// The layer media type for a manifest of `format`.
    pub fn media_type(&self, format: Format) -> &'static str {
        match (format, self.is_compressed()) {
            (Format::Docker, true) => media_types::DOCKER_LAYER_GZIP,
            (Format::Docker, false) => media_types::DOCKER_LAYER_TAR,
            (Format::Oci, true) => media_types::OCI_LAYER_GZIP,
            (Format::Oci, false) => media_types::OCI_LAYER_TAR,
        }
    }

    /// The blob's bytes when held in memory (small, gzip'd layers).
    pub fn bytes(&self) -> Option<&Bytes> {
        match &self.inner.content {
            Content::Gzip(b) => Some(b),
            Content::Seeded { .. } => None,
        }
    }

    /// The blob's bytes in pieces of at most `chunk_size` (rounded up to
    /// 64 KiB for streamed layers), generated lazily for streamed layers.
    pub fn chunks(&self, chunk_size: usize) -> Box<dyn Iterator<Item = Bytes> + Send> {
        match &self.inner.content {
            Content::Gzip(b) => {
                let b = b.clone();
                let step = chunk_size.max(1);
                Box::new(
                    (0..b.len())
                        .step_by(step)
                        .map(move |start| b.slice(start..(start + step).min(b.len()))),
                )
            }
            Content::Seeded { seed } => {
                Box::new(seeded_chunks(*seed, self.inner.size, chunk_size).map(Bytes::from))
            }
        }
    }
}

/// The seeded stream of `size` bytes cut into chunks of `chunk_size` rounded
/// up to whole [`BLOCK`]s (the last chunk may be shorter).
fn seeded_chunks(seed: u64, size: u64, chunk_size: usize) -> impl Iterator<Item = Vec<u8>> {
    let chunk_size = chunk_size.max(1).div_ceil(BLOCK) * BLOCK;
    let mut key_bytes = [0u8; 32];
    key_bytes[..8].copy_from_slice(&seed.to_le_bytes());
    let key = LessSafeKey::new(
        UnboundKey::new(&CHACHA20_POLY1305, &key_bytes).expect("a 32-byte ChaCha20 key is valid"),
    );
    let mut offset = 0u64;
    std::iter::from_fn(move || {
        if offset >= size {
            return None;
        }
        let len = (size - offset).min(chunk_size as u64) as usize;
        let first_block = offset / BLOCK as u64;
        let mut buf = vec![0u8; len];
        for (i, block) in buf.chunks_mut(BLOCK).enumerate() {
            let mut nonce = [0u8; 12];
            nonce[4..].copy_from_slice(&(first_block + i as u64).to_le_bytes());
            // Encrypting zeros yields the keystream; the tag is not needed.
            let _tag = key
                .seal_in_place_separate_tag(
                    Nonce::assume_unique_for_key(nonce),
                    Aad::empty(),
                    block,
                )
                .expect("64 KiB is within ChaCha20's length limit");
        }
        offset += len as u64;
        Some(buf)
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn seeded_stream_does_not_depend_on_chunk_size() {
        let a: Vec<u8> = seeded_chunks(7, 300_000, BLOCK).flatten().collect();
        let b: Vec<u8> = seeded_chunks(7, 300_000, 4 * BLOCK).flatten().collect();
        assert_eq!(a.len(), 300_000);
        assert_eq!(a, b);
    }

    #[test]
    fn seeded_layer_digest_matches_its_chunks() {
        let layer = Layer::seeded(3, 200_000);
        let all: Vec<u8> = layer.chunks(BLOCK).flat_map(|c| c.to_vec()).collect();
        assert_eq!(sha256_digest(&all), layer.digest());
        assert_eq!(layer.diff_id(), layer.digest());
    }

    #[test]
    fn gzip_layer_keeps_uncompressed_digest_as_diff_id() {
        let layer = Layer::random(1000);
        assert!(layer.is_compressed());
        assert_ne!(layer.digest(), layer.diff_id());
        assert_eq!(
            sha256_digest(layer.bytes().unwrap()),
            layer.digest().to_string()
        );
    }
}
