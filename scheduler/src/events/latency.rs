//! Push-to-mirrored latency: the publisher notes each event job with its sender and the
//! push's time; when the job's result comes (in-process in the embedded mode, from the
//! run's subscription on the broker in the distributed mode), each of its tags that made
//! it (pushed or already up to date) is observed in
//! `mirror_events_push_to_mirrored_seconds` and said in one line. Bounded: past
//! [`MAX_JOBS`] waiting jobs (results lost with a broker outage), new ones are not timed.

use std::collections::HashMap;
use std::time::SystemTime;

use mirror_common::job::JobResult;
use mirror_common::report::TagStatus;
use parking_lot::Mutex;
use uuid::Uuid;

/// Jobs waiting for their result at most.
const MAX_JOBS: usize = 100_000;

/// The event jobs waiting for their result.
#[derive(Default)]
pub(crate) struct Latency {
    waiting: Mutex<HashMap<Uuid, (String, SystemTime)>>,
}

impl Latency {
    /// Job `job` was published for a push of `sender` at `pushed`.
    pub(crate) fn expect(&self, job: Uuid, sender: &str, pushed: SystemTime) {
        let mut w = self.waiting.lock();
        if w.len() < MAX_JOBS {
            w.insert(job, (sender.to_string(), pushed));
        }
    }

    /// A result came: observes its tags if it is an event job's. Returns the seconds
    /// observed (for tests and the log line).
    pub(crate) fn finished(&self, result: &JobResult) -> Option<f64> {
        let (sender, pushed) = self.waiting.lock().remove(&result.job_id)?;
        let seconds = SystemTime::now()
            .duration_since(pushed)
            .unwrap_or_default()
            .as_secs_f64();
        let metrics = &mirror_fleet::observe::metrics::global().events;
        for t in &result.report.tags {
            match t.status {
                TagStatus::Pushed | TagStatus::UpToDate => {
                    metrics.mirrored(&sender, seconds);
                    eprintln!(
                        "event ({sender}): {} {} {:.2}s after the push",
                        t.destination,
                        if t.status == TagStatus::Pushed {
                            "mirrored"
                        } else {
                            "already up to date"
                        },
                        seconds
                    );
                }
                TagStatus::Failed => eprintln!(
                    "event ({sender}): {} failed: {}",
                    t.destination,
                    mirror_common::printable::printable(t.error.as_deref().unwrap_or("failed"))
                ),
                _ => {}
            }
        }
        Some(seconds)
    }
}
