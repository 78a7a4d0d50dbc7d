//! `mirror-scheduler`: expands mapping files into per-tag copy jobs. `validate` checks
//! mapping files offline; `run` plans and mirrors them (in this process with `--local`, or
//! through RabbitMQ and a fleet of workers); `status` and `dead-letters` are for operators;
//! `completions` and `man` write what an install puts beside the binary.
//!
//! - [`cmd`]: one module per command: `validate`, `run` (a folder: flags, settings, one
//!   run, the embedded and distributed modes, schedules, `--listen`), `status` (collect,
//!   render, the management API client), `dead-letters`, `import-prow` (job, script).
//! - What commands share: [`mapping_args`] (which mapping files: `-f`, PATHs, `--dir
//!   --prefix`); [`groups`] (the groups file: read, check, which files each group
//!   selects); [`schedule`] (cron and `@every` schedules, next start).
//! - What a run's modes share: [`report`] (the run report, its summary and JSON);
//!   [`output`] (the lines said as it goes: oc's `<digest> <destination>` line, errors,
//!   rejected files, dry-run lines); [`progress`] (a bar or log lines); [`broker`] (the
//!   run's broker connection, connected again when lost).
//! - [`events`]: registry notifications (`run --listen-events`): a push mirrored at once.

use std::process::ExitCode;

use clap::{CommandFactory, Parser, Subcommand};

mod broker;
mod cmd;
mod events;
mod groups;
mod mapping_args;
mod output;
mod progress;
mod report;
mod schedule;

use cmd::{dead_letters, import_prow, run, status, validate};

#[derive(Debug, Parser)]
#[command(
    name = "mirror-scheduler",
    version = mirror_cli::VERSION,
    about = "Turns mapping files into copy jobs and mirrors them, in this process or through a fleet of workers"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
    #[command(flatten)]
    log: mirror_cli::LogArgs,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Check mapping files offline (no network): grammar, references, duplicate destinations.
    Validate(validate::Args),
    /// Plan the jobs of the mapping files and mirror them (`--local`: in this process).
    Run(Box<run::Args>),
    /// Queue depths, consumers, retrying and parked jobs, and the progress of recent runs
    /// (of the fleet, or of embedded runs from their state file).
    Status(status::Args),
    /// Inspect, replay or delete parked (dead-lettered) jobs.
    DeadLetters(dead_letters::Args),
    /// Print a groups file made from Prow periodic jobs that run `oc image mirror`; what
    /// cannot be translated is reported, job by job.
    ImportProw(import_prow::Args),
    /// Print a shell completion script (bash, zsh, fish, elvish, powershell) on stdout.
    Completions(mirror_cli::CompletionsArgs),
    /// Write man pages, one per command, into a directory.
    Man(mirror_cli::ManArgs),
}

#[tokio::main]
async fn main() -> ExitCode {
    let cli = Cli::parse();
    mirror_cli::init_logging(cli.log.log_format);
    let result = match cli.command {
        Command::Validate(args) => validate::run(&args),
        Command::Run(args) => run::run(*args).await,
        Command::Status(args) => status::run(args).await,
        Command::DeadLetters(args) => dead_letters::run(args).await,
        Command::ImportProw(args) => import_prow::run(&args),
        Command::Completions(args) => {
            args.print(Cli::command());
            Ok(ExitCode::SUCCESS)
        }
        Command::Man(args) => args
            .write(Cli::command())
            .map(|pages| {
                eprintln!("wrote {} man pages to {}", pages.len(), args.dir.display());
                ExitCode::SUCCESS
            })
            .map_err(|e| anyhow::anyhow!("man {}: {e}", args.dir.display())),
    };
    match result {
        Ok(code) => code,
        Err(e) => {
            mirror_cli::fatal(&format!("mirror-scheduler: {e:#}"));
            ExitCode::FAILURE
        }
    }
}

#[cfg(test)]
mod tests {
    use clap::CommandFactory;

    #[test]
    fn command_line_is_consistent() {
        super::Cli::command().debug_assert();
    }
}
