//! A run is green only when every tag is at its source digest. Each test here is a way the
//! system once reported success (or gave up) while tags were missing, replayed against the
//! real registry, broker and Redis: a scheduler that died while publishing, a destination
//! changed behind the tag cache, a slow but steady source, a broker blip under `run
//! --wait`, hostile sources.

use std::sync::Arc;
use std::time::Duration;

use mirror_common::copy::{CopyEngine, CopyOptions};
use mirror_common::failure::FailureKind;
use mirror_common::index::MemoryIndex;
use mirror_common::job::Job;
use mirror_common::name::Repository;
use mirror_common::registry::{RegistryClient, Tags, Timeouts};
use mirror_common::report::TagStatus;
use mirror_fleet::amqp::AmqpQueue;
use mirror_tests::fleet::{jobs_queue, prefix, scheduler, status_json, Worker};
use mirror_tests::test_io::{image_ref, text};
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
/// with another image, behind the fleet's back is found and repaired by the runs after the
/// workers' `--tag-cache-max-age` (their entries' lifetime in Redis), with no `--verify`,
/// even by a scheduler whose own max age is longer.
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
    push_image(
        &dst,
        "cached/app1",
        "1",
        ImageSpec::new(vec![Layer::random(500)]),
    )
    .await
    .unwrap();
    assert_eq!(
        manifest_digest(&dst, "cached/app0", "1").await.unwrap(),
        None
    );

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

