//! The distributed mode of one run, batch by batch as the planner gives them (their sources
//! resolved through the fleet's digest queue, answered by the workers and by this scheduler
//! itself, see `mirror_fleet::amqp::DigestAsker`): skip what the
//! fleet's tag cache knows, leave out the tags an earlier run's job still holds (and check
//! them), publish the rest; then announce the run, count it in Redis, and with `--wait`
//! follow the results to the run's end. What is kept across batches is per job (its id and
//! tag count, for `--wait`), never per tag.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::{Instant, SystemTime, UNIX_EPOCH};

use anyhow::Result;
use mirror_cli::plural;
use mirror_common::failure::FailureKind;
use mirror_common::job::{RunStarted, JOB_VERSION};
use mirror_common::plan::Planner;
use mirror_common::registry::Registries;
use mirror_common::report::{TagResult, TagStatus};
use mirror_common::source_digests::SourceDigests;
use mirror_fleet::amqp::{DigestAsker, RunSubscription};
use mirror_fleet::digest_service::HEADS_PER_REQUEST;
use mirror_fleet::store::Redis;
use tokio_util::sync::CancellationToken;
use uuid::Uuid;

use super::args::{Args, ResolveIn};
use super::settings::RunSettings;
use super::{pending, publish};
use crate::broker::Broker;
use crate::report::RunReport;

/// What a run published, over all its batches.
#[derive(Default)]
pub(crate) struct Published {
    /// The tag count of each published job, by job id: what `--wait` waits for.
    pub(crate) jobs: HashMap<Uuid, u32>,
    /// Destination tags in the published jobs.
    pub(crate) tags: usize,
    /// Tags the tag cache answered for.
    pub(crate) up_to_date: usize,
    /// Tags that failed while planning (recorded as results of the run).
    pub(crate) planning_failed: usize,
    /// Tags left out because an earlier run's job holds them.
    pub(crate) skipped: usize,
    /// Of those, the tags not at their source digest yet (they fail the run).
    pub(crate) skipped_failed: usize,
    /// Sources by tag the fleet was asked to resolve, and of them the ones it did.
    pub(crate) sources_asked: u64,
    pub(crate) sources_answered: u64,
}

/// Publishes the run batch by batch and, with `--wait`, follows its results into `report`.
pub(crate) async fn publish_and_follow(
    args: &Args,
    mut broker: Broker,
    settings: &RunSettings,
    client: Arc<dyn Registries>,
    mut planner: Planner<'_>,
    started: Instant,
    report: &mut RunReport,
) -> Result<()> {
    let redis = Redis::connect_checked(args.redis.config_with(&args.redis_ttl)).await?;
    let run_id = planner.run_id();
    let subscription = match args.wait {
        true => Some(subscribe(&mut broker, run_id).await?),
        false => None,
    };
    let started_at = now_secs();
    let mut run = Published::default();
    let asker = match args.resolve_in {
        ResolveIn::Workers => digest_asker(&mut broker).await,
        ResolveIn::Scheduler => None,
    };
    // This scheduler answers digest requests too (its own among them), as many HEADs at
    // once as it would make alone: the workers only add to that.
    let answering = CancellationToken::new();
    // Stops answering however this function ends (an error publishing included).
    let _answering = answering.clone().drop_guard();
    if asker.is_some() {
        let own = (args.plan_concurrency as usize / HEADS_PER_REQUEST).max(1);
        let queue = broker
            .call("answering digest requests", |q| async move { Ok(q) })
            .await?;
        tokio::spawn(mirror_fleet::digest_service::serve(
            Arc::new(queue),
            client.clone(),
            u16::try_from(own).unwrap_or(u16::MAX),
            answering.clone(),
        ));
    }
    let remote = asker.as_ref().map(|a| a as &dyn SourceDigests);
    while let Some(mut batch) = planner.next_batch_asking(remote).await {
        super::batch::take_batch(&mut batch, settings, report);
        let failures = planning_failures(&batch.unresolved, settings.copy.skip_missing);
        run.planning_failed += failures.len();
        redis.counters().add_failed(run_id, &failures).await;
        publish::record_planning_failures(&mut broker, run_id, failures).await?;
        if !args.verify {
            let cached = super::tag_cache::skip_cached(&redis, &mut batch.jobs).await;
            run.up_to_date += cached.len();
            for entry in cached {
                report.add_unjobbed(entry);
            }
        }
        let skipped = pending::leave_out_pending(&redis, run_id, &mut batch.jobs).await;
        publish::publish_batch(&mut broker, &redis, run_id, &batch.jobs).await?;
        for job in &batch.jobs {
            let tags = job.destinations.len();
            run.tags += tags;
            run.jobs
                .insert(job.id, u32::try_from(tags).unwrap_or(u32::MAX));
        }
        for entry in pending::check_skipped(client.as_ref(), &skipped).await {
            run.skipped += 1;
            if let (TagStatus::Failed, Some(e)) = (entry.status, &entry.error) {
                run.skipped_failed += 1;
                eprintln!("error: {}: {e}", entry.destination);
            }
            report.add_unjobbed(entry);
        }
    }
    answering.cancel();
    if let Some(asker) = asker {
        (run.sources_asked, run.sources_answered) = asker.resolved_by_fleet();
        asker.close().await;
    }
    tracing::debug!(
        seconds = started.elapsed().as_secs_f64(),
        jobs = run.jobs.len(),
        up_to_date = run.up_to_date,
        "published"
    );
    let announcement = RunStarted {
        version: JOB_VERSION,
        run_id,
        started_at,
        jobs: run.jobs.len(),
        destinations: Vec::new(),
        tags: run.tags + run.planning_failed,
        up_to_date: run.up_to_date,
        group: settings.group.clone(),
    };
    publish::announce(&mut broker, &announcement).await?;
    count_run(&redis, run_id, &run, settings.group.as_deref()).await;
    say_published(run_id, report, &run);
    if let Some(sub) = subscription {
        super::wait::wait(broker.config(), sub, &run.jobs, started, report).await;
    }
    broker.close().await;
    Ok(())
}

