//! What operators rely on in the distributed mode: `status` counts in-flight jobs through
//! the management API and says so when it cannot, finds the retry queues by itself, and
//! counts tags failed while planning; a worker whose broker connection is cut reconnects by
//! itself; `run --schedule` keeps starting runs until SIGTERM; mistakes (an unwritable
//! report, a dangling mapping link, a refused Redis password) are said early and by name;
//! a run nobody consumes says so; job log lines name their job.

use std::process::Command;
use std::time::{Duration, Instant};

use mirror_tests::fleet::{
    connections_mentioning, jobs_queue, prefix, scheduler, scheduler_spawn, status_json, Worker,
};
use mirror_tests::test_io::{text, write};
use mirror_tests::*;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn status_counts_in_flight_jobs_and_says_when_it_cannot() {
    let src = Registry::start().await.unwrap();
    let dst = Registry::start().await.unwrap();
    let proxy = Proxy::start(&dst).await.unwrap();
    proxy.set_latency(Duration::from_millis(1500));
    let (s, d) = (src.host(), proxy.host());
    push_image(
        &src,
        "slow/app",
        "1",
        ImageSpec::new(vec![Layer::random(1_000)]),
    )
    .await
    .unwrap();
    let dir = tempfile::tempdir().unwrap();
    let file = write(
        dir.path(),
        "mapping_slow",
        &format!("{s}/slow/app:1 {d}/slow/app:1\n"),
    );
    let p = prefix();
    let _w = Worker::start(&p, &[&src, &dst], &[proxy.host()], &[]);
    let run = scheduler_spawn(
        &p,
        &["run", "--wait", "-f", &file],
        &[&src, &dst],
        &[proxy.host()],
    );
    // The management API samples queues every few seconds: poll until it reports the job.
    let started = Instant::now();
    let in_flight = loop {
        let st = status_json(&p, &[]);
        let jobs = jobs_queue(&st);
        if jobs["in_flight"] == 1 {
            assert_eq!(jobs["consumers"], 1);
            assert!(
                st["source"]
                    .as_str()
                    .unwrap()
                    .contains("in-flight from the management API"),
                "{st}"
            );
            break true;
        }
        if started.elapsed() > Duration::from_secs(20) {
            break false;
        }
        tokio::time::sleep(Duration::from_millis(300)).await;
    };
    assert!(in_flight, "the job never showed as in flight");
    let unreachable = status_json(&p, &["--management-url", "http://127.0.0.1:9"]);
    assert!(jobs_queue(&unreachable)["in_flight"].is_null());
    assert!(
        unreachable["source"]
            .as_str()
            .unwrap()
            .contains("in-flight unknown: management API not reachable"),
        "{unreachable}"
    );
    proxy.set_latency(Duration::ZERO);
    let out = mirror_tests::fleet::wait_output(run, Duration::from_secs(60));
    assert!(out.status.success(), "{}", text(&out.stderr));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn worker_reconnects_after_its_broker_connection_is_closed() {
    let src = Registry::start().await.unwrap();
    let dst = Registry::start().await.unwrap();
    let (s, d) = (src.host(), dst.host());
    let img = push_image(
        &src,
        "recon/app",
        "1",
        ImageSpec::new(vec![Layer::random(1_000)]),
    )
    .await
    .unwrap();
    let p = prefix();
    let worker = Worker::start(&p, &[&src, &dst], &[], &[]);
    let started = Instant::now();
    let name = loop {
        if let Some(n) = connections_mentioning(&p).into_iter().next() {
            break n;
        }
        assert!(
            started.elapsed() < Duration::from_secs(20),
            "worker never connected: {}",
            worker.log()
        );
        std::thread::sleep(Duration::from_millis(200));
    };
    let closed = Command::new("rabbitmqctl")
        .args(["close_connection", &name, "test cuts the connection"])
        .output()
        .unwrap();
    assert!(closed.status.success(), "{}", text(&closed.stderr));
    let started = Instant::now();
    while !worker.log().contains("reconnecting") {
        assert!(
            started.elapsed() < Duration::from_secs(20),
            "no reconnect: {}",
            worker.log()
        );
        std::thread::sleep(Duration::from_millis(100));
    }
    let dir = tempfile::tempdir().unwrap();
    let file = write(
        dir.path(),
        "mapping_recon",
        &format!("{s}/recon/app:1 {d}/recon/app:1\n"),
    );
    let out = scheduler(&p, &["run", "--wait", "-f", &file], &[&src, &dst], &[]);
    assert!(
        out.status.success(),
        "{}\n{}",
        text(&out.stderr),
        worker.log()
    );
    assert_eq!(
        manifest_digest(&dst, "recon/app", "1").await.unwrap(),
        Some(img.digest)
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn scheduler_on_a_schedule_starts_runs_until_sigterm() {
    let src = Registry::start().await.unwrap();
    let dst = Registry::start().await.unwrap();
    let (s, d) = (src.host(), dst.host());
    push_image(
        &src,
        "cron/app",
        "1",
        ImageSpec::new(vec![Layer::random(1_000)]),
    )
    .await
    .unwrap();
    let dir = tempfile::tempdir().unwrap();
    let file = write(
        dir.path(),
        "mapping_cron",
        &format!("{s}/cron/app:1 {d}/cron/app:1\n"),
    );
    let p = prefix();
    let child = scheduler_spawn(
        &p,
        &["run", "--local", "--schedule", "*/1 * * * * *", "-f", &file],
        &[&src, &dst],
        &[],
    );
    let started = Instant::now();
    // Each run resolves the source (the destination it may not ask at all: a state file
    // would know the tag).
    while src.count("HEAD", "/manifests/1") < 2 {
        assert!(
            started.elapsed() < Duration::from_secs(20),
            "fewer than two runs started"
        );
        std::thread::sleep(Duration::from_millis(100));
    }
    let _ = Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status();
    let out = mirror_tests::fleet::wait_output(child, Duration::from_secs(20));
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    let stderr = text(&out.stderr);
    assert!(stderr.matches("next run at").count() >= 2, "{stderr}");
    assert!(
        text(&out.stdout).contains(&format!("{d}/cron/app:1")),
        "the first run copied the tag"
    );
    assert!(manifest_digest(&dst, "cron/app", "1")
        .await
        .unwrap()
        .is_some());
}

/// Even at `RUST_LOG=trace`, a worker's log never carries its broker password, neither as
/// text nor as the byte array the AMQP client's frame dumps would show. A broker user of
/// the test's own, so that the password is a string found nowhere else.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_broker_password_never_reaches_the_log_even_at_trace() {
    let user = format!("mirror-test-{:08x}", rand::random::<u32>());
    let password = format!("pw{:016x}", rand::random::<u64>());
    let ctl = |args: &[&str]| {
        let out = std::process::Command::new("rabbitmqctl")
            .args(args)
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "rabbitmqctl {args:?}: {}",
            text(&out.stderr)
        );
    };
    ctl(&["add_user", &user, &password]);
    ctl(&["set_permissions", "-p", "/", &user, ".*", ".*", ".*"]);
    let p = prefix();
    let url = format!("amqp://{user}:{password}@127.0.0.1:5672/%2f");
    let dir = tempfile::tempdir().unwrap();
    let log_path = dir.path().join("worker.log");
    let log = std::fs::File::create(&log_path).unwrap();
    let mut child = std::process::Command::new(binary("mirror-worker"))
        .args(["run", "--amqp", &url, "--queue-prefix", p.as_str()])
        .args(["--redis-prefix", p.as_str()])
        .env("RUST_LOG", "trace")
        .env("HOME", dir.path())
        .stdout(log.try_clone().unwrap())
        .stderr(log)
        .spawn()
        .unwrap();
    tokio::time::sleep(Duration::from_secs(3)).await;
    let _ = std::process::Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status();
    let _ = child.wait();
    ctl(&["delete_user", &user]);
    let logged = std::fs::read_to_string(&log_path).unwrap();
    assert!(
        logged.contains("consuming jobs"),
        "the worker connected:\n{logged}"
    );
    let as_bytes = password
        .bytes()
        .map(|b| b.to_string())
        .collect::<Vec<_>>()
        .join(", ");
    assert!(!logged.contains(&password), "password in the log");
    assert!(!logged.contains(&as_bytes), "password bytes in the log");
}

/// Mistakes in how the broker is named fail at once, with the reason: a worker given a URL
/// that is not one, or a prefix that makes no queue name, exits instead of retrying for
/// ever; `status` for a prefix nobody installed says so and creates nothing.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn broker_mistakes_fail_fast_and_status_creates_no_installation() {
    for (flag, value, says) in [
        ("--amqp", "notaurl", "invalid broker URL"),
        ("--queue-prefix", "bad prefix!", "invalid queue prefix"),
    ] {
        let started = Instant::now();
        let out = Command::new(binary("mirror-worker"))
            .args(["run", flag, value])
            .output()
            .unwrap();
        assert_eq!(out.status.code(), Some(1), "{flag} {value}");
        assert!(text(&out.stderr).contains(says), "{}", text(&out.stderr));
        assert!(started.elapsed() < Duration::from_secs(10));
    }
    let p = prefix();
    let out = scheduler(&p, &["status"], &[], &[]);
    assert!(!out.status.success());
    assert!(
        text(&out.stderr).contains(&format!(
            "no installation with queue prefix \"{}\"",
            p.as_str()
        )),
        "{}",
        text(&out.stderr)
    );
    let queues = Command::new("rabbitmqctl")
        .args(["list_queues", "-q", "name"])
        .output()
        .unwrap();
    assert!(
        !text(&queues.stdout).contains(p.as_str()),
        "status declared queues for an unknown prefix"
    );
}

