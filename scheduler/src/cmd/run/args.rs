//! The flags of `mirror-scheduler run`: which files, which mode (`--local`, `--dry-run`,
//! distributed with or without `--wait`), how long it lives (`--schedule`, `--groups`),
//! and the flag groups shared with the worker (broker, Redis, registries, copy options).

use std::net::SocketAddr;
use std::path::PathBuf;

use mirror_cli::{BrokerArgs, CopyArgs, CredentialsDirArgs, RedisArgs, RedisTtlArgs, RegistryArgs};

use crate::mapping_args::MappingArgs;

/// Where the distributed mode resolves its sources.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub(crate) enum ResolveIn {
    /// The fleet's workers, then here for what they did not resolve.
    Workers,
    /// Here only.
    Scheduler,
}

/// Flags of `run`.
#[derive(Debug, Clone, clap::Args)]
pub(crate) struct Args {
    #[command(flatten)]
    pub files: MappingArgs,
    /// Run the jobs in this process with an in-process queue (no RabbitMQ, no Redis),
    /// remembering between runs in a state file (--state).
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
    /// Requests the planner makes at once to each registry (listing tags, resolving
    /// sources; four registries' worth in all). A warm run is one source HEAD per source
    /// image: at 40 ms a round trip, 41,000 HEADs take 12.8 s 128 at a time, 6.4 s 256 at a
    /// time.
    #[arg(long, default_value_t = mirror_common::plan::PER_REGISTRY as u32, value_parser = clap::value_parser!(u32).range(1..=4096), value_name = "N")]
    pub plan_concurrency: u32,
    /// Distributed mode: who makes the source HEADs (a warm run is little else). workers:
    /// the fleet's workers answer them, in requests of 256, and what they cannot resolve
    /// (or when none answers) is resolved here; scheduler: all of them here.
    #[arg(long, value_enum, default_value_t = ResolveIn::Workers, value_name = "WHERE")]
    pub resolve_in: ResolveIn,
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
    /// Listen for registry notifications (HTTP) on this address, e.g. 0.0.0.0:9200:
    /// `POST /events/<sender>` has the pushed tag mirrored at once, the schedule staying
    /// as the safety net. Long-running modes only (--schedule, --groups without --group;
    /// with --local one process listens, schedules and copies). Needs --event-senders.
    #[arg(long, value_name = "ADDR", requires = "event_senders")]
    pub listen_events: Option<SocketAddr>,
    /// The senders allowed to POST to --listen-events (YAML list: name, kind, registry,
    /// token_file or token_env).
    #[arg(long, value_name = "FILE", requires = "listen_events")]
    pub event_senders: Option<PathBuf>,
    /// Pushes that may wait between the event listener and the publisher; past this the
    /// listener answers 503 and the sender retries.
    #[arg(long, default_value_t = 10_000, value_name = "N")]
    pub events_queue: usize,
    /// The same tag pushed again within this window makes one more job at most.
    #[arg(long, default_value = "2s", value_parser = window_flag, value_name = "DURATION")]
    pub events_window: humantime::Duration,
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
    /// Check every destination tag with a HEAD instead of trusting the tag cache (the
    /// fleet's in Redis, or an embedded run's state file).
    #[arg(long)]
    pub verify: bool,
    /// Where an embedded run (--local) remembers what it learnt between runs: the tag
    /// cache (a run where nothing changed checks no destination tag), the blob index, the
    /// registries' quirks and the run history `status` shows. A file path, or `none` to
    /// remember nothing. Default: $XDG_STATE_HOME/image-mirror/state.db
    /// (~/.local/state/image-mirror/state.db). One run at a time per file.
    #[arg(long, env = "MIRROR_STATE", value_name = "PATH|none")]
    pub state: Option<String>,
    /// Runs the state file's history keeps (the newest).
    #[arg(long, default_value_t = 500, value_name = "N")]
    pub state_keep_runs: usize,
    /// Runs older than this leave the state file's history.
    #[arg(long, default_value = "30d", value_parser = window_flag, value_name = "DURATION")]
    pub state_keep_for: humantime::Duration,
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

/// A duration flag (`2s`, `500ms`), its help showing the duration as written.
fn window_flag(value: &str) -> Result<humantime::Duration, String> {
    mirror_cli::parse_duration(value).map(Into::into)
}
