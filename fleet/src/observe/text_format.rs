//! The Prometheus text format 0.0.4, made from the OpenMetrics text that
//! `prometheus-client` encodes (the only format that crate writes).
//!
//! `/metrics` answers OpenMetrics to a scraper that asks for it (`Accept:
//! application/openmetrics-text`, as Prometheus does) and the 0.0.4 text to everyone else,
//! as the Prometheus client libraries do. Sending OpenMetrics under the 0.0.4 content type
//! loses every counter's type in a 0.0.4 parser: OpenMetrics names a counter family
//! without `_total` (`# TYPE mirror_jobs_done counter`) and its samples with it, so the
//! samples match no declared family.
//!
//! For what this process registers (counters, gauges, histograms; no units, exemplars,
//! created timestamps or info metrics) the two formats differ in just these points, and
//! [`from_openmetrics`] rewrites only them: a counter family's `# HELP` and `# TYPE` name
//! takes `_total`, `# UNIT` lines and the `# EOF` terminator go, `unknown` is `untyped`,
//! and an `info` family becomes a gauge named `_info`. Samples stay as they are.

/// The 0.0.4 content type.
pub const TEXT_0_0_4: &str = "text/plain; version=0.0.4; charset=utf-8";
/// The OpenMetrics content type, as `prometheus-client` documents for its output.
pub const OPENMETRICS: &str = "application/openmetrics-text; version=1.0.0; charset=utf-8";

/// Whether an `Accept` header asks for OpenMetrics (a media range
/// `application/openmetrics-text` not refused with `q=0`).
pub fn wants_openmetrics(accept: &str) -> bool {
    accept.split(',').any(|range| {
        let mut parts = range.split(';').map(str::trim);
        let media = parts.next().unwrap_or_default();
        let refused = parts.any(|p| {
            p.strip_prefix("q=")
                .and_then(|q| q.parse::<f32>().ok())
                .is_some_and(|q| q <= 0.0)
        });
        media.eq_ignore_ascii_case("application/openmetrics-text") && !refused
    })
}

/// The 0.0.4 text of an OpenMetrics page (see the module documentation).
pub fn from_openmetrics(page: &str) -> String {
    // Family name -> its 0.0.4 name and type; `# HELP` comes before `# TYPE`, so first pass.
    let mut renamed = std::collections::HashMap::new();
    for line in page.lines() {
        if let Some(rest) = line.strip_prefix("# TYPE ") {
            if let Some((name, kind)) = rest.split_once(' ') {
                let new = match kind.trim() {
                    "counter" => (format!("{name}_total"), "counter"),
                    "info" => (format!("{name}_info"), "gauge"),
                    "unknown" => (name.to_string(), "untyped"),
                    other => (name.to_string(), other),
                };
                renamed.insert(name.to_string(), new);
            }
        }
    }
    let mut out = String::with_capacity(page.len());
    for line in page.lines() {
        if line == "# EOF" || line.starts_with("# UNIT ") {
            continue;
        }
        if let Some(rest) = line.strip_prefix("# TYPE ") {
            let name = rest.split_once(' ').map_or(rest, |(n, _)| n);
            if let Some((new, kind)) = renamed.get(name) {
                out.push_str(&format!("# TYPE {new} {kind}\n"));
                continue;
            }
        }
        if let Some(rest) = line.strip_prefix("# HELP ") {
            let (name, help) = rest.split_once(' ').unwrap_or((rest, ""));
            if let Some((new, _)) = renamed.get(name) {
                out.push_str(&format!("# HELP {new} {help}\n"));
                continue;
            }
        }
        out.push_str(line);
        out.push('\n');
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn prometheus_asks_for_openmetrics_and_curl_does_not() {
        let prometheus = "application/openmetrics-text;version=1.0.0,application/openmetrics-text;version=0.0.1;q=0.75,text/plain;version=0.0.4;q=0.5,*/*;q=0.1";
        assert!(wants_openmetrics(prometheus));
        assert!(!wants_openmetrics("*/*"));
        assert!(!wants_openmetrics("text/plain"));
        assert!(!wants_openmetrics(
            "application/openmetrics-text;q=0, text/plain"
        ));
    }

    #[test]
    fn counters_are_named_with_total_and_the_terminator_goes() {
        let page = "# HELP mirror_jobs_done Jobs done.\n# TYPE mirror_jobs_done counter\nmirror_jobs_done_total 3\n# HELP mirror_jobs_in_flight Jobs.\n# TYPE mirror_jobs_in_flight gauge\nmirror_jobs_in_flight 0\n# EOF\n";
        assert_eq!(
            from_openmetrics(page),
            "# HELP mirror_jobs_done_total Jobs done.\n# TYPE mirror_jobs_done_total counter\nmirror_jobs_done_total 3\n# HELP mirror_jobs_in_flight Jobs.\n# TYPE mirror_jobs_in_flight gauge\nmirror_jobs_in_flight 0\n"
        );
    }
}
