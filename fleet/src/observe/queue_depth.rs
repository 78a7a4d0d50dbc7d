//! Queue depth for `/metrics`: how many jobs wait in the job queues (`{p}.jobs`, each
//! `{p}.retry.*` and `{p}.parked`) and how many consumers they have, counted by passive
//! declares on a connection the process already holds.
//!
//! The run history stream is left out: it keeps every run announcement and result for a
//! week, so its "depth" is history, not work, and summed with the job queues it swamps any
//! depth panel. Unacknowledged jobs are not in a passive declare's answer (only the
//! management API knows them); every worker exports the jobs it holds unacknowledged as
//! `mirror_jobs_in_flight`, and their sum is the queue's unacknowledged count.
//!
//! Every process that holds a broker connection and serves `/metrics` exports these (each
//! worker, the scheduler with `--listen`): scraped from several processes, the series are
//! the same numbers seen at slightly different moments, so dashboards and alerts take
//! `max by (queue, role)`.

use std::time::Duration;

use crate::amqp::{AmqpQueue, ConnectionSlot, QueueCount, QueueNames};

/// How often [`keep_counting`] counts: a few times per Prometheus scrape interval.
pub const PERIOD: Duration = Duration::from_secs(15);

/// The role of one queue of the topology in the `role` label (`jobs`, `retrying`,
/// `parked`), or `None` for a queue that is not a job queue (the history stream).
pub fn role(names: &QueueNames, queue: &str) -> Option<&'static str> {
    if queue == names.jobs {
        Some("jobs")
    } else if names.retries.iter().any(|r| r == queue) {
        Some("retrying")
    } else if queue == names.parked {
        Some("parked")
    } else {
        None
    }
}

/// Sets the depth gauges from `counts` of the topology `names`, job queues only.
pub fn record(names: &QueueNames, counts: &[QueueCount]) {
    let m = super::metrics::global();
    for c in counts {
        if let Some(role) = role(names, &c.name) {
            m.queue_depth(&c.name, role, c.ready, c.consumers);
        }
    }
}

/// Counts the queues of `queue` once into the gauges; a failure is logged and leaves the
/// previous numbers (the readiness probe says the connection is gone).
pub async fn count_once(queue: &AmqpQueue) {
    match queue.counts().await {
        Ok(counts) => record(&queue.queue_names(), &counts),
        Err(e) => tracing::warn!(error = %e, "queue depth: counting failed"),
    }
}

/// Counts every [`PERIOD`], for the life of the process, through whatever connection
/// `slot` holds at the time; while it holds none, looks again every second, so that the
/// first numbers come as soon as the process has connected.
pub fn keep_counting(slot: ConnectionSlot) {
    tokio::spawn(async move {
        loop {
            let wait = match slot.get().filter(|q| q.is_connected()) {
                Some(queue) => {
                    count_once(&queue).await;
                    PERIOD
                }
                None => Duration::from_secs(1),
            };
            tokio::time::sleep(wait).await;
        }
    });
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::amqp::AmqpConfig;

    #[test]
    fn the_history_stream_is_not_a_job_queue() {
        let config = AmqpConfig {
            prefix: "p".into(),
            ..AmqpConfig::default()
        };
        let names = config.names();
        assert_eq!(role(&names, "p.jobs"), Some("jobs"));
        assert_eq!(role(&names, &names.retries[0]), Some("retrying"));
        assert_eq!(role(&names, "p.parked"), Some("parked"));
        assert_eq!(role(&names, "p.history"), None);
    }
}
