//! `mirror-scheduler dead-letters list|requeue|purge`: inspect and replay parked jobs (jobs
//! that exhausted their attempts, or messages that could not be decoded).

use std::process::ExitCode;

use anyhow::Result;
use mirror_cli::BrokerArgs;
use mirror_fleet::amqp::AmqpQueue;

/// Flags of `dead-letters`.
#[derive(Debug, clap::Args)]
pub(crate) struct Args {
    #[command(subcommand)]
    pub action: Action,
    #[command(flatten)]
    pub broker: BrokerArgs,
}

/// What to do with the parked jobs.
#[derive(Debug, clap::Subcommand)]
pub(crate) enum Action {
    /// Show every parked job with the reason it was parked (they stay parked).
    List {
        /// Print JSON for scripts.
        #[arg(long)]
        json: bool,
    },
    /// Put every parked job back on the jobs queue with its attempts reset (messages that
    /// cannot be decoded stay parked).
    Requeue,
    /// Delete every parked job.
    Purge,
}

pub(crate) async fn run(args: Args) -> Result<ExitCode> {
    let queue = AmqpQueue::connect_existing(args.broker.config(1)).await?;
    match args.action {
        Action::List { json } => {
            let parked = queue.parked().await?;
            if json {
                let items: Vec<serde_json::Value> = parked
                    .iter()
                    .map(|p| serde_json::json!({ "job": p.job, "raw": if p.job.is_none() { Some(&p.raw) } else { None }, "reason": p.reason, "parked_at": p.parked_at }))
                    .collect();
                println!("{}", serde_json::to_string_pretty(&items)?);
            } else {
                println!("{} parked jobs", parked.len());
                for p in &parked {
                    match &p.job {
                        Some(job) => {
                            let tags: Vec<String> =
                                job.destinations.iter().map(|d| d.to_string()).collect();
                            println!(
                                "job {} (run {}): {} -> {}\n  reason: {}",
                                job.id,
                                job.run_id,
                                job.source,
                                tags.join(" "),
                                p.reason
                            );
                        }
                        None => println!("undecodable message: {}\n  reason: {}", p.raw, p.reason),
                    }
                }
            }
        }
        Action::Requeue => println!("requeued {} parked jobs", queue.requeue_parked().await?),
        Action::Purge => println!("purged {} parked jobs", queue.purge_parked().await?),
    }
    queue.close().await;
    Ok(ExitCode::SUCCESS)
}
