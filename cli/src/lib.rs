//! Command-line pieces shared by `mirror-worker` and `mirror-scheduler`, so a registry or
//! copy flag means the same thing (and has the same name and default) in both binaries.
//! Every default is the library's own constant, written once there.
#![warn(missing_docs)]

use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

mod sizes;
pub use sizes::parse_chunk_sizes;

use clap::Args;

use mirror_common::copy::{CopyOptions, PlatformFilter, ReferrerOptions};
use mirror_common::engines::Engines;
use mirror_common::index::BlobIndex;
use mirror_fleet::amqp::AmqpConfig;
use mirror_fleet::store::RedisConfig;
use mirror_oci::registry::{
    ClientOptions, CredentialStore, Gate, RegistryClient, RegistryError, RetryPolicy, SharedQuirks,
    Timeouts,
};

/// How to reach registries.
#[derive(Args, Clone, Debug)]
pub struct RegistryArgs {
    /// Docker config.json with registry credentials (default: $DOCKER_CONFIG/config.json,
    /// then ~/.docker/config.json).
    #[arg(
        short = 'a',
        long = "registry-config",
        env = "REGISTRY_CONFIG",
        value_name = "PATH"
    )]
    pub registry_config: Option<PathBuf>,
    /// Directory of named push credentials, one docker config per name as Kubernetes
    /// mounts Secrets (DIR/NAME/config.json or DIR/NAME/.dockerconfigjson): a job naming
    /// credentials is copied with them (over -a's), re-read when the files change.
    #[arg(long = "credentials-dir", env = "CREDENTIALS_DIR", value_name = "DIR")]
    pub credentials_dir: Option<PathBuf>,
    /// Registry (HOST[:PORT]) to reach over plain HTTP; repeatable.
    #[arg(
        long = "insecure-registry",
        env = "INSECURE_REGISTRIES",
        value_delimiter = ',',
        value_name = "HOST[:PORT]"
    )]
    pub insecure_registries: Vec<String>,
    /// PEM file of extra CA certificates trusted on top of the system's; repeatable.
    #[arg(long = "ca-file", value_name = "PATH")]
    pub ca_files: Vec<PathBuf>,
    /// Tries of one registry request (the first included) on connection errors, 429, 5xx.
    #[arg(long = "retry-attempts", default_value_t = RetryPolicy::MAX_ATTEMPTS, value_name = "N")]
    pub retry_attempts: u32,
    /// Delay before the first retry, doubled each time (a Retry-After header wins).
    #[arg(long = "retry-delay-ms", default_value_t = RetryPolicy::BASE_DELAY.as_millis() as u64, value_name = "MS")]
    pub retry_delay_ms: u64,
    /// Time to establish a connection to a registry.
    #[arg(long = "connect-timeout", default_value_t = Timeouts::CONNECT.into(), value_name = "DURATION")]
    pub connect_timeout: humantime::Duration,
    /// Time for the whole of a small request (manifest, HEAD, tag list, token) and for the
    /// first answer to a blob download.
    #[arg(long = "request-timeout", default_value_t = Timeouts::REQUEST.into(), value_name = "DURATION")]
    pub request_timeout: humantime::Duration,
    /// A blob transfer fails when no byte moves for this long (the source sends nothing, or
    /// the destination takes nothing); no limit on its total time while bytes flow.
    #[arg(long = "idle-timeout", default_value_t = Timeouts::IDLE.into(), value_name = "DURATION")]
    pub idle_timeout: humantime::Duration,
    /// Upload blobs to this registry in chunks of at most SIZE (PATCH), for registries or
    /// proxies with a body size limit; repeatable. Without it, a registry that answers 413
    /// gets chunks of 16 MiB from then on.
    #[arg(long = "chunk-size", value_name = "REGISTRY=SIZE")]
    pub chunk_sizes: Vec<String>,
}

impl RegistryArgs {
    /// A registry client configured by these flags. Its requests are counted in the
    /// process's metrics.
    pub fn client(&self) -> Result<Arc<RegistryClient>, RegistryError> {
        Ok(Arc::new(RegistryClient::new(
            self.options(FleetHooks::default())?,
        )?))
    }

    /// The copy engines of a process that copies: one for jobs without a credentials name,
    /// one per name found under `--credentials-dir`, all over `index`, their requests
    /// passing the fleet's hooks when there is a fleet.
    pub fn engines(
        &self,
        fleet: FleetHooks,
        index: Arc<dyn BlobIndex>,
        copy: CopyOptions,
    ) -> Result<Engines, RegistryError> {
        let options = self.options(fleet)?;
        Engines::new(options, self.credentials_dir.clone(), index, copy)
    }

