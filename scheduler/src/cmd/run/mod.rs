//! `mirror-scheduler run`: read the mapping files, plan the jobs, and either run them in this
//! process (`--local`, also every `--dry-run`) or publish them to RabbitMQ for the workers
//! (`--wait` to follow the run to its end). Once and exit by default (a Kubernetes
//! CronJob), or on a cron schedule with `--schedule`.
//!
//! - [`args`]: the flags; [`settings`]: what one run does, from its flags or its group.
//! - [`once`]: one run, start to end; [`batch`]: what each of the planner's batches goes
//!   through in both modes; [`open_files`]: the planner's connections within the
//!   open-file limit; [`report_path`]: `--report` checked before any work.
//! - [`local`]: the embedded mode (in-process queue and workers); [`state`]: its state
//!   file (what it remembers between runs), opened once per process.
//! - The distributed mode: [`follow`] (one run through the fleet: tag cache, publish,
//!   pending tags, `--wait`); [`tag_cache`] (tags already at their digest);
//!   [`publish`] (a batch's jobs, planning failures, the announcement); [`pending`] (tags
//!   an earlier run's jobs still hold, marked in Redis); [`wait`] (following results across broker loss) and
//!   [`no_consumer`] (its warning when no worker consumes).
//! - Staying up: [`schedules`] (`--schedule`, every group of `--groups` on its own),
//!   [`monitor`] (`--listen`: queue depth gauges and readiness between runs) and
//!   [`events_setup`] (`--listen-events`: registry notifications, see [`crate::events`]).

use std::process::ExitCode;

use anyhow::Result;

mod args;
mod batch;
mod events_setup;
mod follow;
mod local;
mod monitor;
mod no_consumer;
mod once;
mod open_files;
mod pending;
mod publish;
mod report_path;
mod schedules;
mod settings;
mod state;
mod tag_cache;
mod wait;

pub(crate) use args::Args;

/// Runs once, or forever on `--schedule` or `--groups` without `--group`; the exit status
/// is 0 only when every tag made it. `--listen` serves in every one of these modes, for as
/// long as the process lives.
pub(crate) async fn run(args: Args) -> Result<ExitCode> {
    let staying_up = args.schedule.is_some() || (args.groups.is_some() && args.group.is_none());
    if args.now && !staying_up {
        anyhow::bail!(
            "--now goes with --schedule or --groups (every group): a single run starts now anyway"
        );
    }
    if let Some(addr) = args.listen {
        monitor::Monitor::new(args.broker.config(1))
            .serve(addr)
            .await?;
    }
    // A state file held by another process stops the run here, before anything starts.
    state::open(&args)?;
    events_setup::start(&args, staying_up).await?;
    if args.groups.is_some() && args.group.is_none() {
        return schedules::every_group(args).await;
    }
    match &args.schedule {
        None => once::run_once(&args).await,
        Some(expr) => schedules::every(expr, args.now, || once::run_once(&args)).await,
    }
}
