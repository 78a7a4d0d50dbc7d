//! Runs that stay up, started on a schedule (UTC), for installations without a Kubernetes
//! CronJob per run. SIGTERM/SIGINT stops the scheduler.
//!
//! - `run --schedule CRON`: a run at every occurrence of the expression. A failed run is
//!   logged and the next one still starts; the signal ends the loop between runs.
//! - `run --groups FILE --dir DIR` without `--group`: one long-running scheduler runs every
//!   group of the file on the group's own schedule (what ~30 Prow jobs did, one per team).
//!   A group whose previous run is still going when its next start comes skips that start
//!   and says so: runs of one group never overlap; runs of different groups do not wait
//!   for each other. A run going when the signal comes is abandoned (jobs it published
//!   still run on the workers, and the next start plans its tags again).

use std::future::Future;
use std::pin::Pin;
use std::process::ExitCode;

use anyhow::{anyhow, bail, Result};
use chrono::Utc;

use super::args::Args;
use crate::schedule::Schedule;

/// Calls `run` at every occurrence of `expr` until a signal arrives.
pub(crate) async fn every<F, Fut>(expr: &str, now: bool, mut run: F) -> Result<ExitCode>
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Result<ExitCode>>,
{
    let schedule = Schedule::parse(expr).map_err(|e| anyhow!("--schedule {e}"))?;
    if now {
        eprintln!("run starts now (--now)");
        say(run().await);
    }
    loop {
        let now = Utc::now();
        let next = schedule
            .next_after(now)
            .map_err(|e| anyhow!("--schedule {e}"))?;
        let wait = (next - now).to_std().unwrap_or_default();
        eprintln!("next run at {next} (in {}s)", wait.as_secs());
        tokio::select! {
            _ = tokio::time::sleep(wait) => {}
            _ = stop_signal() => return Ok(ExitCode::SUCCESS),
        }
        say(run().await);
    }
}

/// One line on how a scheduled run ended.
fn say(outcome: Result<ExitCode>) {
    match outcome {
        Ok(code) if code == ExitCode::SUCCESS => {}
        Ok(_) => eprintln!("run finished with failures; the next run starts on schedule"),
        Err(e) => eprintln!("run failed: {e:#}; the next run starts on schedule"),
    }
}

/// Runs every group on its schedule until a signal arrives.
pub(crate) async fn every_group(args: Args) -> Result<ExitCode> {
    let Some(path) = &args.groups else {
        bail!("--groups is needed to run groups");
    };
    let file = crate::groups::load(path)?;
    let mut plans = Vec::new();
    for g in &file.groups {
        let Some(expr) = &g.schedule else {
            bail!(
                "{}: group \"{}\" has no schedule: give it one, or run it with --group {} (a CronJob per group)",
                path.display(),
                g.name,
                g.name
            );
        };
        let schedule = Schedule::parse(expr)
            .map_err(|e| anyhow!("{}: group \"{}\": schedule {e}", path.display(), g.name))?;
        plans.push((g.name.clone(), schedule));
    }
    let loops: Vec<_> = plans
        .into_iter()
        .map(|(name, schedule)| {
            let mut group_args = args.clone();
            group_args.group = Some(name.clone());
            group_loop(name, schedule, args.now, group_args)
        })
        .collect();
    tokio::select! {
        _ = futures::future::join_all(loops) => {}
        _ = stop_signal() => eprintln!("stopping"),
    }
    Ok(ExitCode::SUCCESS)
}

/// One group's starts, for ever; a start whose previous run is still going is skipped.
/// The run is driven here, between starts (no task: a run borrows its flags). Each next
/// start is said when it is known, so that a scheduler that will be quiet for an hour
/// shows what it is waiting for.
async fn group_loop(name: String, schedule: Schedule, now: bool, args: Args) {
    let mut current: Option<Pin<Box<dyn Future<Output = ()> + '_>>> = None;
    if now {
        eprintln!("group {name}: run starts now (--now)");
        current = Some(Box::pin(run_and_say(&name, &args)));
    }
    loop {
        let now = Utc::now();
        let next = match schedule.next_after(now) {
            Ok(next) => next,
            Err(e) => {
                eprintln!("group {name}: no next start ({e}); the group stops");
                return;
            }
        };
        let wait = (next - now).to_std().unwrap_or_default();
        eprintln!(
            "group {name}: next start at {} (in {}s)",
            next.to_rfc3339(),
            wait.as_secs()
        );
        let start = tokio::time::sleep(wait);
        tokio::pin!(start);
        loop {
            match current.as_mut() {
                Some(run) => tokio::select! {
                    _ = &mut start => break,
                    _ = run.as_mut() => current = None,
                },
                None => {
                    (&mut start).await;
                    break;
                }
            }
        }
        if current.is_some() {
            eprintln!("group {name}: the previous run is still going; this start is skipped");
            continue;
        }
        eprintln!("group {name}: run starts");
        current = Some(Box::pin(run_and_say(&name, &args)));
    }
}

/// One run of a group, its outcome said in one line.
async fn run_and_say(name: &str, args: &Args) {
    match super::once::run_once(args).await {
        Ok(code) if code == ExitCode::SUCCESS => eprintln!("group {name}: run ok"),
        Ok(_) => eprintln!("group {name}: run finished with failures"),
        Err(e) => eprintln!("group {name}: run failed: {e:#}"),
    }
}

/// Resolves on the first SIGTERM or SIGINT.
async fn stop_signal() {
    let term = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut s) => {
                s.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    tokio::select! {
        _ = term => {}
        _ = tokio::signal::ctrl_c() => {}
    }
}
