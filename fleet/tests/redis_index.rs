//! The Redis-backed fleet knowledge against a real Redis on 127.0.0.1:6379: blob index,
//! upload leases between "processes" (separate clients), degraded mode, tag cache, run
//! counters and the fleet-wide throttle. Every test uses its own key prefix and deletes its
//! keys at the end.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use mirror_common::failure::FailureKind;
use mirror_common::index::BlobIndex;
use mirror_common::report::{CopyReport, CopyStats, TagResult, TagStatus};
use mirror_fleet::store::{Redis, RedisConfig};
use mirror_fleet::store::{RunFailure, RunProgress, FAILURES_KEPT, REASON_KEPT};
use tokio::net::{TcpListener, TcpStream};
use tokio::task::JoinHandle;
use uuid::Uuid;

const REDIS: &str = "redis://127.0.0.1:6379";
const DIGEST: &str = "sha256:0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef";

fn config(prefix: &str) -> RedisConfig {
    RedisConfig {
        url: REDIS.into(),
        prefix: prefix.into(),
        ttl: Duration::from_secs(600),
        ..RedisConfig::default()
    }
}

/// Shows the crate's log lines (degraded / back) with `--nocapture`.
fn logs() {
    let _ = tracing_subscriber::fmt()
        .with_env_filter("mirror_common=debug")
        .with_test_writer()
        .try_init();
}

fn prefix() -> String {
    format!("test-{}", Uuid::new_v4())
}

/// Deletes every key under `prefix` (best effort).
async fn cleanup(prefix: &str) {
    let Ok(client) = redis::Client::open(REDIS) else {
        return;
    };
    let Ok(mut con) = client.get_multiplexed_async_connection().await else {
        return;
    };
    let mut cursor: u64 = 0;
    loop {
        let Ok((next, keys)): redis::RedisResult<(u64, Vec<String>)> = redis::cmd("SCAN")
            .arg(cursor)
            .arg("MATCH")
            .arg(format!("{prefix}:*"))
            .arg("COUNT")
            .arg(1000)
            .query_async(&mut con)
            .await
        else {
            return;
        };
        if !keys.is_empty() {
            let _: redis::RedisResult<i64> =
                redis::cmd("DEL").arg(&keys).query_async(&mut con).await;
        }
        if next == 0 {
            return;
        }
        cursor = next;
    }
}

async fn raw() -> redis::aio::MultiplexedConnection {
    redis::Client::open(REDIS)
        .unwrap()
        .get_multiplexed_async_connection()
        .await
        .expect("Redis must run on 127.0.0.1:6379")
}

#[tokio::test]
async fn record_repositories_forget_and_ttl() {
    let p = prefix();
    let redis = Redis::connect(config(&p)).await;
    assert!(!redis.is_degraded());
    let idx = redis.index();
    idx.record("r.io", "b/two", DIGEST).await;
    idx.record("r.io", "a/one", DIGEST).await;
    idx.record("other.io", "x/y", DIGEST).await;
    assert_eq!(idx.repositories("r.io", DIGEST).await, ["a/one", "b/two"]);
    assert_eq!(idx.repositories("other.io", DIGEST).await, ["x/y"]);

    // Another process sees the same knowledge.
    let other = Redis::connect(config(&p)).await.index();
    assert_eq!(other.repositories("r.io", DIGEST).await, ["a/one", "b/two"]);

    idx.forget("r.io", "a/one", DIGEST).await;
    assert_eq!(other.repositories("r.io", DIGEST).await, ["b/two"]);
    assert!(idx.repositories("r.io", "sha256:none").await.is_empty());

    let mut con = raw().await;
    let pttl: i64 = redis::cmd("PTTL")
        .arg(format!("{p}:{{r.io}}:blob:{DIGEST}"))
        .query_async(&mut con)
        .await
        .unwrap();
    assert!(
        pttl > 0 && pttl <= 600_000,
        "the blob set must expire, PTTL {pttl}"
    );
    cleanup(&p).await;
}