/// A group's run through the fleet is visible as the group's: `status --groups` lists each
/// group with its last run (failures, pending) and its next start, and the run says its
/// group.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn status_shows_each_group_with_its_last_run_and_next_start() {
    let src = Registry::start().await.unwrap();
    let dst = Registry::start().await.unwrap();
    let dir = tempfile::tempdir().unwrap();
    let mappings = dir.path().join("mappings");
    std::fs::create_dir_all(&mappings).unwrap();
    seed_numbered(&src, &dst.host(), "team/app", 2, &mappings, |_| {
        vec![Layer::random(1_000)]
    })
    .await
    .unwrap();
    let groups = write(
        dir.path(),
        "groups.yaml",
        "groups:\n\
         - name: team\n  files: '*'\n  schedule: '@hourly'\n\
         - name: idle\n  prefix: mapping_none\n",
    );
    let p = prefix();
    let _w = Worker::start(&p, &[&src, &dst], &[], &[]);
    let dir_flag = mappings.display().to_string();
    let args = [
        "run", "--wait", "--groups", &groups, "--group", "team", "--dir", &dir_flag,
    ];
    let out = scheduler(&p, &args, &[&src, &dst], &[]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    let st = status_json(&p, &["--groups", &groups]);
    assert_eq!(st["runs"][0]["group"], "team", "{st}");
    let team = &st["groups"][0];
    assert_eq!(team["name"], "team");
    assert_eq!(team["last_run"], st["runs"][0]["run_id"]);
    assert_eq!(
        (team["last_failed"].as_u64(), team["last_pending"].as_u64()),
        (Some(0), Some(0))
    );
    assert!(team["next_start"].as_str().is_some(), "{st}");
    assert!(st["groups"][1]["last_run"].is_null());
    // Without --groups the run comes from Redis, which keeps its group too.
    let st = status_json(&p, &[]);
    assert_eq!(st["runs_source"], "Redis", "{st}");
    assert_eq!(st["runs"][0]["group"], "team", "{st}");
    let human = text(&scheduler(&p, &["status", "--groups", &groups], &[], &[]).stdout);
    assert!(human.contains("(group team)"), "{human}");
    assert!(
        human.contains("idle: no run in the window; next start no schedule"),
        "{human}"
    );
}

