//! `mirror-scheduler status`: what an operator looks at. Per queue: ready, in flight
//! (unacknowledged), consumers; retrying and parked jobs; and for recent runs their progress
//! (done / up to date / failed / pending) with every failure's reason.
//!
//! The `--runs` newest runs come from Redis alone (its index of runs, their counters and
//! first failed tags); the run history on the broker is read only without Redis (then all
//! of `--since`) and for `--groups`.
//!
//! Ready and consumer counts come from AMQP passive declares (exact, immediate); in-flight
//! (unacknowledged) counts from the RabbitMQ management HTTP API when it answers, since only
//! it knows them. The output says where each number came from.
//!
//! - [`collect`]: gathering the numbers (queues, runs, groups) into a [`Status`](collect::Status);
//!   [`management`]: the RabbitMQ management API client it asks for what AMQP cannot tell.
//! - [`render`]: the text an operator reads (`--json` prints the same as JSON).
//! - [`state`]: embedded runs, from a state file (`--state`) instead of the broker.
//! - [`events`]: with `--events-url`, a scheduler's notification listener and its last
//!   events.

use std::time::Duration;

use anyhow::Result;
use mirror_cli::{BrokerArgs, RedisArgs};
use mirror_fleet::amqp::AmqpQueue;

mod collect;
mod events;
mod management;
mod render;
mod state;

/// Flags of `status`.
#[derive(Debug, clap::Args)]
pub(crate) struct Args {
    #[command(flatten)]
    pub broker: BrokerArgs,
    /// RabbitMQ management API; credentials are those of the AMQP URL.
    #[arg(
        long,
        env = "RABBITMQ_MANAGEMENT_URL",
        default_value = "http://127.0.0.1:15672",
        value_name = "URL"
    )]
    pub management_url: String,
    /// Runs started within this long ago are shown.
    #[arg(long, default_value = "24h", value_parser = humantime::parse_duration, value_name = "DURATION")]
    pub since: Duration,
    /// The newest runs shown, at most. With Redis they come from Redis, and the run
    /// history is not read. (With --groups, every run of --since in the history, for each
    /// group's last one.)
    #[arg(long, default_value_t = 10, value_name = "N")]
    pub runs: usize,
    /// Print JSON for scripts.
    #[arg(long)]
    pub json: bool,
    /// A groups file: list every group with its last run and its next start.
    #[arg(long, value_name = "FILE")]
    pub groups: Option<std::path::PathBuf>,
    /// A scheduler's notification listener (its `run --listen-events` address, e.g.
    /// http://scheduler:9200): show its senders and last events.
    #[arg(long, value_name = "URL")]
    pub events_url: Option<String>,
    #[command(flatten)]
    pub redis: RedisArgs,
    /// Show the embedded runs of this state file (the one an embedded run wrote) instead
    /// of the fleet's. Without it, and with no broker named (no --amqp, no AMQP_URL), the
    /// default state file is shown when there is one.
    #[arg(long, value_name = "PATH")]
    pub state: Option<std::path::PathBuf>,
}

/// Collects the status and prints it, as text or as JSON.
pub(crate) async fn run(args: Args) -> Result<std::process::ExitCode> {
    if let Some(path) = state::chosen(args.state.as_deref(), &args.broker) {
        let status = state::collect(&path, args.runs, args.groups.as_deref())?;
        print(&args, &status, None)?;
        return Ok(std::process::ExitCode::SUCCESS);
    }
    // The installation's queues as the broker lists them: the retry queues are named after
    // the workers' delays, which this command cannot know otherwise.
    let listing = management::queues(&args.management_url, &args.broker).await;
    let mut config = args.broker.config(1);
    if let Ok(listed) = &listing {
        config.retry_delays = management::retry_delays(&config.prefix, listed);
    }
    let queue = AmqpQueue::connect_existing(config).await?;
    let status = collect::collect(
        &queue,
        listing,
        args.since,
        args.runs,
        &args.redis,
        args.groups.as_deref(),
    )
    .await?;
    queue.close().await;
    let listener = match &args.events_url {
        Some(url) => Some((url, events::fetch(url).await)),
        None => None,
    };
    print(&args, &status, listener)?;
    Ok(std::process::ExitCode::SUCCESS)
}

/// Prints the status as text or (`--json`) JSON, with the notification listener's when
/// `--events-url` asked for it.
fn print(
    args: &Args,
    status: &collect::Status,
    listener: Option<(&String, std::result::Result<serde_json::Value, String>)>,
) -> Result<()> {
    if args.json {
        let mut v = serde_json::to_value(status)?;
        if let (Some((_, l)), Some(map)) = (&listener, v.as_object_mut()) {
            let l = match l {
                Ok(l) => l.clone(),
                Err(e) => serde_json::json!({ "error": e }),
            };
            map.insert("events_listener".into(), l);
        }
        println!("{}", serde_json::to_string_pretty(&v)?);
    } else {
        print!("{}", render::render(status));
        if let Some((url, l)) = &listener {
            print!("{}", events::render(url, l));
        }
    }
    Ok(())
}
