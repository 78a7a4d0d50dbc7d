//! Image references: the docker reference grammar (`host[:port]/path[:tag][@digest]`).
//!
//! Parsing is delegated to `oci_client::Reference` (the port of docker/distribution's
//! `reference` package); this wrapper adds what a mirroring tool needs on top of it:
//! knowing whether a tag was *written* (a mapping source without a tag means "every tag",
//! while the grammar silently defaults to `latest`), and error messages that name the
//! offending reference and say what is expected.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};
use thiserror::Error;

use crate::name::{api_host, Reference, Repository};

/// Longest repository path the distribution spec accepts.
const NAME_MAX: usize = 255;

/// A parsed image reference with its defaults applied (`docker.io`, `library/`). It
/// deserializes only when its parts form a valid reference again, so a message from
/// elsewhere (a job) cannot smuggle a path or a bad digest into a URL.
#[derive(Clone, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(try_from = "Parts")]
pub struct ImageRef {
    /// Registry host as written (`quay.io`, `127.0.0.1:5000`, `docker.io`).
    pub registry: String,
    /// Repository path inside the registry (`openshift/origin-cli`, `library/busybox`).
    pub repository: String,
    /// Tag, only when one was written.
    pub tag: Option<String>,
    /// Digest (`sha256:…`), only when one was written.
    pub digest: Option<String>,
}

/// The fields of an [`ImageRef`] as received, before they are checked.
#[derive(Deserialize)]
struct Parts {
    registry: String,
    repository: String,
    tag: Option<String>,
    digest: Option<String>,
}

impl TryFrom<Parts> for ImageRef {
    type Error = String;

    fn try_from(p: Parts) -> Result<Self, String> {
        let r = ImageRef {
            registry: p.registry,
            repository: p.repository,
            tag: p.tag,
            digest: p.digest,
        };
        let text = r.to_string();
        match ImageRef::parse(&text) {
            Ok(parsed) if parsed == r => {}
            Ok(parsed) => return Err(format!("\"{text}\" reads back as \"{parsed}\"")),
            Err(e) => return Err(e.to_string()),
        }
        if let Some(d) = &r.digest {
            crate::digest::validate(d)?;
        }
        Ok(r)
    }
}

/// Why a string is not an image reference. Every variant carries the input so that the
/// message can be shown on its own.
#[derive(Debug, Error, Clone, PartialEq, Eq)]
pub enum ReferenceError {
    /// Nothing, or only whitespace, was given.
    #[error("invalid image reference \"{0}\": it is empty")]
    Empty(String),
    /// The repository path has upper-case letters (only the host may).
    #[error("invalid image reference \"{0}\": repository names must be lowercase")]
    Uppercase(String),
    /// The repository path is longer than the distribution spec allows (255 characters).
    #[error(
        "invalid image reference \"{0}\": repository name is longer than {NAME_MAX} characters"
    )]
    TooLong(String),
    /// Anything else the grammar rejects (or a digest that is not sha256), with the reason.
    #[error(
        "invalid image reference \"{0}\": {1}; expected host[:port]/path[:tag][@sha256:<64 hex>]"
    )]
    Invalid(String, String),
}