#[tokio::test]
async fn a_second_process_waits_for_the_lease_and_is_told_it_waited() {
    let p = prefix();
    let a = Redis::connect(config(&p)).await.index();
    let b = Redis::connect(config(&p)).await.index();
    let first = a.lock_upload("r.io", DIGEST).await;
    assert!(!first.waited);
    let waiter = tokio::spawn(async move {
        let lock = b.lock_upload("r.io", DIGEST).await;
        (lock.waited, Instant::now())
    });
    tokio::time::sleep(Duration::from_millis(400)).await;
    assert!(
        !waiter.is_finished(),
        "the lease is held by the first process"
    );
    let released = Instant::now();
    drop(first);
    let (waited, got) = waiter.await.unwrap();
    assert!(waited);
    assert!(got >= released);
    assert!(
        got - released < Duration::from_millis(600),
        "the waiter should get the lease soon after its release, took {:?}",
        got - released
    );
    assert!(
        !a.lock_upload("r.io", "sha256:other").await.waited,
        "other digests are independent"
    );
    cleanup(&p).await;
}

#[tokio::test]
async fn four_tasks_on_two_processes_never_hold_the_lease_together() {
    let p = prefix();
    let cfg = RedisConfig {
        lease_ttl: Duration::from_secs(2),
        ..config(&p)
    };
    let clients = [
        Redis::connect(cfg.clone()).await.index(),
        Redis::connect(cfg).await.index(),
    ];
    let holders = Arc::new(AtomicUsize::new(0));
    let most = Arc::new(AtomicUsize::new(0));
    let rounds = Arc::new(AtomicUsize::new(0));
    let mut tasks = Vec::new();
    for i in 0..4 {
        let idx = clients[i % 2].clone();
        let (holders, most, rounds) = (holders.clone(), most.clone(), rounds.clone());
        tasks.push(tokio::spawn(async move {
            for _ in 0..3 {
                let lock = idx.lock_upload("r.io", DIGEST).await;
                let now = holders.fetch_add(1, Ordering::SeqCst) + 1;
                most.fetch_max(now, Ordering::SeqCst);
                tokio::time::sleep(Duration::from_millis(30)).await;
                holders.fetch_sub(1, Ordering::SeqCst);
                rounds.fetch_add(1, Ordering::SeqCst);
                drop(lock);
            }
        }));
    }
    for t in tasks {
        t.await.unwrap();
    }
    assert_eq!(rounds.load(Ordering::SeqCst), 12);
    assert_eq!(most.load(Ordering::SeqCst), 1, "two holders at once");
    cleanup(&p).await;
}

#[tokio::test]
async fn the_lease_of_a_dead_process_is_taken_over_after_lease_ttl() {
    let p = prefix();
    let cfg = RedisConfig {
        lease_ttl: Duration::from_millis(500),
        ..config(&p)
    };
    let dead = Redis::connect(cfg.clone()).await;
    let alive = Redis::connect(cfg).await.index();
    let lock = dead.index().lock_upload("r.io", DIGEST).await;
    // A process that dies neither releases its lease nor keeps it alive: forget the guard
    // (no release) and drop the client (its keepalive stops).
    std::mem::forget(lock);
    drop(dead);
    let start = Instant::now();
    let lock = alive.lock_upload("r.io", DIGEST).await;
    let took = start.elapsed();
    assert!(lock.waited);
    assert!(
        took >= Duration::from_millis(250) && took < Duration::from_millis(900),
        "taken over when the lease expired (~500 ms), not before nor at the 1 s wait limit: {took:?}"
    );
    cleanup(&p).await;
}

#[tokio::test]
async fn keepalive_holds_the_lease_beyond_its_ttl() {
    let p = prefix();
    let cfg = RedisConfig {
        lease_ttl: Duration::from_millis(500),
        ..config(&p)
    };
    let a = Redis::connect(cfg.clone()).await.index();
    let b = Redis::connect(cfg).await.index();
    let held = a.lock_upload("r.io", DIGEST).await;
    // Start waiting late, so the waiter's own limit (2 × lease_ttl) does not end before
    // the holder has held the lease for 3 × lease_ttl.
    tokio::time::sleep(Duration::from_millis(1000)).await;
    let waiter = tokio::spawn(async move { b.lock_upload("r.io", DIGEST).await.waited });
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert!(
        !waiter.is_finished(),
        "the lease expired despite the keepalive"
    );
    let mut con = raw().await;
    let pttl: i64 = redis::cmd("PTTL")
        .arg(format!("{p}:{{r.io}}:lease:{DIGEST}"))
        .query_async(&mut con)
        .await
        .unwrap();
    assert!(
        pttl > 0,
        "the lease must still be there after 3 × lease_ttl, PTTL {pttl}"
    );
    drop(held);
    let waited = tokio::time::timeout(Duration::from_millis(400), waiter)
        .await
        .expect("the waiter gets the lease right after the release")
        .unwrap();
    assert!(waited);
    cleanup(&p).await;
}

