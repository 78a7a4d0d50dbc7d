//! A hook that sees every registry request: where a process's metrics plug in without this
//! crate knowing about a metrics registry.

use std::sync::Arc;

/// Told about each request attempt the client makes.
pub trait RequestObserver: Send + Sync {
    /// An attempt ended: `Some(status)` when the registry answered, `None` when no answer
    /// came back (connection refused, reset, timeout).
    fn answered(&self, registry: &str, status: Option<u16>);
    /// A failed attempt is about to be tried again.
    fn retrying(&self, registry: &str);
    /// The registry announced how much of its pull quota is left (`ratelimit-remaining`).
    fn quota_remaining(&self, registry: &str, remaining: u64);
}

/// A shareable observer in the client options (`Debug` for the options' sake).
#[derive(Clone)]
pub struct Observer(pub Arc<dyn RequestObserver>);

impl std::fmt::Debug for Observer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Observer")
    }
}
