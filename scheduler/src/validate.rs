//! `mirror-scheduler validate`: read the mapping files of a run and report every problem,
//! offline. Problems go to stderr as `FILE:LINE: message`, warnings (a destination tag that
//! a later file gives again, which wins) as `warning: FILE:LINE: ...`; stdout gets one
//! summary line. Exit status 1 when there is any error, 0 with only warnings or none.

use std::process::ExitCode;

use anyhow::Result;
use mirror_common::mapping::load;

use crate::files::MappingArgs;
use crate::summary::{print_rejected, print_superseded};

/// `validate` reads the files of a run without touching any registry.
#[derive(Debug, clap::Args)]
pub(crate) struct Args {
    #[command(flatten)]
    pub files: MappingArgs,
}

/// Runs the command: an `Err` is a selection problem (a missing path, a prefix matching
/// nothing); problems inside files are printed and give exit status 1.
pub(crate) fn run(args: &Args) -> Result<ExitCode> {
    let files = args.files.select()?;
    let set = load(&files);
    let errors = print_rejected(&set);
    let warnings = print_superseded(&set);
    println!(
        "validated {} files: {} lines, {} mappings, {} destinations, {} errors, {} files rejected, {} warnings",
        set.files.len(),
        set.lines,
        set.mappings.len(),
        set.destination_count(),
        errors,
        set.rejected.len(),
        warnings
    );
    Ok(if errors == 0 {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    })
}
