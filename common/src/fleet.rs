//! What a fleet shares through Redis besides the blob index: the request gate (fleet-wide
//! rate limits and the pause after a 429), and the bookkeeping after each job (what each
//! destination tag now points at, for cheap no-op runs; the run's progress counters).

use std::collections::HashMap;
use std::time::Duration;

use async_trait::async_trait;

use crate::copy::TagStatus;
use crate::index::redis::{Redis, Throttle};
use crate::job::JobResult;
use crate::reference::ImageRef;
use crate::registry::RequestGate;

/// The gate of a fleet worker: every request waits out a registry's pause and takes a token
/// of its rate, both shared through Redis.
pub struct FleetGate {
    throttle: Throttle,
    rates: HashMap<String, f64>,
}

impl FleetGate {
    /// A gate over `redis` with requests per second per registry.
    pub fn new(redis: &Redis, rates: HashMap<String, f64>) -> Self {
        FleetGate {
            throttle: redis.throttle(),
            rates,
        }
    }
}

#[async_trait]
impl RequestGate for FleetGate {
    async fn before(&self, registry: &str) {
        self.throttle
            .acquire(registry, self.rates.get(registry).copied())
            .await;
    }

    async fn throttled(&self, registry: &str, retry_after: Duration) {
        tracing::warn!(
            registry,
            retry_after_ms = retry_after.as_millis() as u64,
            "registry throttled us; pausing the fleet's requests to it"
        );
        self.throttle.pause(registry, retry_after).await;
    }
}

/// After a job: remember what its destination tags point at and count it in its run.
pub async fn record_result(redis: &Redis, result: &JobResult) {
    let mut tags = Vec::new();
    for t in &result.report.tags {
        if let (TagStatus::Pushed | TagStatus::UpToDate, Some(digest)) = (t.status, &t.digest) {
            if let Ok(dst) = ImageRef::parse(&t.destination) {
                if let Some(tag) = dst.tag.clone() {
                    tags.push((dst.registry, dst.repository, tag, digest.clone()));
                }
            }
        }
    }
    redis.tags().set_dest_digests(&tags).await;
    redis.counters().add(result.run_id, &result.report).await;
}

/// Parses `--rate REGISTRY=N/s` (or `REGISTRY=N`) values.
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
}
