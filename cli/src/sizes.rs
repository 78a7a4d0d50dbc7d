//! Sizes as people write them: `--chunk-size REGISTRY=SIZE` reads `16MiB`, `100MB`,
//! `5000000`; [`human_bytes`] writes every size a summary line shows, the same in `copy`
//! and `run`.

use std::collections::HashMap;

/// Chunk sizes by registry; each error names the flag value at fault.
pub fn parse_chunk_sizes(values: &[String]) -> Result<HashMap<String, u64>, String> {
    let mut sizes = HashMap::new();
    for v in values {
        let (registry, size) = v.split_once('=').ok_or_else(|| {
            format!("--chunk-size \"{v}\": expected REGISTRY=SIZE, e.g. quay.io=50MiB")
        })?;
        let bytes = size
            .trim()
            .parse::<bytesize::ByteSize>()
            .map_err(|e| format!("--chunk-size \"{v}\": \"{size}\" is not a size: {e}"))?
            .as_u64();
        if bytes == 0 {
            return Err(format!("--chunk-size \"{v}\": the size must be above 0"));
        }
        sizes.insert(registry.trim().to_string(), bytes);
    }
    Ok(sizes)
}

/// `12.3 MiB`-style sizes for humans (binary units, one decimal; bytes below 1 KiB).
pub fn human_bytes(n: u64) -> String {
    const UNITS: [&str; 5] = ["B", "KiB", "MiB", "GiB", "TiB"];
    let mut v = n as f64;
    let mut u = 0;
    while v >= 1024.0 && u < UNITS.len() - 1 {
        v /= 1024.0;
        u += 1;
    }
    if u == 0 {
        format!("{n} B")
    } else {
        format!("{v:.1} {}", UNITS[u])
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sizes_read_like_a_human_would_write_them() {
        assert_eq!(human_bytes(512), "512 B");
        assert_eq!(human_bytes(3 << 20), "3.0 MiB");
        assert_eq!(human_bytes(1536), "1.5 KiB");
    }

    #[test]
    fn chunk_sizes_take_units_and_bad_values_are_named() {
        let s = parse_chunk_sizes(&["quay.io=16MiB".into(), "r:5000=1000".into()]).unwrap();
        assert_eq!(s["quay.io"], 16 * 1024 * 1024);
        assert_eq!(s["r:5000"], 1000);
        let e = parse_chunk_sizes(&["quay.io".into()]).unwrap_err();
        assert!(e.contains("REGISTRY=SIZE"), "{e}");
        let e = parse_chunk_sizes(&["quay.io=lots".into()]).unwrap_err();
        assert!(e.contains("\"lots\""), "{e}");
    }
}