    /// The client options these flags describe.
    fn options(&self, fleet: FleetHooks) -> Result<ClientOptions, RegistryError> {
        let FleetHooks { gate, quirks } = fleet;
        let credentials = CredentialStore::load(self.registry_config.as_deref())?;
        let opts = ClientOptions {
            credentials,
            insecure_registries: self
                .insecure_registries
                .iter()
                .map(|s| s.trim().to_string())
                .filter(|s| !s.is_empty())
                .collect(),
            ca_files: self.ca_files.clone(),
            retry: RetryPolicy {
                max_attempts: self.retry_attempts.max(1),
                base_delay: Duration::from_millis(self.retry_delay_ms),
                ..RetryPolicy::default()
            },
            gate,
            observer: Some(mirror_fleet::observe::metrics::observer()),
            timeouts: Timeouts {
                connect: self.connect_timeout.into(),
                request: self.request_timeout.into(),
                idle: self.idle_timeout.into(),
            },
            chunk_sizes: sizes::parse_chunk_sizes(&self.chunk_sizes)
                .map_err(RegistryError::Config)?,
            quirks_store: quirks,
        };
        Ok(opts)
    }
}

/// What a fleet worker's registry requests share with the other workers: the gate
/// (fleet-wide pauses and rate limits) and what was learnt about registries.
#[derive(Default)]
pub struct FleetHooks {
    /// Pauses and rate limits shared through Redis.
    pub gate: Option<Gate>,
    /// Registry quirks (413s, mounts) shared through Redis.
    pub quirks: Option<SharedQuirks>,
}

/// How images are copied.
#[derive(Args, Clone, Debug)]
pub struct CopyArgs {
    /// Keep only index children whose os/arch[/variant] matches this regular expression
    /// (the whole string must match); the filtered index gets a new digest.
    #[arg(long = "filter-by-os", value_name = "REGEX")]
    pub filter_by_os: Option<String>,
    /// oc's flag: keep manifest lists (indexes) whole, filtered by --filter-by-os when given.
    /// This is the default here; `--keep-manifest-list=false` mirrors what oc mirrors
    /// without the flag: only the linux/amd64 image (or the one --filter-by-os selects),
    /// pushed as that single manifest.
    #[arg(
        long = "keep-manifest-list",
        default_value_t = true,
        num_args = 0..=1,
        default_missing_value = "true",
        action = clap::ArgAction::Set,
        value_name = "BOOL"
    )]
    pub keep_manifest_list: bool,
    /// oc's flag, accepted so that oc command lines carry over; it has no effect here (a
    /// cross-repository mount still asks one token for both repositories), and says so.
    #[arg(long = "skip-multiple-scopes")]
    pub skip_multiple_scopes: bool,
    /// Blobs of one image copied at the same time.
    #[arg(long = "blob-concurrency", default_value_t = CopyOptions::BLOB_CONCURRENCY, value_name = "N")]
    pub blob_concurrency: usize,
    /// Blob operations in flight against one destination registry.
    #[arg(long = "max-per-registry", default_value_t = CopyOptions::MAX_PER_REGISTRY, value_name = "N")]
    pub max_per_registry: usize,
    /// A job (one image to its tags) still copying after this long fails with that reason.
    #[arg(long = "job-deadline", default_value_t = CopyOptions::DEADLINE.into(), value_name = "DURATION")]
    pub job_deadline: humantime::Duration,
    /// Signatures, attestations, SBOMs and other referrers copied with their images (found
    /// by the Referrers API, the sha256-<hex> tag index and cosign's .sig/.att/.sbom tags):
    /// all of them, or none.
    #[arg(long = "referrers", value_enum, default_value_t = Referrers::All)]
    pub referrers: Referrers,
    /// Copy only referrers of this artifact type (repeatable), matched against the
    /// artifact type or the first layer's media type (cosign signatures:
    /// application/vnd.dev.cosign.simplesigning.v1+json).
    #[arg(long = "referrers-type", value_name = "ARTIFACT_TYPE")]
    pub referrers_type: Vec<String>,
    /// Also copy non-distributable (foreign) layers, which are left out by default.
    #[arg(long = "include-nondistributable")]
    pub include_nondistributable: bool,
    /// oc's flag: a source that does not exist is reported and skipped, and does not fail
    /// the run.
    #[arg(long = "skip-missing")]
    pub skip_missing: bool,
    /// oc's flag: push every tag, even one already at the source digest.
    #[arg(long = "force")]
    pub force: bool,
}

/// `--referrers`: which referrers travel with their images.
#[derive(clap::ValueEnum, Clone, Copy, Debug, PartialEq, Eq)]
pub enum Referrers {
    /// Every referrer (or those `--referrers-type` selects).
    All,
    /// None.
    None,
}