/// The max age that bounds the tag cache is the reader's: workers that write entries for an
/// hour do not stop `run --tag-cache-max-age 1s` (set on the scheduler alone) from checking,
/// and repairing, a destination tag deleted and another overwritten behind the cache 2 s
/// after they were written.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_run_with_a_short_tag_cache_max_age_repairs_tags_the_workers_cached_for_long() {
    let src = Registry::start().await.unwrap();
    let dst = Registry::start().await.unwrap();
    let d = dst.host();
    let dir = tempfile::tempdir().unwrap();
    let seeded = seed_numbered(&src, &d, "readerage/app", 2, dir.path(), |_| {
        vec![Layer::random(1_000)]
    })
    .await
    .unwrap();
    let p = prefix();
    let _w = Worker::start(&p, &[&src, &dst], &[], &["--tag-cache-max-age", "1h"]);
    let report = dir.path().join("report.json");
    let report_arg = report.display().to_string();
    let run = |extra: &[&str]| {
        let mut args = vec![
            "run",
            "--wait",
            "-f",
            &seeded.mapping,
            "--report",
            &report_arg,
        ];
        args.extend_from_slice(extra);
        scheduler(&p, &args, &[&src, &dst], &[])
    };
    let first = run(&[]);
    assert!(first.status.success(), "{}", text(&first.stderr));
    // The workers' entries are there: a run with the default max age trusts them.
    let warm = run(&[]);
    let err = text(&warm.stderr);
    assert!(warm.status.success(), "{err}");
    assert!(
        err.contains("published 0 jobs for 0 tags; 2 tags up to date by the tag cache"),
        "{err}"
    );

    // Behind the fleet's back: app0 deleted, app1 overwritten with another image.
    let api = RegistryApi::new(&dst).unwrap();
    let deleted = api
        .request(
            reqwest::Method::DELETE,
            &format!("/v2/readerage/app0/manifests/{}", seeded.images[0].digest),
        )
        .send()
        .await
        .unwrap();
    assert_eq!(deleted.status(), 202);
    let other = push_image(
        &dst,
        "readerage/app1",
        "1",
        ImageSpec::new(vec![Layer::random(500)]),
    )
    .await
    .unwrap();
    assert_ne!(other.digest, seeded.images[1].digest);

    tokio::time::sleep(Duration::from_secs(2)).await;
    let repaired = run(&["--tag-cache-max-age", "1s"]);
    let err = text(&repaired.stderr);
    assert!(repaired.status.success(), "{err}");
    assert!(
        err.contains("published 2 jobs for 2 tags; 0 tags up to date by the tag cache"),
        "{err}"
    );
    let json: serde_json::Value = serde_json::from_slice(&std::fs::read(&report).unwrap()).unwrap();
    for t in json["tags"].as_array().expect("the report lists its tags") {
        assert_eq!(t["status"], "pushed", "{t}");
    }
    for (i, img) in seeded.images.iter().enumerate() {
        assert_eq!(
            manifest_digest(&dst, &format!("readerage/app{i}"), "1")
                .await
                .unwrap()
                .as_deref(),
            Some(img.digest.as_str()),
            "readerage/app{i}:1"
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
    args.extend(
        [
            "--retry-delays",
            "300ms,600ms",
            "--redis-prefix",
            p.as_str(),
        ]
        .map(String::from),
    );
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
        assert!(
            started.elapsed() < Duration::from_secs(30),
            "no jobs published"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    tokio::time::sleep(Duration::from_millis(300)).await;
    proxy.cut();
    let _w = Worker::start(&p, &[&src, &dst], &[], &[]);
    let out = mirror_tests::fleet::wait_output(child, Duration::from_secs(90));
    let err = text(&out.stderr);
    assert!(out.status.success(), "{err}");
    assert!(err.contains("lost the run's results"), "{err}");
    assert!(
        err.contains("2 tags copied, 0 already up to date, 0 failed"),
        "{err}"
    );
    let json: serde_json::Value = serde_json::from_slice(&std::fs::read(&report).unwrap()).unwrap();
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

/// `mirror-scheduler run --wait -f MAPPING` reaching the broker at `amqp` (a TCP proxy).
fn run_wait_through(
    amqp: &str,
    prefix: &str,
    mapping: &str,
    registries: &[&Registry],
    extra_insecure: &[String],
) -> std::process::Child {
    let mut args: Vec<String> = ["run", "--wait", "-f", mapping, "--amqp", amqp]
        .iter()
        .map(|s| s.to_string())
        .collect();
    args.extend(["--queue-prefix", prefix, "--retry-delays", "300ms,600ms"].map(String::from));
    args.extend(["--redis-prefix", prefix].map(String::from));
    args.extend(mirror_tests::mirror::registry_flags(registries));
    for h in extra_insecure {
        args.extend(["--insecure-registry".to_string(), h.clone()]);
    }
    std::process::Command::new(binary("mirror-scheduler"))
        .args(&args)
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap()
}

/// The broker connection of `run --wait` cut at each step of a run before the waiting
/// (publishing the jobs, announcing the run; a run reads no history to start since pending
/// tags are marked in Redis): the scheduler connects again, redoes the step, and the run
/// ends green with every tag at its source digest. Real: registries, broker, Redis, a
/// worker. Shaped: the cut, by the TCP proxy at the first client write holding the step's
/// bytes (a job's `destinations` field, the routing key of the announcement), which the
/// broker never receives.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn run_wait_survives_a_broker_cut_at_each_step_of_publishing() {
    let src = Registry::start().await.unwrap();
    let dst = Registry::start().await.unwrap();
    let d = dst.host();
    let dir = tempfile::tempdir().unwrap();
    let p = prefix();
    let _w = Worker::start(&p, &[&src, &dst], &[], &[]);
    let proxy = TcpProxy::start("127.0.0.1:5672").await.unwrap();
    let url = format!("amqp://guest:guest@127.0.0.1:{}/%2f", proxy.port());
    // A job's field (the source-digest request to the workers before it names the same
    // repository, not this field).
    let steps: [(&str, &str, &[u8]); 2] = [
        ("publish", "publishing the run's jobs", b"\"destinations\""),
        ("announce", "announcing the run", b".started"),
    ];
    for (name, step, needle) in steps {
        let repo = format!("cut{name}/app");
        let seeded = seed_numbered(&src, &d, &repo, 2, dir.path(), |_| {
            vec![Layer::random(1_000)]
        })
        .await
        .unwrap();
        proxy.cut_when_sent(needle);
        let child = run_wait_through(&url, &p, &seeded.mapping, &[&src, &dst], &[]);
        let out = mirror_tests::fleet::wait_output(child, Duration::from_secs(90));
        let err = text(&out.stderr);
        assert!(!proxy.armed(), "{name}: the cut happened\n{err}");
        assert!(out.status.success(), "{name}: {err}");
        assert!(
            err.contains(&format!("lost the broker while {step}")),
            "{name}: {err}"
        );
        assert!(
            err.contains("2 tags copied, 0 already up to date, 0 failed"),
            "{name}: {err}"
        );
        for (i, img) in seeded.images.iter().enumerate() {
            assert_eq!(
                manifest_digest(&dst, &format!("{repo}{i}"), "1")
                    .await
                    .unwrap()
                    .as_deref(),
                Some(img.digest.as_str()),
                "{name}: {repo}{i}:1"
            );
        }
    }
}

/// The broker connection cut while the scheduler plans (it connects first, then lists and
/// resolves the sources): the idle connection it holds is dead when planning ends, and the
/// run connects again and goes on. Real: registries, broker, Redis, a worker. Shaped: the
/// source answers through the fault proxy with a second of latency each way (so planning
/// is still going when the cut comes) and the cut, by the TCP proxy.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn run_wait_survives_a_broker_cut_while_planning() {
    let src = Registry::start().await.unwrap();
    let dst = Registry::start().await.unwrap();
    let d = dst.host();
    let dir = tempfile::tempdir().unwrap();
    let seeded = seed_numbered(&src, &d, "cutplan/app", 1, dir.path(), |_| {
        vec![Layer::random(1_000)]
    })
    .await
    .unwrap();
    let slow = Proxy::start(&src).await.unwrap();
    slow.set_latency(Duration::from_secs(1));
    let mapping = std::fs::read_to_string(&seeded.mapping)
        .unwrap()
        .replace(&src.host(), &slow.host());
    let mapping = mirror_tests::test_io::write(dir.path(), "mapping_slow", &mapping);
    let p = prefix();
    let _w = Worker::start(&p, &[&src, &dst], &[slow.host()], &[]);
    let proxy = TcpProxy::start("127.0.0.1:5672").await.unwrap();
    let url = format!("amqp://guest:guest@127.0.0.1:{}/%2f", proxy.port());
    let child = run_wait_through(&url, &p, &mapping, &[&src, &dst], &[slow.host()]);
    let started = std::time::Instant::now();
    while slow.requests().is_empty() {
        assert!(started.elapsed() < Duration::from_secs(30), "no planning");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    proxy.cut();
    let out = mirror_tests::fleet::wait_output(child, Duration::from_secs(90));
    let err = text(&out.stderr);
    assert!(out.status.success(), "{err}");
    assert!(
        err.contains("1 tag copied, 0 already up to date, 0 failed"),
        "{err}"
    );
    assert_eq!(
        manifest_digest(&dst, "cutplan/app0", "1")
            .await
            .unwrap()
            .as_deref(),
        Some(seeded.images[0].digest.as_str())
    );
}

/// An engine reaching `registries` and `proxy` with these time limits.
fn engine_through(
    registries: &[&Registry],
    proxy: &Proxy,
    timeouts: Timeouts,
    copy: CopyOptions,
) -> CopyEngine {
    let mut opts = mirror_tests::mirror::client_options(registries, None);
    opts.insecure_registries.insert(proxy.host());
    opts.timeouts = timeouts;
    let client = RegistryClient::new(opts).unwrap();
    CopyEngine::new(Arc::new(client), Arc::new(MemoryIndex::new()), copy)
}

const SHORT: Timeouts = Timeouts {
    connect: Duration::from_secs(5),
    request: Duration::from_secs(1),
    idle: Duration::from_secs(1),
};

/// A source that sends slowly but steadily: a transfer that takes longer than the
/// request limit (scaled down to 1 s here; 120 s in total once cut multi-gigabyte layers)
/// completes, because only a second without any byte counts as a stall.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_slow_but_steady_source_is_copied_past_the_request_limit() {
    let src = Registry::start().await.unwrap();
    let dst = Registry::start().await.unwrap();
    let layer = Layer::random(400_000);
    let img = push_image(&src, "slow/app", "1", ImageSpec::new(vec![layer.clone()]))
        .await
        .unwrap();
    let proxy = Proxy::start(&src).await.unwrap();
    // Real bytes from the real registry, paced to 160 kB/s: 2.5 s for the layer.
    proxy.pace(layer.digest(), 160_000);
    let engine = engine_through(&[&src, &dst], &proxy, SHORT, CopyOptions::default());
    let started = std::time::Instant::now();
    let report = engine
        .copy(
            &image_ref(format!("{}/slow/app:1", proxy.host())),
            &[image_ref(format!("{}/slow/app:1", dst.host()))],
        )
        .await;
    assert!(report.succeeded(), "{report:?}");
    assert!(started.elapsed() > Duration::from_secs(2), "the pace held");
    assert_eq!(
        manifest_digest(&dst, "slow/app", "1").await.unwrap(),
        Some(img.digest)
    );
}

/// A source that stops sending mid-blob: the copy fails after the idle limit, naming the
/// source's request as the side that stalled, and the destination tag is left untouched.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_stalled_source_fails_fast_naming_the_source_and_writes_no_tag() {
    let src = Registry::start().await.unwrap();
    let dst = Registry::start().await.unwrap();
    let layer = Layer::random(50_000);
    push_image(&src, "stuck/app", "1", ImageSpec::new(vec![layer.clone()]))
        .await
        .unwrap();
    let proxy = Proxy::start(&src).await.unwrap();
    proxy.pace(layer.digest(), 0);
    let engine = engine_through(&[&src, &dst], &proxy, SHORT, CopyOptions::default());
    let report = engine
        .copy(
            &image_ref(format!("{}/stuck/app:1", proxy.host())),
            &[image_ref(format!("{}/stuck/app:1", dst.host()))],
        )
        .await;
    let tag = &report.tags[0];
    assert_eq!(tag.status, TagStatus::Failed);
    assert_eq!(tag.failure, Some(FailureKind::Network));
    let error = tag.error.as_deref().unwrap();
    assert!(
        error.contains(&format!("registry {}: GET", proxy.host()))
            && error.contains("the source sent nothing for 1s"),
        "{error}"
    );
    assert_eq!(manifest_digest(&dst, "stuck/app", "1").await.unwrap(), None);
}

