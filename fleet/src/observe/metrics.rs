//! The process's metrics, in one global registry.
//!
//! Global because the numbers come from deep inside shared code (every registry request
//! passes `RegistryClient::execute`, every job passes the worker loop) and threading a
//! handle through all of it would touch every constructor for no benefit: a process has one
//! `/metrics`. Recording into it costs an atomic add and is harmless in processes that never
//! serve it (`copy`, `run --local`, the tests of this crate).
//!
//! Label values are kept to small bounded sets (status classes, failure classes, queue
//! names, registry hosts) so that a long-running process cannot grow an unbounded series
//! count.

use std::sync::atomic::AtomicU64;
use std::sync::LazyLock;

use prometheus_client::encoding::text::encode;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::{exponential_buckets, Histogram};
use prometheus_client::registry::Registry;

use super::event_metrics::EventMetrics;
use mirror_common::failure::FailureKind;
use mirror_common::registry::{Observer, RequestObserver};
use mirror_common::report::CopyReport;

type Labels = Vec<(&'static str, String)>;

/// Every metric of the process (see [`global`]).
pub struct Metrics {
    registry: Registry,
    /// `mirror_jobs_done_total`: jobs whose every tag made it (pushed or up to date).
    pub jobs_done: Counter,
    /// `mirror_jobs_failed_total{reason}`: jobs reported failed, by [`failure_reason`].
    pub jobs_failed: Family<Labels, Counter>,
    /// `mirror_blobs_total{outcome=uploaded|mounted|skipped}`.
    pub blobs: Family<Labels, Counter>,
    /// `mirror_blob_bytes_total{outcome=uploaded|mounted}`: mounted bytes are the ones that
    /// did not cross the wire.
    pub bytes: Family<Labels, Counter>,
    /// `mirror_referrers_pushed_total`: signatures, attestations, SBOMs and other
    /// referrers written to destinations.
    pub referrers: Counter,
    /// `mirror_copy_duration_seconds`: one observation per finished job.
    pub copy_seconds: Histogram,
    /// `mirror_registry_requests_total{registry,status}`: status is the class (`2xx`, ...)
    /// or `error` when no response came back.
    pub registry_requests: Family<Labels, Counter>,
    /// `mirror_registry_retries_total{registry}`: request attempts that were retried.
    pub registry_retries: Family<Labels, Counter>,
    /// `mirror_registry_quota_remaining{registry}`: the pull quota a registry last said was
    /// left (`ratelimit-remaining`, Docker Hub).
    pub quota_remaining: Family<Labels, Gauge>,
    /// `mirror_group_jobs_total{group,outcome}`: finished jobs by the group of their run
    /// (`none` outside groups) and outcome (`done`, or the failure kind), for per-team
    /// alerts and dashboards.
    pub group_jobs: Family<Labels, Counter>,
    /// `mirror_jobs_in_flight`: jobs this worker is copying now.
    pub jobs_in_flight: Gauge,
    /// `mirror_queue_messages{queue,role}`: ready messages per job queue (role `jobs`,
    /// `retrying` or `parked`; never the history stream), as this process last counted
    /// (see [`super::queue_depth`]).
    pub queue_messages: Family<Labels, Gauge>,
    /// `mirror_queue_consumers{queue,role}`: consumers per job queue, as last counted.
    pub queue_consumers: Family<Labels, Gauge>,
    /// `mirror_group_last_success_timestamp_seconds{group}`: when a run of the group
    /// (`none` outside groups) last finished with every tag made it, in Unix seconds. A
    /// warm run publishes no job at all (the tag cache knows every tag), so "no job
    /// finished for hours" is healthy; "no successful run for hours" is not.
    pub group_last_success: Family<Labels, Gauge<f64, AtomicU64>>,
    /// The notification endpoint's (`run --listen-events`): see [`EventMetrics`].
    pub events: EventMetrics,
}

impl Metrics {
    fn new() -> Self {
        let m = Metrics {
            registry: Registry::default(),
            jobs_done: Counter::default(),
            jobs_failed: Family::default(),
            blobs: Family::default(),
            bytes: Family::default(),
            referrers: Counter::default(),
            // 50 ms .. ~27 min: a no-op job is one HEAD, a big image may take many minutes.
            copy_seconds: Histogram::new(exponential_buckets(0.05, 2.0, 16)),
            registry_requests: Family::default(),
            registry_retries: Family::default(),
            quota_remaining: Family::default(),
            group_jobs: Family::default(),
            jobs_in_flight: Gauge::default(),
            queue_messages: Family::default(),
            queue_consumers: Family::default(),
            group_last_success: Family::default(),
            events: EventMetrics::default(),
        };
        let mut r = Registry::with_prefix("mirror");
        m.register_job_metrics(&mut r);
        m.register_registry_metrics(&mut r);
        m.register_fleet_metrics(&mut r);
        m.events.register(&mut r);
        Metrics { registry: r, ..m }
    }

    /// What a worker's copies did: jobs, blobs, bytes, referrers, time.
    fn register_job_metrics(&self, r: &mut Registry) {
        r.register(
            "jobs_done",
            "Jobs whose every tag made it",
            self.jobs_done.clone(),
        );
        r.register(
            "jobs_failed",
            "Jobs reported failed, by reason",
            self.jobs_failed.clone(),
        );
        r.register(
            "blobs",
            "Blobs handled, by outcome (uploaded, mounted, skipped)",
            self.blobs.clone(),
        );
        r.register(
            "blob_bytes",
            "Blob bytes uploaded, or saved by a cross-repository mount",
            self.bytes.clone(),
        );
        r.register(
            "referrers_pushed",
            "Referrers (signatures, attestations, SBOMs) written to destinations",
            self.referrers.clone(),
        );
        r.register(
            "copy_duration_seconds",
            "Time to copy one job (one image to its destination tags)",
            self.copy_seconds.clone(),
        );
        r.register(
            "jobs_in_flight",
            "Jobs being copied by this process",
            self.jobs_in_flight.clone(),
        );
    }

    /// What registries were asked and answered.
    fn register_registry_metrics(&self, r: &mut Registry) {
        r.register(
            "registry_requests",
            "Registry requests, by registry and status class",
            self.registry_requests.clone(),
        );
        r.register(
            "registry_retries",
            "Registry requests retried after a connection error, 429 or 5xx",
            self.registry_retries.clone(),
        );
        r.register(
            "registry_quota_remaining",
            "Pull quota a registry last said was left (ratelimit-remaining)",
            self.quota_remaining.clone(),
        );
    }

    /// The fleet's view: groups, and the job queues' depth as this process counted it.
    fn register_fleet_metrics(&self, r: &mut Registry) {
        r.register(
            "group_jobs",
            "Finished jobs by group and outcome (done, or the failure kind)",
            self.group_jobs.clone(),
        );
        r.register(
            "queue_messages",
            "Messages ready in each job queue (role jobs, retrying, parked), as last counted by this process",
            self.queue_messages.clone(),
        );
        r.register(
            "queue_consumers",
            "Consumers of each job queue, as last counted by this process",
            self.queue_consumers.clone(),
        );
        r.register(
            "group_last_success_timestamp_seconds",
            "When a run of the group last finished with every tag made it (Unix seconds)",
            self.group_last_success.clone(),
        );
    }

    /// The registry in the OpenMetrics text format (what `/metrics` answers a scraper that
    /// asks for OpenMetrics).
    pub fn encode(&self) -> String {
        let mut out = String::new();
        // Writing to a String cannot fail.
        let _ = encode(&mut out, &self.registry);
        out
    }

    /// The registry in the Prometheus text format 0.0.4 (what `/metrics` answers
    /// otherwise): see [`super::text_format`].
    pub fn encode_text(&self) -> String {
        super::text_format::from_openmetrics(&self.encode())
    }

    /// Records that a run of `group` (`None`: outside groups) finished with every tag
    /// made it, now.
    pub fn group_succeeded(&self, group: Option<&str>) {
        let now = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0.0, |d| d.as_secs_f64());
        self.group_last_success
            .get_or_create(&vec![("group", group.unwrap_or("none").to_string())])
            .set(now);
    }

    /// Records a finished job from the report it produced.
    pub fn job_finished(&self, report: &CopyReport) {
        match failure_reason(report) {
            None => {
                self.jobs_done.inc();
            }
            Some(reason) => {
                self.jobs_failed
                    .get_or_create(&vec![("reason", reason.to_string())])
                    .inc();
            }
        }
        let s = &report.stats;
        for (outcome, n) in [
            ("uploaded", s.blobs_uploaded),
            ("mounted", s.blobs_mounted),
            ("skipped", s.blobs_skipped),
        ] {
            self.blobs
                .get_or_create(&vec![("outcome", outcome.to_string())])
                .inc_by(n);
        }
        for (outcome, n) in [("uploaded", s.bytes_uploaded), ("mounted", s.bytes_mounted)] {
            self.bytes
                .get_or_create(&vec![("outcome", outcome.to_string())])
                .inc_by(n);
        }
        self.referrers.inc_by(s.referrers_pushed);
        self.copy_seconds.observe(report.seconds);
    }

    /// Counts a finished job of `group` (`None`: outside groups) by its outcome.
    pub fn group_job(&self, group: Option<&str>, report: &CopyReport) {
        let outcome = failure_reason(report).unwrap_or("done");
        let labels = vec![
            ("group", group.unwrap_or("none").to_string()),
            ("outcome", outcome.to_string()),
        ];
        self.group_jobs.get_or_create(&labels).inc();
    }

    /// Records one answered (`Some(status)`) or unanswered (`None`) registry request.
    pub fn registry_request(&self, registry: &str, status: Option<u16>) {
        let class = match status {
            Some(s) => format!("{}xx", s / 100),
            None => "error".to_string(),
        };
        self.registry_requests
            .get_or_create(&vec![("registry", registry.to_string()), ("status", class)])
            .inc();
    }

    /// Records that a registry request is about to be tried again.
    pub fn registry_retry(&self, registry: &str) {
        self.registry_retries
            .get_or_create(&vec![("registry", registry.to_string())])
            .inc();
    }

    /// Sets a job queue's depth and consumer count; `role` is `jobs`, `retrying` or
    /// `parked`.
    pub fn queue_depth(&self, queue: &str, role: &'static str, ready: u32, consumers: u32) {
        let labels = vec![("queue", queue.to_string()), ("role", role.to_string())];
        self.queue_messages
            .get_or_create(&labels)
            .set(i64::from(ready));
        self.queue_consumers
            .get_or_create(&labels)
            .set(i64::from(consumers));
    }
}

