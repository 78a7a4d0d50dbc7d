//! `mirror-worker run --listen ADDR --log-format json` on the real broker: `/metrics` counts
//! what the worker did (checked against the destination registry's access log), `/readyz`
//! follows the broker connection while `/healthz` does not, and log lines are JSON objects
//! that carry the job's run id, job id and image.

use std::collections::HashMap;
use std::process::Command;
use std::time::{Duration, Instant};

use mirror_tests::fleet::connections_mentioning;
use mirror_tests::fleet::{prefix, scheduler, Worker};
use mirror_tests::util::{text, write};
use mirror_tests::*;

/// A loopback address with a port nobody listens on (bound, then released).
fn free_addr() -> String {
    let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    l.local_addr().unwrap().to_string()
}

/// Status and body of `GET http://addr/path`; status 0 when nothing answers yet.
async fn get(addr: &str, path: &str) -> (u16, String) {
    match reqwest::get(format!("http://{addr}{path}")).await {
        Ok(r) => (r.status().as_u16(), r.text().await.unwrap_or_default()),
        Err(_) => (0, String::new()),
    }
}

/// Polls `path` until it answers `status`; panics with the worker's log after `limit`.
async fn wait_status(addr: &str, path: &str, status: u16, limit: Duration, w: &Worker) {
    let started = Instant::now();
    loop {
        if get(addr, path).await.0 == status {
            return;
        }
        assert!(
            started.elapsed() < limit,
            "{path} never answered {status}: {}",
            w.log()
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// `name{labels}` → value of every sample in a Prometheus text page.
fn samples(page: &str) -> HashMap<String, f64> {
    page.lines()
        .filter(|l| !l.starts_with('#') && !l.trim().is_empty())
        .filter_map(|l| {
            let (k, v) = l.rsplit_once(' ')?;
            Some((k.to_string(), v.parse().ok()?))
        })
        .collect()
}

fn sample(s: &HashMap<String, f64>, key: &str) -> f64 {
    s.get(key).copied().unwrap_or(0.0)
}

/// Every line is a JSON object; each job's "job finished" line names its run, job, image:
/// those three, one entry per finished job.
fn finished_jobs(log: &str) -> Vec<(String, String, String)> {
    let mut jobs = Vec::new();
    for line in log.lines().filter(|l| !l.trim().is_empty()) {
        let v: serde_json::Value =
            serde_json::from_str(line).unwrap_or_else(|e| panic!("not JSON ({e}): {line}"));
        assert!(v.is_object(), "{line}");
        if v["message"] == "job finished" {
            let span = &v["span"];
            assert_eq!(span["name"], "job", "{line}");
            let field = |k: &str| {
                span[k]
                    .as_str()
                    .unwrap_or_else(|| panic!("no {k}: {line}"))
                    .to_string()
            };
            jobs.push((field("run_id"), field("job_id"), field("image")));
        }
    }
    jobs
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn metrics_count_the_work_and_json_logs_carry_the_job() {
    let src = Registry::start().await.unwrap();
    let dst = Registry::start().await.unwrap();
    let (s, d) = (src.host(), dst.host());
    let base = Layer::random(20_000);
    let mut mapping = String::new();
    for repo in ["obs/a", "obs/b", "obs/c"] {
        push_image(
            &src,
            repo,
            "1",
            ImageSpec::new(vec![base.clone(), Layer::random(3_000)]),
        )
        .await
        .unwrap();
        mapping.push_str(&format!("{s}/{repo}:1 {d}/{repo}:1\n"));
    }
    let dir = tempfile::tempdir().unwrap();
    let file = write(dir.path(), "mapping_obs", &mapping);
    let p = prefix();
    let addr = free_addr();
    let w = Worker::start(
        &p,
        &[&src, &dst],
        &[],
        &["--listen", &addr, "--log-format", "json"],
    );
    wait_status(&addr, "/readyz", 200, Duration::from_secs(30), &w).await;

    let out = scheduler(&p, &["run", "--wait", "-f", &file], &[&src, &dst], &[]);
    assert!(out.status.success(), "{}\n{}", text(&out.stderr), w.log());

    // The result is published before the worker records it: wait for the count to settle.
    let started = Instant::now();
    let m = loop {
        let m = samples(&get(&addr, "/metrics").await.1);
        if sample(&m, "mirror_jobs_done_total") >= 3.0 {
            break m;
        }
        assert!(started.elapsed() < Duration::from_secs(10), "{m:?}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    assert_eq!(sample(&m, "mirror_jobs_done_total"), 3.0);
    assert!(
        !m.keys().any(|k| k.starts_with("mirror_jobs_failed_total")),
        "{m:?}"
    );
    assert_eq!(sample(&m, "mirror_copy_duration_seconds_count"), 3.0);
    assert_eq!(sample(&m, "mirror_jobs_in_flight"), 0.0);

    // Blob work as the destination registry saw it: a finished upload is a 201 PUT to an
    // upload session, a mount a 201 POST with mount=.
    let requests = dst.requests();
    let uploads = requests
        .iter()
        .filter(|r| r.method == "PUT" && r.path.contains("/blobs/uploads/") && r.status == 201)
        .count() as f64;
    let mounts = requests
        .iter()
        .filter(|r| r.method == "POST" && r.path.contains("mount=") && r.status == 201)
        .count() as f64;
    // 3 configs + 3 own layers + the base once; the base reaches the other two by mount.
    assert_eq!(uploads + mounts, 9.0, "{requests:?}");
    assert_eq!(
        sample(&m, "mirror_blobs_total{outcome=\"uploaded\"}"),
        uploads,
        "{m:?}"
    );
    assert_eq!(
        sample(&m, "mirror_blobs_total{outcome=\"mounted\"}"),
        mounts,
        "{m:?}"
    );
    assert!(sample(&m, "mirror_blob_bytes_total{outcome=\"uploaded\"}") > 20_000.0);
    for host in [&s, &d] {
        let key = format!("mirror_registry_requests_total{{registry=\"{host}\",status=\"2xx\"}}");
        assert!(sample(&m, &key) > 0.0, "{key} in {m:?}");
    }

    let log = w.log();
    let jobs = finished_jobs(&log);
    assert_eq!(jobs.len(), 3, "{log}");
    assert!(jobs.iter().all(|j| j.0 == jobs[0].0), "one run: {jobs:?}");
    let mut ids: Vec<_> = jobs.iter().map(|j| j.1.clone()).collect();
    ids.sort();
    ids.dedup();
    assert_eq!(ids.len(), 3, "{jobs:?}");
    let mut images: Vec<_> = jobs.iter().map(|j| j.2.clone()).collect();
    images.sort();
    let expected: Vec<_> = ["obs/a", "obs/b", "obs/c"]
        .iter()
        .map(|r| format!("{s}/{r}:1"))
        .collect();
    assert_eq!(images, expected);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn readiness_follows_the_broker_connection_and_health_does_not() {
    let src = Registry::start().await.unwrap();
    let p = prefix();
    let addr = free_addr();
    let w = Worker::start(&p, &[&src], &[], &["--listen", &addr]);
    wait_status(&addr, "/readyz", 200, Duration::from_secs(30), &w).await;
    assert_eq!(get(&addr, "/healthz").await.0, 200);

    let names = connections_mentioning(&p);
    assert!(
        !names.is_empty(),
        "no connection of the worker: {}",
        w.log()
    );
    for name in &names {
        let closed = Command::new("rabbitmqctl")
            .args(["close_connection", name, "test cuts the connection"])
            .output()
            .unwrap();
        assert!(closed.status.success(), "{}", text(&closed.stderr));
    }
    // Not ready while the connection is gone (the worker waits at least 500 ms before
    // reconnecting), alive all along, ready again once it has reconnected by itself.
    wait_status(&addr, "/readyz", 503, Duration::from_secs(10), &w).await;
    assert_eq!(get(&addr, "/healthz").await.0, 200);
    wait_status(&addr, "/readyz", 200, Duration::from_secs(30), &w).await;
    assert!(
        connections_mentioning(&p)
            .iter()
            .all(|n| !names.contains(n)),
        "a new connection: {}",
        w.log()
    );
    assert!(w.log().contains("reconnecting"), "{}", w.log());
}

/// The shipped alert rules and Grafana dashboard only use metrics the processes export
/// (names as Prometheus sees them: counters with `_total`, histograms with `_bucket`), so a
/// renamed metric cannot silently blind an alert.
#[test]
fn alert_rules_and_dashboard_use_only_exported_metrics() {
    use mirror_common::failure::FailureKind;
    use mirror_common::report::{CopyReport, TagResult, TagStatus};
    // A label set in every family, so that each shows in the text format.
    let m = mirror_fleet::observe::metrics::global();
    let report = |tag| CopyReport {
        source: "s".into(),
        digest: None,
        tags: vec![tag],
        stats: Default::default(),
        seconds: 0.1,
    };
    let done = report(TagResult::ok("d", TagStatus::Pushed, "sha256:0"));
    let failed = report(TagResult::failed("d", FailureKind::Network, "x"));
    for r in [&done, &failed] {
        m.job_finished(r);
        m.group_job(Some("g"), r);
    }
    m.registry_request("r", Some(200));
    m.registry_retry("r");
    m.queue_depth("p.jobs", 0, 0);
    let exported = m.encode();
    let mut known = std::collections::BTreeSet::new();
    for line in exported.lines() {
        let mut parts = line.split_whitespace();
        if let (Some("#"), Some("TYPE"), Some(name), Some(kind)) =
            (parts.next(), parts.next(), parts.next(), parts.next())
        {
            match kind {
                "counter" => {
                    known.insert(format!("{name}_total"));
                }
                "histogram" => {
                    for suffix in ["_bucket", "_sum", "_count"] {
                        known.insert(format!("{name}{suffix}"));
                    }
                }
                _ => {
                    known.insert(name.to_string());
                }
            }
        }
    }
    let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../deploy/monitoring");
    let rules = std::fs::read_to_string(root.join("alerts.yaml")).unwrap();
    let rules: serde_yaml_ng::Value = serde_yaml_ng::from_str(&rules).unwrap();
    let mut exprs: Vec<String> = rules["groups"][0]["rules"]
        .as_sequence()
        .unwrap()
        .iter()
        .map(|r| r["expr"].as_str().unwrap().to_string())
        .collect();
    assert!(exprs.len() >= 4, "{exprs:?}");
    let dashboard: serde_json::Value = serde_json::from_str(
        &std::fs::read_to_string(root.join("grafana-dashboard.json")).unwrap(),
    )
    .unwrap();
    for p in dashboard["panels"].as_array().unwrap() {
        exprs.push(p["targets"][0]["expr"].as_str().unwrap().to_string());
    }
    for expr in &exprs {
        let used: Vec<&str> = expr
            .split(|c: char| !(c.is_ascii_alphanumeric() || c == '_'))
            .filter(|w| w.starts_with("mirror_"))
            .collect();
        assert!(!used.is_empty(), "{expr}");
        for name in used {
            assert!(
                known.contains(name),
                "{name} (in {expr}) is not exported: {known:?}"
            );
        }
    }
}
