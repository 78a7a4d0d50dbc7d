//! `mirror-scheduler`: expands mapping files into per-tag copy jobs. For now one subcommand,
//! `validate`, checks mapping files offline.

use std::process::ExitCode;

use clap::{Parser, Subcommand};

mod validate;

#[derive(Debug, Parser)]
#[command(name = "mirror-scheduler", version, about, long_about = None)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Check mapping files offline (no network): grammar, references, duplicate destinations.
    Validate(validate::Args),
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let result = match cli.command {
        Command::Validate(args) => validate::run(&args),
    };
    match result {
        Ok(code) => code,
        Err(e) => {
            eprintln!("mirror-scheduler: {e:#}");
            ExitCode::FAILURE
        }
    }
}