impl CopyArgs {
    /// Copy options from these flags; fails on a bad `--filter-by-os` pattern.
    pub fn options(&self, dry_run: bool) -> Result<CopyOptions, String> {
        if self.skip_multiple_scopes {
            eprintln!(
                "note: --skip-multiple-scopes has no effect here (accepted for oc command lines)"
            );
        }
        let filter = self
            .filter_by_os
            .as_deref()
            .map(PlatformFilter::new)
            .transpose()?;
        Ok(CopyOptions {
            filter,
            dry_run,
            blob_concurrency: self.blob_concurrency,
            max_per_registry: self.max_per_registry,
            keep_manifest_list: self.keep_manifest_list,
            deadline: self.job_deadline.into(),
            referrers: ReferrerOptions {
                enabled: self.referrers == Referrers::All,
                types: self.referrers_type.clone(),
            },
            include_nondistributable: self.include_nondistributable,
            skip_missing: self.skip_missing,
            force: self.force,
        })
    }
}

/// Where the broker is and how its queues are named and retried. Global, so that they may
/// follow a subcommand (`dead-letters list --queue-prefix p`).
#[derive(clap::Args, Clone, Debug)]
pub struct BrokerArgs {
    /// RabbitMQ URL.
    #[arg(
        long = "amqp",
        env = "AMQP_URL",
        global = true,
        default_value = AmqpConfig::DEFAULT_URL,
        value_name = "URL"
    )]
    pub amqp: String,
    /// Prefix of every queue and exchange name (two installations or test runs on one broker
    /// use different prefixes).
    #[arg(
        long,
        env = "QUEUE_PREFIX",
        global = true,
        default_value = AmqpConfig::DEFAULT_PREFIX,
        value_name = "PREFIX"
    )]
    pub queue_prefix: String,
    /// Delays before each redelivery of a job that failed with a retryable error; a job is
    /// tried once more than there are delays, then parked.
    #[arg(
        long,
        global = true,
        value_delimiter = ',',
        default_values_t = AmqpConfig::DEFAULT_RETRY_DELAYS.map(humantime::Duration::from),
        value_name = "DURATIONS"
    )]
    pub retry_delays: Vec<humantime::Duration>,
}

impl BrokerArgs {
    /// The queue configuration these flags describe.
    pub fn config(&self, prefetch: u16) -> AmqpConfig {
        AmqpConfig {
            url: self.amqp.clone(),
            prefix: self.queue_prefix.clone(),
            prefetch,
            retry_delays: self.retry_delays.iter().map(|d| (*d).into()).collect(),
            ..AmqpConfig::default()
        }
    }
}

/// How log lines are written.
#[derive(clap::ValueEnum, Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum LogFormat {
    /// Human-readable on a terminal, JSON otherwise (a container, a file, a pipe).
    #[default]
    Auto,
    /// Human-readable lines.
    Text,
    /// One JSON object per line, the fields of the enclosing spans (a job's `run_id`,
    /// `job_id`, `image`) included, for log collectors.
    Json,
}

/// The logging flag of both binaries. Global, so it may follow a subcommand.
#[derive(Args, Clone, Debug)]
pub struct LogArgs {
    /// Log line format: text, json, or auto (text on a terminal, json otherwise).
    #[arg(
        long = "log-format",
        env = "LOG_FORMAT",
        global = true,
        value_enum,
        default_value_t = LogFormat::Auto,
        value_name = "FORMAT"
    )]
    pub log_format: LogFormat,
}

/// Crates whose debug and trace output shows protocol frames, secrets included.
const WIRE_LOGGERS: [&str; 4] = ["lapin", "amq_protocol", "amq_protocol_tcp", "tcp_stream"];

/// Logs go to stderr (stdout carries oc's result lines); `RUST_LOG` sets the level
/// (default `warn`). Both binaries start with this. A job's lines are emitted inside its
/// `job` span; the JSON format writes that span's fields on every line (`span` and
/// `spans`), so a collector can filter one run, job or image without parsing messages.
pub fn init_logging(format: LogFormat) {
    use std::io::IsTerminal;
    let mut filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("warn"));
    // The AMQP client logs whole frames at debug and trace, the connection's credentials
    // included: whatever RUST_LOG asks, those crates say no more than info.
    for target in WIRE_LOGGERS {
        if let Ok(d) = format!("{target}=info").parse() {
            filter = filter.add_directive(d);
        }
    }
    let json = match format {
        LogFormat::Json => true,
        LogFormat::Text => false,
        LogFormat::Auto => !std::io::stderr().is_terminal(),
    };
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr);
    if json {
        builder
            .json()
            .flatten_event(true)
            .with_current_span(true)
            .with_span_list(true)
            .init();
    } else {
        builder.init();
    }
}