#[tokio::test]
async fn without_redis_everything_answers_quickly_and_locks_per_process() {
    logs();
    let cfg = RedisConfig {
        url: "redis://127.0.0.1:1".into(),
        ..config(&prefix())
    };
    let start = Instant::now();
    let redis = Redis::connect(cfg).await;
    assert!(redis.is_degraded());
    let idx = redis.index();

    let timed = Instant::now();
    idx.record("r.io", "a/b", DIGEST).await;
    assert!(idx.repositories("r.io", DIGEST).await.is_empty());
    idx.forget("r.io", "a/b", DIGEST).await;
    let tags = redis.tags();
    tags.set_dest_digest("r.io", "a/b", "1", DIGEST).await;
    assert_eq!(tags.dest_digest("r.io", "a/b", "1").await, None);
    assert_eq!(tags.dest_digests(&[("r.io", "a/b", "1")]).await, [None]);
    let counters = redis.counters();
    let run = Uuid::new_v4();
    counters.start(run, 1, 1, None).await;
    assert_eq!(counters.get(run).await, None);
    redis.throttle().acquire("r.io", None).await;
    assert!(
        timed.elapsed() < Duration::from_secs(1),
        "operations must not wait for Redis: {:?}",
        timed.elapsed()
    );

    // Locks still single-flight within the process.
    let first = idx.lock_upload("r.io", DIGEST).await;
    assert!(!first.waited);
    let idx2 = idx.clone();
    let waiter = tokio::spawn(async move { idx2.lock_upload("r.io", DIGEST).await.waited });
    tokio::time::sleep(Duration::from_millis(100)).await;
    assert!(!waiter.is_finished(), "the in-process lock must hold");
    drop(first);
    assert!(waiter.await.unwrap());

    // The throttle falls back to this process: a pause still holds, and so does a rate.
    let throttle = redis.throttle();
    throttle.pause("r.io", Duration::from_millis(200)).await;
    let t = Instant::now();
    throttle.acquire("r.io", None).await;
    assert!(
        t.elapsed() >= Duration::from_millis(150),
        "{:?}",
        t.elapsed()
    );
    let t = Instant::now();
    for _ in 0..3 {
        throttle.acquire("q.io", Some(10.0)).await;
    }
    assert!(
        t.elapsed() >= Duration::from_millis(150),
        "3 at 10/s: {:?}",
        t.elapsed()
    );
    assert!(redis.is_degraded());
    assert!(start.elapsed() < Duration::from_secs(3));
}

/// A process with this tag cache max age.
fn with_tag_max_age(prefix: &str, max_age: Duration) -> RedisConfig {
    RedisConfig {
        tag_max_age: max_age,
        ..config(prefix)
    }
}

/// The key and value of the tag-cache entry of `r.io/a/b:<tag>` as Redis holds it.
async fn raw_tag_entry(prefix: &str, tag: &str) -> (String, Option<String>, i64) {
    let key = format!("{prefix}:{{r.io}}:tag:a/b:{tag}");
    let mut con = raw().await;
    let value: Option<String> = redis::cmd("GET")
        .arg(&key)
        .query_async(&mut con)
        .await
        .unwrap();
    let pttl: i64 = redis::cmd("PTTL")
        .arg(&key)
        .query_async(&mut con)
        .await
        .unwrap();
    (key, value, pttl)
}