/// The process's metrics.
pub fn global() -> &'static Metrics {
    static METRICS: LazyLock<Metrics> = LazyLock::new(Metrics::new);
    &METRICS
}

/// Why a job failed, as the kind of its first failed tag (a small fixed set of label
/// values): `None` when every tag made it.
pub fn failure_reason(report: &CopyReport) -> Option<&'static str> {
    report
        .first_failure()
        .map(|t| t.failure.map_or("unknown", FailureKind::as_str))
}

/// The registry client's hook (an observer for its options): every request attempt and
/// retry is counted in [`global`].
pub fn observer() -> Observer {
    struct Global;
    impl RequestObserver for Global {
        fn answered(&self, registry: &str, status: Option<u16>) {
            global().registry_request(registry, status);
        }
        fn retrying(&self, registry: &str) {
            global().registry_retry(registry);
        }
        fn quota_remaining(&self, registry: &str, remaining: u64) {
            global()
                .quota_remaining
                .get_or_create(&vec![("registry", registry.to_string())])
                .set(i64::try_from(remaining).unwrap_or(i64::MAX));
        }
    }
    Observer(std::sync::Arc::new(Global))
}

#[cfg(test)]
mod tests {
    use super::*;
    use mirror_common::report::{CopyStats, TagResult, TagStatus};

