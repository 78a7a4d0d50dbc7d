//! Checks across lines and files: a destination tag given twice in one file is an error; in
//! two files, the later file wins and the earlier mapping is superseded for that tag.

use std::collections::HashMap;
use std::path::{Path, PathBuf};

use super::destinations::DestinationIndex;
use super::error::{MappingError, Origin};
use super::file::{line_count, parse_text, read_file};
use super::Mapping;
use crate::reference::ImageRef;

/// A destination tag that a later file gives again: that file's mapping wins (as when `oc
/// image mirror -f` runs once per file, in name order), this one is superseded for that tag.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Superseded {
    /// The destination tag (`registry/repository:tag`).
    pub destination: String,
    /// The mapping that no longer writes it.
    pub mapping: Origin,
    /// The later mapping that does.
    pub by: Origin,
}

impl std::fmt::Display for Superseded {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "{}: destination \"{}\" is also given at {}, a later file, which wins",
            self.mapping, self.destination, self.by
        )
    }
}

/// The mappings of one run, after every file was parsed and checked.
#[derive(Debug, Default)]
pub struct MappingSet {
    /// The mappings of the accepted files, in file order then line order.
    pub mappings: Vec<Mapping>,
    /// The rejected files, in file order, each with all its errors (in line order). A
    /// rejected file contributes no mapping.
    pub rejected: Vec<(PathBuf, Vec<MappingError>)>,
    /// Every file that was loaded, accepted or not, in the order given.
    pub files: Vec<PathBuf>,
    /// The number of lines read (comments and blank lines included) over all readable files.
    pub lines: usize,
    /// Destination tags given again by a later file, found offline (explicit tags and tags
    /// inherited from single-tag sources); the planner adds those of globs and tag-less
    /// sources. Warnings, not errors.
    pub superseded: Vec<Superseded>,
}

impl MappingSet {
    /// Every error of the run, file by file.
    pub fn errors(&self) -> impl Iterator<Item = &MappingError> {
        self.rejected.iter().flat_map(|(_, errors)| errors)
    }

    /// The number of destinations over all accepted mappings.
    pub fn destination_count(&self) -> usize {
        self.mappings.iter().map(|m| m.destinations.len()).sum()
    }

    /// Rejects the files named by `errors` (e.g. from [`check_expanded_duplicates`]): their
    /// mappings are dropped and the errors recorded, keeping the whole-file rule after
    /// expansion.
    pub fn reject(&mut self, errors: Vec<MappingError>) {
        for error in errors {
            let file = &error.origin.file;
            self.mappings.retain(|m| &m.origin.file != file);
            match self.rejected.iter_mut().find(|(f, _)| f == file) {
                Some((_, list)) => list.push(error),
                None => self.rejected.push((file.clone(), vec![error])),
            }
        }
    }
}

/// Reads and parses every file, in order. A file with any error (unreadable, not UTF-8, a bad
/// line, a destination tag given twice in it) is rejected as a whole; the other files still
/// contribute their mappings. A destination tag given by an earlier file and again by a later
/// one is recorded in [`MappingSet::superseded`]: the later file wins.
///
/// Only destinations whose tag is known offline are compared here (an explicit tag, or the
/// tag inherited from a single-tag source); the tags of glob and tag-less sources are known
/// after listing: see [`check_expanded_duplicates`].
pub fn load(files: &[PathBuf]) -> MappingSet {
    let mut set = MappingSet {
        files: files.to_vec(),
        ..MappingSet::default()
    };
    let mut index = DestinationIndex::default();
    for file in files {
        let (lines, parsed) = load_file(file);
        set.lines += lines;
        let mappings = match parsed {
            Ok(mappings) => mappings,
            Err(errors) => {
                set.rejected.push((file.clone(), errors));
                continue;
            }
        };
        for m in &mappings {
            for dst in m.known_destinations() {
                // None inside the file (parse_text): an earlier owner is an earlier file's.
                if let Some(earlier) = index.take_over(&dst, &m.origin) {
                    set.superseded.push(Superseded {
                        destination: dst.to_string(),
                        mapping: earlier,
                        by: m.origin.clone(),
                    });
                }
            }
        }
        set.mappings.extend(mappings);
    }
    set
}

