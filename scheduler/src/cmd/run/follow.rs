//! The distributed mode of one run: skip what the fleet's tag cache knows, publish the
//! rest, check the tags skipped as pending, count the run in Redis, and with `--wait`
//! follow the results to the run's end.

use std::time::Instant;

use anyhow::Result;
use mirror_cli::plural;
use mirror_common::failure::FailureKind;
use mirror_common::plan::Plan;
use mirror_common::registry::Registries;
use mirror_common::report::{TagResult, TagStatus};
use mirror_fleet::amqp::RunSubscription;
use mirror_fleet::store::Redis;

use super::args::Args;
use super::publish::Published;
use crate::broker::Broker;
use crate::report::{RunReport, TagEntry};

/// Publishes the run and, with `--wait`, follows its results into `report`.
pub(crate) async fn publish_and_follow(
    args: &Args,
    mut broker: Broker,
    skip_missing: bool,
    client: &dyn Registries,
    plan: &mut Plan,
    started: Instant,
    report: &mut RunReport,
) -> Result<()> {
    let redis = Redis::connect_checked(args.redis.config_with(&args.redis_ttl)).await?;
    let cached = match args.verify {
        true => Vec::new(),
        false => super::tag_cache::skip_cached(&redis, plan).await,
    };
    tracing::debug!(
        seconds = started.elapsed().as_secs_f64(),
        up_to_date = cached.len(),
        "tag cache read"
    );
    let up_to_date = cached.len();
    for entry in cached {
        report.add_unjobbed(entry);
    }
    let subscription = match args.wait {
        true => Some(subscribe(&mut broker, plan).await?),
        false => None,
    };
    let group = report.group.clone();
    let published = super::publish::publish(
        &mut broker,
        plan,
        up_to_date,
        group.as_deref(),
        planning_failures(plan, skip_missing),
    )
    .await?;
    tracing::debug!(
        seconds = started.elapsed().as_secs_f64(),
        jobs = published.jobs,
        "published"
    );
    let skipped = super::pending::check_skipped(client, &published.skipped).await;
    count_run(&redis, plan, &published, up_to_date).await;
    say_published(plan, &published, up_to_date, &skipped);
    for entry in skipped {
        if let (TagStatus::Failed, Some(e)) = (entry.status, &entry.error) {
            eprintln!("error: {}: {e}", entry.destination);
        }
        report.add_unjobbed(entry);
    }
    if let Some(sub) = subscription {
        super::wait::wait(broker.config(), sub, &plan.jobs, started, report).await;
    }
    broker.close().await;
    Ok(())
}

/// Subscribes to the run's results before any job goes out (none can be missed).
async fn subscribe(broker: &mut Broker, plan: &Plan) -> Result<RunSubscription> {
    let run_id = plan.run_id;
    let subscription = broker
        .call("subscribing to the run's results", |q| async move {
            q.subscribe_run(run_id).await
        })
        .await?;
    Ok(subscription)
}

/// The tags that failed while planning, as the run's record must count them (a source
/// missing under `--skip-missing` is no failure).
fn planning_failures(plan: &Plan, skip_missing: bool) -> Vec<TagResult> {
    plan.unresolved
        .iter()
        .filter(|(tag, _)| !(skip_missing && tag.failure == Some(FailureKind::NotFound)))
        .map(|(tag, _)| tag.clone())
        .collect()
}

/// Starts the run's counters in Redis, which `status` reads.
async fn count_run(redis: &Redis, plan: &Plan, published: &Published, up_to_date: usize) {
    let total = (published.tags + up_to_date) as u64;
    redis
        .counters()
        .start(plan.run_id, total, published.jobs as u64)
        .await;
    redis
        .counters()
        .add_up_to_date(plan.run_id, up_to_date as u64)
        .await;
}

/// The distributed mode's line once the jobs are out: files, what was published, what the
/// tag cache answered, and the tags skipped as pending.
fn say_published(plan: &Plan, published: &Published, up_to_date: usize, skipped: &[TagEntry]) {
    let pending = skipped
        .iter()
        .filter(|e| e.status == TagStatus::Failed)
        .count();
    eprintln!(
        "run {}: {} ({} rejected), published {} for {}; {} up to date by the tag cache{}",
        plan.run_id,
        plural(plan.set.files.len(), "file"),
        plan.set.rejected.len(),
        plural(published.jobs, "job"),
        plural(published.tags, "tag"),
        plural(up_to_date, "tag"),
        match skipped.len() {
            0 => String::new(),
            n => format!(
                "; {} skipped: an earlier run's job for them has not reported ({pending} of them not at their source digest yet)",
                plural(n, "tag")
            ),
        }
    );
}
