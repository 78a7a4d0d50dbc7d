//! The metrics of a scheduler's notification endpoint (`run --listen-events`): per sender
//! (a name from the senders file, so a bounded set; requests naming no known sender count
//! under `unknown`), what came in, what was acted on, what was ignored or refused and why
//! (small fixed sets of reasons), what waits between the listener and the publisher, and
//! how long after the push a tag was mirrored.

use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::{exponential_buckets, Histogram};
use prometheus_client::registry::Registry;

type Labels = Vec<(&'static str, String)>;

/// A histogram of push-to-mirrored seconds: 100 ms .. ~1.8 h.
fn latency_histogram() -> Histogram {
    Histogram::new(exponential_buckets(0.1, 2.0, 16))
}

/// The endpoint's metrics (in [`super::metrics::Metrics::events`]).
pub struct EventMetrics {
    /// `mirror_events_received_total{sender}`: events in accepted bodies (an envelope of
    /// distribution holds many).
    pub received: Family<Labels, Counter>,
    /// `mirror_events_acted_total{sender}`: pushed tags that mapping lines select, whose
    /// jobs were published.
    pub acted: Family<Labels, Counter>,
    /// `mirror_events_ignored_total{sender,reason}`: `layer`, `pull`, `mount`,
    /// `digest_only`, `delete`, `other_action`, `invalid`, `unmapped` (no line selects
    /// it), `coalesced` (folded into another push of the tag), `source_failed` (its HEAD
    /// failed: the schedule will see to it).
    pub ignored: Family<Labels, Counter>,
    /// `mirror_events_rejected_total{sender,reason}`: requests refused: `unknown_sender`
    /// (404), `unauthorized` (401), `too_large` (413), `malformed` (400), `queue_full`
    /// (503, the sender retries), `method` (405).
    pub rejected: Family<Labels, Counter>,
    /// `mirror_events_waiting`: pushes between the listener and the publisher (the bounded
    /// queue, and those folded until their window ends).
    pub waiting: Gauge,
    /// `mirror_events_push_to_mirrored_seconds{sender}`: from the push's time (the event's
    /// timestamp, else its arrival) to its tag's result.
    pub latency: Family<Labels, Histogram, fn() -> Histogram>,
}

impl Default for EventMetrics {
    fn default() -> Self {
        EventMetrics {
            received: Family::default(),
            acted: Family::default(),
            ignored: Family::default(),
            rejected: Family::default(),
            waiting: Gauge::default(),
            latency: Family::new_with_constructor(latency_histogram),
        }
    }
}

impl EventMetrics {
    /// Adds them to the process's registry.
    pub(super) fn register(&self, r: &mut Registry) {
        r.register(
            "events_received",
            "Registry events received, by sender",
            self.received.clone(),
        );
        r.register(
            "events_acted",
            "Pushed tags whose jobs were published, by sender",
            self.acted.clone(),
        );
        r.register(
            "events_ignored",
            "Events not acted on, by sender and reason",
            self.ignored.clone(),
        );
        r.register(
            "events_rejected",
            "Event requests refused, by sender and reason",
            self.rejected.clone(),
        );
        r.register(
            "events_waiting",
            "Pushes waiting between the event listener and the publisher",
            self.waiting.clone(),
        );
        r.register(
            "events_push_to_mirrored_seconds",
            "Time from a push to its tag's mirror result, by sender",
            self.latency.clone(),
        );
    }

    /// Counts one event of `sender` ignored for `reason`.
    pub fn ignore(&self, sender: &str, reason: &'static str) {
        self.ignored
            .get_or_create(&vec![
                ("sender", sender.to_string()),
                ("reason", reason.to_string()),
            ])
            .inc();
    }

    /// Counts one request of `sender` refused for `reason`.
    pub fn reject(&self, sender: &str, reason: &'static str) {
        self.rejected
            .get_or_create(&vec![
                ("sender", sender.to_string()),
                ("reason", reason.to_string()),
            ])
            .inc();
    }

    /// Counts `n` events received from `sender`.
    pub fn receive(&self, sender: &str, n: u64) {
        self.received
            .get_or_create(&vec![("sender", sender.to_string())])
            .inc_by(n);
    }

    /// Counts one push of `sender` acted on.
    pub fn act(&self, sender: &str) {
        self.acted
            .get_or_create(&vec![("sender", sender.to_string())])
            .inc();
    }

    /// Observes that a push of `sender` was mirrored `seconds` after it happened.
    pub fn mirrored(&self, sender: &str, seconds: f64) {
        self.latency
            .get_or_create(&vec![("sender", sender.to_string())])
            .observe(seconds);
    }
}
