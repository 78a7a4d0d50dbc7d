//! Mirror groups: the ~30 jobs of the system this replaces, each with its own mapping files,
//! push credentials, schedule and flags, declared in one YAML file so that one fleet can run
//! them all.
//!
//! ```yaml
//! groups:
//!   - name: knative
//!     prefix: mapping_knative          # or files: "mapping_knative*" (a glob)
//!     credentials: registry-push-credentials-quay.io-openshift-knative
//!     schedule: "@hourly"               # 5 cron fields, @hourly..., or Prow's @every 20m
//!     keep_manifest_list: true          # false: only the linux/amd64 image, as oc without it
//!     filter_by_os: "linux/.*"
//!     continue_on_error: false
//!     max_per_registry: 3
//!     tries: 3                          # per mapping file
//!     digest_tag: false                 # also push a tag of the digest's first 12 hex digits
//!     referrers: all                    # none: no signatures, attestations, SBOMs
//!     referrers_type: [application/spdx+json]   # only these artifact types
//!     include_nondistributable: false   # true: copy foreign layers too
//!     skip_missing: false               # oc's --skip-missing
//!     force: false                      # oc's --force
//!     labels: { team: serverless, slack: "#serverless-dev" }
//! ```
//!
//! Every error names the groups file and the group (or, for mapping files, the file and
//! line). A mapping file selected by two groups is an error naming both; a file no group
//! selects is a warning.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use crate::schedule::Schedule;

/// The groups file.
#[derive(Debug, Clone, PartialEq, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct GroupsFile {
    /// The groups, in the order written.
    pub groups: Vec<Group>,
}

/// One group of mapping files and how they are mirrored.
#[derive(Debug, Clone, PartialEq, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct Group {
    /// Unique; letters, digits, `-`, `_`, `.`.
    pub name: String,
    /// Mapping files in the mappings directory whose name starts with this.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub prefix: Option<String>,
    /// Or: mapping files whose name matches this glob (`*`, `?`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub files: Option<String>,
    /// The name of the push credentials (a docker config the workers hold under that
    /// name); never a secret itself.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub credentials: Option<String>,
    /// When the group runs.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub schedule: Option<String>,
    /// Keep manifest lists whole (true, the default) or mirror only the linux/amd64 image.
    #[serde(default = "yes")]
    pub keep_manifest_list: bool,
    /// Keep only the index children whose `os/arch[/variant]` matches.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub filter_by_os: Option<String>,
    /// Keep going after a failed tag.
    #[serde(default)]
    pub continue_on_error: bool,
    /// Blob operations in flight against one destination registry.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_per_registry: Option<usize>,
    /// Tries of each mapping file.
    #[serde(default = "one")]
    pub tries: u32,
    /// Also push each image under a tag of the first 12 hex digits of its digest.
    #[serde(default)]
    pub digest_tag: bool,
    /// Which referrers (signatures, attestations, SBOMs) travel with the images; unset:
    /// as the command line says (`--referrers`, default all).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub referrers: Option<ReferrersSetting>,
    /// Only referrers of these artifact types; unset: as `--referrers-type` says.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub referrers_type: Option<Vec<String>>,
    /// Copy non-distributable (foreign) layers too; unset: as the command line says.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub include_nondistributable: Option<bool>,
    /// oc's `--skip-missing`: a source that does not exist is skipped, not failed.
    #[serde(default)]
    pub skip_missing: bool,
    /// oc's `--force`: push tags even when already at the digest.
    #[serde(default)]
    pub force: bool,
    /// Free-form labels (team, alert channel) for the people reading the file; alerts route
    /// on the group name, which every run, job and metric of the group carries.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub labels: BTreeMap<String, String>,
}

/// A group's `referrers:`, as the `--referrers` flag.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Serialize)]
#[serde(rename_all = "lowercase")]
pub(crate) enum ReferrersSetting {
    /// Every referrer (or those `referrers_type` selects).
    All,
    /// None.
    None,
}

fn yes() -> bool {
    true
}

fn one() -> u32 {
    1
}

/// A problem of the groups file: where (the file, a group) and what.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct GroupError {
    /// Where, for a person: the file, and the group when there is one.
    pub place: String,
    /// The group at fault, when the problem is one group's.
    pub group: Option<String>,
    pub message: String,
}

impl std::fmt::Display for GroupError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}: {}", self.place, self.message)
    }
}

/// What the groups select in the mappings directory.
#[derive(Debug, Default)]
pub(crate) struct Selection {
    /// Each group's files, sorted by name, in the groups' order.
    pub files: Vec<(String, Vec<PathBuf>)>,
    /// Problems: bad groups, files selected twice.
    pub errors: Vec<GroupError>,
    /// Files no group selects.
    pub unselected: Vec<PathBuf>,
}

