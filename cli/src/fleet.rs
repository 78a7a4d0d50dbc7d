//! Where the fleet's broker and Redis are, and how long what Redis knows stays.

use clap::Args;

use mirror_fleet::amqp::AmqpConfig;
use mirror_fleet::store::RedisConfig;

use crate::registry::parse_duration_flag;

/// Where the broker is and how its queues are named and retried. Global, so that they may
/// follow a subcommand (`dead-letters list --queue-prefix p`).
#[derive(Args, Clone, Debug)]
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
    /// tried once more than there are delays, then parked. The retry queues are named
    /// after them (`status` finds them itself through the management API).
    #[arg(
        long,
        env = "RETRY_DELAYS",
        global = true,
        value_delimiter = ',',
        default_values_t = AmqpConfig::DEFAULT_RETRY_DELAYS.map(humantime::Duration::from),
        value_parser = parse_duration_flag,
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

/// Where the fleet's Redis is.
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
}

/// How long what the fleet keeps in Redis is trusted (the commands that use the blob index and
/// the tag cache: the worker's and the scheduler's `run`). `--tag-cache-max-age` is both the
/// age this process trusts tag-cache entries for, whoever wrote them, and the lifetime of the
/// entries it writes.
#[derive(Args, Clone, Debug)]
pub struct RedisTtlArgs {
    /// How long blob locations (and a run's counters) are kept.
    #[arg(long = "index-ttl", default_value_t = RedisConfig::DEFAULT_TTL.into(), value_parser = parse_duration_flag, value_name = "DURATION")]
    pub index_ttl: humantime::Duration,
    /// How long the digest of a destination tag is trusted before it is checked again with a
    /// HEAD (each tag at its own point between half and all of it, so every run re-checks a
    /// share), counted from when it was last checked: a tag deleted or overwritten at the
    /// destination is repaired within this age. The scheduler's value decides what its runs
    /// re-check, whatever the workers were given; the workers' is how long their entries
    /// stay in Redis.
    #[arg(long = "tag-cache-max-age", default_value_t = RedisConfig::DEFAULT_TAG_MAX_AGE.into(), value_parser = parse_duration_flag, value_name = "DURATION")]
    pub tag_cache_max_age: humantime::Duration,
    /// Lifetime of an upload lease; a dead uploader's lease frees up after it.
    #[arg(long = "lease-ttl", default_value_t = RedisConfig::DEFAULT_LEASE_TTL.into(), value_parser = parse_duration_flag, value_name = "DURATION")]
    pub lease_ttl: humantime::Duration,
}

impl RedisArgs {
    /// The Redis configuration of a command that reads neither the blob index nor the tag
    /// cache (`status` reads run counters only): the library's lifetimes.
    pub fn config(&self) -> RedisConfig {
        RedisConfig {
            prefix: self.redis_prefix.clone(),
            ..RedisConfig::new(self.redis_url.clone())
        }
    }

    /// The Redis configuration of a command that uses the blob index or the tag cache, with
    /// its lifetimes and its tag-cache max age (the scheduler's `run` reads the cache, the
    /// worker's writes it).
    pub fn config_with(&self, ttl: &RedisTtlArgs) -> RedisConfig {
        RedisConfig {
            ttl: ttl.index_ttl.into(),
            tag_max_age: ttl.tag_cache_max_age.into(),
            lease_ttl: ttl.lease_ttl.into(),
            ..self.config()
        }
    }
}
