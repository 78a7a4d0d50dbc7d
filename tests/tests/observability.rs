//! `mirror-worker run --listen ADDR --log-format json` on the real broker: `/metrics` counts
//! what the worker did (checked against the destination registry's access log), `/readyz`
//! follows the broker connection while `/healthz` does not, and log lines are JSON objects
//! that carry the job's run id, job id and image.

use std::collections::HashMap;
use std::process::Command;
use std::time::{Duration, Instant};

use mirror_tests::fleet::connections_mentioning;
use mirror_tests::fleet::{prefix, scheduler, Worker};
use mirror_tests::test_io::{text, write};
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
    m.queue_depth("p.jobs", "jobs", 0, 0);
    m.group_succeeded(Some("g"));
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

/// `GET /metrics` with `Accept: ACCEPT` (none: no header): content type and body.
async fn metrics_as(addr: &str, accept: Option<&str>) -> (String, String) {
    let mut req = reqwest::Client::new().get(format!("http://{addr}/metrics"));
    if let Some(a) = accept {
        req = req.header("accept", a);
    }
    let resp = req.send().await.unwrap();
    let kind = resp.headers()["content-type"].to_str().unwrap().to_string();
    (kind, resp.text().await.unwrap())
}

/// A 0.0.4 scraper (`prometheus-parse`, which reads types from `# TYPE` lines as the
/// format says) reads every counter as a counter when it asks for no OpenMetrics; asked
/// for OpenMetrics as Prometheus asks, the page says so and keeps that format's rules
/// (counter families named without `_total`, `# EOF` last). Real worker, real broker.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn metrics_content_type_matches_the_body_for_both_accept_values() {
    let src = Registry::start().await.unwrap();
    let p = prefix();
    let addr = free_addr();
    let w = Worker::start(&p, &[&src], &[], &["--listen", &addr]);
    wait_status(&addr, "/readyz", 200, Duration::from_secs(30), &w).await;

    for accept in [None, Some("*/*"), Some("text/plain;version=0.0.4")] {
        let (kind, body) = metrics_as(&addr, accept).await;
        assert_eq!(
            kind, "text/plain; version=0.0.4; charset=utf-8",
            "{accept:?}"
        );
        assert!(!body.contains("# EOF"), "{body}");
        let scrape =
            prometheus_parse::Scrape::parse(body.lines().map(|l| Ok(l.to_string()))).unwrap();
        let kind_of = |name: &str| {
            scrape
                .samples
                .iter()
                .find(|s| s.metric == name)
                .map(|s| match s.value {
                    prometheus_parse::Value::Counter(_) => "counter",
                    prometheus_parse::Value::Gauge(_) => "gauge",
                    prometheus_parse::Value::Histogram(_) => "histogram",
                    prometheus_parse::Value::Summary(_) => "summary",
                    prometheus_parse::Value::Untyped(_) => "untyped",
                })
                .unwrap_or_else(|| panic!("no {name} in {body}"))
        };
        assert_eq!(kind_of("mirror_jobs_done_total"), "counter", "{body}");
        assert_eq!(
            kind_of("mirror_referrers_pushed_total"),
            "counter",
            "{body}"
        );
        assert_eq!(kind_of("mirror_jobs_in_flight"), "gauge", "{body}");
        assert_eq!(
            kind_of("mirror_copy_duration_seconds"),
            "histogram",
            "{body}"
        );
        // prometheus-parse gives a histogram's `_sum` and `_count` no type of their own
        // (the format puts them in the histogram's family): those are not lost types.
        let untyped: Vec<&str> = scrape
            .samples
            .iter()
            .filter(|s| matches!(s.value, prometheus_parse::Value::Untyped(_)))
            .map(|s| s.metric.as_str())
            .filter(|name| {
                let family = name
                    .strip_suffix("_sum")
                    .or_else(|| name.strip_suffix("_count"));
                family.is_none_or(|f| kind_of(f) != "histogram")
            })
            .collect();
        assert!(
            untyped.is_empty(),
            "families without their type: {untyped:?} in {body}"
        );
    }

    // What Prometheus sends.
    let prometheus = "application/openmetrics-text;version=1.0.0,application/openmetrics-text;version=0.0.1;q=0.75,text/plain;version=0.0.4;q=0.5,*/*;q=0.1";
    let (kind, body) = metrics_as(&addr, Some(prometheus)).await;
    assert!(
        kind.starts_with("application/openmetrics-text; version=1.0.0"),
        "{kind}"
    );
    assert_eq!(body.lines().last(), Some("# EOF"), "{body}");
    assert!(
        body.lines().any(|l| l == "# TYPE mirror_jobs_done counter"),
        "{body}"
    );
    assert!(
        body.lines().any(|l| l == "mirror_jobs_done_total 0"),
        "{body}"
    );
}

