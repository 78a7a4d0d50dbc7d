//! Content digests (`sha256:<hex>`) and the hasher that checks bytes while they stream.

use sha2::{Digest as _, Sha256};

/// The `sha256:<hex>` digest of a byte slice.
pub fn sha256_digest(bytes: &[u8]) -> String {
    format!("sha256:{}", hex::encode(Sha256::digest(bytes)))
}

/// Checks that `s` is a digest this client can verify and put in a URL: `sha256:` and 64
/// lowercase hex digits, or `sha512:` and 128. Anything else (another algorithm, upper
/// case, a path such as `sha256:../../_catalog`) is refused with the reason.
pub fn validate(s: &str) -> Result<(), String> {
    let (algorithm, hex) = s
        .split_once(':')
        .ok_or_else(|| format!("\"{s}\" is not a digest (algorithm:hex)"))?;
    let len = match algorithm {
        "sha256" => 64,
        "sha512" => 128,
        _ => {
            return Err(format!(
                "\"{s}\": unsupported digest algorithm \"{algorithm}\""
            ))
        }
    };
    if hex.len() != len
        || !hex
            .bytes()
            .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
    {
        return Err(format!(
            "\"{s}\" is not a valid {algorithm} digest ({len} lowercase hex digits)"
        ));
    }
    Ok(())
}

/// Deserializes a digest field, refusing one [`validate`] refuses: a message carrying a
/// malformed digest does not decode (a worker parks it) instead of reaching a URL.
pub fn deserialize<'de, D: serde::Deserializer<'de>>(d: D) -> Result<String, D::Error> {
    let s = <String as serde::Deserialize>::deserialize(d)?;
    validate(&s).map_err(serde::de::Error::custom)?;
    Ok(s)
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
    fn digests_are_checked_before_they_reach_a_url() {
        assert!(validate(&sha256_digest(b"")).is_ok());
        assert!(validate(&format!("sha512:{}", "a".repeat(128))).is_ok());
        for bad in [
            "sha256:../../../_catalog",
            "sha256:ABC",
            "md5:00",
            "sha256",
            &format!("sha256:{}", "A".repeat(64)),
        ] {
            assert!(validate(bad).is_err(), "{bad}");
        }
    }

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
