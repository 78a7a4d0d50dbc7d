//! A run is green only when every tag is at its source digest. Each test here is a way the
//! system once reported success (or gave up) while tags were missing, replayed against the
//! real registry, broker and Redis: a scheduler that died while publishing, a destination
//! changed behind the tag cache, a slow but steady source, a broker blip under `run
//! --wait`, hostile sources.


use std::time::Duration;

use mirror_common::job::Job;
use mirror_fleet::amqp::AmqpQueue;
use mirror_tests::fleet::{jobs_queue, prefix, scheduler, status_json, Worker};
use mirror_tests::util::{image_ref, text};
use mirror_tests::*;
use uuid::Uuid;

/// What a scheduler killed while publishing leaves behind: confirmed jobs and no run
/// announcement (it is sent only after the last job is confirmed). The next run must
/// publish every tag again, not skip them as someone else's.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn jobs_of_a_scheduler_killed_while_publishing_block_no_later_run() {
    let src = Registry::start().await.unwrap();
    let dst = Registry::start().await.unwrap();
    let (s, d) = (src.host(), dst.host());
    let dir = tempfile::tempdir().unwrap();
    let seeded = seed_numbered(&src, &d, "killed/app", 3, dir.path(), |_| {
        vec![Layer::random(1_000)]
    })
    .await
    .unwrap();
    let p = prefix();
    let queue = AmqpQueue::connect(p.config()).await.unwrap();
    let dead_run = Uuid::new_v4();
    for (i, img) in seeded.images.iter().enumerate() {
        let job = Job::new(
            dead_run,
            image_ref(format!("{s}/killed/app{i}:1")),
            img.digest.clone(),
            vec![image_ref(format!("{d}/killed/app{i}:1"))],
            vec![],
        );
        mirror_common::queue::JobQueue::publish(&queue, &job)
            .await
            .unwrap();
    }
    queue.close().await;

    let out = scheduler(&p, &["run", "-f", &seeded.mapping], &[&src, &dst], &[]);
    let err = text(&out.stderr);
    assert!(out.status.success(), "{err}");
    assert!(err.contains("published 3 jobs for 3 tags"), "{err}");
    assert!(!err.contains("skipped"), "{err}");
    assert_eq!(jobs_queue(&status_json(&p, &[]))["ready"], 6);
}

/// The tag cache is a hint with a bounded age: a destination tag deleted, or overwritten
/// with another image, behind the fleet's back is found and repaired by the runs after
/// `--tag-cache-max-age`, with no `--verify`.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tags_deleted_or_overwritten_behind_the_tag_cache_are_repaired_within_its_max_age() {
    let src = Registry::start().await.unwrap();
    let dst = Registry::start().await.unwrap();
    let d = dst.host();
    let dir = tempfile::tempdir().unwrap();
    let seeded = seed_numbered(&src, &d, "cached/app", 2, dir.path(), |_| {
        vec![Layer::random(1_000)]
    })
    .await
    .unwrap();
    let p = prefix();
    let _w = Worker::start(&p, &[&src, &dst], &[], &["--tag-cache-max-age", "2s"]);
    let run = |extra: &[&str]| {
        let mut args = vec!["run", "--wait", "-f", &seeded.mapping];
        args.extend_from_slice(extra);
        scheduler(&p, &args, &[&src, &dst], &[])
    };
    let first = run(&[]);
    assert!(first.status.success(), "{}", text(&first.stderr));

    // Behind the fleet's back: app0 deleted, app1 overwritten with another image.
    let api = RegistryApi::new(&dst).unwrap();
    let deleted = api
        .request(
            reqwest::Method::DELETE,
            &format!("/v2/cached/app0/manifests/{}", seeded.images[0].digest),
        )
        .send()
        .await
        .unwrap();
    assert_eq!(deleted.status(), 202);
    push_image(&dst, "cached/app1", "1", ImageSpec::new(vec![Layer::random(500)]))
        .await
        .unwrap();
    assert_eq!(manifest_digest(&dst, "cached/app0", "1").await.unwrap(), None);

    // Past the max age, a plain run finds both and puts them back.
    tokio::time::sleep(Duration::from_millis(2_100)).await;
    let repaired = run(&[]);
    let err = text(&repaired.stderr);
    assert!(repaired.status.success(), "{err}");
    assert!(err.contains("published 2 jobs for 2 tags"), "{err}");
    for (i, img) in seeded.images.iter().enumerate() {
        assert_eq!(
            manifest_digest(&dst, &format!("cached/app{i}"), "1")
                .await
                .unwrap()
                .as_deref(),
            Some(img.digest.as_str()),
            "cached/app{i}:1"
        );
    }
}

/// A broker blip while `run --wait` follows its run: the workers finish the run, and the
/// scheduler connects again, picks up the results it missed from the run history, writes
/// its summary and report, and exits by what the run did (0: every tag made it).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn run_wait_survives_a_broker_blip_and_still_writes_its_report() {
    let src = Registry::start().await.unwrap();
    let dst = Registry::start().await.unwrap();
    let d = dst.host();
    let dir = tempfile::tempdir().unwrap();
    let seeded = seed_numbered(&src, &d, "blip/app", 2, dir.path(), |_| {
        vec![Layer::random(1_000)]
    })
    .await
    .unwrap();
    let p = prefix();
    let proxy = TcpProxy::start("127.0.0.1:5672").await.unwrap();
    let url = format!("amqp://guest:guest@127.0.0.1:{}/%2f", proxy.port());
    let report = dir.path().join("report.json");
    let mut args: Vec<String> = ["run", "--wait", "-f", &seeded.mapping, "--report"]
        .iter()
        .map(|s| s.to_string())
        .collect();
    args.push(report.display().to_string());
    args.extend(["--amqp", &url, "--queue-prefix", p.as_str()].map(String::from));
    args.extend(["--retry-delays", "300ms,600ms", "--redis-prefix", p.as_str()].map(String::from));
    args.extend(mirror_tests::mirror::registry_flags(&[&src, &dst]));
    let child = std::process::Command::new(binary("mirror-scheduler"))
        .args(&args)
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    // Its jobs are out and it waits; nobody consumes yet. Then the blip.
    let started = std::time::Instant::now();
    while jobs_queue(&status_json(&p, &[]))["ready"] != 2 {
        assert!(started.elapsed() < Duration::from_secs(30), "no jobs published");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    tokio::time::sleep(Duration::from_millis(300)).await;
    proxy.cut();
    let _w = Worker::start(&p, &[&src, &dst], &[], &[]);
    let out = mirror_tests::fleet::wait_output(child, Duration::from_secs(90));
    let err = text(&out.stderr);
    assert!(out.status.success(), "{err}");
    assert!(err.contains("lost the run's results"), "{err}");
    assert!(err.contains("2 tags copied, 0 already up to date, 0 failed"), "{err}");
    let json: serde_json::Value =
        serde_json::from_slice(&std::fs::read(&report).unwrap()).unwrap();
    assert_eq!(json["totals"]["tags_pushed"], 2, "{json}");
    for (i, img) in seeded.images.iter().enumerate() {
        assert_eq!(
            manifest_digest(&dst, &format!("blip/app{i}"), "1")
                .await
                .unwrap()
                .as_deref(),
            Some(img.digest.as_str())
        );
    }
}
