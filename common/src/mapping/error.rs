//! Where a mapping came from, and the errors that name that place.

use std::fmt;
use std::path::{Path, PathBuf};

use thiserror::Error;

use crate::printable::printable;

/// A place in a mapping file: the path as it was given (relative paths stay relative) and a
/// 1-based line number. Line 0 stands for the file as a whole (it could not be read).
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Origin {
    /// The mapping file, as selected (not canonicalised).
    pub file: PathBuf,
    /// 1-based line number; 0 when the problem concerns the whole file.
    pub line: usize,
}

impl Origin {
    /// A line of a file.
    pub fn new(file: impl Into<PathBuf>, line: usize) -> Self {
        Origin {
            file: file.into(),
            line,
        }
    }

    /// The file as a whole (line 0).
    pub fn whole_file(file: &Path) -> Self {
        Origin::new(file, 0)
    }
}

/// `FILE:LINE`, or just `FILE` for line 0.
impl fmt::Display for Origin {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let file = self.file.display().to_string();
        let file = printable(&file);
        if self.line == 0 {
            write!(f, "{file}")
        } else {
            write!(f, "{file}:{}", self.line)
        }
    }
}

/// One problem in a mapping file. Displays as `FILE:LINE: message`; the message says what is
/// wrong and what is expected. What the file wrote is quoted with its control characters
/// escaped, so a hostile file cannot rewrite the operator's terminal.
#[derive(Clone, Debug, PartialEq, Eq, Error)]
#[error("{origin}: {}", printable(message))]
pub struct MappingError {
    /// Where the problem is.
    pub origin: Origin,
    /// What is wrong and what is expected instead.
    pub message: String,
}

impl MappingError {
    /// An error at `origin`.
    pub fn new(origin: Origin, message: impl Into<String>) -> Self {
        MappingError {
            origin,
            message: message.into(),
        }
    }
}

/// Why the set of mapping files could not be selected. Every variant names the path or the
/// prefix concerned.
#[derive(Debug, Error)]
pub enum SelectError {
    /// A `-f PATH` that does not exist (or cannot be examined).
    #[error(
        "mapping path \"{path}\": {error}; expected a mapping file or a directory of mapping files"
    )]
    Missing {
        /// The path as given.
        path: PathBuf,
        /// Why it could not be examined.
        error: std::io::Error,
    },
    /// A path that is neither a regular file nor a directory (socket, device, ...).
    #[error("mapping path \"{0}\" is neither a regular file nor a directory")]
    NotAFile(PathBuf),
    /// A directory that cannot be listed.
    #[error("cannot list directory \"{path}\": {error}")]
    ReadDir {
        /// The directory.
        path: PathBuf,
        /// Why it could not be listed.
        error: std::io::Error,
    },
    /// A `-f DIR` with no regular file in it.
    #[error(
        "directory \"{0}\" contains no mapping file (no regular file that does not start with '.')"
    )]
    EmptyDir(PathBuf),
    /// `--dir DIR --prefix PREFIX` where no file name starts with PREFIX.
    #[error("no file in directory \"{}\" has a name starting with \"{prefix}\"", dir.display())]
    NoMatch {
        /// The directory given with `--dir`.
        dir: PathBuf,
        /// The file name prefix no file matched.
        prefix: String,
    },
    /// `--dir` given without a prefix.
    #[error("--dir \"{0}\" needs a file name prefix (--prefix or MAPPING_FILE_PREFIX); to take every file of a directory use -f DIR")]
    DirWithoutPrefix(PathBuf),
    /// A prefix given without `--dir`.
    #[error("prefix \"{0}\" needs --dir DIR to say which directory to look in")]
    PrefixWithoutDir(String),
    /// An empty prefix would match every file; say -f DIR instead.
    #[error("the file name prefix is empty; give a prefix such as mapping_origin, or use -f DIR for every file")]
    EmptyPrefix,
    /// Nothing selected at all.
    #[error("no mapping file given; expected PATH..., -f PATH or --dir DIR --prefix PREFIX")]
    NothingGiven,
}
