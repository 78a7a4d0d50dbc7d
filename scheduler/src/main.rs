//! `mirror-scheduler`: expands mapping files into per-tag copy jobs. `validate` checks
//! mapping files offline; `run --local` plans and mirrors them in this process.

use std::process::ExitCode;

use clap::{Parser, Subcommand};

mod files;
mod local;
mod plan;
mod progress;
mod run_cmd;
mod summary;
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
    /// Plan the jobs of the mapping files and mirror them (`--local`: in this process).
    Run(Box<run_cmd::Args>),
}

#[tokio::main]
async fn main() -> ExitCode {
    init_logging();
    let cli = Cli::parse();
    let result = match cli.command {
        Command::Validate(args) => validate::run(&args),
        Command::Run(args) => run_cmd::run(*args).await,
    };
    match result {
        Ok(code) => code,
        Err(e) => {
            eprintln!("mirror-scheduler: {e:#}");
            ExitCode::FAILURE
        }
    }
}

/// Logs go to stderr (stdout carries oc's result lines); `RUST_LOG` sets the level.
fn init_logging() {
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("warn"));
    tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .init();
}
