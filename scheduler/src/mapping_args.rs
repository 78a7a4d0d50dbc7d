//! Which mapping files a command reads: `-f PATH` (repeatable; a directory means every
//! file in it), positional PATHs, and `--dir DIR --prefix PREFIX` (prefix also from
//! `MAPPING_FILE_PREFIX`, as the cron job it replaces reads it).

use std::path::PathBuf;

use mirror_common::mapping::{select_files, SelectError};

/// Mapping file selection flags, shared by `validate` and `run`.
#[derive(Debug, Clone, clap::Args)]
pub(crate) struct MappingArgs {
    /// Mapping files, or directories standing for every regular file in them (sorted by name).
    #[arg(value_name = "PATH")]
    pub paths: Vec<PathBuf>,

    /// A mapping file or directory, as with `oc image mirror -f` (repeatable).
    #[arg(short = 'f', long = "filename", value_name = "PATH")]
    pub filenames: Vec<PathBuf>,

    /// Directory to select mapping files from by name prefix (with --prefix).
    #[arg(long, value_name = "DIR")]
    pub dir: Option<PathBuf>,

    /// File name prefix of the mapping files in --dir (e.g. mapping_origin). Without --dir,
    /// a prefix taken from the environment is ignored.
    #[arg(long, value_name = "PREFIX", env = "MAPPING_FILE_PREFIX")]
    pub prefix: Option<String>,
}

impl MappingArgs {
    /// The files of the run, in order: the -f paths, then the PATH arguments, then
    /// --dir/--prefix (the order decides which file is "later" for duplicate destinations).
    pub(crate) fn select(&self) -> Result<Vec<PathBuf>, SelectError> {
        let mut filenames = self.filenames.clone();
        filenames.extend(self.paths.iter().cloned());
        // MAPPING_FILE_PREFIX may be set in the environment of a run that only uses -f: the
        // prefix only means something with --dir. A --prefix flag without --dir is refused.
        let prefix = match (&self.dir, &self.prefix) {
            (None, Some(p)) if std::env::var("MAPPING_FILE_PREFIX").ok().as_ref() == Some(p) => {
                None
            }
            (_, p) => p.as_deref(),
        };
        select_files(&filenames, self.dir.as_deref(), prefix)
    }
}
