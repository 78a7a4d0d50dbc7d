//! The distributed mode on a real RabbitMQ (127.0.0.1:5672, a queue prefix of its own per
//! test): a scheduler publishes, `mirror-worker run` processes consume, results come back,
//! and nothing is lost when workers are killed, drained, or registries misbehave.

use std::time::{Duration, Instant};

use mirror_tests::fleet::{
    jobs_queue, prefix, scheduler, scheduler_spawn, status_json, wait_output, Worker,
};
use mirror_tests::test_io::{text, write};
use mirror_tests::*;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_workers_and_a_scheduler_mirror_the_mapping_with_identical_digests() {
    let src = Registry::start().await.unwrap();
    let dst = Registry::start().await.unwrap();
    let (s, d) = (src.host(), dst.host());
    let base = Layer::random(20_000);
    let mut expected = Vec::new();
    for tag in ["1", "2", "3"] {
        let img = push_image(
            &src,
            "fleet/app",
            tag,
            ImageSpec::new(vec![base.clone(), Layer::random(3_000)]),
        )
        .await
        .unwrap();
        expected.push((format!("fleet/app:{tag}"), img.digest));
    }
    let index = push_index(
        &src,
        "fleet/multi",
        "v1",
        three_platform_index_spec(),
        Format::Docker,
    )
    .await
    .unwrap();
    expected.push(("fleet/multi:v1".into(), index.digest.clone()));
    expected.push(("fleet/multi:latest".into(), index.digest));
    let dir = tempfile::tempdir().unwrap();
    let file = write(dir.path(), "mapping_fleet", &format!("{s}/fleet/app {d}/fleet/app\n{s}/fleet/multi:v1 {d}/fleet/multi:v1 {d}/fleet/multi:latest\n"));
    let p = prefix();
    let _w1 = Worker::start(&p, &[&src, &dst], &[], &[]);
    let _w2 = Worker::start(&p, &[&src, &dst], &[], &[]);
    let report = dir.path().join("report.json");
    let out = scheduler(
        &p,
        &[
            "run",
            "--wait",
            "-f",
            &file,
            "--report",
            report.to_str().unwrap(),
        ],
        &[&src, &dst],
        &[],
    );
    assert!(out.status.success(), "{}\n{}", text(&out.stderr), _w1.log());
    for (tag, digest) in &expected {
        let (repo, t) = tag.split_once(':').unwrap();
        assert_eq!(
            manifest_digest(&dst, repo, t).await.unwrap().as_ref(),
            Some(digest),
            "{tag}"
        );
        assert!(
            text(&out.stdout).contains(&format!("{digest} {d}/{tag}")),
            "{}",
            text(&out.stdout)
        );
    }
    assert!(
        text(&out.stderr).contains("5 tags copied"),
        "{}",
        text(&out.stderr)
    );
    let st = status_json(&p, &[]);
    assert_eq!(jobs_queue(&st)["ready"], 0, "the jobs queue ends empty");
    assert_eq!(st["parked"], 0);
    let run = &st["runs"][0];
    assert_eq!(
        (
            run["done"].as_u64(),
            run["pending"].as_u64(),
            run["failed"].as_u64()
        ),
        (Some(5), Some(0), Some(0)),
        "{run}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn worker_killed_in_the_middle_of_a_blob_upload_loses_no_job() {
    let src = Registry::start().await.unwrap();
    let dst = Registry::start().await.unwrap();
    let proxy = Proxy::start(&dst).await.unwrap();
    proxy.set_latency(Duration::from_millis(400));
    let d = proxy.host();
    let dir = tempfile::tempdir().unwrap();
    let seeded = seed_numbered(&src, &d, "kill/app", 3, dir.path(), |_| {
        vec![Layer::random(300_000)]
    })
    .await
    .unwrap();
    let file = seeded.mapping.clone();
    let p = prefix();
    let mut first = Worker::start(&p, &[&src, &dst], &[proxy.host()], &[]);
    let run = scheduler_spawn(
        &p,
        &["run", "--wait", "-f", &file],
        &[&src, &dst],
        &[proxy.host()],
    );
    // Wait until an upload session is open (the blob bytes are on their way), then kill -9.
    let started = Instant::now();
    while proxy.count("POST", "/blobs/uploads/") == 0 {
        assert!(
            started.elapsed() < Duration::from_secs(30),
            "no upload started: {}",
            first.log()
        );
        std::thread::sleep(Duration::from_millis(20));
    }
    first.signal("KILL");
    assert_eq!(
        first.wait_exit(Duration::from_secs(5)),
        Some(-1),
        "killed by a signal"
    );
    proxy.set_latency(Duration::ZERO);
    let _second = Worker::start(&p, &[&src, &dst], &[proxy.host()], &[]);
    let out = wait_output(run, Duration::from_secs(60));
    assert!(out.status.success(), "{}", text(&out.stderr));
    for i in 0..3 {
        assert!(
            manifest_digest(&dst, &format!("kill/app{i}"), "1")
                .await
                .unwrap()
                .is_some(),
            "app{i}"
        );
    }
    let st = status_json(&p, &[]);
    assert_eq!(jobs_queue(&st)["ready"], 0);
    assert_eq!(st["parked"], 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn worker_sent_sigterm_finishes_its_jobs_and_exits_0() {
    let src = Registry::start().await.unwrap();
    let dst = Registry::start().await.unwrap();
    let proxy = Proxy::start(&dst).await.unwrap();
    proxy.set_latency(Duration::from_millis(150));
    let (s, d) = (src.host(), proxy.host());
    push_image(
        &src,
        "term/app",
        "1",
        ImageSpec::new(vec![Layer::random(50_000)]),
    )
    .await
    .unwrap();
    let dir = tempfile::tempdir().unwrap();
    let file = write(
        dir.path(),
        "mapping_term",
        &format!("{s}/term/app:1 {d}/term/app:1\n"),
    );
    let p = prefix();
    let mut worker = Worker::start(&p, &[&src, &dst], &[proxy.host()], &[]);
    let run = scheduler_spawn(
        &p,
        &["run", "--wait", "-f", &file],
        &[&src, &dst],
        &[proxy.host()],
    );
    let started = Instant::now();
    while proxy.count("HEAD", "/manifests/") == 0 {
        assert!(
            started.elapsed() < Duration::from_secs(30),
            "job never started: {}",
            worker.log()
        );
        std::thread::sleep(Duration::from_millis(10));
    }
    worker.signal("TERM");
    assert_eq!(
        worker.wait_exit(Duration::from_secs(15)),
        Some(0),
        "{}",
        worker.log()
    );
    assert!(worker.log().contains("draining"), "{}", worker.log());
    let out = wait_output(run, Duration::from_secs(30));
    assert!(
        out.status.success(),
        "the in-flight job was finished before exit: {}",
        text(&out.stderr)
    );
    assert!(manifest_digest(&dst, "term/app", "1")
        .await
        .unwrap()
        .is_some());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn registry_returning_503_for_a_while_makes_jobs_retry_with_delays_and_succeed() {
    let src = Registry::start().await.unwrap();
    let dst = Registry::start().await.unwrap();
    let proxy = Proxy::start(&dst).await.unwrap();
    let (s, d) = (src.host(), proxy.host());
    let img = push_image(
        &src,
        "flaky/app",
        "1",
        ImageSpec::new(vec![Layer::random(5_000)]),
    )
    .await
    .unwrap();
    // Each job attempt makes one manifest PUT (no request-level retries here): two fail.
    proxy.fail(FaultRule::new(503, "/manifests/1").method("PUT").times(2));
    let dir = tempfile::tempdir().unwrap();
    let file = write(
        dir.path(),
        "mapping_flaky",
        &format!("{s}/flaky/app:1 {d}/flaky/app:1\n"),
    );
    let p = prefix();
    let _w = Worker::start(
        &p,
        &[&src, &dst],
        &[proxy.host()],
        &["--retry-attempts", "1"],
    );
    let started = Instant::now();
    let out = scheduler(
        &p,
        &["run", "--wait", "-f", &file],
        &[&src, &dst],
        &[proxy.host()],
    );
    assert!(out.status.success(), "{}\n{}", text(&out.stderr), _w.log());
    assert!(
        started.elapsed() >= Duration::from_millis(900),
        "waited 300 ms then 600 ms between attempts"
    );
    assert_eq!(
        manifest_digest(&dst, "flaky/app", "1").await.unwrap(),
        Some(img.digest)
    );
    assert_eq!(proxy.count("PUT", "/manifests/1"), 3);
    assert_eq!(status_json(&p, &[])["parked"], 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn registry_that_never_recovers_parks_the_job_with_its_reason_and_wait_exits_1() {
    let src = Registry::start().await.unwrap();
    let dst = Registry::start().await.unwrap();
    let proxy = Proxy::start(&dst).await.unwrap();
    let (s, d) = (src.host(), proxy.host());
    push_image(
        &src,
        "down/app",
        "1",
        ImageSpec::new(vec![Layer::random(5_000)]),
    )
    .await
    .unwrap();
    proxy.fail(FaultRule::new(503, "/manifests/1").method("PUT"));
    let dir = tempfile::tempdir().unwrap();
    let file = write(
        dir.path(),
        "mapping_down",
        &format!("{s}/down/app:1 {d}/down/app:1\n"),
    );
    let p = prefix();
    let _w = Worker::start(
        &p,
        &[&src, &dst],
        &[proxy.host()],
        &["--retry-attempts", "1"],
    );
    let report = dir.path().join("report.json");
    let out = scheduler(
        &p,
        &[
            "run",
            "--wait",
            "-f",
            &file,
            "--report",
            report.to_str().unwrap(),
        ],
        &[&src, &dst],
        &[proxy.host()],
    );
    assert_eq!(out.status.code(), Some(1), "{}", text(&out.stderr));
    assert!(
        text(&out.stderr).contains("HTTP 503"),
        "{}",
        text(&out.stderr)
    );
    assert_eq!(
        proxy.count("PUT", "/manifests/1"),
        3,
        "three attempts, then parked"
    );
    let list = scheduler(&p, &["dead-letters", "list"], &[], &[]);
    let listed = text(&list.stdout);
    assert!(listed.starts_with("1 parked job\n"), "{listed}");
    assert!(
        listed.contains("gave up after 3 attempts") && listed.contains("HTTP 503"),
        "{listed}"
    );
    // In JSON, `attempts` counts as the reason does (it used to show the body's
    // `"attempt": 2`, counted from 0, beside "gave up after 3 attempts").
    let listed = scheduler(&p, &["dead-letters", "list", "--json"], &[], &[]);
    let json: serde_json::Value = serde_json::from_slice(&listed.stdout).unwrap();
    assert_eq!(json[0]["attempts"], 3, "{json}");
    assert!(
        json[0]["job"].get("attempt").is_none(),
        "no second count, from 0, beside it: {json}"
    );
    assert_eq!(status_json(&p, &[])["parked"], 1);
    // Once the registry is back, replaying the parked job completes it.
    proxy.clear_faults();
    let requeue = scheduler(&p, &["dead-letters", "requeue"], &[], &[]);
    assert_eq!(text(&requeue.stdout).trim(), "requeued 1 parked job");
    let started = Instant::now();
    while manifest_digest(&dst, "down/app", "1")
        .await
        .unwrap()
        .is_none()
    {
        assert!(
            started.elapsed() < Duration::from_secs(20),
            "replayed job did not complete: {}",
            _w.log()
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert_eq!(status_json(&p, &[])["parked"], 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn status_shows_the_depth_of_a_queue_with_jobs_and_no_consumers() {
    let src = Registry::start().await.unwrap();
    let dst = Registry::start().await.unwrap();
    let d = dst.host();
    let dir = tempfile::tempdir().unwrap();
    let seeded = seed_numbered(&src, &d, "idle/app", 3, dir.path(), |_| {
        vec![Layer::random(1_000)]
    })
    .await
    .unwrap();
    let file = seeded.mapping.clone();
    let p = prefix();
    let out = scheduler(&p, &["run", "-f", &file], &[&src, &dst], &[]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert!(
        text(&out.stderr).contains("published 3 jobs for 3 tags"),
        "{}",
        text(&out.stderr)
    );
    let st = status_json(&p, &[]);
    let jobs = st["queues"]
        .as_array()
        .unwrap()
        .iter()
        .find(|q| q["role"] == "jobs")
        .unwrap()
        .clone();
    assert_eq!(
        (jobs["ready"].as_u64(), jobs["consumers"].as_u64()),
        (Some(3), Some(0)),
        "{st}"
    );
    assert_eq!(st["runs"][0]["pending"], 3);
    let human = text(&scheduler(&p, &["status"], &[], &[]).stdout);
    assert!(
        human.contains(&format!("{}.jobs", p.as_str())) && human.contains("3 pending"),
        "{human}"
    );
    // A second run does not publish again the tags whose jobs are still unfinished, and
    // fails: those tags are not at their source digest.
    let again = scheduler(&p, &["run", "-f", &file], &[&src, &dst], &[]);
    assert!(
        text(&again.stderr).contains("published 0 jobs for 0 tags")
            && text(&again.stderr).contains(
                "3 tags skipped: an earlier run's job for them has not reported (3 of them not at their source digest yet)"
            ),
        "{}",
        text(&again.stderr)
    );
    assert_eq!(again.status.code(), Some(1), "{}", text(&again.stderr));
    assert_eq!(jobs_queue(&status_json(&p, &[]))["ready"], 3);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn malformed_message_is_parked_and_the_worker_keeps_working() {
    let src = Registry::start().await.unwrap();
    let dst = Registry::start().await.unwrap();
    let (s, d) = (src.host(), dst.host());
    push_image(
        &src,
        "ok/app",
        "1",
        ImageSpec::new(vec![Layer::random(1_000)]),
    )
    .await
    .unwrap();
    let p = prefix();
    let queue = mirror_fleet::amqp::AmqpQueue::connect(p.config())
        .await
        .unwrap();
    queue.publish_raw_job(b"{ this is not a job").await.unwrap();
    let _w = Worker::start(&p, &[&src, &dst], &[], &[]);
    let dir = tempfile::tempdir().unwrap();
    let file = write(
        dir.path(),
        "mapping_ok",
        &format!("{s}/ok/app:1 {d}/ok/app:1\n"),
    );
    let out = scheduler(&p, &["run", "--wait", "-f", &file], &[&src, &dst], &[]);
    assert!(out.status.success(), "{}\n{}", text(&out.stderr), _w.log());
    let list = text(&scheduler(&p, &["dead-letters", "list"], &[], &[]).stdout);
    assert!(list.contains("cannot decode job"), "{list}");
    queue.close().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn wait_exits_non_zero_when_a_tag_failed_and_reports_why() {
    let src = Registry::start().await.unwrap();
    let dst = Registry::start().await.unwrap();
    let (s, d) = (src.host(), dst.host());
    push_bad_and_good(&src).await.unwrap();
    let dir = tempfile::tempdir().unwrap();
    let file = write(
        dir.path(),
        "mapping_bad",
        &format!("{s}/bad/app:1 {d}/bad/app:1\n{s}/good/app:1 {d}/good/app:1\n"),
    );
    let p = prefix();
    let _w = Worker::start(&p, &[&src, &dst], &[], &[]);
    let report = dir.path().join("report.json");
    let out = scheduler(
        &p,
        &[
            "run",
            "--wait",
            "-f",
            &file,
            "--report",
            report.to_str().unwrap(),
        ],
        &[&src, &dst],
        &[],
    );
    assert_eq!(out.status.code(), Some(1));
    assert!(
        text(&out.stderr).contains("digest mismatch"),
        "{}",
        text(&out.stderr)
    );
    let json: serde_json::Value = serde_json::from_slice(&std::fs::read(&report).unwrap()).unwrap();
    assert_eq!(json["totals"]["tags_failed"], 1);
    assert_eq!(json["totals"]["tags_pushed"], 1);
    assert_eq!(
        status_json(&p, &[])["parked"],
        0,
        "a permanent failure is reported, not parked"
    );
}

/// Waits until `n` workers answer the prefix's source-digest requests (status's `digests`
/// queue counts them as its consumers).
fn wait_for_digest_consumers(prefix: &str, n: u64) {
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let st = status_json(prefix, &[]);
        let consumers = st["queues"]
            .as_array()
            .and_then(|q| q.iter().find(|q| q["role"] == "digests"))
            .map(|q| q["consumers"].as_u64().unwrap_or(0))
            .unwrap_or(0);
        if consumers >= n {
            return;
        }
        assert!(
            Instant::now() < deadline,
            "no worker answers digest requests: {st}"
        );
        std::thread::sleep(Duration::from_millis(200));
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_workers_resolve_the_sources_and_a_run_resolving_them_itself_plans_the_same() {
    let src = Registry::start().await.unwrap();
    let dst = Registry::start().await.unwrap();
    let (s, d) = (src.host(), dst.host());
    let mut expected = Vec::new();
    for tag in ["1", "2", "3"] {
        let img = push_image(
            &src,
            "spread/app",
            tag,
            ImageSpec::new(vec![Layer::random(2_000)]),
        )
        .await
        .unwrap();
        expected.push((tag, img.digest));
    }
    let dir = tempfile::tempdir().unwrap();
    let file = write(
        dir.path(),
        "mapping_spread",
        &format!("{s}/spread/app:1 {d}/spread/app:1\n{s}/spread/app:2 {d}/spread/app:2\n{s}/spread/app:3 {d}/spread/app:3\n{s}/spread/app:missing {d}/spread/app:missing\n"),
    );
    let p = prefix();
    let worker = Worker::start(&p, &[&src, &dst], &[], &[]);
    wait_for_digest_consumers(&p, 1);

    let out = scheduler(&p, &["run", "--wait", "-f", &file], &[&src, &dst], &[]);
    let stderr = text(&out.stderr);
    assert!(
        !out.status.success(),
        "the missing source fails the run: {stderr}"
    );
    assert!(
        stderr.contains("3 of 4 sources resolved by the fleet"),
        "the worker answered the three it could: {stderr}\n{}",
        worker.log()
    );
    assert!(
        stderr.contains("spread/app:missing: not found"),
        "the one it could not, the scheduler resolved and reported: {stderr}"
    );
    for (tag, digest) in &expected {
        assert_eq!(
            manifest_digest(&dst, "spread/app", tag)
                .await
                .unwrap()
                .as_ref(),
            Some(digest),
            "{tag}"
        );
        assert_eq!(
            src.count("HEAD", &format!("/manifests/{tag}")),
            1,
            "one HEAD of source tag {tag} in all: {:?}",
            src.requests()
        );
    }
    assert_eq!(
        src.count("HEAD", "/manifests/missing"),
        2,
        "the worker's HEAD, then the scheduler's own"
    );

    let out = scheduler(
        &p,
        &[
            "run",
            "--wait",
            "--verify",
            "--resolve-in",
            "scheduler",
            "-f",
            &file,
        ],
        &[&src, &dst],
        &[],
    );
    let stderr = text(&out.stderr);
    assert!(!stderr.contains("resolved by the fleet"), "{stderr}");
    assert!(stderr.contains("3 already up to date"), "{stderr}");
    for (tag, _) in &expected {
        assert_eq!(src.count("HEAD", &format!("/manifests/{tag}")), 2, "{tag}");
    }
}
