//! `mirror-scheduler run`: read the mapping files, plan the jobs, and (with `--local`) run
//! them in this process; prints oc's line per pushed tag, a summary, and `--report` JSON.

use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;
use std::time::Instant;

use anyhow::{bail, Result};
use mirror_common::cli::{CopyArgs, RegistryArgs};
use mirror_common::copy::CopyEngine;
use mirror_common::index::MemoryIndex;
use mirror_common::mapping::load;
use uuid::Uuid;

use crate::files::MappingArgs;
use crate::summary::{print_rejected, RunReport};

/// Flags of `run`.
#[derive(Debug, clap::Args)]
pub struct Args {
    #[command(flatten)]
    pub files: MappingArgs,
    /// Run the jobs in this process with an in-memory queue and blob index (no RabbitMQ,
    /// no Redis).
    #[arg(long)]
    pub local: bool,
    /// In-process workers (jobs copied at the same time) with --local.
    #[arg(long, default_value_t = 16, value_name = "N")]
    pub workers: usize,
    /// Keep going after a failed tag (the exit status is still 1), as oc's flag of that name.
    #[arg(long)]
    pub continue_on_error: bool,
    /// Write nothing: print per tag whether it is new, changed or up to date, and the blob
    /// work it would take. Also read from the environment as dry_run=true.
    #[arg(long, env = "dry_run")]
    pub dry_run: bool,
    /// Write the run's report (one entry per tag, failures with their reason) as JSON.
    #[arg(long, value_name = "FILE")]
    pub report: Option<PathBuf>,
    #[command(flatten)]
    pub registry: RegistryArgs,
    #[command(flatten)]
    pub copy: CopyArgs,
}

/// Runs the command; the exit status is 0 only when every tag made it.
pub async fn run(args: Args) -> Result<ExitCode> {
    if !args.local {
        bail!("only the embedded mode exists so far: add --local (the RabbitMQ mode is not built yet)");
    }
    let started = Instant::now();
    let files = args.files.select()?;
    let set = load(&files);
    let client = args.registry.client()?;
    let run_id = Uuid::new_v4();
    let plan = crate::plan::plan(set, &client, run_id).await;
    print_rejected(&plan.set);
    let mut report = RunReport::new(plan.run_id, args.dry_run, &plan.set);
    eprintln!(
        "run {}: {} files ({} rejected), {} jobs for {} tags",
        plan.run_id,
        plan.set.files.len(),
        plan.set.rejected.len(),
        plan.jobs.len(),
        plan.jobs
            .iter()
            .map(|j| j.destinations.len())
            .sum::<usize>()
            + plan.unresolved.len()
    );
    let opts = args
        .copy
        .options(args.dry_run)
        .map_err(anyhow::Error::msg)?;
    let engine = Arc::new(CopyEngine::new(client, Arc::new(MemoryIndex::new()), opts));
    crate::local::execute(
        plan,
        engine,
        args.workers,
        args.continue_on_error,
        &mut report,
    )
    .await?;
    report.totals.seconds = started.elapsed().as_secs_f64();
    eprintln!("{}", report.summary());
    if let Some(path) = &args.report {
        report.write_json(path)?;
    }
    Ok(if report.succeeded() {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    })
}
