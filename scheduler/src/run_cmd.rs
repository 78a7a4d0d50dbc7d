//! `mirror-scheduler run`: read the mapping files, plan the jobs, and either run them in this
//! process (`--local`, also every `--dry-run`) or publish them to RabbitMQ for the workers
//! (`--wait` to follow the run to its end). Once and exit by default (a Kubernetes
//! CronJob), or on a cron schedule with `--schedule`.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;
use std::time::Instant;

use anyhow::Result;
use mirror_cli::{
    plural, BrokerArgs, CopyArgs, CredentialsDirArgs, RedisArgs, RedisTtlArgs, RegistryArgs,
};
use mirror_common::failure::FailureKind;
use mirror_common::index::MemoryIndex;
use mirror_common::job_options::JobOptions;
use mirror_common::mapping::load;
use mirror_common::plan::Plan;
use mirror_common::registry::Registries;
use mirror_common::report::TagStatus;
use mirror_fleet::amqp::{AmqpConfig, AmqpQueue, ConnectionSlot};
use mirror_fleet::store::Redis;
use uuid::Uuid;

use crate::broker::Broker;
use crate::files::MappingArgs;
use crate::output::record_unresolved;
use crate::summary::{print_rejected, print_superseded, RunReport};

/// Flags of `run`.
#[derive(Debug, Clone, clap::Args)]
pub(crate) struct Args {
    #[command(flatten)]
    pub files: MappingArgs,
    /// Run the jobs in this process with an in-memory queue and blob index (no RabbitMQ,
    /// no Redis).
    #[arg(long)]
    pub local: bool,
    /// In-process workers (jobs copied at the same time) with --local. oc's
    /// --max-registry (registries worked on at once) maps here: this is the bound on
    /// concurrent work across registries (--max-per-registry bounds one registry).
    #[arg(
        long,
        visible_alias = "max-registry",
        default_value_t = 16,
        value_name = "N"
    )]
    pub workers: usize,
    /// Jobs in flight at once with --local: checking their destinations (a round trip or
    /// two each, mostly "already there") while at most --workers of them copy. Default:
    /// 8 x --workers.
    #[arg(long, value_name = "N")]
    pub in_flight: Option<usize>,
    /// Keep going after a failed tag (the exit status is still 1), as oc's flag of that name.
    /// (--local; the fleet always keeps going.)
    #[arg(long)]
    pub continue_on_error: bool,
    /// Write nothing: print per tag whether it is new, changed or up to date, and the blob
    /// work it would take. Runs in this process, never publishes. Also dry_run=true.
    #[arg(long, env = "dry_run")]
    pub dry_run: bool,
    /// Distributed mode: wait until the workers have reported every job, print the results
    /// and exit 1 if a tag failed.
    #[arg(long)]
    pub wait: bool,
    /// Stay up and start a run on this cron schedule (e.g. "@hourly", "0 * * * *"), instead
    /// of running once.
    #[arg(long, value_name = "CRON")]
    pub schedule: Option<String>,
    /// With --schedule or --groups (every group): start a run at once, then go on by the
    /// schedule (a fresh deployment or a fix need not wait for the next hour).
    #[arg(long)]
    pub now: bool,
    /// Serve /metrics (job queue depths and each group's last successful run among them),
    /// /healthz and /readyz (ready = connected to the broker) on this address, e.g.
    /// 0.0.0.0:9100, for as long as the process runs: in every mode, though only a
    /// long-running one (--schedule, --groups without --group) is scraped reliably.
    #[arg(long, value_name = "ADDR")]
    pub listen: Option<SocketAddr>,
    /// Write the run's report (one entry per tag, failures with their reason) as JSON.
    #[arg(long, value_name = "FILE")]
    pub report: Option<PathBuf>,
    /// A groups file: run one of its groups (--group), with the group's files of --dir,
    /// credentials name and options; without --group, stay up and run every group on its
    /// own schedule, a group's runs never overlapping.
    #[arg(
        long,
        value_name = "FILE",
        requires = "dir",
        conflicts_with = "schedule"
    )]
    pub groups: Option<PathBuf>,
    /// The group of --groups to run.
    #[arg(long, value_name = "NAME", requires = "groups")]
    pub group: Option<String>,
    /// The name of the push credentials this run's jobs are copied with (a team's Secret,
    /// as the workers hold it under --credentials-dir); never a secret itself.
    #[arg(long, value_name = "NAME")]
    pub credentials: Option<String>,
    /// Distributed mode: check every destination tag with a HEAD instead of trusting the
    /// fleet's tag cache in Redis.
    #[arg(long)]
    pub verify: bool,
    #[command(flatten)]
    pub broker: BrokerArgs,
    #[command(flatten)]
    pub redis: RedisArgs,
    #[command(flatten)]
    pub redis_ttl: RedisTtlArgs,
    #[command(flatten)]
    pub registry: RegistryArgs,
    #[command(flatten)]
    pub named_credentials: CredentialsDirArgs,
    #[command(flatten)]
    pub copy: CopyArgs,
}

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
        Monitor::new(args.broker.config(1)).serve(addr).await?;
    }
    if args.groups.is_some() && args.group.is_none() {
        return crate::group_schedules::run_all(args).await;
    }
    match &args.schedule {
        None => run_once(&args).await,
        Some(expr) => crate::schedule::every(expr, args.now, || run_once(&args)).await,
    }
}

