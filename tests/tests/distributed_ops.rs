//! What operators rely on in the distributed mode: `status` counts in-flight jobs through
//! the management API and says so when it cannot; a worker whose broker connection is cut
//! reconnects by itself; `run --schedule` keeps starting runs until SIGTERM.

use std::process::Command;
use std::time::{Duration, Instant};

use mirror_tests::fleet::{
    connections_mentioning, jobs_queue, prefix, scheduler, scheduler_spawn, status_json, Worker,
};
use mirror_tests::util::{text, write};
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
    while dst.count("HEAD", "/manifests/1") < 2 {
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
    let human = text(&scheduler(&p, &["status", "--groups", &groups], &[], &[]).stdout);
    assert!(human.contains("(group team)"), "{human}");
    assert!(
        human.contains("idle: no run in the window; next start no schedule"),
        "{human}"
    );
}
