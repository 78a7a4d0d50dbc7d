//! One mapping file: reading it, comments, blank lines, line numbers.

use std::path::Path;

use super::destinations::DestinationIndex;
use super::error::{MappingError, Origin};
use super::line::parse_line;
use super::Mapping;

/// The largest mapping file read: the biggest real ones are a few hundred kilobytes, and a
/// file far past this is a mistake (a binary, a log) that must not take the memory of a run.
pub const MAX_FILE_BYTES: u64 = 16 * 1024 * 1024;

/// The longest line read: a line holds a source and a few destinations, each at most a few
/// hundred characters.
pub const MAX_LINE_CHARS: usize = 8 * 1024;

/// Parses the text of one mapping file. `file` is only used to name places in errors and in
/// the mappings' origins. `#` starts a comment that runs to the end of the line; lines are
/// trimmed (tabs count as spaces) and blank lines skipped. Besides each line's own checks,
/// a destination tag given twice in the file is an error. Any error rejects the whole file:
/// then every error is returned, in line order, and no mapping.
pub fn parse_str(file: &Path, text: &str) -> Result<Vec<Mapping>, Vec<MappingError>> {
    let (mappings, errors) = parse_text(file, text);
    if errors.is_empty() {
        Ok(mappings)
    } else {
        Err(errors)
    }
}

/// [`parse_str`] keeping both the mappings of the good lines and the errors (in line order),
/// so that a rejected file can still be checked against the other files of the run.
pub(crate) fn parse_text(file: &Path, text: &str) -> (Vec<Mapping>, Vec<MappingError>) {
    let text = text.strip_prefix('\u{feff}').unwrap_or(text);
    let mut mappings = Vec::new();
    let mut errors = Vec::new();
    for (index, raw) in text.lines().enumerate() {
        if raw.chars().count() > MAX_LINE_CHARS {
            errors.push(MappingError::new(
                Origin::new(file, index + 1),
                format!("the line is longer than {MAX_LINE_CHARS} characters; a mapping line is SRC DST [DST...]"),
            ));
            continue;
        }
        let content = raw.split_once('#').map_or(raw, |(before, _)| before).trim();
        if content.is_empty() {
            continue;
        }
        match parse_line(file, index + 1, content) {
            Ok(m) => mappings.extend(m),
            Err(e) => errors.extend(e),
        }
    }
    let mut index = DestinationIndex::default();
    for mapping in &mappings {
        for dst in mapping.known_destinations() {
            if let Err(first) = index.claim(&dst, &mapping.origin) {
                errors.push(MappingError::new(
                    mapping.origin.clone(),
                    DestinationIndex::duplicate_message(&dst, first),
                ));
            }
        }
    }
    errors.sort_by_key(|e| e.origin.line);
    (mappings, errors)
}

/// Reads a mapping file as UTF-8 text; the error names the file and says why it cannot be
/// used.
pub fn read_file(path: &Path) -> Result<String, MappingError> {
    let cannot = |e: std::io::Error| {
        let link = std::fs::read_link(path)
            .map(|to| format!(" (a symbolic link to {})", to.display()))
            .unwrap_or_default();
        MappingError::new(
            Origin::whole_file(path),
            format!("cannot read mapping file{link}: {e}"),
        )
    };
    let size = std::fs::metadata(path).map_err(cannot)?.len();
    if size > MAX_FILE_BYTES {
        return Err(MappingError::new(
            Origin::whole_file(path),
            format!(
                "the file is {size} bytes, over the {MAX_FILE_BYTES}-byte limit of a mapping file"
            ),
        ));
    }
    let bytes = std::fs::read(path).map_err(cannot)?;
    String::from_utf8(bytes).map_err(|e| {
        let at = e.utf8_error().valid_up_to();
        let line = e.as_bytes()[..at].iter().filter(|&&b| b == b'\n').count() + 1;
        MappingError::new(
            Origin::new(path, line),
            format!("not UTF-8 text (invalid byte at offset {at}); mapping files must be UTF-8"),
        )
    })
}

