//! What the fleet shares through Redis (127.0.0.1:6379, keys under the test's own prefix):
//! each blob crosses the wire once for the whole fleet, stale knowledge is repaired, a dead
//! uploader's lease expires, a 429 pauses every worker, a no-op run publishes nothing, and a
//! Redis that goes away costs speed, not correctness.

use std::collections::HashSet;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use mirror_common::index::BlobIndex;
use mirror_fleet::store::{Redis, RedisConfig};
use mirror_tests::fleet::{
    prefix, scheduler, scheduler_spawn, status_json, wait_output, Worker, REDIS_URL,
};
use mirror_tests::test_io::{text, write};
use mirror_tests::*;

fn hex(digest: &str) -> &str {
    digest.trim_start_matches("sha256:")
}

/// Completed blob uploads of `digest` at a registry (the PUT that ends a session).
fn uploads(reg: &Registry, digest: &str) -> usize {
    reg.requests()
        .iter()
        .filter(|r| r.method == "PUT" && r.status == 201 && r.path.contains(hex(digest)))
        .count()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn four_workers_upload_each_distinct_blob_once_and_mount_it_everywhere_else() {
    let src = Registry::start().await.unwrap();
    let dst = Registry::start().await.unwrap();
    let d = dst.host();
    let base = Layer::random(400_000);
    let dir = tempfile::tempdir().unwrap();
    let seeded = seed_numbered(&src, &d, "shared/svc", 8, dir.path(), |i| {
        vec![base.clone(), Layer::random(2_000 + i as u64)]
    })
    .await
    .unwrap();
    let file = seeded.mapping.clone();
    let blobs: HashSet<String> = seeded
        .images
        .iter()
        .flat_map(|img| img.blobs.iter().map(|b| b.0.clone()))
        .collect();
    let p = prefix();
    let workers: Vec<Worker> = (0..4)
        .map(|_| Worker::start(&p, &[&src, &dst], &[], &[]))
        .collect();
    let out = scheduler(&p, &["run", "--wait", "-f", &file], &[&src, &dst], &[]);
    assert!(
        out.status.success(),
        "{}\n{}",
        text(&out.stderr),
        workers[0].log()
    );
    for b in &blobs {
        assert_eq!(
            uploads(&dst, b),
            1,
            "blob {b} crossed the wire exactly once"
        );
    }
    let mounts = dst
        .requests()
        .into_iter()
        .filter(|r| {
            r.path.contains("mount=") && r.path.contains(hex(base.digest())) && r.status == 201
        })
        .count();
    assert_eq!(
        mounts, 7,
        "the shared base layer was mounted into the seven other repositories"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_no_op_rerun_publishes_no_job_unless_asked_to_verify() {
    let src = Registry::start().await.unwrap();
    let dst = Registry::start().await.unwrap();
    let d = dst.host();
    let dir = tempfile::tempdir().unwrap();
    let seeded = seed_numbered(&src, &d, "noop/app", 3, dir.path(), |_| {
        vec![Layer::random(1_000)]
    })
    .await
    .unwrap();
    let file = seeded.mapping.clone();
    let p = prefix();
    let _w = Worker::start(&p, &[&src, &dst], &[], &[]);
    let first = scheduler(&p, &["run", "--wait", "-f", &file], &[&src, &dst], &[]);
    assert!(first.status.success(), "{}", text(&first.stderr));
    let dst_requests = dst.requests().len();
    let second = scheduler(&p, &["run", "--wait", "-f", &file], &[&src, &dst], &[]);
    let stderr = text(&second.stderr);
    assert!(second.status.success(), "{stderr}");
    assert!(
        stderr.contains("published 0 jobs for 0 tags; 3 tags up to date by the tag cache"),
        "{stderr}"
    );
    assert!(
        stderr.contains("0 tags copied, 3 already up to date"),
        "{stderr}"
    );
    assert_eq!(
        dst.requests().len(),
        dst_requests,
        "no request at all reached the destination"
    );
    // The run counters in Redis count those tags, though no job ran for them.
    let newest = &status_json(&p, &[])["runs"][0];
    assert_eq!(
        (
            newest["tags"].as_u64(),
            newest["up_to_date"].as_u64(),
            newest["pending"].as_u64()
        ),
        (Some(3), Some(3), Some(0)),
        "{newest}"
    );
    let verify = scheduler(
        &p,
        &["run", "--wait", "--verify", "-f", &file],
        &[&src, &dst],
        &[],
    );
    let stderr = text(&verify.stderr);
    assert!(verify.status.success(), "{stderr}");
    // All three published: the worker freed the first run's pending marks as it reported.
    assert!(
        stderr.contains("published 3 jobs for 3 tags")
            && stderr.contains("0 tags copied, 3 already up to date"),
        "{stderr}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_stale_index_entry_still_ends_in_a_correct_copy_and_is_removed() {
    let src = Registry::start().await.unwrap();
    let dst = Registry::start().await.unwrap();
    let (s, d) = (src.host(), dst.host());
    let img = push_image(
        &src,
        "stale/app",
        "1",
        ImageSpec::new(vec![Layer::random(30_000)]),
    )
    .await
    .unwrap();
    let layer = img.blobs[1].0.clone();
    let p = prefix();
    let redis = Redis::connect(RedisConfig {
        prefix: p.to_string(),
        ..RedisConfig::new(REDIS_URL)
    })
    .await;
    // The fleet believes another repository of the destination holds the layer; it does not.
    redis.index().record(&d, "gone/repo", &layer).await;
    let dir = tempfile::tempdir().unwrap();
    let file = write(
        dir.path(),
        "mapping_stale",
        &format!("{s}/stale/app:1 {d}/stale/app:1\n"),
    );
    let _w = Worker::start(&p, &[&src, &dst], &[], &[]);
    let out = scheduler(&p, &["run", "--wait", "-f", &file], &[&src, &dst], &[]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert_eq!(
        manifest_digest(&dst, "stale/app", "1").await.unwrap(),
        Some(img.digest)
    );
    let declined = dst
        .requests()
        .into_iter()
        .filter(|r| r.path.contains("from=gone/repo") && r.status == 202)
        .count();
    assert_eq!(declined, 1, "the mount was tried and declined");
    assert_eq!(
        redis.index().repositories(&d, &layer).await,
        ["stale/app"],
        "the stale entry is gone"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_lease_owner_killed_mid_upload_is_replaced_after_the_lease_expires() {
    let src = Registry::start().await.unwrap();
    let dst = Registry::start().await.unwrap();
    let proxy = Proxy::start(&dst).await.unwrap();
    proxy.set_latency(Duration::from_millis(800));
    let d = proxy.host();
    let layer = Layer::random(200_000);
    let dir = tempfile::tempdir().unwrap();
    let seeded = seed_numbered(
        &src,
        &d,
        "lease/app",
        2,
        dir.path(),
        |_| vec![layer.clone()],
    )
    .await
    .unwrap();
    let file = seeded.mapping.clone();
    let p = prefix();
    let lease = ["--lease-ttl", "2s"];
    let mut first = Worker::start(&p, &[&src, &dst], &[proxy.host()], &lease);
    let run = scheduler_spawn(
        &p,
        &["run", "--wait", "-f", &file],
        &[&src, &dst],
        &[proxy.host()],
    );
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
    first.wait_exit(Duration::from_secs(5));
    let killed_at = Instant::now();
    proxy.set_latency(Duration::ZERO);
    let second = Worker::start(&p, &[&src, &dst], &[proxy.host()], &lease);
    let out = wait_output(run, Duration::from_secs(60));
    assert!(
        out.status.success(),
        "{}\n{}",
        text(&out.stderr),
        second.log()
    );
    for i in 0..2 {
        assert!(manifest_digest(&dst, &format!("lease/app{i}"), "1")
            .await
            .unwrap()
            .is_some());
    }
    let completed: Vec<_> = proxy
        .requests()
        .into_iter()
        .filter(|r| r.method == "PUT" && r.path.contains(hex(layer.digest())) && r.status == 201)
        .collect();
    assert_eq!(
        completed.len(),
        1,
        "the layer was uploaded once, by the second worker"
    );
    assert!(completed[0].at >= killed_at, "after the owner died");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_429_with_retry_after_seen_by_one_worker_pauses_the_others() {
    let src = Registry::start().await.unwrap();
    let dst = Registry::start().await.unwrap();
    let proxy = Proxy::start(&dst).await.unwrap();
    proxy.set_latency(Duration::from_millis(50));
    let d = proxy.host();
    let dir = tempfile::tempdir().unwrap();
    let seeded = seed_numbered(&src, &d, "slow/app", 6, dir.path(), |_| {
        vec![Layer::random(50_000)]
    })
    .await
    .unwrap();
    let file = seeded.mapping.clone();
    // The first blob upload session is refused with a request to wait 2 s.
    proxy.fail(
        FaultRule::new(429, "/blobs/uploads/")
            .method("POST")
            .retry_after(2)
            .times(1),
    );
    let p = prefix();
    let _w1 = Worker::start(&p, &[&src, &dst], &[proxy.host()], &[]);
    let _w2 = Worker::start(&p, &[&src, &dst], &[proxy.host()], &[]);
    let out = scheduler(
        &p,
        &["run", "--wait", "-f", &file],
        &[&src, &dst],
        &[proxy.host()],
    );
    assert!(out.status.success(), "{}\n{}", text(&out.stderr), _w1.log());
    let seen = proxy.requests();
    let throttled = seen
        .iter()
        .find(|r| r.status == 429)
        .expect("the 429 was answered")
        .at;
    // Requests already on their way may land just after the 429; after that, nothing from
    // either worker until Retry-After has passed.
    let quiet: Vec<_> = seen
        .iter()
        .filter(|r| {
            r.at > throttled + Duration::from_millis(300)
                && r.at < throttled + Duration::from_millis(1800)
        })
        .map(|r| format!("{} {}", r.method, r.path))
        .collect();
    assert!(quiet.is_empty(), "requests during the pause: {quiet:?}");
    assert!(
        seen.iter()
            .any(|r| r.at >= throttled + Duration::from_millis(1900)),
        "work resumed after the pause"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn redis_stopped_in_the_middle_of_a_run_costs_no_correctness() {
    let src = Registry::start().await.unwrap();
    let dst = Registry::start().await.unwrap();
    let proxy = Proxy::start(&dst).await.unwrap();
    proxy.set_latency(Duration::from_millis(100));
    let d = proxy.host();
    let base = Layer::random(50_000);
    let dir = tempfile::tempdir().unwrap();
    let seeded = seed_numbered(&src, &d, "rd/app", 6, dir.path(), |i| {
        vec![base.clone(), Layer::random(1_000 + i as u64)]
    })
    .await
    .unwrap();
    let file = seeded.mapping.clone();
    let expected: Vec<(String, String)> = seeded
        .images
        .iter()
        .enumerate()
        .map(|(i, img)| (format!("rd/app{i}"), img.digest.clone()))
        .collect();
    // A Redis of this test's own, so stopping it disturbs nobody else.
    let port = {
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        l.local_addr().unwrap().port()
    };
    let mut redis = Command::new("redis-server")
        .args([
            "--port",
            &port.to_string(),
            "--bind",
            "127.0.0.1",
            "--save",
            "",
            "--appendonly",
            "no",
        ])
        .stdout(Stdio::null())
        .spawn()
        .expect("redis-server");
    std::thread::sleep(Duration::from_millis(300));
    let url = format!("redis://127.0.0.1:{port}");
    let p = prefix();
    let w = Worker::start(&p, &[&src, &dst], &[proxy.host()], &["--redis", &url]);
    let run = scheduler_spawn(
        &p,
        &["run", "--wait", "-f", &file, "--redis", &url],
        &[&src, &dst],
        &[proxy.host()],
    );
    let started = Instant::now();
    while proxy.count("POST", "/blobs/uploads/") == 0 {
        assert!(
            started.elapsed() < Duration::from_secs(30),
            "nothing started: {}",
            w.log()
        );
        std::thread::sleep(Duration::from_millis(20));
    }
    let _ = redis.kill();
    let _ = redis.wait();
    let out = wait_output(run, Duration::from_secs(90));
    assert!(out.status.success(), "{}\n{}", text(&out.stderr), w.log());
    for (repo, digest) in &expected {
        assert_eq!(
            manifest_digest(&dst, repo, "1").await.unwrap().as_ref(),
            Some(digest),
            "{repo}"
        );
    }
    assert!(
        w.log().contains("Redis"),
        "the worker said Redis went away: {}",
        w.log()
    );
}