impl ImageRef {
    /// Parses a reference, keeping the tag absent when none was written.
    pub fn parse(input: &str) -> Result<Self, ReferenceError> {
        let s = input.trim();
        if s.is_empty() {
            return Err(ReferenceError::Empty(input.to_string()));
        }
        let (name_and_tag, digest_part) = match s.split_once('@') {
            Some((n, d)) => (n, Some(d)),
            None => (s, None),
        };
        let last_segment = name_and_tag.rsplit('/').next().unwrap_or(name_and_tag);
        let has_tag = last_segment.contains(':');
        let name_only = match name_and_tag.rfind(':') {
            Some(colon) if has_tag => &name_and_tag[..colon],
            _ => name_and_tag,
        };
        // The host part may be upper case (hostnames are case-insensitive); the path may not.
        let path_part = match name_only.split_once('/') {
            Some((first, rest))
                if first.contains('.') || first.contains(':') || first == "localhost" =>
            {
                rest
            }
            _ => name_only,
        };
        if path_part.chars().any(|c| c.is_ascii_uppercase()) {
            return Err(ReferenceError::Uppercase(input.to_string()));
        }
        if path_part.len() > NAME_MAX {
            return Err(ReferenceError::TooLong(input.to_string()));
        }
        let parsed = oci_client::Reference::from_str(s)
            .map_err(|e| ReferenceError::Invalid(input.to_string(), e.to_string()))?;
        // The grammar's `\w` takes any Unicode letter; the distribution spec's tags are ASCII.
        if let Some(tag) = parsed.tag().filter(|_| has_tag) {
            crate::registry::tags::validate_tag(tag)
                .map_err(|why| ReferenceError::Invalid(input.to_string(), why))?;
        }
        if let Some(d) = digest_part {
            if !d.starts_with("sha256:") {
                return Err(ReferenceError::Invalid(
                    input.to_string(),
                    "only sha256 digests are supported".into(),
                ));
            }
            crate::digest::validate(d)
                .map_err(|why| ReferenceError::Invalid(input.to_string(), why))?;
        }
        Ok(ImageRef {
            registry: parsed.registry().to_string(),
            repository: parsed.repository().to_string(),
            tag: if has_tag {
                parsed.tag().map(str::to_string)
            } else {
                None
            },
            digest: parsed.digest().map(str::to_string),
        })
    }

    /// The same repository with another tag (and no digest).
    pub fn with_tag(&self, tag: &str) -> Self {
        ImageRef {
            tag: Some(tag.to_string()),
            digest: None,
            ..self.clone()
        }
    }

    /// The same repository pinned to a digest (and no tag).
    pub fn with_digest(&self, digest: &str) -> Self {
        ImageRef {
            tag: None,
            digest: Some(digest.to_string()),
            ..self.clone()
        }
    }

    /// What to put after `/manifests/`: the digest when there is one, else the tag,
    /// else `latest` (the grammar's default).
    pub fn manifest_reference(&self) -> &str {
        self.digest
            .as_deref()
            .or(self.tag.as_deref())
            .unwrap_or("latest")
    }

    /// The repository this reference is in.
    pub fn repository(&self) -> Repository {
        Repository::new(self.registry.as_str(), self.repository.as_str())
    }

    /// The manifest it names: the digest when there is one, else the tag, else `latest`
    /// (see [`manifest_reference`](Self::manifest_reference)).
    pub fn reference(&self) -> Reference {
        match (&self.digest, &self.tag) {
            (Some(d), _) => Reference::digest(d.as_str()),
            (None, t) => Reference::tag(t.as_deref().unwrap_or("latest")),
        }
    }

    /// `registry/repository`, the name oc prints and the key of a destination repository.
    pub fn repo_name(&self) -> String {
        format!("{}/{}", self.registry, self.repository)
    }

    /// The host to talk to: Docker Hub's API lives on another name than its references.
    pub fn api_host(&self) -> &str {
        api_host(&self.registry)
    }
}

impl FromStr for ImageRef {
    type Err = ReferenceError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        ImageRef::parse(s)
    }
}