#[tokio::test]
async fn a_tag_entry_older_than_the_readers_max_age_is_not_trusted_though_redis_still_holds_it() {
    let p = prefix();
    // Written by a worker whose entries live an hour, read by a scheduler with a 1 s max age.
    let writer = Redis::connect(with_tag_max_age(&p, Duration::from_secs(3600))).await;
    let reader = Redis::connect(with_tag_max_age(&p, Duration::from_secs(1))).await;
    writer
        .tags()
        .set_dest_digest("r.io", "a/b", "1", DIGEST)
        .await;
    writer
        .tags()
        .set_dest_digests(&[("r.io", "a/b", "2", DIGEST)])
        .await;
    // Fresh: the reader trusts both (its share of 1 s is at least 500 ms).
    assert_eq!(
        reader
            .tags()
            .dest_digest("r.io", "a/b", "1")
            .await
            .as_deref(),
        Some(DIGEST)
    );
    assert_eq!(
        reader
            .tags()
            .dest_digests(&[("r.io", "a/b", "1"), ("r.io", "a/b", "2")])
            .await,
        [Some(DIGEST.to_string()), Some(DIGEST.to_string())]
    );

    tokio::time::sleep(Duration::from_millis(1_100)).await;
    for tag in ["1", "2"] {
        let (_, value, pttl) = raw_tag_entry(&p, tag).await;
        assert!(
            value.is_some_and(|v| v.starts_with(DIGEST)),
            "still in Redis"
        );
        assert!(
            pttl > 1_700_000,
            "the writer's TTL has half an hour left at least: {pttl}"
        );
    }
    assert_eq!(reader.tags().dest_digest("r.io", "a/b", "1").await, None);
    assert_eq!(
        reader
            .tags()
            .dest_digests(&[("r.io", "a/b", "1"), ("r.io", "a/b", "2")])
            .await,
        [None, None],
        "older than the reader's max age"
    );
    // The writer's own max age still trusts them: the age is each reader's.
    assert_eq!(
        writer
            .tags()
            .dest_digests(&[("r.io", "a/b", "1"), ("r.io", "a/b", "2")])
            .await,
        [Some(DIGEST.to_string()), Some(DIGEST.to_string())]
    );
    cleanup(&p).await;
}

#[tokio::test]
async fn a_tag_entry_without_a_check_time_is_not_trusted() {
    let p = prefix();
    let redis = Redis::connect(config(&p)).await;
    // The format before entries had a time: the bare digest, with a long TTL.
    let (key, _, _) = raw_tag_entry(&p, "old").await;
    let mut con = raw().await;
    let _: () = redis::cmd("SET")
        .arg(&key)
        .arg(DIGEST)
        .arg("PX")
        .arg(3_600_000)
        .query_async(&mut con)
        .await
        .unwrap();
    let tags = redis.tags();
    assert_eq!(tags.dest_digest("r.io", "a/b", "old").await, None);
    assert_eq!(tags.dest_digests(&[("r.io", "a/b", "old")]).await, [None]);
    // Written again (the tag was checked), it is trusted.
    tags.set_dest_digest("r.io", "a/b", "old", DIGEST).await;
    assert_eq!(
        tags.dest_digests(&[("r.io", "a/b", "old")]).await,
        [Some(DIGEST.to_string())]
    );
    let (_, value, _) = raw_tag_entry(&p, "old").await;
    let value = value.unwrap();
    let (digest, checked) = value.split_once(' ').expect("digest and time");
    assert_eq!(digest, DIGEST);
    let now_ms = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_millis();
    let checked: u128 = checked.parse().expect("milliseconds");
    assert!(
        now_ms - checked < 10_000,
        "checked just now: {checked} vs {now_ms}"
    );
    cleanup(&p).await;
}

