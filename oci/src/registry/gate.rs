//! A gate every registry request passes: where fleet-wide rate limits and pauses plug in.
//!
//! The client calls `before` ahead of each request and `throttled` when a registry answers
//! 429 with `Retry-After`, so that one worker's 429 can hold every worker's requests to that
//! registry (the Redis implementation shares it; without one, nothing waits).

use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;

/// Admission of registry requests.
#[async_trait]
pub trait RequestGate: Send + Sync {
    /// Waits until a request to `registry` may go (a pause in force, a rate limit).
    async fn before(&self, registry: &str);
    /// `registry` asked for no requests for `retry_after`.
    async fn throttled(&self, registry: &str, retry_after: Duration);
}

/// A shareable gate in the client options (`Debug` for the options' sake).
#[derive(Clone)]
pub struct Gate(pub Arc<dyn RequestGate>);

impl std::fmt::Debug for Gate {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Gate")
    }
}
