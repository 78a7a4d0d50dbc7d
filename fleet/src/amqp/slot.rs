//! The broker connection a long-running process currently holds, if any: what `/readyz`
//! reads, and what a loop that (re)connects fills and clears. A slot rather than a flag,
//! because a connection the broker closed is noticed by `is_connected` at once, before the
//! loop holding it finds out on its next call.

use parking_lot::RwLock;
use std::sync::Arc;

use super::AmqpQueue;

/// A shared, replaceable handle on the current connection. Cheap to clone.
#[derive(Clone, Default)]
pub struct ConnectionSlot(Arc<RwLock<Option<Arc<AmqpQueue>>>>);

impl ConnectionSlot {
    /// The connection held now, if any.
    pub fn get(&self) -> Option<Arc<AmqpQueue>> {
        self.0.read().clone()
    }

    /// Holds `queue` from now on (`None`: no connection).
    pub fn set(&self, queue: Option<Arc<AmqpQueue>>) {
        *self.0.write() = queue;
    }

    /// True while a connection is held and up: the process is ready.
    pub fn is_ready(&self) -> bool {
        self.get().is_some_and(|q| q.is_connected())
    }
}
