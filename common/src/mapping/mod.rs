//! Mapping files, as `oc image mirror -f FILE` reads them.
//!
//! A line is `SRC DST [DST ...]` or `SRC=DST [SRC=DST ...]`; `#` starts a comment. A source
//! is `registry/repo:tag`, `registry/repo@sha256:…`, a tag glob `registry/repo:4.1*`, or
//! `registry/repo` (every tag). A destination is `registry/repo:tag`, or `registry/repo`
//! to keep the source tag (required when the source selects many tags).
//!
//! Entry points: [`select_files`] (which files), [`load`] (parse them all, reject bad files
//! as a whole, check destinations across files) and, after the planner has listed the tags
//! of glob and tag-less sources, [`check_expanded_duplicates`]. [`parse_str`] parses one
//! file's text.

mod check;
pub(crate) mod destinations;
mod error;
mod file;
mod line;
mod select;
mod source;

pub use check::{check_expanded_duplicates, load, load_file, MappingSet, Superseded};
pub use error::{MappingError, Origin, SelectError};
pub use file::{parse_str, read_file, MAX_FILE_BYTES, MAX_LINE_CHARS};
pub use select::select_files;
pub use source::{Source, TagSelector};

use crate::reference::ImageRef;

/// One source with its destinations, from one line (`SRC DST [DST ...]`) or one pair
/// (`SRC=DST`).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Mapping {
    /// The file and line it was written on.
    pub origin: Origin,
    /// What to copy.
    pub source: Source,
    /// Where to copy it, in the order written. Never a digest; without a tag, a destination
    /// takes the tag of each copied source tag.
    pub destinations: Vec<ImageRef>,
}

impl Mapping {
    /// The destinations whose tag is known without listing the source: all of them for a
    /// single-tag or digest source (tag-less ones take the written source tag), none for a
    /// glob or tag-less source (whose destinations are all tag-less).
    pub fn known_destinations(&self) -> Vec<ImageRef> {
        let inherited = self.source.written_tag();
        self.destinations
            .iter()
            .filter_map(|d| inherit_tag(d, inherited))
            .collect()
    }
}

/// The rule for destinations without a tag, written once: a destination with a tag keeps
/// it; one without takes the tag of the source tag being copied (`source_tag`); `None` when
/// there is nothing to inherit (a digest source with a tag-less destination).
pub fn inherit_tag(destination: &ImageRef, source_tag: Option<&str>) -> Option<ImageRef> {
    match (&destination.tag, source_tag) {
        (Some(_), _) => Some(destination.clone()),
        (None, Some(t)) => Some(destination.with_tag(t)),
        (None, None) => None,
    }
}

#[cfg(test)]
mod fixture_tests {
    use super::*;
    use std::path::{Path, PathBuf};

    /// The real mapping files beside the repository. Missing fixtures fail the test: a
    /// skipped check would read as a passed one.
    fn fixture_dir() -> PathBuf {
        let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../tests/fixtures/mappings");
        assert!(
            dir.is_dir(),
            "no fixture directory at {} (tests/fixtures/mappings in the repository)",
            dir.display()
        );
        dir
    }

    /// Counted independently with awk (comment stripped, tokens split on blanks):
    /// file, lines, mappings (non-empty lines, none uses SRC=DST), destinations.
    const EXPECTED: [(&str, usize, usize, usize); 6] = [
        ("mapping_hypershift_4_15", 4, 4, 8),
        ("mapping_lvms_latest", 2, 2, 2),
        ("mapping_openshift-kni_quay", 115, 103, 166),
        ("mapping_origin_4_6", 210, 210, 420),
        ("mapping_red-hat-storage_ocs-operator_quay", 35, 27, 27),
        ("mapping_supplemental_ci_images_openshift", 12, 6, 6),
    ];

    #[test]
    fn every_fixture_file_parses_with_the_expected_counts() {
        let dir = fixture_dir();
        let files = select_files(std::slice::from_ref(&dir), None, None).unwrap();
        let names: Vec<String> = files
            .iter()
            .map(|f| f.file_name().unwrap().to_string_lossy().into_owned())
            .collect();
        let expected_names: Vec<&str> = EXPECTED.iter().map(|e| e.0).collect();
        assert_eq!(names, expected_names);
        for (name, lines, mappings, destinations) in EXPECTED {
            let path = dir.join(name);
            let text = read_file(&path).unwrap();
            assert_eq!(text.lines().count(), lines, "{name}");
            let parsed = parse_str(&path, &text).unwrap_or_else(|e| panic!("{name}: {e:?}"));
            assert_eq!(parsed.len(), mappings, "{name}: mappings");
            let d: usize = parsed.iter().map(|m| m.destinations.len()).sum();
            assert_eq!(d, destinations, "{name}: destinations");
        }
        let set = load(&files);
        assert!(set.rejected.is_empty(), "{:?}", set.rejected);
        assert_eq!(set.files.len(), 6);
        assert_eq!(set.lines, 378);
        assert_eq!(set.mappings.len(), 352);
        assert_eq!(set.destination_count(), 629);
    }

    #[test]
    fn fixture_globs_and_prefix_selection() {
        let dir = fixture_dir();
        let files = select_files(&[], Some(&dir), Some("mapping_lvms")).unwrap();
        assert_eq!(files, [dir.join("mapping_lvms_latest")]);
        let set = load(&files);
        let m = &set.mappings[1];
        assert_eq!(m.origin.line, 2, "the last line lacks a newline");
        assert_eq!(m.source.tags, TagSelector::Glob("*".into()));
        assert_eq!(
            m.source.to_string(),
            "registry.ci.openshift.org/lvms/lvms-must-gather:*"
        );
        assert!(m.known_destinations().is_empty());
        let d: Vec<String> = m
            .destinations
            .iter()
            .filter_map(|d| inherit_tag(d, Some("v4.16.0")))
            .map(|d| d.to_string())
            .collect();
        assert_eq!(d, ["quay.io/lvms_dev/lvms-must-gather:v4.16.0"]);
    }

    #[test]
    fn inherited_tags_keep_explicit_ones() {
        let m = &parse_str(
            Path::new("m"),
            "quay.io/a/b:1 quay.io/c/d quay.io/c/e:latest",
        )
        .unwrap()[0];
        let d: Vec<String> = m
            .destinations
            .iter()
            .filter_map(|d| inherit_tag(d, Some("1")))
            .map(|d| d.to_string())
            .collect();
        assert_eq!(d, ["quay.io/c/d:1", "quay.io/c/e:latest"]);
        let k: Vec<String> = m
            .known_destinations()
            .iter()
            .map(ToString::to_string)
            .collect();
        assert_eq!(k, d);
    }
}
