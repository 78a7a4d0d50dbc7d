//! One run, start to end: its settings, the plan (the run's credentials name, options and
//! group stamped on every job), the embedded or the distributed mode, then the summary,
//! the report and the exit status.

use std::process::ExitCode;
use std::time::Instant;

use anyhow::Result;
use mirror_cli::plural;
use mirror_common::job_options::JobOptions;
use mirror_common::mapping::{load, MappingSet};
use mirror_common::plan::Plan;
use mirror_common::registry::Registries;
use uuid::Uuid;

use super::args::Args;
use super::settings::RunSettings;
use crate::broker::Broker;
use crate::output::{print_rejected, print_superseded, record_unresolved};
use crate::report::RunReport;

/// One run; the exit status is 0 only when every tag made it and no file was rejected.
pub(crate) async fn run_once(args: &Args) -> Result<ExitCode> {
    let started = Instant::now();
    if let Some(path) = &args.report {
        super::report_path::check_writable(path)?;
    }
    let settings = super::settings::resolve(args)?;
    let set = load(&settings.files);
    let client = args.registry.client()?;
    let distributed = !args.local && !args.dry_run;
    // Reach the broker before planning: no point listing registries if jobs cannot go out.
    let broker = match distributed {
        true => Some(Broker::connect(args.broker.config(1)).await?),
        false => None,
    };
    tracing::debug!(
        seconds = started.elapsed().as_secs_f64(),
        "mapping files read"
    );
    let mut plan = plan(set, &settings, client.as_ref(), started).await;
    let mut report = start_report(args, &settings, &plan);
    let followed = match broker {
        None => {
            super::local::run_embedded(args, &settings, plan, &mut report).await?;
            true
        }
        Some(broker) => {
            super::follow::publish_and_follow(
                args,
                broker,
                settings.copy.skip_missing,
                client.as_ref(),
                &mut plan,
                started,
                &mut report,
            )
            .await?;
            args.wait
        }
    };
    finish(args, &settings, report, followed, started)
}

/// The jobs of `set`, each carrying the run's credentials name, options and group.
async fn plan(
    set: MappingSet,
    settings: &RunSettings,
    client: &dyn Registries,
    started: Instant,
) -> Plan {
    let mut plan = mirror_common::plan::plan(set, client, Uuid::new_v4()).await;
    tracing::debug!(
        seconds = started.elapsed().as_secs_f64(),
        jobs = plan.jobs.len(),
        "planned (sources listed and resolved)"
    );
    if settings.digest_tag {
        mirror_common::plan::add_digest_tags(&mut plan);
    }
    for job in &mut plan.jobs {
        job.credentials.clone_from(&settings.credentials);
        job.options = Some(JobOptions::of(&settings.copy));
        job.group.clone_from(&settings.group);
    }
    plan
}

/// Says what the files hold that no job will copy (rejected files, superseded mappings,
/// unresolved sources) and returns the run's report with the unresolved tags in it.
fn start_report(args: &Args, settings: &RunSettings, plan: &Plan) -> RunReport {
    if let Some(g) = &settings.group {
        eprintln!("group {g}: {}", plural(settings.files.len(), "file"));
    }
    print_rejected(&plan.set);
    print_superseded(&plan.set);
    let mut report = RunReport::new(plan.run_id, args.dry_run, &plan.set);
    report.group.clone_from(&settings.group);
    record_unresolved(plan, &mut report, settings.copy.skip_missing);
    report
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