/// `status` without the workers' `--retry-delays` still finds their retry queues (through
/// the management API's queue listing) and counts the job waiting in one; no raw broker
/// error. Real: broker and management API. Shaped: nothing (the job is put in the retry
/// queue by the queue's own retry, as a worker would).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn status_finds_the_retry_queues_of_the_workers_delays_by_itself() {
    use mirror_common::queue::JobQueue;
    let p = prefix();
    let mut config = p.config();
    config.retry_delays = vec![Duration::from_secs(30), Duration::from_secs(60)];
    let queue = mirror_fleet::amqp::AmqpQueue::connect(config)
        .await
        .unwrap();
    let job = mirror_common::job::Job::new(
        uuid::Uuid::new_v4(),
        mirror_tests::test_io::image_ref("127.0.0.1:1/r/app:1".into()),
        format!("sha256:{}", "0".repeat(64)),
        vec![mirror_tests::test_io::image_ref(
            "127.0.0.1:2/r/app:1".into(),
        )],
        vec![],
    );
    queue.publish(&job).await.unwrap();
    let delivery = queue.receive().await.unwrap();
    delivery.acker.retry(&delivery.job).await.unwrap();
    let args: Vec<String> = [
        "status",
        "--json",
        "--amqp",
        mirror_tests::fleet::AMQP_URL,
        "--queue-prefix",
        &p,
        "--redis-prefix",
        &p,
    ]
    .iter()
    .map(|s| s.to_string())
    .collect();
    let out = mirror_tests::mirror::run_binary("mirror-scheduler", &args);
    let err = text(&out.stderr);
    queue.delete_topology().await.unwrap();
    queue.close().await;
    assert!(out.status.success(), "{err}");
    assert!(!err.contains("NOT_FOUND"), "{err}");
    let st: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(st["retrying"], 1, "{st}");
    let retry_queue = format!("{}.retry.30000ms", p.as_str());
    assert!(
        st["queues"]
            .as_array()
            .unwrap()
            .iter()
            .any(|q| q["name"] == retry_queue.as_str() && q["role"] == "retrying"),
        "{st}"
    );
    assert!(
        st["source"]
            .as_str()
            .unwrap()
            .contains("retry queues and in-flight from the management API"),
        "{st}"
    );
}