/// Where the fleet's Redis is and how long what it knows stays.
#[derive(Args, Clone, Debug)]
pub struct RedisArgs {
    /// Redis URL (the blob index, upload leases, tag cache, run counters, throttling).
    /// Redis is an accelerator: when it is down, work goes on without it.
    #[arg(
        long = "redis",
        env = "REDIS_URL",
        default_value = RedisConfig::DEFAULT_URL,
        value_name = "URL"
    )]
    pub redis_url: String,
    /// Prefix of every Redis key (installations or test runs sharing one Redis differ).
    #[arg(
        long = "redis-prefix",
        env = "REDIS_PREFIX",
        default_value = RedisConfig::DEFAULT_PREFIX,
        value_name = "PREFIX"
    )]
    pub redis_prefix: String,
    /// How long blob locations are trusted.
    #[arg(long = "index-ttl", default_value_t = RedisConfig::DEFAULT_TTL.into(), value_name = "DURATION")]
    pub index_ttl: humantime::Duration,
    /// How long the digest of a destination tag is trusted before a run checks it again
    /// with a HEAD (each tag at a random point between half and all of it, so every run
    /// re-checks a share): a tag deleted or overwritten at the destination is repaired
    /// within this age.
    #[arg(long = "tag-cache-max-age", default_value_t = RedisConfig::DEFAULT_TAG_MAX_AGE.into(), value_name = "DURATION")]
    pub tag_cache_max_age: humantime::Duration,
    /// Lifetime of an upload lease; a dead uploader's lease frees up after it.
    #[arg(long = "lease-ttl", default_value_t = RedisConfig::DEFAULT_LEASE_TTL.into(), value_name = "DURATION")]
    pub lease_ttl: humantime::Duration,
}

impl RedisArgs {
    /// The Redis configuration these flags describe.
    pub fn config(&self) -> RedisConfig {
        RedisConfig {
            prefix: self.redis_prefix.clone(),
            ttl: self.index_ttl.into(),
            tag_max_age: self.tag_cache_max_age.into(),
            lease_ttl: self.lease_ttl.into(),
            ..RedisConfig::new(self.redis_url.clone())
        }
    }
}

/// Parses `--rate REGISTRY=N/s` (or `REGISTRY=N`) values: requests per second per registry.
pub fn parse_rates(values: &[String]) -> Result<HashMap<String, f64>, String> {
    let mut rates = HashMap::new();
    for v in values {
        let (registry, rate) = v
            .split_once('=')
            .ok_or_else(|| format!("--rate \"{v}\": expected REGISTRY=N/s"))?;
        let n: f64 = rate.trim_end_matches("/s").parse().map_err(|_| {
            format!("--rate \"{v}\": \"{rate}\" is not a number of requests per second")
        })?;
        if n <= 0.0 {
            return Err(format!("--rate \"{v}\": the rate must be above 0"));
        }
        rates.insert(registry.to_string(), n);
    }
    Ok(rates)
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::Parser;

    #[test]
    fn rates_parse_with_or_without_the_unit_and_bad_ones_are_named() {
        let r = parse_rates(&["quay.io=10/s".into(), "127.0.0.1:5000=2.5".into()]).unwrap();
        assert_eq!(r["quay.io"], 10.0);
        assert_eq!(r["127.0.0.1:5000"], 2.5);
        assert!(parse_rates(&["quay.io".into()])
            .unwrap_err()
            .contains("quay.io"));
        assert!(parse_rates(&["q=fast".into()])
            .unwrap_err()
            .contains("fast"));
    }

    #[derive(Parser)]
    struct All {
        #[command(flatten)]
        registry: RegistryArgs,
        #[command(flatten)]
        copy: CopyArgs,
        #[command(flatten)]
        broker: BrokerArgs,
        #[command(flatten)]
        redis: RedisArgs,
    }

    #[test]
    fn flag_defaults_are_the_libraries_defaults() {
        let a = All::parse_from(["x"]);
        let broker = a.broker.config(1);
        let amqp = AmqpConfig::default();
        assert_eq!(
            (broker.url, broker.prefix, broker.retry_delays),
            (amqp.url, amqp.prefix, amqp.retry_delays)
        );
        assert_eq!(a.redis.config(), RedisConfig::default());
        let copy = a.copy.options(false).unwrap();
        let lib = CopyOptions::default();
        assert_eq!(
            (
                copy.blob_concurrency,
                copy.max_per_registry,
                copy.deadline,
                copy.keep_manifest_list,
                copy.referrers,
                copy.include_nondistributable
            ),
            (
                lib.blob_concurrency,
                lib.max_per_registry,
                lib.deadline,
                lib.keep_manifest_list,
                lib.referrers,
                lib.include_nondistributable
            )
        );
        let client = a.registry.client().unwrap();
        assert_eq!(client.options().timeouts, Timeouts::default());
        let retry = RetryPolicy::default();
        assert_eq!(a.registry.retry_attempts, retry.max_attempts);
        assert_eq!(
            Duration::from_millis(a.registry.retry_delay_ms),
            retry.base_delay
        );
    }
}
