//! crane's `--platform os/arch[/variant]` as the `--filter-by-os` pattern it means: the
//! parts matched literally, the whole platform string anchored (as `--filter-by-os` is),
//! and a platform without a variant matching every variant of it, as crane matches.

/// The `--filter-by-os` pattern of `--platform` values (comma-separated or repeated);
/// `None` for `all`, crane's default.
pub fn platform_pattern(values: &[String]) -> Result<Option<String>, String> {
    let mut alternatives = Vec::new();
    for value in values {
        let v = value.trim();
        if v == "all" {
            return Ok(None);
        }
        let parts: Vec<&str> = v.split('/').collect();
        let well_formed = matches!(parts.len(), 2 | 3)
            && parts.iter().all(|p| {
                !p.is_empty()
                    && p.bytes()
                        .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-' || b == b'.')
            });
        if !well_formed {
            return Err(format!(
                "--platform \"{value}\": expected os/arch[/variant], e.g. linux/arm64 or linux/arm/v7"
            ));
        }
        let escaped: Vec<String> = parts.iter().map(|p| regex::escape(p)).collect();
        let mut pattern = escaped.join("/");
        if parts.len() == 2 {
            pattern.push_str("(?:/[^/]+)?");
        }
        alternatives.push(pattern);
    }
    Ok(match alternatives.len() {
        0 => None,
        1 => alternatives.pop(),
        _ => Some(alternatives.join("|")),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use mirror_common::copy::PlatformFilter;
    use mirror_common::manifest::{Descriptor, Platform};

    fn child(os: &str, arch: &str, variant: Option<&str>) -> Descriptor {
        Descriptor {
            platform: Some(Platform {
                os: os.into(),
                architecture: arch.into(),
                variant: variant.map(Into::into),
            }),
            ..Descriptor::default()
        }
    }

    fn filter(values: &[&str]) -> PlatformFilter {
        let values: Vec<String> = values.iter().map(|s| s.to_string()).collect();
        PlatformFilter::new(&platform_pattern(&values).unwrap().unwrap()).unwrap()
    }

    #[test]
    fn a_platform_keeps_exactly_that_platform_and_any_variant_when_none_is_given() {
        let f = filter(&["linux/arm64"]);
        assert!(f.keeps(&child("linux", "arm64", None)));
        assert!(f.keeps(&child("linux", "arm64", Some("v8"))));
        assert!(!f.keeps(&child("linux", "amd64", None)));
        let f = filter(&["linux/arm/v7"]);
        assert!(f.keeps(&child("linux", "arm", Some("v7"))));
        assert!(!f.keeps(&child("linux", "arm", Some("v6"))));
        let f = filter(&["linux/amd64", "linux/s390x"]);
        assert!(f.keeps(&child("linux", "s390x", None)));
        assert!(!f.keeps(&child("linux", "ppc64le", None)));
    }

    #[test]
    fn regex_characters_are_literal_and_bad_platforms_are_named() {
        let f = filter(&["linux/a.c"]);
        assert!(!f.keeps(&child("linux", "abc", None)));
        assert!(f.keeps(&child("linux", "a.c", None)));
        for bad in [
            "linux",
            "linux/",
            "linux/amd64/v1/x",
            "linux/.*",
            "linux/amd64:10.0",
        ] {
            let e = platform_pattern(&[bad.to_string()]).unwrap_err();
            assert!(e.contains(bad) && e.contains("os/arch"), "{e}");
        }
        assert_eq!(platform_pattern(&["all".into()]), Ok(None));
    }
}