/// A source tag missing at planning time fails the run (exit 1) and is in the run's
/// record: `status` counts it failed, with its reason. Real: registries, broker.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_tag_that_failed_while_planning_is_a_failure_in_status() {
    let src = Registry::start().await.unwrap();
    let dst = Registry::start().await.unwrap();
    let dir = tempfile::tempdir().unwrap();
    let file = write(
        dir.path(),
        "mapping_missing",
        &format!("{}/gone/app:1 {}/gone/app:1\n", src.host(), dst.host()),
    );
    let p = prefix();
    let out = scheduler(&p, &["run", "-f", &file], &[&src, &dst], &[]);
    assert!(!out.status.success(), "{}", text(&out.stderr));
    let st = status_json(&p, &[]);
    let run = &st["runs"][0];
    assert_eq!(run["failed"], 1, "{st}");
    assert_eq!(run["done"], 0, "{st}");
    assert_eq!(
        run["failures"][0]["destination"],
        format!("{}/gone/app:1", dst.host()),
        "{st}"
    );
}

/// `run --wait` with no worker on the prefix says so instead of waiting without a word.
/// Real: broker, registries; no worker.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn run_wait_with_no_worker_says_nobody_consumes_the_jobs() {
    let src = Registry::start().await.unwrap();
    let dst = Registry::start().await.unwrap();
    let dir = tempfile::tempdir().unwrap();
    let seeded = seed_numbered(&src, &dst.host(), "lonely/app", 1, dir.path(), |_| {
        vec![Layer::random(1_000)]
    })
    .await
    .unwrap();
    let p = prefix();
    let mut run = scheduler_spawn(
        &p,
        &["run", "--wait", "-f", &seeded.mapping],
        &[&src, &dst],
        &[],
    );
    std::thread::sleep(Duration::from_secs(8));
    let _ = run.kill();
    let out = run.wait_with_output().unwrap();
    let err = text(&out.stderr);
    assert!(
        err.contains(&format!(
            "no worker consumes {}.jobs (0 consumers)",
            p.as_str()
        )),
        "{err}"
    );
}

/// A Redis that refuses the URL's credentials fails `status`, `run` and the worker at the
/// start with an error naming the Redis URL without its password (a Redis that is down
/// still degrades). Real: Redis answering `AUTH nobody <password>` with WRONGPASS.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn redis_refusing_the_credentials_fails_the_start_naming_the_url_without_password() {
    let p = prefix();
    let queue = mirror_fleet::amqp::AmqpQueue::connect(p.config())
        .await
        .unwrap();
    queue.close().await;
    let bad = "redis://nobody:s3cret-pw@127.0.0.1:6379";
    let out = scheduler(&p, &["status", "--redis", bad], &[], &[]);
    let err = text(&out.stderr);
    assert!(!out.status.success(), "{err}");
    assert!(
        err.contains("Redis at redis://nobody@127.0.0.1:6379 refused the credentials"),
        "{err}"
    );
    assert!(!err.contains("s3cret-pw"), "{err}");
    let mut worker = Worker::start(&p, &[], &[], &["--redis", bad]);
    assert_eq!(worker.wait_exit(Duration::from_secs(20)), Some(1));
    let log = worker.log();
    assert!(log.contains("refused the credentials"), "{log}");
    assert!(!log.contains("s3cret-pw"), "{log}");
}

