//! What to copy of each image (and whether to pass over a missing source, or push a tag
//! already there), carried in the job: the run decides it (its flags, or its
//! group's settings), not the worker that happens to take the job. A fleet's workers are
//! shared by every team's group; one group keeping only linux/amd64, another leaving
//! signatures behind, must be obeyed by whichever worker copies their jobs.
//!
//! How to copy (concurrency, limits, deadline) stays the worker's own: it is about the
//! worker's machine, not about what ends up at the destination.

use serde::{Deserialize, Serialize};

use crate::copy::{CopyOptions, PlatformFilter, ReferrerOptions};

/// The run's choices about what ends up at the destination.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct JobOptions {
    /// Keep indexes whole (filtered by `filter_by_os`), or push only the one image oc would.
    pub keep_manifest_list: bool,
    /// Keep only the index children whose `os/arch[/variant]` matches this pattern.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub filter_by_os: Option<String>,
    /// Copy referrers (signatures, attestations, SBOMs).
    pub referrers: bool,
    /// Only referrers of these types; empty: every type.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub referrers_type: Vec<String>,
    /// Copy non-distributable (foreign) layers too.
    #[serde(default)]
    pub include_nondistributable: bool,
    /// Pass over tags whose source does not exist.
    #[serde(default)]
    pub skip_missing: bool,
    /// Push even tags already at the digest.
    #[serde(default)]
    pub force: bool,
}

impl JobOptions {
    /// The choices of a run's copy options.
    pub fn of(opts: &CopyOptions) -> Self {
        JobOptions {
            keep_manifest_list: opts.keep_manifest_list,
            filter_by_os: opts.filter.as_ref().map(|f| f.pattern().to_string()),
            referrers: opts.referrers.enabled,
            referrers_type: opts.referrers.types.clone(),
            include_nondistributable: opts.include_nondistributable,
            skip_missing: opts.skip_missing,
            force: opts.force,
        }
    }

    /// `base` (a worker's options) with these choices; fails on a bad platform pattern.
    pub fn apply(&self, base: &CopyOptions) -> Result<CopyOptions, String> {
        Ok(CopyOptions {
            keep_manifest_list: self.keep_manifest_list,
            filter: self
                .filter_by_os
                .as_deref()
                .map(PlatformFilter::new)
                .transpose()?,
            referrers: ReferrerOptions {
                enabled: self.referrers,
                types: self.referrers_type.clone(),
            },
            include_nondistributable: self.include_nondistributable,
            skip_missing: self.skip_missing,
            force: self.force,
            ..base.clone()
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_runs_choices_survive_the_message_and_override_only_what_to_copy() {
        let run = CopyOptions {
            keep_manifest_list: false,
            filter: Some(PlatformFilter::new("linux/arm64").unwrap()),
            referrers: ReferrerOptions {
                enabled: true,
                types: vec!["application/spdx+json".into()],
            },
            include_nondistributable: true,
            ..CopyOptions::default()
        };
        let carried: JobOptions =
            serde_json::from_str(&serde_json::to_string(&JobOptions::of(&run)).unwrap()).unwrap();
        let worker = CopyOptions {
            blob_concurrency: 2,
            referrers: ReferrerOptions::none(),
            ..CopyOptions::default()
        };
        let used = carried.apply(&worker).unwrap();
        assert!(!used.keep_manifest_list);
        assert_eq!(used.filter.unwrap().pattern(), "linux/arm64");
        assert_eq!(used.referrers, run.referrers);
        assert!(used.include_nondistributable);
        assert_eq!(used.blob_concurrency, 2, "how to copy stays the worker's");
    }
}
