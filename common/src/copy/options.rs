//! What a copy is asked to do: the engine's knobs ([`CopyOptions`]) and which referrers
//! travel with their images ([`ReferrerOptions`]). The planner, the CLI and each job's own
//! choices fill them; the engine only reads them.

use std::time::Duration;

use super::platform::PlatformFilter;
use crate::manifest::Manifest;

/// Knobs of the copy engine.
#[derive(Clone, Debug)]
pub struct CopyOptions {
    /// Keep only the index children whose `os/arch[/variant]` matches.
    pub filter: Option<PlatformFilter>,
    /// Look, count and report, but write nothing.
    pub dry_run: bool,
    /// Blobs of one image handled at the same time.
    pub blob_concurrency: usize,
    /// Blob operations in flight against one destination registry, over all copies.
    pub max_per_registry: usize,
    /// Keep an index whole (or filtered, with [`filter`](Self::filter)); `false` mirrors
    /// only the one image oc would (its `--keep-manifest-list` left out): the image the
    /// filter, by default `linux/amd64`, selects, pushed as that single manifest.
    pub keep_manifest_list: bool,
    /// A copy still running after this long fails every tag it has not finished, with
    /// [`FailureKind::Deadline`](crate::failure::FailureKind::Deadline): a job never holds
    /// a worker forever.
    pub deadline: Duration,
    /// Which referrers (signatures, attestations, SBOMs) travel with their images.
    pub referrers: ReferrerOptions,
    /// Copy non-distributable (foreign) layers too; by default they are left out (with a
    /// note), as their licence may forbid it and the manifest points at where they live.
    pub include_nondistributable: bool,
    /// A source that does not exist passes its tags over
    /// ([`TagStatus::Skipped`](crate::report::TagStatus::Skipped)) instead of failing them
    /// (oc's `--skip-missing`).
    pub skip_missing: bool,
    /// Push even when a destination tag already points at the digest (oc's `--force`).
    pub force: bool,
}

impl CopyOptions {
    /// Default of [`blob_concurrency`](Self::blob_concurrency).
    pub const BLOB_CONCURRENCY: usize = 6;
    /// Default of [`max_per_registry`](Self::max_per_registry).
    pub const MAX_PER_REGISTRY: usize = 16;
    /// Default of [`deadline`](Self::deadline): generous, six hours.
    pub const DEADLINE: Duration = Duration::from_secs(6 * 3600);
}

impl Default for CopyOptions {
    fn default() -> Self {
        CopyOptions {
            filter: None,
            dry_run: false,
            blob_concurrency: Self::BLOB_CONCURRENCY,
            max_per_registry: Self::MAX_PER_REGISTRY,
            keep_manifest_list: true,
            deadline: Self::DEADLINE,
            referrers: ReferrerOptions::default(),
            include_nondistributable: false,
            skip_missing: false,
            force: false,
        }
    }
}

/// Which referrers travel with their images.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ReferrerOptions {
    /// Copy referrers at all (`--referrers all|none`).
    pub enabled: bool,
    /// Only these artifact types (`--referrers-type`, repeatable); empty: every type. A
    /// referrer matches by its artifact type (its `artifactType`, else its config's media
    /// type) or by its first layer's media type, which is how cosign's signatures
    /// (`application/vnd.dev.cosign.simplesigning.v1+json`) and attestations
    /// (`application/vnd.dsse.envelope.v1+json`) are recognised.
    pub types: Vec<String>,
}

impl Default for ReferrerOptions {
    fn default() -> Self {
        ReferrerOptions {
            enabled: true,
            types: Vec::new(),
        }
    }
}

impl ReferrerOptions {
    /// No referrers copied.
    pub fn none() -> Self {
        ReferrerOptions {
            enabled: false,
            types: Vec::new(),
        }
    }

    /// Whether a referrer is of a selected type.
    pub(crate) fn wants(&self, m: &Manifest) -> bool {
        self.types.is_empty()
            || [&m.artifact_type, &m.first_layer_type]
                .into_iter()
                .flatten()
                .any(|t| self.types.iter().any(|w| w == t))
    }

    /// The one type to ask the Referrers API to filter by, when there is exactly one.
    pub(crate) fn server_filter(&self) -> Option<&str> {
        match self.types.as_slice() {
            [one] => Some(one),
            _ => None,
        }
    }
}