/// A job that runs past its deadline fails every tag with that reason instead of holding
/// a worker for ever; the destination tag is left untouched.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_job_past_its_deadline_fails_with_that_reason() {
    let src = Registry::start().await.unwrap();
    let dst = Registry::start().await.unwrap();
    let layer = Layer::random(300_000);
    push_image(&src, "late/app", "1", ImageSpec::new(vec![layer.clone()]))
        .await
        .unwrap();
    let proxy = Proxy::start(&src).await.unwrap();
    proxy.pace(layer.digest(), 100_000);
    let copy = CopyOptions {
        deadline: Duration::from_secs(1),
        ..CopyOptions::default()
    };
    let engine = engine_through(&[&src, &dst], &proxy, Timeouts::default(), copy);
    let report = engine
        .copy(
            &image_ref(format!("{}/late/app:1", proxy.host())),
            &[image_ref(format!("{}/late/app:1", dst.host()))],
        )
        .await;
    let tag = &report.tags[0];
    assert_eq!(tag.failure, Some(FailureKind::Deadline), "{tag:?}");
    assert!(
        tag.error.as_deref().unwrap().contains("job deadline"),
        "{tag:?}"
    );
    assert_eq!(manifest_digest(&dst, "late/app", "1").await.unwrap(), None);
}

