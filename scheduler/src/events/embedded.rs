//! The embedded mode's event jobs (`run --local --schedule ... --listen-events`): one
//! process listens, schedules and copies. Event jobs go through an in-process queue of
//! their own to in-process workers running the fleet's job handling, for the life of the
//! process, beside (not inside) the scheduled runs, whose queues live as long as a run.

use std::sync::Arc;
use std::time::Duration;

use mirror_common::credential_engines::Engines;
use mirror_common::job::Job;
use mirror_common::job_handling::handle;
use mirror_common::queue::{JobQueue, MemoryQueue};
use mirror_common::state::StateStore;

use super::latency::Latency;

/// The in-process queue the event jobs go to.
pub(crate) struct Embedded {
    queue: Arc<MemoryQueue>,
}

impl Embedded {
    /// Starts `in_flight` workers over `engines` (a job whose failure may pass is tried
    /// again a second later, up to `tries` times) and the task that reads their results.
    /// Each result is recorded in `store` by the worker that handled it (these workers
    /// live as long as the process), so the next scheduled run knows what events pushed.
    pub(crate) fn start(
        engines: Arc<Engines>,
        in_flight: usize,
        tries: u32,
        store: Option<Arc<dyn StateStore>>,
        latency: Arc<Latency>,
    ) -> Self {
        let retries = tries.saturating_sub(1) as usize;
        let queue = Arc::new(MemoryQueue::with_retry_delays(vec![
            Duration::from_secs(1);
            retries
        ]));
        for _ in 0..in_flight.max(1) {
            let (queue, engines, store) = (queue.clone(), engines.clone(), store.clone());
            tokio::spawn(async move {
                loop {
                    let Ok(delivery) = queue.receive().await else {
                        return;
                    };
                    let destinations = delivery.job.destinations.clone();
                    match handle(queue.as_ref(), &engines, delivery).await {
                        Ok(Some(result)) => {
                            if let Some(store) = &store {
                                store.record_result(&destinations, &result).await;
                            }
                        }
                        Ok(None) => {}
                        Err(e) => {
                            tracing::warn!(error = %e, "events: an in-process job could not be settled")
                        }
                    }
                }
            });
        }
        let results = queue.clone();
        tokio::spawn(async move {
            while let Ok(result) = results.receive_result().await {
                for t in &result.report.tags {
                    if let (mirror_common::report::TagStatus::Pushed, Some(d)) =
                        (t.status, &t.digest)
                    {
                        println!("{d} {}", t.destination);
                    }
                }
                latency.finished(&result);
            }
        });
        Embedded { queue }
    }

    /// Queues `jobs`.
    pub(crate) async fn send(&self, jobs: &[Job]) -> Result<(), String> {
        for job in jobs {
            self.queue.publish(job).await.map_err(|e| e.to_string())?;
        }
        Ok(())
    }
}
