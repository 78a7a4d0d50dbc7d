//! How images are copied: the flags of every command that copies.

use clap::Args;

use mirror_common::copy::{CopyOptions, PlatformFilter, ReferrerOptions};

use crate::registry::parse_duration_flag;

/// How images are copied.
#[derive(Args, Clone, Debug)]
pub struct CopyArgs {
    /// Keep only index children whose os/arch[/variant] matches this regular expression
    /// (the whole string must match); the filtered index gets a new digest.
    #[arg(long = "filter-by-os", value_name = "REGEX")]
    pub filter_by_os: Option<String>,
    /// crane's flag: keep only this platform of an index, as --filter-by-os with the
    /// platform written literally (os/arch keeps every variant of it); comma-separated or
    /// repeated for several; `all` keeps every one.
    #[arg(
        long = "platform",
        value_delimiter = ',',
        conflicts_with = "filter_by_os",
        value_name = "OS/ARCH[/VARIANT]"
    )]
    pub platforms: Vec<String>,
    /// oc's flag: keep manifest lists (indexes) whole, filtered by --filter-by-os when given.
    /// This is the default here; `--keep-manifest-list=false` mirrors what oc mirrors
    /// without the flag: only the linux/amd64 image (or the one --filter-by-os selects),
    /// pushed as that single manifest.
    #[arg(
        long = "keep-manifest-list",
        default_value_t = true,
        num_args = 0..=1,
        default_missing_value = "true",
        // As oc's (cobra's) bool flags: `--flag SRC DST` never takes SRC as the value.
        require_equals = true,
        action = clap::ArgAction::Set,
        value_name = "BOOL"
    )]
    pub keep_manifest_list: bool,
    /// oc's flag, accepted so that oc command lines carry over; it has no effect here (a
    /// cross-repository mount still asks one token for both repositories), and says so.
    #[arg(long = "skip-multiple-scopes")]
    pub skip_multiple_scopes: bool,
    /// Blobs of one image copied at the same time.
    #[arg(long = "blob-concurrency", default_value_t = CopyOptions::BLOB_CONCURRENCY, value_name = "N")]
    pub blob_concurrency: usize,
    /// Blob operations in flight against one destination registry.
    #[arg(long = "max-per-registry", default_value_t = CopyOptions::MAX_PER_REGISTRY, value_name = "N")]
    pub max_per_registry: usize,
    /// A job (one image to its tags) still copying after this long fails with that reason.
    #[arg(long = "job-deadline", default_value_t = CopyOptions::DEADLINE.into(), value_parser = parse_duration_flag, value_name = "DURATION")]
    pub job_deadline: humantime::Duration,
    /// Signatures, attestations, SBOMs and other referrers copied with their images (found
    /// by the Referrers API, the sha256-<hex> tag index and cosign's .sig/.att/.sbom tags):
    /// all of them, or none.
    #[arg(long = "referrers", value_enum, default_value_t = Referrers::All)]
    pub referrers: Referrers,
    /// Copy only referrers of this artifact type (repeatable), matched against the
    /// artifact type or the first layer's media type (cosign signatures:
    /// application/vnd.dev.cosign.simplesigning.v1+json).
    #[arg(long = "referrers-type", value_name = "ARTIFACT_TYPE")]
    pub referrers_type: Vec<String>,
    /// Also copy non-distributable (foreign) layers, which are left out by default.
    #[arg(long = "include-nondistributable")]
    pub include_nondistributable: bool,
    /// oc's flag: a source that does not exist is reported and skipped, and does not fail
    /// the run.
    #[arg(long = "skip-missing")]
    pub skip_missing: bool,
    /// oc's flag: push every tag, even one already at the source digest.
    #[arg(long = "force")]
    pub force: bool,
}

/// `--referrers`: which referrers travel with their images.
#[derive(clap::ValueEnum, Clone, Copy, Debug, PartialEq, Eq)]
pub enum Referrers {
    /// Every referrer (or those `--referrers-type` selects).
    All,
    /// None.
    None,
}

impl CopyArgs {
    /// Copy options from these flags; fails on a bad `--filter-by-os` pattern or
    /// `--platform`.
    pub fn options(&self, dry_run: bool) -> Result<CopyOptions, String> {
        if self.skip_multiple_scopes {
            eprintln!(
                "note: --skip-multiple-scopes has no effect here (accepted for oc command lines)"
            );
        }
        let pattern = match &self.filter_by_os {
            Some(p) => Some(p.clone()),
            None => crate::platform::platform_pattern(&self.platforms)?,
        };
        let filter = pattern.as_deref().map(PlatformFilter::new).transpose()?;
        Ok(CopyOptions {
            filter,
            dry_run,
            blob_concurrency: self.blob_concurrency,
            max_per_registry: self.max_per_registry,
            keep_manifest_list: self.keep_manifest_list,
            deadline: self.job_deadline.into(),
            referrers: ReferrerOptions {
                enabled: self.referrers == Referrers::All,
                types: self.referrers_type.clone(),
            },
            include_nondistributable: self.include_nondistributable,
            skip_missing: self.skip_missing,
            force: self.force,
        })
    }
}
