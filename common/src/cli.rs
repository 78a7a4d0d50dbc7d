//! Command-line options shared by `mirror-worker` and `mirror-scheduler`, so a registry or
//! copy flag means the same thing (and has the same name and default) in both binaries.

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use clap::Args;

use crate::copy::{CopyOptions, PlatformFilter};
use crate::queue::amqp::AmqpConfig;
use crate::registry::{
    ClientOptions, CredentialStore, Gate, RegistryClient, RegistryError, RetryPolicy,
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
    #[arg(long = "retry-attempts", default_value_t = 5, value_name = "N")]
    pub retry_attempts: u32,
    /// Delay before the first retry, doubled each time (a Retry-After header wins).
    #[arg(long = "retry-delay-ms", default_value_t = 250, value_name = "MS")]
    pub retry_delay_ms: u64,
}

impl RegistryArgs {
    /// A registry client configured by these flags.
    pub fn client(&self) -> Result<Arc<RegistryClient>, RegistryError> {
        self.client_with_gate(None)
    }

    /// A registry client configured by these flags whose requests pass `gate` (fleet-wide
    /// rate limits and pauses).
    pub fn client_with_gate(
        &self,
        gate: Option<Gate>,
    ) -> Result<Arc<RegistryClient>, RegistryError> {
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
        };
        Ok(Arc::new(RegistryClient::new(opts)?))
    }
}

/// How images are copied.
#[derive(Args, Clone, Debug)]
pub struct CopyArgs {
    /// Keep only index children whose os/arch[/variant] matches this regular expression
    /// (the whole string must match); the filtered index gets a new digest.
    #[arg(long = "filter-by-os", value_name = "REGEX")]
    pub filter_by_os: Option<String>,
    /// Blobs of one image copied at the same time.
    #[arg(long = "blob-concurrency", default_value_t = 6, value_name = "N")]
    pub blob_concurrency: usize,
    /// Blob operations in flight against one destination registry.
    #[arg(long = "max-per-registry", default_value_t = 16, value_name = "N")]
    pub max_per_registry: usize,
}

impl CopyArgs {
    /// Copy options from these flags; fails on a bad `--filter-by-os` pattern.
    pub fn options(&self, dry_run: bool) -> Result<CopyOptions, String> {
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
        default_value = "amqp://127.0.0.1:5672/%2f",
        value_name = "URL"
    )]
    pub amqp: String,
    /// Prefix of every queue and exchange name (two installations or test runs on one broker
    /// use different prefixes).
    #[arg(
        long,
        env = "QUEUE_PREFIX",
        global = true,
        default_value = "image-mirror",
        value_name = "PREFIX"
    )]
    pub queue_prefix: String,
    /// Delays before each redelivery of a job that failed with a retryable error; a job is
    /// tried once more than there are delays, then parked.
    #[arg(
        long,
        global = true,
        value_delimiter = ',',
        default_value = "10s,60s,300s",
        value_parser = humantime::parse_duration,
        value_name = "DURATIONS"
    )]
    pub retry_delays: Vec<Duration>,
}

impl BrokerArgs {
    /// The queue configuration these flags describe.
    pub fn config(&self, prefetch: u16) -> AmqpConfig {
        AmqpConfig {
            url: self.amqp.clone(),
            prefix: self.queue_prefix.clone(),
            prefetch,
            retry_delays: self.retry_delays.clone(),
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

/// Logs go to stderr (stdout carries oc's result lines); `RUST_LOG` sets the level
/// (default `warn`). Both binaries start with this. A job's lines are emitted inside its
/// `job` span; the JSON format writes that span's fields on every line (`span` and
/// `spans`), so a collector can filter one run, job or image without parsing messages.
pub fn init_logging(format: LogFormat) {
    use std::io::IsTerminal;
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("warn"));
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
        default_value = "redis://127.0.0.1:6379",
        value_name = "URL"
    )]
    pub redis_url: String,
    /// Prefix of every Redis key (installations or test runs sharing one Redis differ).
    #[arg(
        long = "redis-prefix",
        env = "REDIS_PREFIX",
        default_value = "image-mirror",
        value_name = "PREFIX"
    )]
    pub redis_prefix: String,
    /// How long blob locations and tag digests are trusted.
    #[arg(long = "index-ttl", default_value = "7d", value_parser = humantime::parse_duration, value_name = "DURATION")]
    pub index_ttl: Duration,
    /// Lifetime of an upload lease; a dead uploader's lease frees up after it.
    #[arg(long = "lease-ttl", default_value = "30s", value_parser = humantime::parse_duration, value_name = "DURATION")]
    pub lease_ttl: Duration,
}

impl RedisArgs {
    /// The Redis configuration these flags describe.
    pub fn config(&self) -> crate::index::redis::RedisConfig {
        crate::index::redis::RedisConfig {
            prefix: self.redis_prefix.clone(),
            ttl: self.index_ttl,
            lease_ttl: self.lease_ttl,
            ..crate::index::redis::RedisConfig::new(self.redis_url.clone())
        }
    }
}
