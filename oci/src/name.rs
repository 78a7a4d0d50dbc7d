//! Names of what a registry holds, as values: a [`Repository`] (the registry host as
//! written in references and the repository path inside it) and a manifest [`Reference`]
//! (a tag or a digest). The [`Registries`](crate::Registries) operations take these
//! instead of two or three strings, so a repository is written one way everywhere and a
//! tag is never mistaken for a digest.

use std::fmt;

/// The host serving the registry API for a registry name as written in references.
pub fn api_host(registry: &str) -> &str {
    match registry {
        "docker.io" | "index.docker.io" => "registry-1.docker.io",
        other => other,
    }
}

/// A repository of a registry: `quay.io` + `openshift/origin-cli`. Shown as
/// `registry/path`, the name oc prints.
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Repository {
    registry: String,
    path: String,
}

impl Repository {
    /// A repository of `registry` (`host[:port]` as written in references) at `path`.
    pub fn new(registry: impl Into<String>, path: impl Into<String>) -> Self {
        Repository {
            registry: registry.into(),
            path: path.into(),
        }
    }

    /// The registry host as written in references (`docker.io`, `127.0.0.1:5000`).
    pub fn registry(&self) -> &str {
        &self.registry
    }

    /// The repository path inside the registry (`library/busybox`).
    pub fn path(&self) -> &str {
        &self.path
    }

    /// The host serving the registry API (Docker Hub's differs from its references).
    pub fn api_host(&self) -> &str {
        api_host(&self.registry)
    }

    /// Another repository of the same registry.
    pub fn sibling(&self, path: &str) -> Repository {
        Repository::new(self.registry.clone(), path)
    }

    /// `registry/path:tag` or `registry/path@digest`.
    pub fn at(&self, reference: &Reference) -> String {
        match reference {
            Reference::Tag(t) => format!("{self}:{t}"),
            Reference::Digest(d) => format!("{self}@{d}"),
        }
    }
}

impl fmt::Display for Repository {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.registry, self.path)
    }
}

/// What names a manifest in a repository (what follows `/manifests/`): a tag or a digest.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub enum Reference {
    /// A tag (`latest`, `v1.2`).
    Tag(String),
    /// A digest (`sha256:…`).
    Digest(String),
}

impl Reference {
    /// A tag.
    pub fn tag(tag: impl Into<String>) -> Self {
        Reference::Tag(tag.into())
    }

    /// A digest.
    pub fn digest(digest: impl Into<String>) -> Self {
        Reference::Digest(digest.into())
    }

    /// The text after `/manifests/`.
    pub fn as_str(&self) -> &str {
        match self {
            Reference::Tag(s) | Reference::Digest(s) => s,
        }
    }

    /// The digest, when this is one.
    pub fn as_digest(&self) -> Option<&str> {
        match self {
            Reference::Digest(d) => Some(d),
            Reference::Tag(_) => None,
        }
    }

    /// The tag, when this is one.
    pub fn as_tag(&self) -> Option<&str> {
        match self {
            Reference::Tag(t) => Some(t),
            Reference::Digest(_) => None,
        }
    }
}

impl fmt::Display for Reference {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_repository_shows_as_oc_prints_it_and_a_reference_after_it() {
        let r = Repository::new("quay.io", "a/b");
        assert_eq!(r.to_string(), "quay.io/a/b");
        assert_eq!(r.at(&Reference::tag("1")), "quay.io/a/b:1");
        let d = format!("sha256:{}", "a".repeat(64));
        assert_eq!(r.at(&Reference::digest(&d)), format!("quay.io/a/b@{d}"));
        assert_eq!(
            Repository::new("docker.io", "x").api_host(),
            "registry-1.docker.io"
        );
    }
}
