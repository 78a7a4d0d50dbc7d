//! `--filter-by-os`: which children of an index to keep, matched on `os/arch[/variant]`.

use regex::Regex;

use crate::manifest::Descriptor;

/// A compiled platform filter. The pattern must match the whole `os/arch[/variant]`
/// string, so `linux/arm` does not also select `linux/arm64`.
#[derive(Clone, Debug)]
pub struct PlatformFilter {
    pattern: String,
    re: Regex,
}

impl PlatformFilter {
    /// Compiles a pattern; the error names it.
    pub fn new(pattern: &str) -> Result<Self, String> {
        let re = Regex::new(&format!("^(?:{pattern})$"))
            .map_err(|e| format!("--filter-by-os \"{pattern}\": {e}"))?;
        Ok(PlatformFilter {
            pattern: pattern.to_string(),
            re,
        })
    }

    /// `linux/amd64`: the one image oc mirrors from a manifest list when it is not told to
    /// keep the list.
    pub fn linux_amd64() -> Self {
        // A constant pattern: compiling it cannot fail.
        PlatformFilter::new("linux/amd64").unwrap_or_else(|e| unreachable!("{e}"))
    }

    /// The pattern as given.
    pub fn pattern(&self) -> &str {
        &self.pattern
    }

    /// True when a child's platform matches; children without a platform never match.
    pub fn keeps(&self, child: &Descriptor) -> bool {
        child
            .platform
            .as_ref()
            .is_some_and(|p| self.re.is_match(&p.spec()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::manifest::Platform;

    fn child(os: &str, arch: &str, variant: Option<&str>) -> Descriptor {
        Descriptor {
            digest: "sha256:0".into(),
            platform: Some(Platform {
                os: os.into(),
                architecture: arch.into(),
                variant: variant.map(Into::into),
            }),
            ..Descriptor::default()
        }
    }

    #[test]
    fn pattern_matches_whole_platform_string() {
        let f = PlatformFilter::new("linux/arm").unwrap();
        assert!(!f.keeps(&child("linux", "arm64", Some("v8"))));
        let f = PlatformFilter::new("linux/(amd64|arm64.*)").unwrap();
        assert!(f.keeps(&child("linux", "amd64", None)));
        assert!(f.keeps(&child("linux", "arm64", Some("v8"))));
        assert!(!f.keeps(&child("linux", "s390x", None)));
    }

    #[test]
    fn bad_pattern_is_named_in_the_error() {
        assert!(PlatformFilter::new("linux/(")
            .unwrap_err()
            .contains("linux/("));
    }
}