impl fmt::Display for ImageRef {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.registry, self.repository)?;
        if let Some(t) = &self.tag {
            write!(f, ":{t}")?;
        }
        if let Some(d) = &self.digest {
            write!(f, "@{d}")?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn r(s: &str) -> ImageRef {
        ImageRef::parse(s).unwrap()
    }

    #[test]
    fn full_reference_keeps_every_part() {
        let x = r("quay.io/openshift/origin-cli:4.6");
        assert_eq!(x.registry, "quay.io");
        assert_eq!(x.repository, "openshift/origin-cli");
        assert_eq!(x.tag.as_deref(), Some("4.6"));
        assert_eq!(x.to_string(), "quay.io/openshift/origin-cli:4.6");
    }

    #[test]
    fn no_host_means_docker_hub_and_one_component_means_library() {
        let x = r("busybox");
        assert_eq!(
            (x.registry.as_str(), x.repository.as_str()),
            ("docker.io", "library/busybox")
        );
        assert_eq!(x.tag, None, "an unwritten tag stays absent");
        assert_eq!(x.manifest_reference(), "latest");
        assert_eq!(r("fedora/httpd:1").repository, "fedora/httpd");
        assert_eq!(
            r("docker.io/fedora/httpd:1").api_host(),
            "registry-1.docker.io"
        );
    }

    #[test]
    fn port_is_not_mistaken_for_a_tag() {
        let x = r("127.0.0.1:5000/a/b");
        assert_eq!(x.registry, "127.0.0.1:5000");
        assert_eq!(x.repository, "a/b");
        assert_eq!(x.tag, None);
        let y = r("localhost:5000/a:v1");
        assert_eq!(
            (y.registry.as_str(), y.tag.as_deref()),
            ("localhost:5000", Some("v1"))
        );
        let z = r("localhost/a");
        assert_eq!(z.registry, "localhost");
    }

    #[test]
    fn a_job_cannot_carry_a_reference_that_does_not_parse() {
        let good = ImageRef::parse("quay.io/a/b:1").unwrap();
        let json = serde_json::to_string(&good).unwrap();
        assert_eq!(serde_json::from_str::<ImageRef>(&json).unwrap(), good);
        for bad in [
            r#"{"registry":"quay.io","repository":"../../v2/_catalog","tag":null,"digest":null}"#,
            r#"{"registry":"quay.io","repository":"a/b","tag":null,"digest":"sha256:../x"}"#,
            r#"{"registry":"quay.io/evil","repository":"a/b","tag":"1","digest":null}"#,
        ] {
            assert!(serde_json::from_str::<ImageRef>(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn digest_references_parse() {
        let d = format!("sha256:{}", "a".repeat(64));
        let x = r(&format!("quay.io/a/b@{d}"));
        assert_eq!(x.digest.as_deref(), Some(d.as_str()));
        assert_eq!(x.tag, None);
        assert_eq!(x.manifest_reference(), d);
    }

    #[test]
    fn upper_case_repository_is_rejected_with_a_clear_message() {
        let e = ImageRef::parse("quay.io/OpenShift/cli:1").unwrap_err();
        assert_eq!(e.to_string(), "invalid image reference \"quay.io/OpenShift/cli:1\": repository names must be lowercase");
        assert!(
            ImageRef::parse("Quay.IO/openshift/cli:1").is_ok(),
            "host names are case-insensitive"
        );
    }

    #[test]
    fn over_long_name_is_rejected() {
        let e = ImageRef::parse(&format!("quay.io/{}", "a".repeat(300))).unwrap_err();
        assert!(matches!(e, ReferenceError::TooLong(_)), "{e}");
        assert!(e.to_string().contains("longer than 255"));
    }

    #[test]
    fn malformed_references_name_the_input() {
        for bad in [
            "quay.io/a/b:",
            "quay.io/a//b",
            "quay.io/a/b@sha256:12",
            "quay.io/a/b:t@md5:abc",
            ":tag",
        ] {
            let e = ImageRef::parse(bad).unwrap_err();
            assert!(e.to_string().contains(bad), "{e}");
        }
        assert!(matches!(
            ImageRef::parse("  "),
            Err(ReferenceError::Empty(_))
        ));
    }

    #[test]
    fn tags_outside_the_distribution_grammar_are_refused_naming_the_reference() {
        for bad in [
            format!("quay.io/a/b:{}", "t".repeat(10_000)),
            "quay.io/a/b:vé".to_string(),
            "quay.io/a/b:.x".to_string(),
        ] {
            let e = ImageRef::parse(&bad).unwrap_err();
            assert!(e.to_string().contains("invalid image reference"), "{e}");
            assert!(e.to_string().contains(bad.as_str()), "{e}");
        }
        assert!(ImageRef::parse(&format!("quay.io/a/b:{}", "t".repeat(128))).is_ok());
    }
}
