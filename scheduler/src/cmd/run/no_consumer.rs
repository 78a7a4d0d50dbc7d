//! The warning of `run --wait` when nobody consumes the jobs queue: without it a run whose
//! workers are not running (a wrong `--queue-prefix`, a scaled-to-zero deployment) waits
//! without a word. The consumer count comes from a passive declare on a connection of its
//! own (the run's connection may be busy or being replaced); failing to count says nothing
//! (the run's own loss of the broker is reported where it happens).

use std::time::{Duration, Instant};

use mirror_fleet::amqp::{AmqpConfig, AmqpQueue};

use crate::progress::Progress;

/// How long the jobs queue may be without a consumer before the first warning.
pub(crate) const FIRST_WARNING_AFTER: Duration = Duration::from_secs(5);

/// Between two warnings while it stays so.
pub(crate) const REPEAT_EVERY: Duration = Duration::from_secs(60);

/// How often the consumers are counted.
const CHECK_EVERY: Duration = Duration::from_secs(5);

/// When to count next and when the last warning was said. Cancel-safe: `check` can be
/// dropped at any await (a result arrived) and picks up from the state kept here.
pub(crate) struct NoConsumerWarning {
    config: AmqpConfig,
    connection: Option<AmqpQueue>,
    next_check: Instant,
    last_warning: Option<Instant>,
}

impl NoConsumerWarning {
    pub(crate) fn new(config: &AmqpConfig) -> Self {
        NoConsumerWarning {
            config: config.clone(),
            connection: None,
            next_check: Instant::now() + FIRST_WARNING_AFTER,
            last_warning: None,
        }
    }

    /// Waits for the next count, counts, and warns when the jobs queue has no consumer
    /// (again only [`REPEAT_EVERY`] after the last warning).
    pub(crate) async fn check(&mut self, progress: &Progress) {
        tokio::time::sleep_until(self.next_check.into()).await;
        self.next_check = Instant::now() + CHECK_EVERY;
        let Some(consumers) = self.consumers().await else {
            return;
        };
        let due = self
            .last_warning
            .is_none_or(|at| at.elapsed() >= REPEAT_EVERY);
        if consumers == 0 && due {
            self.last_warning = Some(Instant::now());
            progress.eprintln(&format!(
                "warning: no worker consumes {} (0 consumers): the run's jobs wait until a \
                 mirror-worker with --queue-prefix {} runs",
                self.config.names().jobs,
                self.config.prefix
            ));
        }
    }

    async fn consumers(&mut self) -> Option<u32> {
        if !self
            .connection
            .as_ref()
            .is_some_and(AmqpQueue::is_connected)
        {
            self.connection = AmqpQueue::connect_existing(self.config.clone()).await.ok();
        }
        let counts = self.connection.as_ref()?.counts().await.ok()?;
        let jobs = self.config.names().jobs;
        counts.iter().find(|c| c.name == jobs).map(|c| c.consumers)
    }

    /// Closes the connection it counted on.
    pub(crate) async fn close(self) {
        if let Some(q) = self.connection {
            q.close().await;
        }
    }
}
