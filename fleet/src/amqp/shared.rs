//! What the clones of one broker connection share: its configuration, the connection, the
//! publisher, and the jobs consumer's state (started by the first `receive()`, see
//! `consume.rs`). Every operation of `amqp/` takes it; nothing here calls them back.

use std::sync::atomic::AtomicBool;
use std::sync::Arc;

use lapin::types::ShortString;
use lapin::{Channel, Connection, Consumer};
use tokio::sync::Mutex;

use super::config::{AmqpConfig, QueueNames};
use super::publish::Publisher;

/// What the clones share.
pub(super) struct Shared {
    pub(super) config: AmqpConfig,
    pub(super) names: QueueNames,
    pub(super) connection: Connection,
    pub(super) publisher: Arc<Publisher>,
    pub(super) consumer: Mutex<ConsumerState>,
    /// Set by `stop_consuming`: deliveries arriving later are handed back.
    pub(super) stopped: AtomicBool,
    /// Set by `close`: the consumer ending is then no error.
    pub(super) closing: AtomicBool,
}

/// Where the consumer is in its life.
#[derive(Default)]
pub(super) enum ConsumerState {
    /// Not started: nothing was received yet.
    #[default]
    Idle,
    Running(Arc<Running>),
    /// Cancelled; the channel stays open (kept here) until the connection closes, so the
    /// jobs handed out before can still be acknowledged.
    Stopped {
        _running: Option<Arc<Running>>,
    },
}

/// A started consumer and its channel.
pub(super) struct Running {
    pub(super) channel: Channel,
    pub(super) tag: ShortString,
    pub(super) stream: Mutex<Consumer>,
}
