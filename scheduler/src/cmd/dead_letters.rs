//! `mirror-scheduler dead-letters list|requeue|purge`: inspect and replay parked jobs (jobs
//! that exhausted their attempts, or messages that could not be decoded). `requeue` and
//! `purge` act on every parked job, or on those of the jobs and runs named with `--job` and
//! `--run`: one bad job need not replay, or drop, everything else that is parked.

use std::process::ExitCode;

use anyhow::Result;
use mirror_cli::{plural, BrokerArgs};
use mirror_fleet::amqp::{AmqpQueue, ParkedMessage, ParkedSelection, Settled};
use uuid::Uuid;

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
    /// Put parked jobs back on the jobs queue with their attempts reset: every one, or
    /// those --job and --run select (messages that cannot be decoded stay parked).
    Requeue(Select),
    /// Delete parked jobs: every one, or those --job and --run select.
    Purge(Select),
}

/// Which parked jobs `requeue` and `purge` act on; the others stay parked, in their order.
#[derive(Debug, clap::Args)]
pub(crate) struct Select {
    /// The parked job with this id (as `list` shows it); repeatable.
    #[arg(long = "job", value_name = "ID")]
    pub jobs: Vec<Uuid>,
    /// The parked jobs of this run; repeatable. Without --job or --run: every parked job.
    #[arg(long = "run", value_name = "ID")]
    pub runs: Vec<Uuid>,
}

impl Select {
    fn selection(&self) -> ParkedSelection {
        ParkedSelection {
            jobs: self.jobs.clone(),
            runs: self.runs.clone(),
        }
    }
}

pub(crate) async fn run(args: Args) -> Result<ExitCode> {
    let queue = AmqpQueue::connect_existing(args.broker.config(1)).await?;
    let code = match args.action {
        Action::List { json } => {
            let parked = queue.parked().await?;
            if json {
                let items: Vec<serde_json::Value> = parked.iter().map(as_json).collect();
                println!("{}", serde_json::to_string_pretty(&items)?);
            } else {
                print_list(&parked);
            }
            ExitCode::SUCCESS
        }
        Action::Requeue(select) if select.selection().is_all() => {
            let moved = queue.requeue_parked().await?;
            println!("requeued {}", plural(moved, "parked job"));
            ExitCode::SUCCESS
        }
        Action::Purge(select) if select.selection().is_all() => {
            let purged = queue.purge_parked().await?;
            println!("purged {}", plural(purged, "parked job"));
            ExitCode::SUCCESS
        }
        Action::Requeue(select) => {
            let settled = queue.requeue_parked_selected(&select.selection()).await?;
            report_selected("requeued", &select, &settled)
        }
        Action::Purge(select) => {
            let settled = queue.purge_parked_selected(&select.selection()).await?;
            report_selected("purged", &select, &settled)
        }
    };
    queue.close().await;
    Ok(code)
}

/// One parked message for scripts: the job (without its `attempt`, which counts from 0
/// the tries before the last) and `attempts`, the tries made, as the reason counts them.
fn as_json(p: &ParkedMessage) -> serde_json::Value {
    let job = p.job.as_ref().and_then(|j| serde_json::to_value(j).ok());
    let job = job.map(|mut j| {
        if let Some(fields) = j.as_object_mut() {
            fields.remove("attempt");
        }
        j
    });
    serde_json::json!({
        "job": job,
        "raw": if p.job.is_none() { Some(&p.raw) } else { None },
        "reason": p.reason,
        "attempts": p.attempts,
        "parked_at": p.parked_at,
    })
}

fn print_list(parked: &[ParkedMessage]) {
    println!("{}", plural(parked.len(), "parked job"));
    for p in parked {
        match &p.job {
            Some(job) => {
                let tags: Vec<String> = job.destinations.iter().map(|d| d.to_string()).collect();
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

/// Says what a selective requeue or purge did; exit status 1 when a --job or --run named
/// nothing parked (the rest was still done).
fn report_selected(done: &str, select: &Select, settled: &Settled) -> ExitCode {
    let stay = match settled.kept {
        1 => "1 stays".to_string(),
        n => format!("{n} stay"),
    };
    println!(
        "{done} {}; {stay} parked",
        plural(settled.jobs.len(), "parked job")
    );
    let mut code = ExitCode::SUCCESS;
    for id in &select.jobs {
        if !settled.jobs.iter().any(|(job, _)| job == id) {
            eprintln!("error: --job {id}: no parked job has this id");
            code = ExitCode::FAILURE;
        }
    }
    for id in &select.runs {
        if !settled.jobs.iter().any(|(_, run)| run == id) {
            eprintln!("error: --run {id}: no parked job of this run");
            code = ExitCode::FAILURE;
        }
    }
    code
}