/// `--report` to a path that cannot be written fails the run before anything is copied,
/// naming the path. Real: registries.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_unwritable_report_path_fails_the_run_before_any_copy() {
    let src = Registry::start().await.unwrap();
    let dst = Registry::start().await.unwrap();
    let dir = tempfile::tempdir().unwrap();
    let seeded = seed_numbered(&src, &dst.host(), "early/app", 1, dir.path(), |_| {
        vec![Layer::random(1_000)]
    })
    .await
    .unwrap();
    let report = dir.path().join("no-such-dir").join("report.json");
    let report = report.display().to_string();
    let mut args: Vec<String> = ["run", "--local", "-f", &seeded.mapping, "--report", &report]
        .iter()
        .map(|s| s.to_string())
        .collect();
    args.extend(mirror_tests::mirror::registry_flags(&[&src, &dst]));
    let out = mirror_tests::mirror::run_binary("mirror-scheduler", &args);
    let err = text(&out.stderr);
    assert!(!out.status.success(), "{err}");
    assert!(
        err.contains(&format!("--report {report}: cannot write")),
        "{err}"
    );
    assert_eq!(
        manifest_digest(&dst, "early/app0", "1").await.unwrap(),
        None
    );
}

/// A `mapping_*` symbolic link in `--dir` that leads nowhere is a rejected file named with
/// why, not a file silently left out. Real: the file system.
#[test]
fn a_dangling_mapping_link_in_the_dir_is_a_rejected_file() {
    let dir = tempfile::tempdir().unwrap();
    write(dir.path(), "mapping_a", "q.io/a/b:1 r.io/a/b:1\n");
    std::os::unix::fs::symlink("gone", dir.path().join("mapping_b")).unwrap();
    let d = dir.path().display().to_string();
    let args: Vec<String> = ["validate", "--dir", &d, "--prefix", "mapping_"]
        .iter()
        .map(|s| s.to_string())
        .collect();
    let out = mirror_tests::mirror::run_binary("mirror-scheduler", &args);
    let err = text(&out.stderr);
    assert!(!out.status.success(), "{err}");
    assert!(
        err.contains("mapping_b: cannot read mapping file (a symbolic link to gone)"),
        "{err}"
    );
    assert!(
        err.contains("1 files rejected") || err.contains("file rejected"),
        "{err}"
    );
}