/// Reads and checks a groups file (the YAML, then each group's own settings).
pub(crate) fn read(path: &Path) -> Result<GroupsFile, Vec<GroupError>> {
    let place = path.display().to_string();
    let text = std::fs::read_to_string(path).map_err(|e| {
        vec![GroupError {
            place: place.clone(),
            group: None,
            message: format!("cannot read the groups file: {e}"),
        }]
    })?;
    let file: GroupsFile = serde_yaml_ng::from_str(&text).map_err(|e| {
        vec![GroupError {
            place: place.clone(),
            group: None,
            message: format!("not a groups file: {e}"),
        }]
    })?;
    let mut errors = Vec::new();
    let mut seen = std::collections::HashSet::new();
    for g in &file.groups {
        let at = |message: String| GroupError {
            place: format!("{place}: group \"{}\"", g.name),
            group: Some(g.name.clone()),
            message,
        };
        errors.extend(check(g).into_iter().map(at));
        if !seen.insert(g.name.as_str()) {
            errors.push(at("the name is given to another group too".into()));
        }
    }
    match errors.is_empty() {
        true => Ok(file),
        false => Err(errors),
    }
}

/// [`read`] for commands that stop at the first problem: every error of the file in one.
pub(crate) fn load(path: &Path) -> anyhow::Result<GroupsFile> {
    read(path).map_err(|errors| {
        let all: Vec<String> = errors.iter().map(ToString::to_string).collect();
        anyhow::anyhow!("{}", all.join("\n"))
    })
}

/// One group's own problems.
fn check(g: &Group) -> Vec<String> {
    let mut problems = Vec::new();
    let plain = |s: &str| {
        !s.is_empty()
            && s.chars()
                .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.'))
    };
    if !plain(&g.name) {
        problems.push("a name is letters, digits, '-', '_' and '.'".to_string());
    }
    match (&g.prefix, &g.files) {
        (Some(_), Some(_)) => problems.push("give prefix or files, not both".into()),
        (None, None) => problems.push("give prefix or files: which mapping files it runs".into()),
        (Some(p), None) if p.is_empty() || p.contains('/') => {
            problems.push(format!("prefix \"{p}\" must be a file name prefix"))
        }
        (None, Some(f)) if f.is_empty() || f.contains('/') => {
            problems.push(format!("files \"{f}\" must be a file name glob"))
        }
        _ => {}
    }
    if let Some(c) = &g.credentials {
        if !plain(c) {
            problems.push(format!(
                "credentials \"{c}\" must be a name (letters, digits, '-', '_', '.'), not a secret"
            ));
        }
    }
    if let Some(s) = &g.schedule {
        if let Err(e) = Schedule::parse(s) {
            problems.push(format!("schedule {e}"));
        }
    }
    if let Some(f) = &g.filter_by_os {
        if let Err(e) = mirror_common::copy::PlatformFilter::new(f) {
            problems.push(e);
        }
    }
    if g.max_per_registry == Some(0) {
        problems.push("max_per_registry must be at least 1".into());
    }
    if g.tries == 0 {
        problems.push("tries must be at least 1".into());
    }
    problems
}

impl Group {
    /// Whether this group runs the mapping file named `name`.
    pub(crate) fn selects(&self, name: &str) -> bool {
        match (&self.prefix, &self.files) {
            (Some(p), _) => name.starts_with(p.as_str()),
            (None, Some(glob)) => glob_matches(glob, name),
            (None, None) => false,
        }
    }
}

/// `*` any run of characters, `?` one character, the rest literal; the whole name.
fn glob_matches(glob: &str, name: &str) -> bool {
    let (g, n): (Vec<char>, Vec<char>) = (glob.chars().collect(), name.chars().collect());
    // Classic two-pointer match with backtracking to the last `*`.
    let (mut gi, mut ni, mut star, mut mark) = (0, 0, None, 0);
    while ni < n.len() {
        if gi < g.len() && (g[gi] == '?' || g[gi] == n[ni]) {
            gi += 1;
            ni += 1;
        } else if gi < g.len() && g[gi] == '*' {
            star = Some(gi);
            mark = ni;
            gi += 1;
        } else if let Some(s) = star {
            gi = s + 1;
            mark += 1;
            ni = mark;
        } else {
            return false;
        }
    }
    g[gi..].iter().all(|&c| c == '*')
}

