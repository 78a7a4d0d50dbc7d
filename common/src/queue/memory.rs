//! The in-process job queue of the embedded mode: channels, no persistence (the process
//! that plans is the process that copies, so there is nothing to survive).

use parking_lot::Mutex;
use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use tokio::sync::mpsc;

use super::{Acknowledger, Delivery, JobQueue, QueueError};
use crate::job::{Job, JobResult};

/// Channels for jobs and results, plus the parked jobs for inspection.
pub struct MemoryQueue {
    /// Delay before redelivery n; none by default (the embedded mode does not retry jobs:
    /// the registry client already retried each request).
    retry_delays: Arc<[Duration]>,
    jobs_tx: mpsc::UnboundedSender<Job>,
    jobs_rx: tokio::sync::Mutex<mpsc::UnboundedReceiver<Job>>,
    results_tx: mpsc::UnboundedSender<JobResult>,
    results_rx: tokio::sync::Mutex<mpsc::UnboundedReceiver<JobResult>>,
    parked: Arc<Mutex<Vec<(Job, String)>>>,
}

impl Default for MemoryQueue {
    fn default() -> Self {
        let (jobs_tx, jobs_rx) = mpsc::unbounded_channel();
        let (results_tx, results_rx) = mpsc::unbounded_channel();
        MemoryQueue {
            retry_delays: Arc::new([]),
            jobs_tx,
            jobs_rx: tokio::sync::Mutex::new(jobs_rx),
            results_tx,
            results_rx: tokio::sync::Mutex::new(results_rx),
            parked: Arc::default(),
        }
    }
}

impl MemoryQueue {
    /// An empty queue that does not retry jobs.
    pub fn new() -> Self {
        Self::default()
    }

    /// An empty queue that redelivers a job that failed for the n-th time after
    /// `retry_delays[n]`, and so delivers it at most `retry_delays.len() + 1` times.
    pub fn with_retry_delays(retry_delays: Vec<Duration>) -> Self {
        MemoryQueue {
            retry_delays: retry_delays.into(),
            ..Self::default()
        }
    }

    /// Waits for the next result published by a worker.
    pub async fn receive_result(&self) -> Result<JobResult, QueueError> {
        self.results_rx
            .lock()
            .await
            .recv()
            .await
            .ok_or(QueueError::Closed)
    }

    /// Jobs parked so far, with their reasons.
    pub fn parked(&self) -> Vec<(Job, String)> {
        self.parked.lock().clone()
    }
}

struct MemoryAck {
    retry_delays: Arc<[Duration]>,
    jobs_tx: mpsc::UnboundedSender<Job>,
    parked: Arc<Mutex<Vec<(Job, String)>>>,
    job: Job,
}

#[async_trait]
impl Acknowledger for MemoryAck {
    async fn ack(self: Box<Self>) -> Result<(), QueueError> {
        Ok(())
    }

    async fn retry(self: Box<Self>, job: &Job) -> Result<(), QueueError> {
        let n = usize::try_from(job.attempt).unwrap_or(usize::MAX);
        let delay = match self.retry_delays.last() {
            Some(last) => *self.retry_delays.get(n).unwrap_or(last),
            None => Duration::ZERO,
        };
        let mut again = job.clone();
        again.attempt += 1;
        let tx = self.jobs_tx.clone();
        tokio::spawn(async move {
            tokio::time::sleep(delay).await;
            let _ = tx.send(again);
        });
        Ok(())
    }

    async fn park(self: Box<Self>, reason: &str) -> Result<(), QueueError> {
        self.parked.lock().push((self.job, reason.to_string()));
        Ok(())
    }
}

#[async_trait]
impl JobQueue for MemoryQueue {
    async fn publish(&self, job: &Job) -> Result<(), QueueError> {
        self.jobs_tx
            .send(job.clone())
            .map_err(|_| QueueError::Closed)
    }

    async fn receive(&self) -> Result<Delivery, QueueError> {
        let job = self
            .jobs_rx
            .lock()
            .await
            .recv()
            .await
            .ok_or(QueueError::Closed)?;
        let acker = Box::new(MemoryAck {
            retry_delays: self.retry_delays.clone(),
            jobs_tx: self.jobs_tx.clone(),
            parked: self.parked.clone(),
            job: job.clone(),
        });
        Ok(Delivery { job, acker })
    }

    fn max_attempts(&self) -> u32 {
        super::attempts(&self.retry_delays)
    }

    async fn publish_result(&self, result: &JobResult) -> Result<(), QueueError> {
        self.results_tx
            .send(result.clone())
            .map_err(|_| QueueError::Closed)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::reference::ImageRef;
    use uuid::Uuid;

    fn job() -> Job {
        Job::new(
            Uuid::new_v4(),
            ImageRef::parse("q.io/a/b:1").unwrap(),
            "sha256:0".into(),
            vec![ImageRef::parse("r.io/a/b:1").unwrap()],
            vec![],
        )
    }

    #[tokio::test]
    async fn published_job_is_received_and_retry_redelivers_it_with_attempt_raised() {
        let q = MemoryQueue::with_retry_delays(vec![Duration::from_millis(10)]);
        assert_eq!(q.max_attempts(), 2);
        let j = job();
        q.publish(&j).await.unwrap();
        let d = q.receive().await.unwrap();
        assert_eq!(d.job, j);
        let job = d.job.clone();
        d.acker.retry(&job).await.unwrap();
        let again = q.receive().await.unwrap();
        assert_eq!((again.job.id, again.job.attempt), (j.id, 1));
        again.acker.park("gave up").await.unwrap();
        assert_eq!(q.parked()[0].1, "gave up");
    }
}