/// `run --groups` says each group's next start, and `--now` starts a run at once (then
/// the schedule goes on). Real: registries, embedded mode.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn run_groups_says_each_next_start_and_now_starts_at_once() {
    let src = Registry::start().await.unwrap();
    let dst = Registry::start().await.unwrap();
    let dir = tempfile::tempdir().unwrap();
    let mappings = dir.path().join("mappings");
    std::fs::create_dir_all(&mappings).unwrap();
    let seeded = seed_numbered(&src, &dst.host(), "now/app", 1, &mappings, |_| {
        vec![Layer::random(1_000)]
    })
    .await
    .unwrap();
    let groups = write(
        dir.path(),
        "groups.yaml",
        "groups:\n- name: team\n  files: '*'\n  schedule: '@every 1h'\n",
    );
    let dir_flag = mappings.display().to_string();
    let mut args: Vec<String> = [
        "run", "--local", "--now", "--groups", &groups, "--dir", &dir_flag,
    ]
    .iter()
    .map(|s| s.to_string())
    .collect();
    args.extend(mirror_tests::mirror::registry_flags(&[&src, &dst]));
    let state = dir.path().join("state.db").display().to_string();
    args.extend(["--state".to_string(), state]);
    let mut child = Command::new(binary("mirror-scheduler"))
        .args(&args)
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let started = Instant::now();
    while manifest_digest(&dst, "now/app0", "1")
        .await
        .unwrap()
        .is_none()
    {
        assert!(
            started.elapsed() < Duration::from_secs(30),
            "no run started"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    tokio::time::sleep(Duration::from_millis(500)).await;
    let _ = Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status();
    let _ = child.wait();
    let out = child.wait_with_output().unwrap();
    let err = text(&out.stderr);
    assert!(err.contains("group team: run starts now (--now)"), "{err}");
    assert!(err.contains("group team: next start at "), "{err}");
    assert!(err.contains("group team: run ok"), "{err}");
    assert_eq!(
        manifest_digest(&dst, "now/app0", "1").await.unwrap(),
        Some(seeded.images[0].digest.clone())
    );
}

/// The worker's "retrying later" line names the job, its run, image, destinations and the
/// error. Real: broker, worker, a source that refuses connections (127.0.0.1:1).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_workers_retry_line_names_job_run_image_destination_and_error() {
    use mirror_common::queue::JobQueue;
    let p = prefix();
    let queue = mirror_fleet::amqp::AmqpQueue::connect(p.config())
        .await
        .unwrap();
    let job = mirror_common::job::Job::new(
        uuid::Uuid::new_v4(),
        mirror_tests::test_io::image_ref("127.0.0.1:1/r/app:1".into()),
        format!("sha256:{}", "0".repeat(64)),
        vec![mirror_tests::test_io::image_ref(
            "127.0.0.1:2/r/app:1".into(),
        )],
        vec![],
    );
    queue.publish(&job).await.unwrap();
    queue.close().await;
    let insecure = ["127.0.0.1:1".to_string(), "127.0.0.1:2".to_string()];
    let w = Worker::start(
        &p,
        &[],
        &insecure,
        &["--retry-attempts", "1", "--log-format", "json"],
    );
    let started = Instant::now();
    let line = loop {
        let log = w.log();
        if let Some(l) = log.lines().find(|l| l.contains("retrying later")) {
            break l.to_string();
        }
        assert!(started.elapsed() < Duration::from_secs(30), "{log}");
        std::thread::sleep(Duration::from_millis(100));
    };
    // In a JSON log (as a collector reads it), the line's own fields, not its span's.
    let line: serde_json::Value = serde_json::from_str(&line).expect("a JSON log line");
    assert_eq!(line["job_id"], job.id.to_string(), "{line}");
    assert_eq!(line["run_id"], job.run_id.to_string(), "{line}");
    assert_eq!(line["image"], "127.0.0.1:1/r/app:1", "{line}");
    assert_eq!(line["destination"], "127.0.0.1:2/r/app:1", "{line}");
    assert!(
        line["error"].as_str().unwrap().contains("127.0.0.1:1"),
        "{line}"
    );
}

/// `status --runs N` shows the N newest runs, newest first (and reads the history from the
/// oldest of them on, found through Redis's index of runs). Real: registries, broker,
/// Redis, a worker.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn status_shows_the_newest_runs_it_is_asked_for() {
    let src = Registry::start().await.unwrap();
    let dst = Registry::start().await.unwrap();
    let dir = tempfile::tempdir().unwrap();
    let seeded = seed_numbered(&src, &dst.host(), "newest/app", 1, dir.path(), |_| {
        vec![Layer::random(1_000)]
    })
    .await
    .unwrap();
    let p = prefix();
    let _w = Worker::start(&p, &[&src, &dst], &[], &[]);
    let mut run_ids = Vec::new();
    for _ in 0..3 {
        let child = mirror_tests::fleet::scheduler_spawn(
            &p,
            &["run", "--wait", "--verify", "-f", &seeded.mapping],
            &[&src, &dst],
            &[],
        );
        let out = mirror_tests::fleet::wait_output(child, std::time::Duration::from_secs(120));
        let err = text(&out.stderr);
        assert!(out.status.success(), "{err}");
        let id = err
            .lines()
            .find_map(|l| l.strip_prefix("run ")?.split(':').next())
            .unwrap()
            .to_string();
        run_ids.push(id);
        // Runs are ordered by their start in whole seconds.
        std::thread::sleep(std::time::Duration::from_millis(1100));
    }
    let shown = |st: &serde_json::Value| -> Vec<String> {
        st["runs"]
            .as_array()
            .unwrap()
            .iter()
            .map(|r| r["run_id"].as_str().unwrap().to_string())
            .collect()
    };
    let st = status_json(&p, &["--runs", "2"]);
    assert_eq!(shown(&st), [run_ids[2].clone(), run_ids[1].clone()], "{st}");
    assert_eq!(st["runs"][0]["up_to_date"], 1, "{st}");
    let st = status_json(&p, &["--runs", "3"]);
    assert_eq!(
        shown(&st),
        [run_ids[2].clone(), run_ids[1].clone(), run_ids[0].clone()]
    );
}

