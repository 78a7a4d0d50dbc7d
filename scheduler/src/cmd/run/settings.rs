//! What one run does: taken from its flags, or from one group of a groups file
//! (`run --groups FILE --group NAME --dir DIR`, a CronJob per group): the group's files,
//! credentials name and options, over the run's flags.

use std::path::{Path, PathBuf};

use anyhow::{anyhow, bail, Result};
use mirror_common::copy::{CopyOptions, PlatformFilter, ReferrerOptions};

use mirror_common::job_options::JobOptions;

use super::args::Args;
use crate::events::routes::Stamp;
use crate::groups::{Group, ReferrersSetting};

/// The settings of one run.
pub(crate) struct RunSettings {
    /// The group run, if any (for reports and logs).
    pub group: Option<String>,
    /// The mapping files, in the order read.
    pub files: Vec<PathBuf>,
    /// How images are copied.
    pub copy: CopyOptions,
    /// The credentials name every job carries.
    pub credentials: Option<String>,
    /// Keep going after a failed tag (embedded mode).
    pub continue_on_error: bool,
    /// Also push each image under a tag of its digest's first 12 hex digits.
    pub digest_tag: bool,
    /// Deliveries of each job in the embedded mode (retryable failures are tried again).
    pub tries: u32,
}

impl RunSettings {
    /// What every job of this run carries: its credentials name, options, group and
    /// digest tags (a scheduled run's batches and a push event's jobs alike).
    pub(crate) fn stamp(&self) -> Stamp {
        Stamp {
            credentials: self.credentials.clone(),
            options: JobOptions::of(&self.copy),
            group: self.group.clone(),
            digest_tag: self.digest_tag,
        }
    }
}

/// The settings `args` describe.
pub(crate) fn resolve(args: &Args) -> Result<RunSettings> {
    let copy = args
        .copy
        .options(args.dry_run)
        .map_err(anyhow::Error::msg)?;
    let (Some(groups), Some(name)) = (&args.groups, &args.group) else {
        return Ok(RunSettings {
            group: None,
            files: args.files.select()?,
            copy,
            credentials: args.credentials.clone(),
            continue_on_error: args.continue_on_error,
            digest_tag: false,
            tries: 1,
        });
    };
    let (group, files) = group_and_files(args, groups, name)?;
    if let (Some(flag), Some(its)) = (&args.credentials, &group.credentials) {
        if flag != its {
            bail!("--credentials {flag}: group \"{name}\" pushes with \"{its}\"");
        }
    }
    Ok(RunSettings {
        group: Some(name.clone()),
        files,
        copy: group_copy_options(&group, copy)?,
        credentials: group
            .credentials
            .clone()
            .or_else(|| args.credentials.clone()),
        continue_on_error: group.continue_on_error || args.continue_on_error,
        digest_tag: group.digest_tag,
        tries: group.tries,
    })
}

/// The group `name` of the groups file at `groups`, and the files of `--dir` it selects.
fn group_and_files(args: &Args, groups: &Path, name: &str) -> Result<(Group, Vec<PathBuf>)> {
    let dir = args
        .files
        .dir
        .as_ref()
        .ok_or_else(|| anyhow!("--groups needs --dir, the mappings directory"))?;
    let file = crate::groups::load(groups)?;
    let Some(group) = file.groups.iter().find(|g| g.name == name) else {
        bail!("{}: no group \"{name}\"", groups.display());
    };
    let selection =
        crate::groups::select(&file, dir).map_err(|e| anyhow!("--dir {}: {e}", dir.display()))?;
    if let Some(e) = selection
        .errors
        .iter()
        .find(|e| e.group.as_deref() == Some(name))
    {
        bail!("{}: {e}", groups.display());
    }
    let files = selection
        .files
        .into_iter()
        .find(|(g, _)| g == name)
        .map(|(_, files)| files)
        .unwrap_or_default();
    Ok((group.clone(), files))
}

/// How a group's images are copied: what the group says, over the run's flags.
fn group_copy_options(group: &Group, copy: CopyOptions) -> Result<CopyOptions> {
    let filter = match &group.filter_by_os {
        Some(f) => Some(PlatformFilter::new(f).map_err(anyhow::Error::msg)?),
        None => copy.filter.clone(),
    };
    Ok(CopyOptions {
        filter,
        keep_manifest_list: group.keep_manifest_list,
        max_per_registry: group.max_per_registry.unwrap_or(copy.max_per_registry),
        referrers: ReferrerOptions {
            enabled: group
                .referrers
                .map_or(copy.referrers.enabled, |r| r == ReferrersSetting::All),
            types: group
                .referrers_type
                .clone()
                .unwrap_or_else(|| copy.referrers.types.clone()),
        },
        include_nondistributable: group
            .include_nondistributable
            .unwrap_or(copy.include_nondistributable),
        skip_missing: group.skip_missing || copy.skip_missing,
        force: group.force || copy.force,
        ..copy
    })
}
