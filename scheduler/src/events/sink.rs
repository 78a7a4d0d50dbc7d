//! Where event jobs go: in-process workers (`--local`, [`Embedded`]) or the fleet's jobs
//! queue ([`Distributed`]); one of them for the life of the listener.

use std::sync::Arc;
use std::time::Duration;

use mirror_common::credential_engines::Engines;
use mirror_common::job::Job;
use mirror_common::state::StateStore;
use mirror_fleet::amqp::AmqpConfig;
use mirror_fleet::store::Redis;
use uuid::Uuid;

use super::distributed::Distributed;
use super::embedded::Embedded;
use super::latency::Latency;

/// How the sink is made (from the run's flags).
pub(crate) enum SinkSetup {
    /// In-process workers over these engines.
    Embedded {
        engines: Arc<Engines>,
        in_flight: usize,
        tries: u32,
        /// Where results are recorded (the process's state file), if anywhere.
        store: Option<Arc<dyn StateStore>>,
    },
    /// The fleet, through this broker and Redis.
    Distributed {
        broker: AmqpConfig,
        redis: Redis,
        pending_for: Duration,
    },
}

/// Where event jobs go.
pub(crate) enum Sink {
    /// In-process workers (`--local`).
    Embedded(Embedded),
    /// The fleet's jobs queue.
    Distributed(Distributed),
}

impl Sink {
    /// Starts the sink `setup` describes; its jobs run as `run_id`, their results timed
    /// by `latency`.
    pub(crate) async fn start(
        setup: SinkSetup,
        run_id: Uuid,
        latency: Arc<Latency>,
    ) -> anyhow::Result<Sink> {
        Ok(match setup {
            SinkSetup::Embedded {
                engines,
                in_flight,
                tries,
                store,
            } => Sink::Embedded(Embedded::start(engines, in_flight, tries, store, latency)),
            SinkSetup::Distributed {
                broker,
                redis,
                pending_for,
            } => Sink::Distributed(
                Distributed::start(broker, redis, run_id, pending_for, latency).await?,
            ),
        })
    }

    /// Sends `jobs` (each confirmed, in the distributed mode).
    pub(crate) async fn send(&self, jobs: &[Job]) -> Result<(), String> {
        match self {
            Sink::Embedded(e) => e.send(jobs).await,
            Sink::Distributed(d) => d.send(jobs).await,
        }
    }
}
