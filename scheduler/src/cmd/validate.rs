//! `mirror-scheduler validate`: read the mapping files of a run and report every problem,
//! offline. Problems go to stderr as `FILE:LINE: message`, warnings (a destination tag that
//! a later file gives again, which wins) as `warning: FILE:LINE: ...`; stdout gets one
//! summary line. Exit status 1 when there is any error, 0 with only warnings or none.

use std::process::ExitCode;

use anyhow::Result;
use mirror_cli::plural;
use mirror_common::mapping::load;

use crate::mapping_args::MappingArgs;
use crate::output::{print_rejected, print_superseded};

/// `validate` reads the files of a run without touching any registry.
#[derive(Debug, clap::Args)]
pub(crate) struct Args {
    #[command(flatten)]
    pub files: MappingArgs,
    /// A groups file (YAML): check it, and every mapping file of --dir each group selects,
    /// group by group.
    #[arg(long, value_name = "FILE", requires = "dir")]
    pub groups: Option<std::path::PathBuf>,
}

/// Runs the command: an `Err` is a selection problem (a missing path, a prefix matching
/// nothing); problems inside files are printed and give exit status 1.
pub(crate) fn run(args: &Args) -> Result<ExitCode> {
    if let (Some(groups), Some(dir)) = (&args.groups, &args.files.dir) {
        return validate_groups(groups, dir);
    }
    let files = args.files.select()?;
    let set = load(&files);
    let errors = print_rejected(&set);
    let warnings = print_superseded(&set);
    println!(
        "validated {}: {}, {}, {}, {}, {} rejected, {}",
        plural(set.files.len(), "file"),
        plural(set.lines, "line"),
        plural(set.mappings.len(), "mapping"),
        plural(set.destination_count(), "destination"),
        plural(errors, "error"),
        plural(set.rejected.len(), "file"),
        plural(warnings, "warning")
    );
    Ok(if errors == 0 {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    })
}

/// `validate --groups FILE --dir DIR`: the groups file, which files each group selects (a
/// file of two groups is an error, a file of none a warning), then each group's files as a
/// run of that group reads them. One summary line per group and one in total.
fn validate_groups(groups: &std::path::Path, dir: &std::path::Path) -> Result<ExitCode> {
    let file = match crate::groups::read(groups) {
        Ok(f) => f,
        Err(errors) => {
            for e in &errors {
                eprintln!("{e}");
            }
            println!(
                "groups file {}: {}",
                groups.display(),
                plural(errors.len(), "error")
            );
            return Ok(ExitCode::FAILURE);
        }
    };
    let selection = crate::groups::select(&file, dir)
        .map_err(|e| anyhow::anyhow!("--dir {}: {e}", dir.display()))?;
    let mut errors = selection.errors.len();
    let mut warnings = selection.unselected.len();
    for e in &selection.errors {
        eprintln!("{}: {e}", groups.display());
    }
    for f in &selection.unselected {
        eprintln!(
            "warning: {}: no group selects this mapping file",
            f.display()
        );
    }
    for (name, files) in &selection.files {
        let set = load(files);
        let (e, w) = (print_rejected(&set), print_superseded(&set));
        errors += e;
        warnings += w;
        println!(
            "group {name}: {}, {}, {}, {}, {} rejected, {}",
            plural(set.files.len(), "file"),
            plural(set.mappings.len(), "mapping"),
            plural(set.destination_count(), "destination"),
            plural(e, "error"),
            plural(set.rejected.len(), "file"),
            plural(w, "warning")
        );
    }
    println!(
        "validated {}: {}, {}",
        plural(selection.files.len(), "group"),
        plural(errors, "error"),
        plural(warnings, "warning")
    );
    Ok(if errors == 0 {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    })
}