#[tokio::test]
async fn tag_cache_round_trips_and_reads_a_thousand_tags_in_one_go() {
    let p = prefix();
    let redis = Redis::connect(config(&p)).await;
    let tags = redis.tags();
    assert_eq!(tags.dest_digest("r.io", "a/b", "1.0").await, None);
    tags.set_dest_digest("r.io", "a/b", "1.0", DIGEST).await;
    assert_eq!(
        tags.dest_digest("r.io", "a/b", "1.0").await.as_deref(),
        Some(DIGEST)
    );
    tags.forget_dest_digest("r.io", "a/b", "1.0").await;
    assert_eq!(tags.dest_digest("r.io", "a/b", "1.0").await, None);

    // 1,000 tags over two registries, interleaved, plus unknown ones.
    let written: Vec<(String, String, String, String)> = (0..1000)
        .map(|i| {
            let reg = if i % 2 == 0 { "r.io" } else { "s.io" };
            (
                reg.to_string(),
                format!("team/app{}", i % 37),
                format!("v{i}"),
                format!("sha256:{i:064x}"),
            )
        })
        .collect();
    tags.set_dest_digests(&written).await;
    let mut wanted: Vec<(String, String, String)> = written
        .iter()
        .map(|(r, p, t, _)| (r.clone(), p.clone(), t.clone()))
        .collect();
    wanted.insert(500, ("r.io".into(), "nope".into(), "x".into()));
    wanted.push(("t.io".into(), "nope".into(), "y".into()));
    let start = Instant::now();
    let got = tags.dest_digests(&wanted).await;
    println!(
        "batch read of {} tags took {:?}",
        wanted.len(),
        start.elapsed()
    );
    assert_eq!(got.len(), wanted.len());
    assert_eq!(got[500], None);
    // The scheduler's case: ten thousand tags (most of them unknown) in one call.
    let many: Vec<(String, String, String)> = (0..10_000)
        .map(|i| {
            (
                "r.io".to_string(),
                format!("big/app{}", i % 100),
                format!("v{i}"),
            )
        })
        .collect();
    let start = Instant::now();
    let answers = tags.dest_digests(&many).await;
    println!(
        "batch read of {} tags took {:?}",
        many.len(),
        start.elapsed()
    );
    assert_eq!(answers.len(), many.len());
    assert!(start.elapsed() < Duration::from_secs(2));
    assert_eq!(got[wanted.len() - 1], None);
    let found: Vec<String> = got.into_iter().flatten().collect();
    let expected: Vec<String> = written.into_iter().map(|w| w.3).collect();
    assert_eq!(found, expected, "answers come back in the order asked");
    cleanup(&p).await;
}

fn report(statuses: &[TagStatus], bytes: u64) -> CopyReport {
    CopyReport {
        source: "quay.io/a/b:1".into(),
        digest: Some(DIGEST.into()),
        tags: statuses
            .iter()
            .enumerate()
            .map(|(i, s)| TagResult::ok(format!("r.io/a/b:{i}"), *s, DIGEST))
            .collect(),
        stats: CopyStats {
            bytes_uploaded: bytes,
            ..CopyStats::default()
        },
        seconds: 0.1,
    }
}

#[tokio::test]
async fn run_counters_add_up_reports_from_several_processes() {
    let p = prefix();
    let counters = Redis::connect(config(&p)).await.counters();
    let run = Uuid::new_v4();
    assert_eq!(counters.get(run).await, None);
    counters.start(run, 5, 2, Some("team")).await;
    counters
        .add(
            run,
            &report(&[TagStatus::Pushed, TagStatus::UpToDate], 1000),
        )
        .await;
    // Another process (a restarted scheduler) reads and adds to the same run.
    let other = Redis::connect(config(&p)).await.counters();
    other
        .add(
            run,
            &report(
                &[TagStatus::Failed, TagStatus::Pushed, TagStatus::UpToDate],
                24,
            ),
        )
        .await;
    let got = other.get(run).await.expect("the run is known");
    assert!(got.started_at_ms > 0);
    assert_eq!(
        got,
        RunProgress {
            total: 5,
            jobs: 2,
            jobs_done: 2,
            done: 2,
            up_to_date: 2,
            failed: 1,
            skipped: 0,
            bytes: 1024,
            started_at_ms: got.started_at_ms,
            group: Some("team".into()),
        }
    );
    assert_eq!(got.pending(), 0);
    cleanup(&p).await;
}

/// A report of `n` failed tags of `job`, each with its own reason.
fn failing(job: &str, n: usize) -> CopyReport {
    CopyReport {
        tags: (0..n)
            .map(|i| {
                TagResult::failed(
                    format!("r.io/{job}:{i}"),
                    FailureKind::Denied,
                    format!("{job} {i} denied"),
                )
            })
            .collect(),
        ..report(&[], 0)
    }
}

/// A run with more failed tags than Redis lists keeps the first ones, in the order they
/// reported, and the exact count; tags failed while planning count without a job.
#[tokio::test]
async fn a_run_lists_its_first_hundred_failures_and_counts_every_one() {
    let p = prefix();
    let counters = Redis::connect(config(&p)).await.counters();
    let run = Uuid::new_v4();
    counters.start(run, 151, 3, None).await;
    counters.add(run, &failing("a", 60)).await;
    counters.add(run, &failing("b", 60)).await;
    counters.add(run, &failing("c", 30)).await;
    let planned = [TagResult::failed("r.io/p:1", FailureKind::NotFound, "gone")];
    counters.add_failed(run, &planned).await;
    let got = counters.record(run).await.expect("the run is known");
    assert_eq!((got.progress.failed, got.progress.jobs_done), (151, 3));
    assert_eq!(got.failures.len(), FAILURES_KEPT);
    assert_eq!(
        got.failures[0],
        RunFailure {
            destination: "r.io/a:0".into(),
            kind: Some(FailureKind::Denied),
            reason: "a 0 denied".into(),
        }
    );
    assert_eq!(got.failures[99].destination, "r.io/b:39");
    cleanup(&p).await;
}

