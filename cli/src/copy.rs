//! How images are copied: the flags of every command that copies. What to copy (platforms,
//! manifest lists, referrers, foreign layers, missing sources, forced pushes) is a run's
//! choice and travels in each job; how to copy ([`HowToCopyArgs`]: concurrency, limits,
//! deadline) is each process's own. `mirror-worker run` takes only the latter, and refuses
//! the former by name ([`JobCarriedFlags`]) rather than take them and have every job
//! override them without a word.

use clap::Args;

use mirror_common::copy::{CopyOptions, PlatformFilter, ReferrerOptions};

use crate::registry::parse_duration_flag;

/// How images are copied.
#[derive(Args, Clone, Debug)]
#[command(mut_arg("keep_manifest_list", crate::oc_bool))]
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
    #[arg(long = "keep-manifest-list", default_value_t = true)]
    pub keep_manifest_list: bool,
    /// oc's flag, accepted so that oc command lines carry over; it has no effect here (a
    /// cross-repository mount still asks one token for both repositories), and says so.
    #[arg(long = "skip-multiple-scopes")]
    pub skip_multiple_scopes: bool,
    /// How to copy: concurrency, limits, deadline.
    #[command(flatten)]
    pub how: HowToCopyArgs,
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

/// How images are copied: the process's own, whoever decided what to copy.
#[derive(Args, Clone, Debug)]
pub struct HowToCopyArgs {
    /// Blobs of one image copied at the same time.
    #[arg(long = "blob-concurrency", default_value_t = CopyOptions::BLOB_CONCURRENCY, value_name = "N")]
    pub blob_concurrency: usize,
    /// Blob operations in flight against one destination registry.
    #[arg(long = "max-per-registry", default_value_t = CopyOptions::MAX_PER_REGISTRY, value_name = "N")]
    pub max_per_registry: usize,
    /// A job (one image to its tags) still copying after this long fails with that reason.
    #[arg(long = "job-deadline", default_value_t = CopyOptions::DEADLINE.into(), value_parser = parse_duration_flag, value_name = "DURATION")]
    pub job_deadline: humantime::Duration,
}

impl HowToCopyArgs {
    /// The library's defaults of what to copy, copied as these flags say.
    pub fn options(&self) -> CopyOptions {
        CopyOptions {
            blob_concurrency: self.blob_concurrency,
            max_per_registry: self.max_per_registry,
            deadline: self.job_deadline.into(),
            ..CopyOptions::default()
        }
    }
}

/// The what-to-copy flags of [`CopyArgs`], on a command that must not take them
/// (`mirror-worker run`: each job carries the run's choices, which would override them).
/// Hidden from its help; accepted by the parser only to be refused by name.
#[derive(Args, Clone, Debug, Default)]
pub struct JobCarriedFlags {
    #[arg(long = "filter-by-os", hide = true, num_args = 0..=1, default_missing_value = "")]
    filter_by_os: Vec<String>,
    #[arg(long = "platform", hide = true, num_args = 0..=1, default_missing_value = "")]
    platform: Vec<String>,
    #[arg(long = "keep-manifest-list", hide = true, num_args = 0..=1, default_missing_value = "")]
    keep_manifest_list: Vec<String>,
    #[arg(long = "referrers", hide = true, num_args = 0..=1, default_missing_value = "")]
    referrers: Vec<String>,
    #[arg(long = "referrers-type", hide = true, num_args = 0..=1, default_missing_value = "")]
    referrers_type: Vec<String>,
    #[arg(long = "include-nondistributable", hide = true, num_args = 0..=1, default_missing_value = "")]
    include_nondistributable: Vec<String>,
    #[arg(long = "skip-missing", hide = true, num_args = 0..=1, default_missing_value = "")]
    skip_missing: Vec<String>,
    #[arg(long = "force", hide = true, num_args = 0..=1, default_missing_value = "")]
    force: Vec<String>,
}

impl JobCarriedFlags {
    /// The flags given, in a fixed order (`--force`, ...); empty when none was.
    pub fn given(&self) -> Vec<&'static str> {
        [
            ("--filter-by-os", &self.filter_by_os),
            ("--platform", &self.platform),
            ("--keep-manifest-list", &self.keep_manifest_list),
            ("--referrers", &self.referrers),
            ("--referrers-type", &self.referrers_type),
            ("--include-nondistributable", &self.include_nondistributable),
            ("--skip-missing", &self.skip_missing),
            ("--force", &self.force),
        ]
        .into_iter()
        .filter(|(_, values)| !values.is_empty())
        .map(|(flag, _)| flag)
        .collect()
    }

    /// Why `command` refuses the flags given, or `None` when none was.
    pub fn refusal(&self, command: &str) -> Option<String> {
        let given = self.given();
        if given.is_empty() {
            return None;
        }
        Some(format!(
            "{command}: {} would have no effect: what to copy travels in each job, which \
             carries the run's choice and overrides the worker's; set {} on mirror-scheduler \
             run or in the group's settings of the groups file",
            given.join(", "),
            if given.len() == 1 { "it" } else { "them" }
        ))
    }
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
            keep_manifest_list: self.keep_manifest_list,
            referrers: ReferrerOptions {
                enabled: self.referrers == Referrers::All,
                types: self.referrers_type.clone(),
            },
            include_nondistributable: self.include_nondistributable,
            skip_missing: self.skip_missing,
            force: self.force,
            ..self.how.options()
        })
    }
}
