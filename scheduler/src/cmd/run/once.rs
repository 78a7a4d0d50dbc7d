//! One run, start to end: its settings, the planner (the run's credentials name, options
//! and group stamped on every job of every batch), the embedded mode (the whole plan, less
//! what its state file knows up to date) or the distributed mode (batch by batch), then the
//! summary, the report and the exit status.

use std::process::ExitCode;
use std::sync::Arc;
use std::time::Instant;

use anyhow::Result;
use mirror_cli::plural;
use mirror_common::mapping::MappingSet;
use mirror_common::plan::{Plan, Planner};
use mirror_common::report::TagResult;
use mirror_common::state::StateStore;
use mirror_fleet::state_file::StateFile;
use uuid::Uuid;

use super::args::Args;
use super::settings::RunSettings;
use crate::broker::Broker;
use crate::output::{print_rejected, print_superseded, unresolved_result};
use crate::report::RunReport;

/// One run; the exit status is 0 only when every tag made it and no file was rejected.
pub(crate) async fn run_once(args: &Args) -> Result<ExitCode> {
    let started = Instant::now();
    if let Some(path) = &args.report {
        super::report_path::check_writable(path)?;
    }
    let settings = super::settings::resolve(args)?;
    // The planner's client may have --plan-concurrency requests waiting per registry.
    let plan_concurrency = super::open_files::plan_concurrency(args.plan_concurrency as usize);
    let mut options = args.registry.client_options()?;
    options.requests_per_registry = Some(plan_concurrency);
    let client = std::sync::Arc::new(mirror_common::registry::RegistryClient::new(options)?);
    let distributed = !args.local && !args.dry_run;
    // Reach the broker before planning: no point listing registries if jobs cannot go out.
    let broker = match distributed {
        true => Some(Broker::connect(args.broker.config(1)).await?),
        false => None,
    };
    let planner = Planner::start(
        &settings.files,
        client.as_ref(),
        Uuid::new_v4(),
        plan_concurrency,
    )
    .await;
    tracing::debug!(
        seconds = started.elapsed().as_secs_f64(),
        "mapping files read, sources listed"
    );
    let mut report = start_report(args, &settings, &planner)?;
    let followed = match broker {
        None => {
            let state = super::state::open(args)?;
            let run_id = planner.run_id();
            if let Some(file) = &state {
                file.begin_run(run_id, settings.group.as_deref());
            }
            let history = state.as_deref().map(|file| History {
                file,
                trust_tags: !args.verify,
            });
            let plan = plan(planner, &settings, &mut report, started, history).await;
            if let Some(file) = &state {
                let with_jobs: usize = plan.jobs.iter().map(|j| j.destinations.len()).sum();
                // What the report counted so far is the tags that got no job.
                let without = report.totals.tags.total();
                file.planned(run_id, plan.jobs.len() as u64, with_jobs as u64 + without);
            }
            let store = state.clone().map(|f| f as Arc<dyn StateStore>);
            super::local::run_embedded(args, &settings, plan, &mut report, store).await?;
            if let Some(file) = &state {
                super::state::finish(file, run_id, &report, started.elapsed().as_secs_f64());
            }
            true
        }
        Some(broker) => {
            super::follow::publish_and_follow(
                args,
                broker,
                &settings,
                client.clone(),
                planner,
                started,
                &mut report,
            )
            .await?;
            args.wait
        }
    };
    finish(args, &settings, report, followed, started)
}

/// An embedded run's state file, as its planning uses it.
struct History<'a> {
    file: &'a StateFile,
    /// Whether its tag cache is trusted (not with `--verify`).
    trust_tags: bool,
}

/// Every batch of the planner in one plan (the embedded mode runs it whole), its jobs
/// stamped, its unresolved tags and late-rejected files in the report. With a state file,
/// the tags its tag cache knows at their digest get no job (up to date in the report)
/// unless `--verify`, and the run's history gets those and the unresolved tags.
async fn plan(
    mut planner: Planner<'_>,
    settings: &RunSettings,
    report: &mut RunReport,
    started: Instant,
    state: Option<History<'_>>,
) -> Plan {
    let mut plan = Plan {
        run_id: planner.run_id(),
        jobs: Vec::new(),
        unresolved: Vec::new(),
        set: MappingSet::default(),
    };
    while let Some(mut batch) = planner.next_batch().await {
        super::batch::take_batch(&mut batch, settings, report);
        if let Some(History { file, trust_tags }) = &state {
            let cached = match trust_tags {
                true => super::tag_cache::skip_cached(*file, &mut batch.jobs).await,
                false => Vec::new(),
            };
            let unresolved: Vec<TagResult> = batch
                .unresolved
                .iter()
                .map(|(t, _)| unresolved_result(t, settings.copy.skip_missing))
                .collect();
            file.record_unjobbed(plan.run_id, cached.len() as u64, &unresolved);
            for entry in cached {
                report.add_unjobbed(entry);
            }
        }
        plan.jobs.append(&mut batch.jobs);
        plan.unresolved.append(&mut batch.unresolved);
    }
    plan.set = planner.into_set();
    tracing::debug!(
        seconds = started.elapsed().as_secs_f64(),
        jobs = plan.jobs.len(),
        "planned (sources listed and resolved)"
    );
    plan
}

/// Says what the files hold that no job will copy (rejected files, superseded mappings)
/// and returns the run's report, started.
fn start_report(args: &Args, settings: &RunSettings, planner: &Planner<'_>) -> Result<RunReport> {
    if let Some(g) = &settings.group {
        eprintln!("group {g}: {}", plural(settings.files.len(), "file"));
    }
    let set = planner.set();
    print_rejected(set);
    print_superseded(set);
    let mut report = RunReport::new(planner.run_id(), args.dry_run, set);
    report.group.clone_from(&settings.group);
    if args.report.is_some() {
        report.keep_tags()?;
    }
    Ok(report)
}

/// The end of a run: the group's success gauge, the summary (when the run was followed),
/// the JSON report, and the exit status.
fn finish(
    args: &Args,
    settings: &RunSettings,
    mut report: RunReport,
    followed: bool,
    started: Instant,
) -> Result<ExitCode> {
    report.totals.seconds = started.elapsed().as_secs_f64();
    // Only a followed run knows its tags made it (a run that only publishes does not).
    if followed && report.succeeded() && !args.dry_run {
        mirror_fleet::observe::metrics::global().group_succeeded(settings.group.as_deref());
    }
    if followed {
        report.followed_to_the_end();
        eprintln!("{}", report.summary());
    }
    if let Some(path) = &args.report {
        report.write_json(path)?;
    }
    Ok(if report.succeeded() {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    })
}