    fn report(tags: Vec<TagResult>) -> CopyReport {
        CopyReport {
            source: "r/a:1".into(),
            digest: None,
            tags,
            stats: CopyStats {
                blobs_uploaded: 2,
                blobs_mounted: 1,
                bytes_uploaded: 10,
                ..Default::default()
            },
            seconds: 0.2,
        }
    }

    fn pushed() -> TagResult {
        TagResult::ok("d/a:1", TagStatus::Pushed, "sha256:0")
    }

    #[test]
    fn failure_reasons_are_the_kind_of_the_first_failed_tag() {
        assert_eq!(failure_reason(&report(vec![pushed()])), None);
        let failed = |kind| TagResult::failed("d/a:1", kind, "whatever the message says");
        assert_eq!(
            failure_reason(&report(vec![pushed(), failed(FailureKind::Throttled)])),
            Some("throttled")
        );
        assert_eq!(
            failure_reason(&report(vec![failed(FailureKind::NotFound)])),
            Some("not_found")
        );
        assert_eq!(
            failure_reason(&report(vec![failed(FailureKind::DigestMismatch)])),
            Some("digest_mismatch")
        );
    }

    #[test]
    fn a_finished_job_shows_up_in_the_text_format() {
        let m = Metrics::new();
        m.job_finished(&report(vec![pushed()]));
        m.group_job(Some("knative"), &report(vec![pushed()]));
        m.registry_request("r.io", Some(201));
        m.registry_request("r.io", None);
        m.registry_retry("r.io");
        m.queue_depth("p.jobs", "jobs", 7, 2);
        m.group_succeeded(Some("knative"));
        let text = m.encode();
        for line in [
            "mirror_jobs_done_total 1",
            "mirror_blobs_total{outcome=\"uploaded\"} 2",
            "mirror_blobs_total{outcome=\"mounted\"} 1",
            "mirror_blob_bytes_total{outcome=\"uploaded\"} 10",
            "mirror_copy_duration_seconds_count 1",
            "mirror_registry_requests_total{registry=\"r.io\",status=\"2xx\"} 1",
            "mirror_registry_requests_total{registry=\"r.io\",status=\"error\"} 1",
            "mirror_registry_retries_total{registry=\"r.io\"} 1",
            "mirror_queue_messages{queue=\"p.jobs\",role=\"jobs\"} 7",
            "mirror_queue_consumers{queue=\"p.jobs\",role=\"jobs\"} 2",
            "mirror_jobs_in_flight 0",
            "mirror_group_jobs_total{group=\"knative\",outcome=\"done\"} 1",
        ] {
            assert!(text.lines().any(|l| l == line), "{line} in\n{text}");
        }
        assert!(
            text.contains("mirror_group_last_success_timestamp_seconds{group=\"knative\"} 1"),
            "{text}"
        );
    }
}
