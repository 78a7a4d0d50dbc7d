//! `--chunk-size REGISTRY=SIZE`: sizes as people write them (`16MiB`, `100MB`, `5000000`).

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

#[cfg(test)]
mod tests {
    use super::*;

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