/// What a run keeps per failure stays small: a page-long reason is cut; and a run's group
/// is the one it started with.
#[tokio::test]
async fn a_failure_keeps_a_bounded_reason_and_a_run_its_first_group() {
    let p = prefix();
    let counters = Redis::connect(config(&p)).await.counters();
    let run = Uuid::new_v4();
    counters.start(run, 1, 1, Some("team")).await;
    counters.start(run, 1, 1, Some("other")).await;
    let long = "é".repeat(REASON_KEPT);
    let tag = TagResult::failed("r.io/a:1", FailureKind::Rejected, long.clone());
    counters
        .add(
            run,
            &CopyReport {
                tags: vec![tag],
                ..report(&[], 0)
            },
        )
        .await;
    let got = counters.record(run).await.expect("the run is known");
    assert_eq!(got.progress.group.as_deref(), Some("team"));
    let reason = &got.failures[0].reason;
    assert!(reason.len() <= REASON_KEPT && reason.len() > REASON_KEPT - 2);
    assert!(long.starts_with(reason.as_str()));
    cleanup(&p).await;
}

#[tokio::test]
async fn a_pause_set_by_one_process_holds_for_another() {
    let p = prefix();
    let a = Redis::connect(config(&p)).await.throttle();
    let b = Redis::connect(config(&p)).await.throttle();
    a.pause("r.io", Duration::from_millis(400)).await;
    // Only extends: a shorter pause does not cut it short.
    a.pause("r.io", Duration::from_millis(50)).await;
    assert!(b
        .paused_for("r.io")
        .await
        .is_some_and(|d| d > Duration::from_millis(300)));
    let start = Instant::now();
    b.acquire("r.io", None).await;
    let took = start.elapsed();
    assert!(
        took >= Duration::from_millis(350) && took < Duration::from_secs(2),
        "{took:?}"
    );
    // Other registries are not paused.
    let start = Instant::now();
    b.acquire("s.io", None).await;
    assert!(start.elapsed() < Duration::from_millis(100));
    cleanup(&p).await;
}

#[tokio::test]
async fn a_rate_is_shared_by_the_fleet() {
    let p = prefix();
    let clients = [
        Redis::connect(config(&p)).await.throttle(),
        Redis::connect(config(&p)).await.throttle(),
    ];
    let start = Instant::now();
    let times = Arc::new(Mutex::new(Vec::new()));
    let mut tasks: Vec<JoinHandle<()>> = Vec::new();
    for i in 0..10 {
        let throttle = clients[i % 2].clone();
        let times = times.clone();
        tasks.push(tokio::spawn(async move {
            loop {
                throttle.acquire("r.io", Some(5.0)).await;
                times.lock().unwrap().push(start.elapsed());
            }
        }));
    }
    tokio::time::sleep(Duration::from_millis(1300)).await;
    for t in &tasks {
        t.abort();
    }
    let times = times.lock().unwrap().clone();
    let first_second = times
        .iter()
        .filter(|t| **t < Duration::from_secs(1))
        .count();
    println!("acquisitions at 5/s over 10 tasks on 2 clients: {times:?}");
    assert!(
        (3..=7).contains(&first_second),
        "about 5 in the first second, got {first_second}"
    );
    cleanup(&p).await;
}

/// A TCP proxy in front of Redis that can be cut and restored, to see a client degrade and
/// recover without touching the shared Redis.
struct Proxy {
    port: u16,
    tasks: Arc<Mutex<Vec<JoinHandle<()>>>>,
}