/// Asking the fleet (the workers, and this scheduler's own answerer) for source digests, on
/// the run's connection; `None` (everything resolved here) when it cannot be set up, which
/// only makes the run slower.
async fn digest_asker(broker: &mut Broker) -> Option<DigestAsker> {
    let asked = broker
        .call("asking the workers for source digests", |q| async move {
            q.digest_asker().await
        })
        .await;
    match asked {
        Ok(asker) => Some(asker),
        Err(e) => {
            eprintln!(
                "warning: cannot ask the workers for source digests ({e}); resolving them here"
            );
            None
        }
    }
}

/// Subscribes to the run's results before any job goes out (none can be missed).
async fn subscribe(broker: &mut Broker, run_id: Uuid) -> Result<RunSubscription> {
    let subscription = broker
        .call("subscribing to the run's results", |q| async move {
            q.subscribe_run(run_id).await
        })
        .await?;
    Ok(subscription)
}

/// The tags that failed while planning, as the run's record must count them (a source
/// missing under `--skip-missing` is no failure).
fn planning_failures(unresolved: &[(TagResult, String)], skip_missing: bool) -> Vec<TagResult> {
    unresolved
        .iter()
        .filter(|(tag, _)| !(skip_missing && tag.failure == Some(FailureKind::NotFound)))
        .map(|(tag, _)| tag.clone())
        .collect()
}

/// Starts the run's counters in Redis, which `status` reads: its size as the announcement
/// counts it (the tags failed while planning are of the run, counted failed already).
async fn count_run(redis: &Redis, run_id: Uuid, run: &Published, group: Option<&str>) {
    let total = (run.tags + run.planning_failed + run.up_to_date) as u64;
    redis
        .counters()
        .start(run_id, total, run.jobs.len() as u64, group)
        .await;
    redis
        .counters()
        .add_up_to_date(run_id, run.up_to_date as u64)
        .await;
}

/// The distributed mode's line once the jobs are out: files, what was published, what the
/// tag cache answered, and the tags skipped as pending.
fn say_published(run_id: Uuid, report: &RunReport, run: &Published) {
    eprintln!(
        "run {run_id}: {} ({} rejected), published {} for {}; {} up to date by the tag cache{}",
        plural(report.files.len(), "file"),
        report.rejected_files.len(),
        plural(run.jobs.len(), "job"),
        plural(run.tags, "tag"),
        plural(run.up_to_date, "tag"),
        match run.sources_asked {
            0 => String::new(),
            n => format!("; {} of {} resolved by the fleet", run.sources_answered, plural(n as usize, "source")),
        } + &match run.skipped {
            0 => String::new(),
            n => format!(
                "; {} skipped: an earlier run's job for them has not reported ({} of them not at their source digest yet)",
                plural(n, "tag"),
                run.skipped_failed
            ),
        }
    );
}

fn now_secs() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0)
}