/// The number of lines of a text, as [`parse_str`] numbers them.
pub(crate) fn line_count(text: &str) -> usize {
    text.lines().count()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_overlong_line_is_an_error_naming_its_line() {
        let long = format!("quay.io/a/b:1 quay.io/c/{}:1", "d".repeat(MAX_LINE_CHARS));
        let e = errors(&format!("quay.io/a/b:2 quay.io/c/d:2\n{long}\n"));
        assert_eq!(e.len(), 1, "{e:?}");
        assert!(
            e[0].starts_with("mapping_x:2: the line is longer than"),
            "{e:?}"
        );
    }

    #[test]
    fn control_characters_of_a_line_are_escaped_in_its_error() {
        let e = errors("quay.io/a/b:1 \u{1b}[2Jquay.io/c/d:1\n");
        assert!(e[0].contains("\\u{1b}[2J"), "{e:?}");
        assert!(!e[0].contains('\u{1b}'), "{e:?}");
    }

    #[test]
    fn an_oversized_file_is_refused_before_it_is_read() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("mapping_big");
        let f = std::fs::File::create(&path).unwrap();
        f.set_len(MAX_FILE_BYTES + 1).unwrap();
        let e = read_file(&path).unwrap_err().to_string();
        assert!(e.contains("over the 16777216-byte limit"), "{e}");
    }

    fn ok(text: &str) -> Vec<Mapping> {
        match parse_str(Path::new("m"), text) {
            Ok(m) => m,
            Err(e) => panic!("{e:?}"),
        }
    }

    fn errors(text: &str) -> Vec<String> {
        match parse_str(Path::new("mapping_x"), text) {
            Ok(m) => panic!("parsed: {m:?}"),
            Err(e) => e.iter().map(ToString::to_string).collect(),
        }
    }

    #[test]
    fn comment_runs_to_end_of_line() {
        let m = ok("# heading\nquay.io/a/b:1 quay.io/c/d:1 # quay.io/c/d:2\nquay.io/a/b:2 quay.io/c/d:3#x y z\n");
        assert_eq!(m.len(), 2);
        assert_eq!(m[0].destinations.len(), 1);
        assert_eq!(m[0].origin, Origin::new("m", 2));
        assert_eq!(m[1].destinations[0].to_string(), "quay.io/c/d:3");
        assert_eq!(m[1].origin.line, 3);
    }

    #[test]
    fn blank_and_whitespace_lines_are_skipped_but_counted() {
        let m = ok("\n   \n\t\nquay.io/a/b:1 quay.io/c/d:1\n\n");
        assert_eq!(m.len(), 1);
        assert_eq!(m[0].origin.line, 4);
    }

    #[test]
    fn last_line_may_lack_a_newline() {
        let m = ok("quay.io/a/b:1 quay.io/c/d:1\nquay.io/a/b:2 quay.io/c/d:2");
        assert_eq!(m.len(), 2);
        assert_eq!(m[1].origin.line, 2);
    }

    #[test]
    fn tabs_and_repeated_spaces_separate_tokens() {
        let m = ok("  quay.io/a/b:1\t\tquay.io/c/d:1    quay.io/c/d:2 \t\r\n");
        assert_eq!(m.len(), 1);
        assert_eq!(m[0].destinations.len(), 2);
        assert_eq!(m[0].destinations[1].to_string(), "quay.io/c/d:2");
    }

    #[test]
    fn errors_name_file_and_line() {
        assert_eq!(
            errors("quay.io/a/b:1 quay.io/c/d:1\n\n# c\nquay.io/a/b:2\n"),
            ["mapping_x:4: source \"quay.io/a/b:2\" has no destination; expected SRC DST [DST ...] or SRC=DST [SRC=DST ...]"]
        );
    }

    #[test]
    fn file_with_one_bad_line_contributes_nothing() {
        let e = errors("quay.io/a/b:1 quay.io/c/d:1\nquay.io/a/b:2 quay.io/C/d:2\nquay.io/a/b:3 quay.io/c/d:3\n");
        assert_eq!(e.len(), 1);
        assert!(
            e[0].starts_with("mapping_x:2: destination \"quay.io/C/d:2\""),
            "{}",
            e[0]
        );
    }

    #[test]
    fn every_error_of_a_file_is_reported_in_line_order() {
        let e = errors("quay.io/a/b:1\nquay.io/a/b:2 quay.io/c/d:x quay.io/c/d:x\nquay.io/a/b:3\n");
        assert_eq!(e.len(), 3, "{e:?}");
        assert!(e[0].starts_with("mapping_x:1: "));
        assert!(e[1].starts_with("mapping_x:2: "));
        assert!(e[2].starts_with("mapping_x:3: "));
    }

    #[test]
    fn duplicate_destination_in_one_file_names_both_lines() {
        assert_eq!(
            errors("quay.io/a/b:1 quay.io/c/d:1\nquay.io/a/b:2 quay.io/c/e:1 quay.io/c/d:1\n"),
            ["mapping_x:2: destination \"quay.io/c/d:1\" is given twice: here and also at mapping_x:1; a destination tag may be given only once in a file"]
        );
        // A tag-less destination of a single-tag source inherits a known tag.
        assert_eq!(
            errors("quay.io/a/b:1 quay.io/c/d\nquay.io/a/e:1 quay.io/c/d:1\n"),
            ["mapping_x:2: destination \"quay.io/c/d:1\" is given twice: here and also at mapping_x:1; a destination tag may be given only once in a file"]
        );
    }

    #[test]
    fn utf8_byte_order_mark_is_ignored() {
        assert_eq!(ok("\u{feff}quay.io/a/b:1 quay.io/c/d:1").len(), 1);
    }
}