/// Which files of `dir` each group runs; every regular file of `dir` is considered.
pub(crate) fn select(file: &GroupsFile, dir: &Path) -> Result<Selection, std::io::Error> {
    let mut names: Vec<(String, PathBuf)> = std::fs::read_dir(dir)?
        .filter_map(Result::ok)
        .filter(|e| e.file_type().is_ok_and(|t| t.is_file()))
        .map(|e| (e.file_name().to_string_lossy().into_owned(), e.path()))
        .collect();
    names.sort();
    let mut selection = Selection::default();
    let mut owner: BTreeMap<String, String> = BTreeMap::new();
    for g in &file.groups {
        let mut files = Vec::new();
        for (name, path) in &names {
            if !g.selects(name) {
                continue;
            }
            if let Some(first) = owner.insert(name.clone(), g.name.clone()) {
                selection.errors.push(GroupError {
                    place: format!("group \"{}\"", g.name),
                    group: Some(g.name.clone()),
                    message: format!(
                        "mapping file {} is also selected by group \"{first}\"; a file belongs to one group",
                        path.display()
                    ),
                });
            }
            files.push(path.clone());
        }
        selection.files.push((g.name.clone(), files));
    }
    selection.unselected = names
        .into_iter()
        .filter(|(name, _)| !owner.contains_key(name))
        .map(|(_, path)| path)
        .collect();
    Ok(selection)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(yaml: &str) -> Result<GroupsFile, Vec<String>> {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("groups.yaml");
        std::fs::write(&path, yaml).unwrap();
        read(&path).map_err(|e| {
            e.iter()
                .map(|e| e.to_string().replace(&path.display().to_string(), "G"))
                .collect()
        })
    }

    #[test]
    fn a_group_takes_defaults_for_what_it_does_not_say() {
        let f = parse("groups:\n- name: knative\n  prefix: mapping_knative\n").unwrap();
        let g = &f.groups[0];
        assert!(g.keep_manifest_list);
        assert_eq!(g.tries, 1);
        assert!(!g.continue_on_error && !g.digest_tag);
        assert!(g.selects("mapping_knative_1") && !g.selects("mapping_origin"));
    }

    #[test]
    fn every_problem_names_the_group() {
        let e = parse(
            "groups:\n\
             - name: a\n  prefix: mapping_a\n  schedule: every hour\n  tries: 0\n\
             - name: a\n  files: mapping_*\n  prefix: x\n\
             - name: b\n  credentials: 'user:pass'\n",
        )
        .unwrap_err();
        assert!(
            e[0].starts_with("G: group \"a\": schedule \"every hour\""),
            "{e:?}"
        );
        assert_eq!(e[1], "G: group \"a\": tries must be at least 1");
        assert_eq!(e[2], "G: group \"a\": give prefix or files, not both");
        assert_eq!(
            e[3],
            "G: group \"a\": the name is given to another group too"
        );
        assert!(
            e[4].starts_with("G: group \"b\": give prefix or files"),
            "{e:?}"
        );
        assert!(e[5].contains("must be a name"), "{e:?}");
        let unknown = parse("groups:\n- name: a\n  prefix: m\n  colour: red\n").unwrap_err();
        assert!(unknown[0].contains("unknown field `colour`"), "{unknown:?}");
    }

    #[test]
    fn globs_match_whole_names() {
        assert!(glob_matches("mapping_*", "mapping_origin_4_6"));
        assert!(glob_matches("mapping_origin_4_?", "mapping_origin_4_6"));
        assert!(!glob_matches("mapping_origin_4_?", "mapping_origin_4_16"));
        assert!(glob_matches("*quay", "mapping_openshift-kni_quay"));
        assert!(!glob_matches("mapping", "mapping_x"));
    }

    #[test]
    fn a_file_two_groups_select_is_an_error_and_an_unselected_file_a_warning() {
        let dir = tempfile::tempdir().unwrap();
        for name in ["mapping_a_1", "mapping_ab", "mapping_z"] {
            std::fs::write(dir.path().join(name), "").unwrap();
        }
        let f = GroupsFile {
            groups: vec![
                parse("groups:\n- name: a\n  prefix: mapping_a\n")
                    .unwrap()
                    .groups[0]
                    .clone(),
                parse("groups:\n- name: ab\n  files: mapping_ab*\n")
                    .unwrap()
                    .groups[0]
                    .clone(),
            ],
        };
        let s = select(&f, dir.path()).unwrap();
        assert_eq!(s.files[0].1.len(), 2);
        assert_eq!(s.errors.len(), 1);
        assert!(s.errors[0]
            .to_string()
            .contains("also selected by group \"a\""));
        assert_eq!(s.unselected, [dir.path().join("mapping_z")]);
    }
}
