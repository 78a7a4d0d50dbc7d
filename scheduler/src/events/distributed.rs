//! The distributed mode's event jobs: published to the fleet's jobs queue like a run's
//! (each confirmed; a lost connection is made again once per send, and the jobs not yet
//! confirmed go out on it), under one run id for the life of the listener. Each job's
//! tags are marked pending in Redis as a run's are, so that a scheduled run going at the
//! same time leaves them to this job instead of racing it.
//! The results are followed on a subscription to that run id, for the latency histogram;
//! after a lost connection the subscription is bound again (results published meanwhile
//! are not timed: the histogram is a sample, the copies are not affected).

use std::sync::Arc;
use std::time::Duration;

use mirror_common::job::{Job, RunEvent, RunStarted};
use mirror_common::queue::{JobQueue, QueueError};
use mirror_fleet::amqp::{AmqpConfig, AmqpQueue};
use mirror_fleet::store::Redis;
use tokio::sync::Mutex;
use uuid::Uuid;

use super::latency::Latency;

/// The fleet the event jobs go to.
pub(crate) struct Distributed {
    config: AmqpConfig,
    queue: Mutex<AmqpQueue>,
    redis: Redis,
    run_id: Uuid,
    pending_for: Duration,
}

impl Distributed {
    /// Connects to the broker (once: a wrong URL fails the start) and to Redis, and
    /// subscribes to the results of `run_id` before any job can go out.
    pub(crate) async fn start(
        config: AmqpConfig,
        redis: Redis,
        run_id: Uuid,
        pending_for: Duration,
        latency: Arc<Latency>,
    ) -> anyhow::Result<Self> {
        let queue = AmqpQueue::connect(config.clone()).await?;
        // Announced (no jobs counted: they come as pushes do), so that `status` lists the
        // events' run with the time the listener started.
        queue.publish_run_started(&announcement(run_id)).await?;
        let (ready, subscribed) = tokio::sync::oneshot::channel();
        tokio::spawn(follow(config.clone(), run_id, latency, Some(ready)));
        // A failed first subscription is retried by the follower; the jobs need not wait.
        let _ = tokio::time::timeout(Duration::from_secs(10), subscribed).await;
        Ok(Distributed {
            config,
            queue: Mutex::new(queue),
            redis,
            run_id,
            pending_for,
        })
    }

    /// Marks the tags of `jobs` pending and publishes the jobs (marks taken back when they
    /// cannot go out).
    pub(crate) async fn send(&self, jobs: &[Job]) -> Result<(), String> {
        let tags: Vec<(&str, &str, &str)> = jobs.iter().flat_map(Job::destination_keys).collect();
        let pending = self.redis.pending();
        pending.hold(self.run_id, &tags, self.pending_for).await;
        if let Err(e) = self.publish(jobs).await {
            pending.release(&tags).await;
            return Err(e.to_string());
        }
        Ok(())
    }

    /// Publishes `jobs` one by one, each confirmed; after a lost connection, connects
    /// again once and publishes the rest (a job whose confirm was lost goes out twice:
    /// the second copy is a no-op where the first was done).
    async fn publish(&self, jobs: &[Job]) -> Result<(), QueueError> {
        let mut queue = self.queue.lock().await;
        let mut next = 0;
        let mut reconnected = false;
        while next < jobs.len() {
            match queue.publish(&jobs[next]).await {
                Ok(()) => next += 1,
                Err(e) if queue.is_connected() || reconnected => return Err(e),
                Err(e) => {
                    tracing::warn!(error = %e, "events: lost the broker while publishing; connecting again");
                    let fresh = AmqpQueue::connect(self.config.clone()).await?;
                    std::mem::replace(&mut *queue, fresh).close().await;
                    reconnected = true;
                }
            }
        }
        Ok(())
    }
}

/// The events' run, as `status` reads it: started now, its size unknown in advance.
fn announcement(run_id: Uuid) -> RunStarted {
    RunStarted {
        version: mirror_common::job::JOB_VERSION,
        run_id,
        started_at: std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_secs()),
        jobs: 0,
        destinations: Vec::new(),
        tags: 0,
        up_to_date: 0,
        group: None,
    }
}

/// Follows the results of `run_id` for ever, subscribing again after a loss.
async fn follow(
    config: AmqpConfig,
    run_id: Uuid,
    latency: Arc<Latency>,
    mut ready: Option<tokio::sync::oneshot::Sender<()>>,
) {
    let mut backoff = Duration::from_millis(250);
    loop {
        let subscribed = match AmqpQueue::connect(config.clone()).await {
            Ok(q) => q.subscribe_run(run_id).await.map(|s| (q, s)),
            Err(e) => Err(e),
        };
        let (queue, mut subscription) = match subscribed {
            Ok(s) => s,
            Err(e) => {
                tracing::warn!(error = %e, "events: cannot follow the event jobs' results yet");
                tokio::time::sleep(backoff).await;
                backoff = (backoff * 2).min(Duration::from_secs(10));
                continue;
            }
        };
        backoff = Duration::from_millis(250);
        if let Some(r) = ready.take() {
            let _ = r.send(());
        }
        loop {
            match subscription.next().await {
                Ok(RunEvent::Result(result)) => {
                    latency.finished(&result);
                }
                Ok(RunEvent::Started(_)) => {}
                Err(e) => {
                    tracing::warn!(error = %e, "events: lost the event jobs' results; subscribing again");
                    break;
                }
            }
        }
        queue.close().await;
    }
}
