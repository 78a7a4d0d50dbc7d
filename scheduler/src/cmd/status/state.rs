//! `status` of embedded runs: the run history of a state file (`--state PATH`, or the
//! default location when no broker is named), shown as the fleet's runs are: each run with
//! its counts, its failures with their kind and reason, its group; with `--groups` each
//! group's last run. There are no queues to show; a run whose process is gone without
//! ending it is marked interrupted.

use std::path::{Path, PathBuf};

use anyhow::Result;
use mirror_cli::BrokerArgs;
use mirror_fleet::amqp::AmqpConfig;
use mirror_fleet::state_file::{read_runs, RunOutcome, StateFile, StoredRun};

use super::collect::{groups_status, Failure, RunStatus, Status};

/// The state file `status` reads, if it reads one: the one `--state` names, else the
/// default one when it exists and no broker is named (neither `--amqp` other than the
/// default nor `AMQP_URL`): a machine that only runs embedded needs no flag.
pub(crate) fn chosen(state: Option<&Path>, broker: &BrokerArgs) -> Option<PathBuf> {
    if let Some(path) = state {
        return Some(path.to_path_buf());
    }
    let broker_named =
        broker.amqp != AmqpConfig::DEFAULT_URL || std::env::var_os("AMQP_URL").is_some();
    StateFile::default_path().filter(|p| !broker_named && p.exists())
}

/// The status of the state file at `path`: its newest `shown` runs (with `groups`, every
/// run kept, for each group's last).
pub(crate) fn collect(path: &Path, shown: usize, groups: Option<&Path>) -> Result<Status> {
    let wanted = match groups {
        Some(_) => usize::MAX,
        None => shown,
    };
    let records = read_runs(path, wanted)?;
    let mut runs: Vec<RunStatus> = records.into_iter().map(run_status).collect();
    let groups = match groups {
        Some(g) => groups_status(g, &runs)?,
        None => Vec::new(),
    };
    runs.truncate(shown);
    Ok(Status {
        source: format!("state file {} (embedded runs)", path.display()),
        queues: Vec::new(),
        retrying: 0,
        groups,
        parked: 0,
        runs_source: "the state file",
        runs,
    })
}

/// One run of the history as `status` shows runs.
fn run_status(r: StoredRun) -> RunStatus {
    let t = &r.totals;
    let counted = t.pushed + t.up_to_date + t.failed + t.skipped;
    let not_shown = (r.failures_total as usize).saturating_sub(r.failures.len());
    let outcome = match r.outcome {
        RunOutcome::Finished => "finished",
        RunOutcome::Running => "running",
        RunOutcome::Interrupted => "interrupted",
    };
    RunStatus {
        run_id: r.run_id,
        group: r.group,
        started_at: r.started_ms / 1000,
        jobs: t.jobs as usize,
        tags: t.tags.max(counted) as usize,
        done: t.pushed as usize,
        up_to_date: t.up_to_date as usize,
        failed: t.failed as usize,
        pending: t.tags.saturating_sub(counted) as usize,
        failures: r.failures.into_iter().map(Failure::from).collect(),
        failures_not_shown: not_shown,
        outcome: Some(outcome),
        ..RunStatus::default()
    }
}
