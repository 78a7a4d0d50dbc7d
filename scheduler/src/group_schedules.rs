//! `run --groups FILE --dir DIR` without `--group`: one long-running scheduler runs every
//! group of the file on the group's own schedule (what ~30 Prow jobs did, one per team).
//! A group whose previous run is still going when its next start comes skips that start
//! and says so: runs of one group never overlap; runs of different groups do not wait for
//! each other. SIGTERM/SIGINT stops the scheduler; a run going then is abandoned (jobs it
//! published still run on the workers, and the next start plans its tags again).

use std::future::Future;
use std::pin::Pin;
use std::process::ExitCode;

use anyhow::{anyhow, bail, Result};
use chrono::Utc;

use crate::run_cmd::Args;
use crate::schedule::Schedule;

/// Runs every group on its schedule until a signal arrives.
pub(crate) async fn run_all(args: Args) -> Result<ExitCode> {
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
        _ = crate::schedule::stop_signal() => eprintln!("stopping"),
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
    match crate::run_cmd::run_once(args).await {
        Ok(code) if code == ExitCode::SUCCESS => eprintln!("group {name}: run ok"),
        Ok(_) => eprintln!("group {name}: run finished with failures"),
        Err(e) => eprintln!("group {name}: run failed: {e:#}"),
    }
}
