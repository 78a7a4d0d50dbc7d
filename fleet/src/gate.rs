//! The request gate of a fleet worker: fleet-wide rate limits and the pause after a 429,
//! shared through Redis, plugged into the registry client's [`RequestGate`] hook.

use std::collections::HashMap;
use std::time::Duration;

use async_trait::async_trait;

use mirror_common::registry::RequestGate;

use crate::store::{Redis, Throttle};

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