/// A manifest trickling in a few bytes a second is a small request held to its total
/// limit: the copy fails after it (retried by the client, then reported), instead of
/// waiting for ever.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_trickling_manifest_is_held_to_the_request_limit() {
    let src = Registry::start().await.unwrap();
    let dst = Registry::start().await.unwrap();
    push_image(
        &src,
        "drip/app",
        "1",
        ImageSpec::new(vec![Layer::random(1_000)]),
    )
    .await
    .unwrap();
    let proxy = Proxy::start(&src).await.unwrap();
    proxy.pace("/manifests/", 10);
    let engine = engine_through(&[&src, &dst], &proxy, SHORT, CopyOptions::default());
    let started = std::time::Instant::now();
    let report = engine
        .copy(
            &image_ref(format!("{}/drip/app:1", proxy.host())),
            &[image_ref(format!("{}/drip/app:1", dst.host()))],
        )
        .await;
    assert_eq!(
        report.tags[0].failure,
        Some(FailureKind::Network),
        "{report:?}"
    );
    let error = report.tags[0].error.as_deref().unwrap();
    assert!(
        error.contains(&format!(
            "registry {}: GET /v2/drip/app/manifests/1",
            proxy.host()
        )),
        "{error}"
    );
    assert!(
        started.elapsed() < Duration::from_secs(15),
        "{:?}",
        started.elapsed()
    );
    assert_eq!(manifest_digest(&dst, "drip/app", "1").await.unwrap(), None);
}

