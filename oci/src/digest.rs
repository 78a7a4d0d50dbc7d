//! Content digests (`sha256:<hex>`) and the hasher that checks bytes while they stream.

use sha2::{Digest as _, Sha256};

/// The `sha256:<hex>` digest of a byte slice.
pub fn sha256_digest(bytes: &[u8]) -> String {
    format!("sha256:{}", hex::encode(Sha256::digest(bytes)))
}

/// Incremental sha256 over a stream of chunks, with a byte count, so that a blob can be
/// verified on its way from source to destination without ever being held whole.
#[derive(Default)]
pub struct StreamVerifier {
    hasher: Sha256,
    len: u64,
}

impl StreamVerifier {
    /// Feeds one chunk.
    pub fn update(&mut self, chunk: &[u8]) {
        self.hasher.update(chunk);
        self.len += chunk.len() as u64;
    }

    /// Bytes seen so far.
    pub fn len(&self) -> u64 {
        self.len
    }

    /// True before any byte was seen.
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// The digest of everything fed so far.
    pub fn finish(self) -> String {
        format!("sha256:{}", hex::encode(self.hasher.finalize()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn streamed_digest_equals_whole_digest() {
        let data = b"hello registry world";
        let mut v = StreamVerifier::default();
        for c in data.chunks(3) {
            v.update(c);
        }
        assert_eq!(v.len(), data.len() as u64);
        assert_eq!(v.finish(), sha256_digest(data));
    }
}
