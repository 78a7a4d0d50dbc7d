//! `mirror-scheduler validate`: read the mapping files of a run and report every problem,
//! offline. Problems go to stderr as `FILE:LINE: message`; stdout gets one summary line.
//! Exit status 1 when there is any problem, 0 otherwise.

use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::Result;
use mirror_common::mapping::{load, select_files};

/// Which mapping files to validate: `-f PATH`, paths (files or directories), and/or
/// `--dir DIR --prefix PREFIX`, read in that order (it matters for duplicate destinations:
/// the later file is rejected).
#[derive(Debug, clap::Args)]
pub struct Args {
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

/// Runs the command: an `Err` is a selection problem (a missing path, a prefix matching
/// nothing); problems inside files are printed and give exit status 1.
pub fn run(args: &Args) -> Result<ExitCode> {
    // Order of the run: the -f paths, then the PATH arguments, then --dir/--prefix.
    let mut filenames = args.filenames.clone();
    filenames.extend(args.paths.iter().cloned());
    // MAPPING_FILE_PREFIX may be set in the environment of a run that only uses -f: the
    // prefix only means something with --dir. A --prefix flag without --dir is refused by
    // select_files.
    let prefix = match (&args.dir, &args.prefix) {
        (None, Some(p)) if std::env::var("MAPPING_FILE_PREFIX").ok().as_ref() == Some(p) => None,
        (_, p) => p.as_deref(),
    };
    let files = select_files(&filenames, args.dir.as_deref(), prefix)?;
    let set = load(&files);
    let mut errors = 0usize;
    for (file, file_errors) in &set.rejected {
        for e in file_errors {
            eprintln!("{e}");
        }
        errors += file_errors.len();
        eprintln!(
            "{}: file rejected ({} error{}): none of its mappings would be mirrored",
            file.display(),
            file_errors.len(),
            if file_errors.len() == 1 { "" } else { "s" }
        );
    }
    println!(
        "validated {} files: {} lines, {} mappings, {} destinations, {} errors, {} files rejected",
        set.files.len(),
        set.lines,
        set.mappings.len(),
        set.destination_count(),
        errors,
        set.rejected.len()
    );
    Ok(if errors == 0 {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    })
}
