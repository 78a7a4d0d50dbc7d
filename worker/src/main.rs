//! `mirror-worker`: copies images between registries. `copy` does one image; `run`
//! consumes copy jobs from RabbitMQ; `completions` and `man` write what an install puts
//! beside the binary.
//!
//! - [`cmd::copy`]: `copy SRC DST...`, one image through the copy engine, oc's
//!   `<digest> <destination>` lines on stdout.
//! - [`cmd::run`]: the fleet worker: its flags, engines and connect loop;
//!   `run/consume.rs` (a task per job, the drain), `run/shutdown.rs` (SIGTERM/SIGINT).

mod cmd;

use cmd::{copy, run};

use clap::{CommandFactory, Parser, Subcommand};

#[derive(Parser)]
#[command(
    name = "mirror-worker",
    version = mirror_cli::VERSION,
    about = "Copies container images between registries, blob by blob"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
    #[command(flatten)]
    log: mirror_cli::LogArgs,
}

#[derive(Subcommand)]
enum Command {
    /// Copy one image to one or more destinations and print `<digest> <destination>` lines.
    Copy(Box<copy::Args>),
    /// Consume copy jobs from RabbitMQ until SIGTERM (then drain and exit 0).
    Run(Box<run::Args>),
    /// Print a shell completion script (bash, zsh, fish, elvish, powershell) on stdout.
    Completions(mirror_cli::CompletionsArgs),
    /// Write man pages, one per command, into a directory.
    Man(mirror_cli::ManArgs),
}

#[tokio::main]
async fn main() {
    let cli = Cli::parse();
    mirror_cli::init_logging(cli.log.log_format);
    let code = match cli.command {
        Command::Copy(args) => copy::run(*args).await,
        Command::Run(args) => run::run(*args).await.unwrap_or_else(|e| {
            mirror_cli::fatal(&format!("error: {e:#}"));
            1
        }),
        Command::Completions(args) => {
            args.print(Cli::command());
            0
        }
        Command::Man(args) => match args.write(Cli::command()) {
            Ok(pages) => {
                eprintln!("wrote {} man pages to {}", pages.len(), args.dir.display());
                0
            }
            Err(e) => {
                mirror_cli::fatal(&format!("error: man {}: {e}", args.dir.display()));
                1
            }
        },
    };
    std::process::exit(code);
}

#[cfg(test)]
mod tests {
    use clap::CommandFactory;

    #[test]
    fn command_line_is_consistent() {
        super::Cli::command().debug_assert();
    }
}