impl Proxy {
    async fn start(port: u16) -> Proxy {
        let listener = TcpListener::bind(("127.0.0.1", port)).await.unwrap();
        let port = listener.local_addr().unwrap().port();
        let tasks: Arc<Mutex<Vec<JoinHandle<()>>>> = Arc::default();
        let conns = tasks.clone();
        let accept = tokio::spawn(async move {
            while let Ok((mut inbound, _)) = listener.accept().await {
                let conn = tokio::spawn(async move {
                    if let Ok(mut outbound) = TcpStream::connect("127.0.0.1:6379").await {
                        let _ = tokio::io::copy_bidirectional(&mut inbound, &mut outbound).await;
                    }
                });
                conns.lock().unwrap().push(conn);
            }
        });
        tasks.lock().unwrap().push(accept);
        Proxy { port, tasks }
    }

    fn stop(&self) {
        for t in self.tasks.lock().unwrap().drain(..) {
            t.abort();
        }
    }
}

#[tokio::test]
async fn a_client_degrades_when_redis_goes_away_and_uses_it_again_when_it_is_back() {
    logs();
    let p = prefix();
    let proxy = Proxy::start(0).await;
    let cfg = RedisConfig {
        url: format!("redis://127.0.0.1:{}", proxy.port),
        op_timeout: Duration::from_millis(300),
        retry_interval: Duration::from_millis(200),
        ..config(&p)
    };
    let redis = Redis::connect(cfg).await;
    let idx = redis.index();
    assert!(!redis.is_degraded());
    idx.record("r.io", "a/b", DIGEST).await;
    assert_eq!(idx.repositories("r.io", DIGEST).await, ["a/b"]);

    proxy.stop();
    tokio::time::sleep(Duration::from_millis(50)).await;
    let start = Instant::now();
    for _ in 0..5 {
        assert!(idx.repositories("r.io", DIGEST).await.is_empty());
    }
    assert!(redis.is_degraded());
    assert!(
        start.elapsed() < Duration::from_secs(1),
        "{:?}",
        start.elapsed()
    );

    let proxy = Proxy::start(proxy.port).await;
    let start = Instant::now();
    let mut back = Vec::new();
    while start.elapsed() < Duration::from_secs(5) {
        back = idx.repositories("r.io", DIGEST).await;
        if !back.is_empty() {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert_eq!(back, ["a/b"], "Redis is used again once it is back");
    assert!(!redis.is_degraded());
    println!("recovered {:?} after Redis came back", start.elapsed());
    proxy.stop();
    cleanup(&p).await;
}

#[tokio::test]
async fn what_one_process_learnt_about_a_registry_another_knows() {
    use mirror_common::registry::{Quirks, QuirksStore};
    let p = prefix();
    let first = Redis::connect(config(&p)).await.quirks();
    let second = Redis::connect(config(&p)).await.quirks();
    assert_eq!(second.load("quay.io").await, None);
    let learnt = Quirks {
        chunk_size: Some(8 << 20),
        single_post: Some(false),
        mounts_declined: 3,
        mounts_work: false,
    };
    first.save("quay.io", &learnt).await;
    assert_eq!(second.load("quay.io").await, Some(learnt.clone()));
    assert!(!second.load("quay.io").await.unwrap().mounts());
    assert_eq!(second.load("ecr.example.com").await, None, "per registry");
    cleanup(&p).await;
}

#[tokio::test]
async fn a_pending_mark_names_its_run_until_released_and_many_tags_are_read_across_pipelines() {
    let p = prefix();
    let redis = Redis::connect(config(&p)).await;
    let pending = redis.pending();
    let run = Uuid::new_v4();
    // More tags than one pipeline of MGETs holds (10,000), over two registries.
    let tags: Vec<(String, String, String)> = (0..25_000)
        .map(|i| {
            let registry = if i % 2 == 0 { "a.io" } else { "b.io" };
            (
                registry.to_string(),
                "team/app".to_string(),
                format!("v{i}"),
            )
        })
        .collect();
    let (held, free) = tags.split_at(20_000);
    pending.hold(run, held, Duration::from_secs(60)).await;
    let holders = pending.holders(&tags).await;
    assert_eq!(holders.len(), tags.len());
    assert!(holders[..20_000].iter().all(|h| *h == Some(run)));
    assert!(holders[20_000..].iter().all(Option::is_none), "{free:?}");

    pending.release(&held[..10]).await;
    let after = pending.holders(&held[..11]).await;
    assert!(after[..10].iter().all(Option::is_none), "released");
    assert_eq!(after[10], Some(run), "the others still held");
    cleanup(&p).await;
}