/// A long-lived broker connection of `--listen`, used only to count the job queues for
/// `/metrics` and to answer `/readyz` (runs keep their own connection: a run must not
/// depend on this one's health).
#[derive(Clone)]
struct Monitor {
    config: AmqpConfig,
    slot: ConnectionSlot,
}

impl Monitor {
    fn new(config: AmqpConfig) -> Self {
        Monitor {
            config,
            slot: ConnectionSlot::default(),
        }
    }

    fn ready(&self) -> bool {
        self.slot.is_ready()
    }

    /// Binds `addr` (a taken port fails the start) and keeps the queue depth gauges and
    /// readiness current between runs too: an hourly schedule would otherwise show an
    /// hour-old depth, and readiness must follow the broker coming back.
    async fn serve(&self, addr: SocketAddr) -> Result<()> {
        let m = self.clone();
        mirror_fleet::observe::server::serve(addr, Arc::new(move || m.ready()))
            .await
            .map_err(|e| anyhow::anyhow!("--listen {addr}: {e}"))?;
        let m = self.clone();
        tokio::spawn(async move {
            loop {
                m.refresh().await;
                tokio::time::sleep(mirror_fleet::observe::queue_depth::PERIOD).await;
            }
        });
        Ok(())
    }

    /// Sets the queue depth gauges, (re)connecting first when the connection is gone.
    async fn refresh(&self) {
        let queue = match self.slot.get().filter(|q| q.is_connected()) {
            Some(q) => q,
            None => match AmqpQueue::connect(self.config.clone()).await {
                Ok(q) => {
                    let q = Arc::new(q);
                    self.slot.set(Some(q.clone()));
                    q
                }
                Err(e) => {
                    tracing::warn!(error = %e, "queue depth: cannot reach the broker");
                    return;
                }
            },
        };
        mirror_fleet::observe::queue_depth::count_once(&queue).await;
    }
}