/// Every worker exports the job queues' depth, by role (jobs, retrying, parked) and
/// without the run history stream, whose week of results is not work waiting: a run's
/// history is written, an undecodable job is parked, and the worker's `/metrics` shows
/// that one parked job, itself as the jobs queue's consumer, and no history series. Real
/// worker, broker and scheduler; the undecodable job is published raw by the test.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn workers_export_the_job_queues_depth_without_the_history_stream() {
    let src = Registry::start().await.unwrap();
    let dst = Registry::start().await.unwrap();
    push_image(
        &src,
        "depth/a",
        "1",
        ImageSpec::new(vec![Layer::random(2_000)]),
    )
    .await
    .unwrap();
    let dir = tempfile::tempdir().unwrap();
    let file = write(
        dir.path(),
        "mapping_depth",
        &format!("{}/depth/a:1 {}/depth/a:1\n", src.host(), dst.host()),
    );
    let p = prefix();
    let addr = free_addr();
    let w = Worker::start(&p, &[&src, &dst], &[], &["--listen", &addr]);
    wait_status(&addr, "/readyz", 200, Duration::from_secs(30), &w).await;
    let out = scheduler(&p, &["run", "--wait", "-f", &file], &[&src, &dst], &[]);
    assert!(out.status.success(), "{}\n{}", text(&out.stderr), w.log());
    let queue = mirror_fleet::amqp::AmqpQueue::connect(p.config())
        .await
        .unwrap();
    queue.publish_raw_job(b"not a job").await.unwrap();
    queue.close().await;

    let parked = format!(
        "mirror_queue_messages{{queue=\"{p}.parked\",role=\"parked\"}}",
        p = p.as_str()
    );
    let started = Instant::now();
    let m = loop {
        let m = samples(&get(&addr, "/metrics").await.1);
        if sample(&m, &parked) == 1.0 {
            break m;
        }
        assert!(
            started.elapsed() < Duration::from_secs(40),
            "{parked} never 1: {m:?}\n{}",
            w.log()
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    };
    let jobs = |family: &str| {
        format!(
            "{family}{{queue=\"{p}.jobs\",role=\"jobs\"}}",
            p = p.as_str()
        )
    };
    assert_eq!(sample(&m, &jobs("mirror_queue_messages")), 0.0, "{m:?}");
    assert_eq!(sample(&m, &jobs("mirror_queue_consumers")), 1.0, "{m:?}");
    assert!(
        m.keys()
            .any(|k| k.starts_with("mirror_queue_messages{") && k.contains("role=\"retrying\"")),
        "{m:?}"
    );
    assert!(
        !m.keys().any(|k| k.contains(".history")),
        "the history stream is not a job queue: {m:?}"
    );
}

/// `run --groups FILE --listen ADDR` (the groups Deployment) serves `/metrics`: the job
/// queues' depth, and each group's last successful run, which a warm run (every tag up to
/// date by the tag cache, no job published) moves too. Real scheduler, worker, broker,
/// Redis; the group's schedule is every two seconds so that runs come quickly.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn groups_scheduler_serves_each_groups_last_successful_run() {
    let src = Registry::start().await.unwrap();
    let dst = Registry::start().await.unwrap();
    push_image(
        &src,
        "grp/a",
        "1",
        ImageSpec::new(vec![Layer::random(2_000)]),
    )
    .await
    .unwrap();
    let dir = tempfile::tempdir().unwrap();
    write(
        dir.path(),
        "mapping_team",
        &format!("{}/grp/a:1 {}/grp/a:1\n", src.host(), dst.host()),
    );
    let groups = write(
        dir.path(),
        "groups.yaml",
        "groups:\n- name: team\n  prefix: mapping_team\n  schedule: '*/2 * * * * *'\n",
    );
    let p = prefix();
    let w = Worker::start(&p, &[&src, &dst], &[], &[]);
    let addr = free_addr();
    let dirs = dir.path().display().to_string();
    let before = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs_f64();
    let mut sched = mirror_tests::fleet::scheduler_spawn(
        &p,
        &[
            "run", "--groups", &groups, "--dir", &dirs, "--wait", "--listen", &addr,
        ],
        &[&src, &dst],
        &[],
    );
    let key = "mirror_group_last_success_timestamp_seconds{group=\"team\"}";
    let jobs = format!(
        "mirror_queue_consumers{{queue=\"{p}.jobs\",role=\"jobs\"}}",
        p = p.as_str()
    );
    let started = Instant::now();
    let mut first = None;
    // Two successful runs: the first copies, a later one finds every tag in the tag cache.
    loop {
        let m = samples(&get(&addr, "/metrics").await.1);
        let last = sample(&m, key);
        match first {
            None if last >= before => first = Some(last),
            Some(f) if last > f => {
                assert!(m.contains_key(&jobs), "the job queues' depth: {m:?}");
                break;
            }
            _ => {}
        }
        if started.elapsed() > Duration::from_secs(60) {
            let _ = sched.kill();
            let out = sched.wait_with_output().unwrap();
            panic!(
                "{key}: {first:?} then {last}: {m:?}\n{}\n{}",
                text(&out.stderr),
                w.log()
            );
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    let _ = sched.kill();
    let out = sched.wait_with_output().unwrap();
    let log = text(&out.stderr);
    assert!(log.contains("group team: run ok"), "{log}");
    assert!(log.contains("published 0 jobs"), "a warm run: {log}");
}