/// One file read and parsed on its own: its number of lines (0 when it cannot be read) and
/// its mappings, or every error that rejects it (unreadable, not UTF-8, a bad line, a
/// destination tag given twice in it). What [`load`] does per file, for a reader that
/// keeps one file in memory at a time (the planner).
pub fn load_file(file: &Path) -> (usize, Result<Vec<Mapping>, Vec<MappingError>>) {
    let text = match read_file(file) {
        Ok(text) => text,
        Err(e) => return (0, Err(vec![e])),
    };
    let lines = line_count(&text);
    let (mappings, errors) = parse_text(file, &text);
    match errors.is_empty() {
        true => (lines, Ok(mappings)),
        false => (lines, Err(errors)),
    }
}

/// The duplicate check after expansion, for the planner: pass every destination of the run
/// with its tag resolved (`registry/repo:tag`) and the origin of the mapping it comes from,
/// in file order then line order. Each destination tag repeated inside one file gives one
/// error at its later origin, naming the first one ("also at FILE:LINE"); repeats across
/// files are not errors (the later file wins). Destinations without a tag are ignored. To
/// keep the whole-file rule, reject the files named by the errors (see
/// [`MappingSet::reject`]).
pub fn check_expanded_duplicates<'a, I>(destinations: I) -> Vec<MappingError>
where
    I: IntoIterator<Item = (&'a ImageRef, &'a Origin)>,
{
    let mut per_file: HashMap<&std::path::Path, DestinationIndex> = HashMap::new();
    let mut errors = Vec::new();
    for (dst, origin) in destinations {
        let index = per_file.entry(origin.file.as_path()).or_default();
        if let Err(first) = index.claim(dst, origin) {
            let message = DestinationIndex::duplicate_message(dst, first);
            errors.push(MappingError::new(origin.clone(), message));
        }
    }
    errors
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::fs;
    use std::path::Path;

    fn write(dir: &Path, name: &str, text: &str) -> PathBuf {
        let p = dir.join(name);
        fs::write(&p, text).unwrap();
        p
    }

    #[test]
    fn a_destination_given_again_by_a_later_file_is_a_warning_and_the_later_file_wins() {
        let dir = tempfile::tempdir().unwrap();
        let a = write(dir.path(), "mapping_a", "quay.io/a/b:1 quay.io/c/d:1\n");
        let b = write(
            dir.path(),
            "mapping_b",
            "quay.io/a/x:1 quay.io/c/x:1\n# c\nquay.io/a/b:2 quay.io/c/d:1\n",
        );
        let c = write(dir.path(), "mapping_c", "quay.io/a/b:3 quay.io/c/d:1\n");
        let set = load(&[a.clone(), b.clone(), c.clone()]);
        assert!(set.rejected.is_empty(), "{:?}", set.rejected);
        assert_eq!(set.mappings.len(), 4, "every file keeps its mappings");
        let warnings: Vec<String> = set.superseded.iter().map(ToString::to_string).collect();
        assert_eq!(
            warnings,
            [
                format!(
                    "{}:1: destination \"quay.io/c/d:1\" is also given at {}:3, a later file, which wins",
                    a.display(),
                    b.display()
                ),
                format!(
                    "{}:3: destination \"quay.io/c/d:1\" is also given at {}:1, a later file, which wins",
                    b.display(),
                    c.display()
                ),
            ]
        );
        assert_eq!(set.files, [a, b, c]);
        assert_eq!(set.lines, 5);
    }

    #[test]
    fn rejected_file_does_not_claim_its_destinations() {
        let dir = tempfile::tempdir().unwrap();
        let a = write(
            dir.path(),
            "a",
            "quay.io/a/b:1 quay.io/c/d:1\nbad-line-without-destination\n",
        );
        let b = write(dir.path(), "b", "quay.io/a/b:1 quay.io/c/d:1\n");
        let set = load(&[a, b.clone()]);
        assert_eq!(set.rejected.len(), 1);
        assert_eq!(set.mappings.len(), 1);
        assert_eq!(set.mappings[0].origin.file, b);
    }

    #[test]
    fn a_rejected_file_supersedes_nothing() {
        let dir = tempfile::tempdir().unwrap();
        let a = write(dir.path(), "a", "quay.io/a/b:1 quay.io/c/d:1\n");
        let b = write(
            dir.path(),
            "b",
            "quay.io/a/x:1 quay.io/c/d:1\nquay.io/a/b:2\n",
        );
        let set = load(&[a.clone(), b]);
        assert_eq!(set.rejected.len(), 1);
        assert!(set.superseded.is_empty());
        assert_eq!(set.mappings.len(), 1);
        assert_eq!(set.mappings[0].origin.file, a);
    }

    #[test]
    fn unreadable_or_non_utf8_file_is_an_error_naming_it() {
        let dir = tempfile::tempdir().unwrap();
        let missing = dir.path().join("gone");
        let latin1 = dir.path().join("latin1");
        fs::write(&latin1, b"quay.io/a/b:1 quay.io/c/d:1\n# caf\xe9\n").unwrap();
        let good = write(dir.path(), "good", "quay.io/a/b:1 quay.io/c/d:1\n");
        let set = load(&[missing.clone(), latin1.clone(), good]);
        let msgs: Vec<String> = set.errors().map(ToString::to_string).collect();
        assert_eq!(msgs.len(), 2);
        assert!(
            msgs[0].starts_with(&format!(
                "{}: cannot read mapping file: ",
                missing.display()
            )),
            "{}",
            msgs[0]
        );
        assert_eq!(
            msgs[1],
            format!(
                "{}:2: not UTF-8 text (invalid byte at offset 33); mapping files must be UTF-8",
                latin1.display()
            )
        );
        assert_eq!(
            set.mappings.len(),
            1,
            "the other files still produce their mappings"
        );
    }

    #[test]
    fn expanded_duplicates_are_errors_inside_a_file_only() {
        let r = |s: &str| ImageRef::parse(s).unwrap();
        let d1 = r("quay.io/c/d:4.16");
        let d2 = r("quay.io/c/d:4.17");
        let d1_again = r("Quay.io/c/d:4.16");
        let (o1, o2, o3) = (
            Origin::new("mapping_a", 1),
            Origin::new("mapping_b", 7),
            Origin::new("mapping_b", 9),
        );
        let errors =
            check_expanded_duplicates([(&d1, &o1), (&d2, &o1), (&d1_again, &o2), (&d1, &o3)]);
        let msgs: Vec<String> = errors.iter().map(ToString::to_string).collect();
        assert_eq!(
            msgs,
            ["mapping_b:9: destination \"quay.io/c/d:4.16\" is given twice: here and also at mapping_b:7; a destination tag may be given only once in a file"]
        );
        let mut set = MappingSet::default();
        set.reject(errors);
        assert_eq!(set.rejected[0].0, PathBuf::from("mapping_b"));
    }

    #[test]
    fn rejecting_after_expansion_drops_the_file_mappings() {
        let dir = tempfile::tempdir().unwrap();
        let a = write(dir.path(), "a", "quay.io/a/b:4.* quay.io/c/d\n");
        let b = write(
            dir.path(),
            "b",
            "quay.io/a/x:4.* quay.io/c/d\nquay.io/a/z:4.* quay.io/c/d\nquay.io/a/y:1 quay.io/c/y:1\n",
        );
        let mut set = load(&[a.clone(), b.clone()]);
        assert_eq!(set.mappings.len(), 4, "tags of globs are not known offline");
        let dst = ImageRef::parse("quay.io/c/d:4.1").unwrap();
        let pairs: Vec<(&ImageRef, &Origin)> = set.mappings[..3]
            .iter()
            .map(|m| (&dst, &m.origin))
            .collect();
        let errors = check_expanded_duplicates(pairs);
        assert_eq!(errors.len(), 1);
        set.reject(errors);
        assert_eq!(set.mappings.len(), 1);
        assert_eq!(set.mappings[0].origin.file, a);
        assert_eq!(set.rejected[0].0, b);
    }
}