pub(crate) async fn run_once(args: &Args) -> Result<ExitCode> {
    let started = Instant::now();
    if let Some(path) = &args.report {
        crate::report_path::check_writable(path)?;
    }
    let settings = crate::settings::resolve(args)?;
    let set = load(&settings.files);
    let client = args.registry.client()?;
    let distributed = !args.local && !args.dry_run;
    // Reach the broker before planning: no point listing registries if jobs cannot go out.
    let queue = match distributed {
        true => Some(Broker::connect(args.broker.config(1)).await?),
        false => None,
    };
    tracing::debug!(
        seconds = started.elapsed().as_secs_f64(),
        "mapping files read"
    );
    let mut plan = mirror_common::plan::plan(set, client.as_ref(), Uuid::new_v4()).await;
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
    if let Some(g) = &settings.group {
        eprintln!("group {g}: {}", plural(settings.files.len(), "file"));
    }
    print_rejected(&plan.set);
    print_superseded(&plan.set);
    let mut report = RunReport::new(plan.run_id, args.dry_run, &plan.set);
    report.group.clone_from(&settings.group);
    record_unresolved(&plan, &mut report, settings.copy.skip_missing);
    let mut followed = true;
    match queue {
        None => {
            say_planned(&plan);
            let engines = Arc::new(
                args.registry
                    .engines(
                        &args.named_credentials,
                        mirror_cli::FleetHooks::default(),
                        Arc::new(MemoryIndex::new()),
                        settings.copy.clone(),
                    )?
                    .limit_copies(args.workers),
            );
            let local = crate::local::Local {
                in_flight: args.in_flight.unwrap_or(args.workers * 8),
                continue_on_error: settings.continue_on_error,
                tries: settings.tries,
            };
            crate::local::execute(plan, engines, &local, &mut report).await?;
        }
        Some(queue) => {
            followed = args.wait;
            publish_and_follow(
                args,
                queue,
                settings.copy.skip_missing,
                client.as_ref(),
                &mut plan,
                started,
                &mut report,
            )
            .await?;
        }
    }
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

/// The distributed mode of one run: skip what the tag cache knows, publish, check the tags
/// skipped as pending, and with `--wait` follow the results into `report`.
async fn publish_and_follow(
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
        false => crate::distributed::skip_cached(&redis, plan).await,
    };
    tracing::debug!(
        seconds = started.elapsed().as_secs_f64(),
        up_to_date = cached.len(),
        "tag cache read"
    );
    for entry in &cached {
        report.add_unjobbed(entry.clone());
    }
    let run_id = plan.run_id;
    let subscription = match args.wait {
        true => Some(
            broker
                .call("subscribing to the run's results", |q| async move {
                    q.subscribe_run(run_id).await
                })
                .await?,
        ),
        false => None,
    };
    let group = report.group.clone();
    let planning_failures = plan
        .unresolved
        .iter()
        .filter(|(tag, _)| !(skip_missing && tag.failure == Some(FailureKind::NotFound)))
        .map(|(tag, _)| tag.clone())
        .collect();
    let published = crate::distributed::publish(
        &mut broker,
        plan,
        cached.len(),
        group.as_deref(),
        planning_failures,
    )
    .await?;
    tracing::debug!(
        seconds = started.elapsed().as_secs_f64(),
        jobs = published.jobs,
        "published"
    );
    let skipped = crate::distributed::check_skipped(client, &published.skipped).await;
    let total = (published.tags + cached.len()) as u64;
    redis
        .counters()
        .start(plan.run_id, total, published.jobs as u64)
        .await;
    redis
        .counters()
        .add_up_to_date(plan.run_id, cached.len() as u64)
        .await;
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
        plural(cached.len(), "tag"),
        match skipped.len() {
            0 => String::new(),
            n => format!(
                "; {} skipped: an earlier run's job for them has not reported ({pending} of them not at their source digest yet)",
                plural(n, "tag")
            ),
        }
    );
    for entry in skipped {
        if let (TagStatus::Failed, Some(e)) = (entry.status, &entry.error) {
            eprintln!("error: {}: {e}", entry.destination);
        }
        report.add_unjobbed(entry);
    }
    if let Some(sub) = subscription {
        crate::wait::wait(broker.config(), sub, &plan.jobs, started, report).await;
    }
    broker.close().await;
    Ok(())
}

/// The embedded mode's line before its jobs run: files, jobs and tags of the plan.
fn say_planned(plan: &Plan) {
    let tags: usize = plan.jobs.iter().map(|j| j.destinations.len()).sum();
    eprintln!(
        "run {}: {} ({} rejected), {} for {}",
        plan.run_id,
        plural(plan.set.files.len(), "file"),
        plan.set.rejected.len(),
        plural(plan.jobs.len(), "job"),
        plural(tags, "tag")
    );
}
