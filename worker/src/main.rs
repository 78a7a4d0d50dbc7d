//! `mirror-worker`: copies images between registries. `copy` does one image now; `run`
//! (consuming jobs from the queue) arrives with the distributed mode.

mod copy_cmd;

use clap::{Parser, Subcommand};

#[derive(Parser)]
#[command(
    name = "mirror-worker",
    version,
    about = "Copies container images between registries, blob by blob"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Copy one image to one or more destinations and print `<digest> <destination>` lines.
    Copy(copy_cmd::Args),
}

#[tokio::main]
async fn main() {
    init_logging();
    let cli = Cli::parse();
    let code = match cli.command {
        Command::Copy(args) => copy_cmd::run(args).await,
    };
    std::process::exit(code);
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
