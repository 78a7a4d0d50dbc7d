//! Command-line pieces shared by `mirror-worker` and `mirror-scheduler`, so a registry or
//! copy flag means the same thing (and has the same name and default) in both binaries.
//! Every default is the library's own constant, written once there. Flags that users of
//! oc, skopeo and crane bring along are accepted where they mean the same thing here.
//!
//! - `registry`: how registries are reached (credentials, insecure hosts, CA files,
//!   retries, limits) and the registry-client factory with the fleet's hooks.
//! - `copy`: what to copy and how (platforms, manifest lists, referrers, concurrency,
//!   deadline), and the what-to-copy flags a worker refuses because each job carries them.
//! - `fleet`: the broker and Redis flags.
//! - `logging`: `--log-format`, text for people or JSON, and [`fatal`] for the last word.
//! - `oc_bool`: oc's boolean flags (`--flag`, `--flag=false`).
//! - `durations`, `sizes`, `platform`, `reference`: parsers of flag values
//!   (`30s`, `16MiB`, `linux/arm64`, image references) and the sizes printed back.
//! - `plural`: "1 tag", "2 tags" in summary lines; `blob_line`: the blob line that ends
//!   the summary of `copy`, `run` and a dry run.
//! - `docs`: shell completions and man pages from the command line.
#![warn(missing_docs)]

use std::collections::HashMap;

mod blob_line;
mod copy;
mod docs;
mod durations;
mod fleet;
mod logging;
mod oc_bool;
mod platform;
mod plural;
mod reference;
mod registry;
mod sizes;

pub use blob_line::blob_line;
pub use copy::{CopyArgs, HowToCopyArgs, JobCarriedFlags, Referrers};
pub use docs::{CompletionsArgs, ManArgs};
pub use durations::{deprecated_millis, duration_or_seconds, parse_duration};
pub use fleet::{BrokerArgs, RedisArgs, RedisTtlArgs};
pub use logging::{fatal, init_logging, LogArgs, LogFormat};
pub use oc_bool::oc_bool;
pub use platform::platform_pattern;
pub use plural::plural;
pub use reference::image_arg;
pub use registry::{CredentialsDirArgs, FleetHooks, RegistryArgs};
pub use sizes::{human_bytes, parse_chunk_sizes};

/// `--version` of both binaries: the version and the git commit they were built from
/// (`unknown` when built without git; see build.rs).
pub const VERSION: &str = concat!(
    env!("CARGO_PKG_VERSION"),
    " (commit ",
    env!("MIRROR_GIT_COMMIT"),
    ")"
);

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
    use mirror_common::copy::CopyOptions;
    use mirror_common::registry::{RetryPolicy, Timeouts};
    use mirror_fleet::amqp::AmqpConfig;
    use mirror_fleet::store::RedisConfig;
    use std::time::Duration;

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
        #[command(flatten)]
        ttl: RedisTtlArgs,
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
        assert_eq!(a.redis.config_with(&a.ttl), RedisConfig::default());
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
        assert_eq!(a.registry.retry_delay(), retry.base_delay);
    }

    #[test]
    fn familiar_flags_of_oc_skopeo_and_crane_mean_what_they_mean_there() {
        let a = All::parse_from([
            "x",
            "--authfile",
            "/tmp/auth.json",
            "--insecure",
            "--platform",
            "linux/arm64",
            "--retry-delay-ms",
            "250",
        ]);
        assert_eq!(
            a.registry.registry_config.as_deref(),
            Some(std::path::Path::new("/tmp/auth.json"))
        );
        assert!(a.registry.insecure);
        assert_eq!(a.registry.retry_delay(), Duration::from_millis(250));
        let filter = a.copy.options(false).unwrap().filter.unwrap();
        assert_eq!(filter.pattern(), "linux/arm64(?:/[^/]+)?");
        let b = All::parse_from(["x", "--insecure=false", "--retry-delay", "2s"]);
        assert!(!b.registry.insecure);
        assert_eq!(b.registry.retry_delay(), Duration::from_secs(2));
        assert!(
            All::try_parse_from(["x", "--retry-delay", "1s", "--retry-delay-ms", "5"]).is_err(),
            "one spelling at a time"
        );
        assert!(
            All::try_parse_from(["x", "--platform", "linux/arm64", "--filter-by-os", "l.*"])
                .is_err()
        );
    }
}
