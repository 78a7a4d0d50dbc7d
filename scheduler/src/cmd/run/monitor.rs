//! `run --listen ADDR`: the readiness monitor. A broker connection of its own keeps the
//! job queue depth gauges of `/metrics` current and answers `/readyz`, for as long as the
//! process lives, between runs too.

use std::net::SocketAddr;
use std::sync::Arc;

use anyhow::Result;
use mirror_fleet::amqp::{AmqpConfig, AmqpQueue, ConnectionSlot};

/// A long-lived broker connection of `--listen`, used only to count the job queues for
/// `/metrics` and to answer `/readyz` (runs keep their own connection: a run must not
/// depend on this one's health).
#[derive(Clone)]
pub(crate) struct Monitor {
    config: AmqpConfig,
    slot: ConnectionSlot,
}

impl Monitor {
    pub(crate) fn new(config: AmqpConfig) -> Self {
        Monitor {
            config,
            slot: ConnectionSlot::default(),
        }
    }

    fn ready(&self) -> bool {
        self.slot.is_ready()
    }

    /// Binds `addr` (a taken port fails the start) and keeps the queue depth gauges and
    /// readiness current between runs too: an hourly schedule would otherwise show an
    /// hour-old depth, and readiness must follow the broker coming back.
    pub(crate) async fn serve(&self, addr: SocketAddr) -> Result<()> {
        let m = self.clone();
        mirror_fleet::observe::server::serve(addr, Arc::new(move || m.ready()))
            .await
            .map_err(|e| anyhow::anyhow!("--listen {addr}: {e}"))?;
        let m = self.clone();
        tokio::spawn(async move {
            loop {
                m.refresh().await;
                tokio::time::sleep(mirror_fleet::observe::queue_depth::PERIOD).await;
            }
        });
        Ok(())
    }

    /// Sets the queue depth gauges, (re)connecting first when the connection is gone.
    async fn refresh(&self) {
        let queue = match self.slot.get().filter(|q| q.is_connected()) {
            Some(q) => q,
            None => match AmqpQueue::connect(self.config.clone()).await {
                Ok(q) => {
                    let q = Arc::new(q);
                    self.slot.set(Some(q.clone()));
                    q
                }
                Err(e) => {
                    tracing::warn!(error = %e, "queue depth: cannot reach the broker");
                    return;
                }
            },
        };
        mirror_fleet::observe::queue_depth::count_once(&queue).await;
    }
}