/// A source serving a manifest over the distribution spec's 4 MiB is refused from its
/// `Content-Length`, before any of it is buffered or any blob is uploaded. Real: both
/// registries; shaped: the oversized manifest, answered by the proxy in the source's place.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_manifest_over_the_size_limit_is_refused_before_anything_is_copied() {
    let src = Registry::start().await.unwrap();
    let dst = Registry::start().await.unwrap();
    let proxy = Proxy::start(&src).await.unwrap();
    let huge = format!("{{\"schemaVersion\":2{}}}", " ".repeat(5 * 1024 * 1024));
    proxy.answer(Answer {
        path_contains: "/v2/big/app/manifests/1".into(),
        status: 200,
        headers: vec![(
            "content-type".into(),
            "application/vnd.oci.image.manifest.v1+json".into(),
        )],
        body: huge.into(),
    });
    let engine = engine_through(&[&src, &dst], &proxy, SHORT, CopyOptions::default());
    let report = engine
        .copy(
            &image_ref(format!("{}/big/app:1", proxy.host())),
            &[image_ref(format!("{}/big/app:1", dst.host()))],
        )
        .await;
    let tag = &report.tags[0];
    assert_eq!(tag.failure, Some(FailureKind::Protocol), "{tag:?}");
    assert!(
        tag.error
            .as_deref()
            .unwrap()
            .contains("over the 4194304-byte limit"),
        "{tag:?}"
    );
    assert_eq!(dst.count("POST", "/blobs/uploads/"), 0, "nothing uploaded");
}

/// A tag list whose `Link` points back at the page just read is refused at the second
/// visit, instead of being followed thousands of times. Shaped by the proxy: the page and
/// its header; the registry behind it is real.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_tag_list_linking_to_itself_is_refused_at_the_repeat() {
    let src = Registry::start().await.unwrap();
    let proxy = Proxy::start(&src).await.unwrap();
    proxy.answer(Answer {
        path_contains: "/v2/loop/app/tags/list".into(),
        status: 200,
        headers: vec![
            ("content-type".into(), "application/json".into()),
            (
                "link".into(),
                "</v2/loop/app/tags/list?n=1000>; rel=\"next\"".into(),
            ),
        ],
        body: r#"{"name":"loop/app","tags":["1"]}"#.into(),
    });
    let mut opts = mirror_tests::mirror::client_options(&[&src], None);
    opts.insecure_registries.insert(proxy.host());
    let client = RegistryClient::new(opts).unwrap();
    let e = client
        .list_tags(&Repository::new(proxy.host(), "loop/app"))
        .await
        .unwrap_err();
    assert!(e.to_string().contains("pagination loops"), "{e}");
    assert_eq!(
        proxy.count("GET", "/tags/list"),
        1,
        "one page read, not thousands"
    );
}

/// A glob of many tags into one repository is one job with as many destination tags. Under
/// a low open-files limit it still completes: the job checks its destination tags a few at
/// a time instead of opening a connection per tag at once (1,200 tags, 256 descriptors).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_glob_of_a_thousand_tags_into_one_repository_runs_under_a_low_fd_limit() {
    use futures::StreamExt;
    const TAGS: usize = 1_200;
    let src = Registry::start().await.unwrap();
    let dst = Registry::start().await.unwrap();
    let img = push_image(
        &src,
        "many/app",
        "0",
        ImageSpec::new(vec![Layer::random(500)]),
    )
    .await
    .unwrap();
    let api = RegistryApi::new(&src).unwrap();
    let pushes = (1..TAGS).map(|i| {
        let (api, img) = (&api, &img);
        async move {
            api.put_manifest(
                "many/app",
                &i.to_string(),
                &img.media_type,
                img.manifest_bytes.clone(),
            )
            .await
        }
    });
    let pushed: Vec<_> = futures::stream::iter(pushes)
        .buffer_unordered(16)
        .collect()
        .await;
    assert!(pushed.iter().all(Result::is_ok));
    let dir = tempfile::tempdir().unwrap();
    let mapping = mirror_tests::test_io::write(
        dir.path(),
        "mapping_many",
        &format!("{}/many/app:* {}/many/app\n", src.host(), dst.host()),
    );
    let mut args = vec!["run".to_string(), "--local".into(), "-f".into(), mapping];
    args.extend(mirror_tests::mirror::registry_flags(&[&src, &dst]));
    let script = format!(
        "ulimit -n 256 && exec {} \"$@\"",
        binary("mirror-scheduler").display()
    );
    let out = std::process::Command::new("bash")
        .args(["-c", &script, "mirror-scheduler"])
        .args(&args)
        .env("HOME", dir.path())
        .output()
        .unwrap();
    let err = text(&out.stderr);
    assert!(
        out.status.success(),
        "{}",
        err.lines().take(20).collect::<Vec<_>>().join("\n")
    );
    assert!(!err.contains("Too many open files"), "{err}");
    assert!(err.contains(&format!("{TAGS} tags copied")), "{err}");
    assert_eq!(
        mirror_tests::tags(&dst, "many/app").await.unwrap().len(),
        TAGS
    );
}