/// `status` shows the newest runs from Redis alone: with the run history on the broker
/// emptied (the stream deleted and declared anew), a finished run is still shown with its
/// counts and each failure's reason (a worker's and one from planning), and the output says
/// the runs came from Redis. Real: registries, broker,
/// Redis, a worker; the history is emptied the way an operator would (`rabbitmqctl`).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn status_shows_the_newest_runs_from_redis_without_the_history() {
    let src = Registry::start().await.unwrap();
    let dst = Registry::start().await.unwrap();
    let (s, d) = (src.host(), dst.host());
    push_bad_and_good(&src).await.unwrap();
    let dir = tempfile::tempdir().unwrap();
    let file = write(
        dir.path(),
        "mapping_mixed",
        &format!(
            "{s}/bad/app:1 {d}/bad/app:1\n{s}/good/app:1 {d}/good/app:1\n\
             {s}/gone/app:1 {d}/gone/app:1\n"
        ),
    );
    let p = prefix();
    let _w = Worker::start(&p, &[&src, &dst], &[], &[]);
    let out = scheduler(&p, &["run", "--wait", "-f", &file], &[&src, &dst], &[]);
    assert_eq!(out.status.code(), Some(1), "{}", text(&out.stderr));
    empty_the_history(&p).await;

    // The worker counts a job in Redis just after its result is out (which ends the wait).
    let started = Instant::now();
    let st = loop {
        let st = status_json(&p, &[]);
        let reported = st["runs"][0]["done"].as_u64().unwrap_or(0)
            + st["runs"][0]["failed"].as_u64().unwrap_or(0);
        if reported == 3 || started.elapsed() > Duration::from_secs(10) {
            break st;
        }
        std::thread::sleep(Duration::from_millis(200));
    };
    assert_eq!(st["runs_source"], "Redis", "{st}");
    let run = &st["runs"][0];
    assert_eq!(
        [&run["tags"], &run["done"], &run["failed"], &run["pending"]].map(|v| v.as_u64()),
        [Some(3), Some(1), Some(2), Some(0)],
        "{st}"
    );
    let reason_of = |dest: String| {
        run["failures"]
            .as_array()
            .unwrap()
            .iter()
            .find(|f| f["destination"] == dest)
            .map(|f| f["reason"].as_str().unwrap_or_default().to_string())
            .unwrap_or_else(|| panic!("no failure of {dest}: {st}"))
    };
    assert!(
        reason_of(format!("{d}/bad/app:1")).contains("digest mismatch"),
        "{st}"
    );
    assert!(!reason_of(format!("{d}/gone/app:1")).is_empty(), "{st}");
    let human = text(&scheduler(&p, &["status"], &[], &[]).stdout);
    assert!(human.contains("runs (1, from Redis):"), "{human}");
    assert!(human.contains("digest mismatch"), "{human}");
}

/// Deletes the prefix's history stream and declares it anew, empty (as after a change of
/// its retention), and checks that nothing of the run is left in it.
async fn empty_the_history(p: &mirror_tests::fleet::Prefix) {
    let queue = mirror_fleet::amqp::AmqpQueue::connect(p.config())
        .await
        .unwrap();
    let history = queue.queue_names().history;
    let day = Duration::from_secs(86_400);
    assert!(!queue.read_history(day).await.unwrap().is_empty());
    queue.close().await;
    let out = Command::new("rabbitmqctl")
        .args(["delete_queue", &history])
        .output()
        .expect("rabbitmqctl");
    assert!(out.status.success(), "{}", text(&out.stderr));
    let queue = mirror_fleet::amqp::AmqpQueue::connect(p.config())
        .await
        .unwrap();
    assert!(queue.read_history(day).await.unwrap().is_empty());
    queue.close().await;
}
