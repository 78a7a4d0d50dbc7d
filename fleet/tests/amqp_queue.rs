//! The RabbitMQ job queue against a real broker on 127.0.0.1:5672 (guest/guest). Each test
//! works under its own prefix `test-<uuid>` and deletes its queues and exchange when it
//! ends (also when it fails), so runs never see each other's messages.

use std::time::{Duration, Instant};

use futures::{StreamExt, TryStreamExt};
use lapin::options::{BasicPublishOptions, ExchangeDeleteOptions, QueueDeleteOptions};
use lapin::types::ShortString;
use lapin::{BasicProperties, Connection, ConnectionProperties};
use mirror_common::failure::FailureKind;
use mirror_common::job::{Job, JobResult, RunEvent, RunStarted, JOB_VERSION};
use mirror_common::queue::{JobQueue, QueueError};
use mirror_common::reference::ImageRef;
use mirror_fleet::amqp::{AmqpConfig, AmqpQueue, QueueNames};
use uuid::Uuid;

const URL: &str = "amqp://guest:guest@127.0.0.1:5672/%2f";

fn config(retry_delays: Vec<Duration>) -> AmqpConfig {
    AmqpConfig {
        url: URL.into(),
        prefix: format!("test-{}", Uuid::new_v4()),
        prefetch: 1,
        retry_delays,
        ..AmqpConfig::default()
    }
}

async fn connect(config: &AmqpConfig) -> AmqpQueue {
    match AmqpQueue::connect(config.clone()).await {
        Ok(queue) => queue,
        Err(e) => panic!(
            "these tests need RabbitMQ on 127.0.0.1:5672 (guest/guest); start it \
             (Debian: apt-get install rabbitmq-server && service rabbitmq-server start): {e}"
        ),
    }
}

/// Deletes a test's queues and exchange when dropped, even when the test panicked (on a
/// thread of its own: the test's runtime may be unwinding).
struct Cleanup(QueueNames);

impl Drop for Cleanup {
    fn drop(&mut self) {
        let names = self.0.clone();
        let done = std::thread::spawn(move || {
            let Ok(rt) = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
            else {
                return;
            };
            rt.block_on(async move {
                let Ok(conn) = Connection::connect(URL, ConnectionProperties::default()).await
                else {
                    return;
                };
                let Ok(channel) = conn.create_channel().await else {
                    return;
                };
                for queue in names.queues() {
                    let _ = channel
                        .queue_delete(queue.into(), QueueDeleteOptions::default())
                        .await;
                }
                let _ = channel
                    .exchange_delete(
                        names.events.as_str().into(),
                        ExchangeDeleteOptions::default(),
                    )
                    .await;
                let _ = conn.close(200, "cleanup".into()).await;
            });
        });
        let _ = done.join();
    }
}

/// Publishes `body` (persistent) to `queue` from a connection of another client, as a
/// foreign or broken producer would.
async fn publish_foreign(queue: &str, body: &[u8]) {
    let conn = Connection::connect(URL, ConnectionProperties::default())
        .await
        .unwrap();
    let channel = conn.create_channel().await.unwrap();
    channel
        .basic_publish(
            ShortString::from(""),
            ShortString::from(queue),
            BasicPublishOptions::default(),
            body,
            BasicProperties::default().with_delivery_mode(2),
        )
        .await
        .unwrap()
        .await
        .unwrap();
    conn.close(200, "sent".into()).await.unwrap();
}

fn job(run_id: Uuid, n: usize) -> Job {
    Job::new(
        run_id,
        ImageRef::parse(&format!("quay.io/org/app:{n}")).unwrap(),
        format!("sha256:{}", "a".repeat(64)),
        vec![
            ImageRef::parse(&format!("registry.example/mirror/app:{n}")).unwrap(),
            ImageRef::parse("registry.example/mirror/app:latest").unwrap(),
        ],
        vec![format!("mapping.txt:{n}")],
    )
}

fn count(counts: &[mirror_fleet::amqp::QueueCount], name: &str) -> (u32, u32) {
    let c = counts
        .iter()
        .find(|c| c.name == name)
        .unwrap_or_else(|| panic!("no count for {name} in {counts:?}"));
    (c.ready, c.consumers)
}

#[tokio::test]
async fn a_published_job_is_received_intact_and_gone_once_acked() {
    let cfg = config(vec![Duration::from_secs(10)]);
    let queue = connect(&cfg).await;
    let _cleanup = Cleanup(queue.queue_names());
    let mut sent = job(Uuid::new_v4(), 1);
    sent.attempt = 2;
    queue.publish(&sent).await.unwrap();

    let delivery = queue.receive().await.unwrap();
    assert_eq!(delivery.job, sent);
    delivery.acker.ack().await.unwrap();
    queue.close().await;
    assert!(!queue.is_connected());

    // Had the ack not reached the broker, closing would have put the job back.
    let other = connect(&cfg).await;
    let counts = other.counts().await.unwrap();
    assert_eq!(count(&counts, &cfg.names().jobs), (0, 0));
    other.close().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn retry_redelivers_after_the_retry_queue_delay_with_attempt_raised() {
    let cfg = config(vec![Duration::from_millis(200)]);
    let queue = connect(&cfg).await;
    let _cleanup = Cleanup(queue.queue_names());
    let sent = job(Uuid::new_v4(), 1);
    queue.publish(&sent).await.unwrap();

    let first = queue.receive().await.unwrap();
    assert_eq!(first.job.attempt, 0);
    let start = Instant::now();
    // The retry queue's TTL is the delay.
    assert_eq!(queue.max_attempts(), 2);
    first.acker.retry(&sent).await.unwrap();
    let second = tokio::time::timeout(Duration::from_secs(10), queue.receive())
        .await
        .expect("the retried job came back")
        .unwrap();
    let waited = start.elapsed();
    assert!(
        waited >= Duration::from_millis(200),
        "back after {waited:?}"
    );
    assert_eq!((second.job.id, second.job.attempt), (sent.id, 1));
    println!("retried job back after {waited:?}");

    // Past the last delay, the last retry queue is used again.
    let job = second.job.clone();
    second.acker.retry(&job).await.unwrap();
    let third = tokio::time::timeout(Duration::from_secs(10), queue.receive())
        .await
        .expect("the job came back a second time")
        .unwrap();
    assert_eq!((third.job.id, third.job.attempt), (sent.id, 2));
    third.acker.ack().await.unwrap();
    let counts = queue.counts().await.unwrap();
    assert_eq!(count(&counts, &cfg.names().retries[0]).0, 0);
    queue.close().await;
}

#[tokio::test]
async fn parked_jobs_are_listed_in_place_requeued_with_attempt_reset_and_purged() {
    let cfg = config(vec![Duration::from_secs(10)]);
    let queue = connect(&cfg).await;
    let _cleanup = Cleanup(queue.queue_names());
    let mut sent = job(Uuid::new_v4(), 1);
    sent.attempt = 3;
    queue.publish(&sent).await.unwrap();
    let delivery = queue.receive().await.unwrap();
    delivery
        .acker
        .park("destination refused the manifest")
        .await
        .unwrap();

    for _ in 0..2 {
        let parked = queue.parked().await.unwrap();
        assert_eq!(parked.len(), 1, "{parked:?}");
        assert_eq!(parked[0].job.as_ref(), Some(&sent));
        assert_eq!(parked[0].reason, "destination refused the manifest");
        assert!(parked[0].parked_at > 1_600_000_000);
        assert!(parked[0].raw.is_empty());
    }
    let counts = queue.counts().await.unwrap();
    assert_eq!(count(&counts, &cfg.names().parked), (1, 0));

    assert_eq!(queue.requeue_parked().await.unwrap(), 1);
    assert!(queue.parked().await.unwrap().is_empty());
    let back = queue.receive().await.unwrap();
    assert_eq!(back.job.id, sent.id);
    assert_eq!(back.job.attempt, 0);

    back.acker.park("again").await.unwrap();
    assert_eq!(queue.purge_parked().await.unwrap(), 1);
    assert!(queue.parked().await.unwrap().is_empty());
    queue.close().await;
}

#[tokio::test]
async fn an_undecodable_message_is_parked_and_the_next_job_received() {
    let cfg = config(vec![Duration::from_secs(10)]);
    let queue = connect(&cfg).await;
    let _cleanup = Cleanup(queue.queue_names());
    let names = queue.queue_names();

    publish_foreign(&names.jobs, b"{\"this is\": \"not a job\"}").await;
    queue.publish_raw_job(b"[1, 2]").await.unwrap();
    let good = job(Uuid::new_v4(), 2);
    queue.publish(&good).await.unwrap();

    let delivery = queue.receive().await.unwrap();
    assert_eq!(delivery.job, good);
    delivery.acker.ack().await.unwrap();

    let parked = queue.parked().await.unwrap();
    assert_eq!(parked.len(), 2, "{parked:?}");
    assert!(parked.iter().all(|p| p.job.is_none()));
    assert_eq!(parked[0].raw, "{\"this is\": \"not a job\"}");
    assert_eq!(parked[1].raw, "[1, 2]");
    let reasons: Vec<&str> = parked.iter().map(|p| p.reason.as_str()).collect();
    assert!(
        reasons[0].starts_with("cannot decode job: missing field"),
        "{reasons:?}"
    );
    assert!(
        reasons[1].starts_with("cannot decode job: invalid type"),
        "{reasons:?}"
    );
    queue.close().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_unacked_job_goes_to_another_worker_when_the_first_connection_closes() {
    let cfg = config(vec![Duration::from_secs(10)]);
    let first = connect(&cfg).await;
    let _cleanup = Cleanup(first.queue_names());
    let sent = job(Uuid::new_v4(), 1);
    first.publish(&sent).await.unwrap();
    let held = first.receive().await.unwrap();
    assert_eq!(held.job.id, sent.id);

    let second = connect(&cfg).await;
    let waiting = tokio::spawn({
        let second = second.clone();
        async move { second.receive().await }
    });
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert!(!waiting.is_finished(), "the job was delivered twice");

    first.close().await;
    let again = tokio::time::timeout(Duration::from_secs(10), waiting)
        .await
        .expect("the job was redelivered")
        .unwrap()
        .unwrap();
    assert_eq!(again.job, sent);
    // The first worker's acknowledgement comes too late and says so.
    assert!(held.acker.ack().await.is_err());
    again.acker.ack().await.unwrap();
    second.close().await;
}

#[tokio::test]
async fn stop_consuming_ends_receive_keeps_acks_working_and_returns_prefetched_jobs() {
    let mut cfg = config(vec![Duration::from_secs(10)]);
    cfg.prefetch = 3;
    let queue = connect(&cfg).await;
    let _cleanup = Cleanup(queue.queue_names());
    let run = Uuid::new_v4();
    for n in 0..3 {
        queue.publish(&job(run, n)).await.unwrap();
    }
    let taken = queue.receive().await.unwrap();
    // Let the other two reach lapin's buffer.
    tokio::time::sleep(Duration::from_millis(200)).await;
    queue.stop_consuming().await.unwrap();
    assert!(matches!(queue.receive().await, Err(QueueError::Closed)));
    taken.acker.ack().await.unwrap();

    // A quorum queue applies the cancel and the returned deliveries through its log, a
    // moment after the broker confirmed them: wait for the count to settle (5 s at most).
    let observer = connect(&cfg).await;
    let started = Instant::now();
    let settled = loop {
        let counts = observer.counts().await.unwrap();
        let now = count(&counts, &cfg.names().jobs);
        if now == (2, 0) || started.elapsed() > Duration::from_secs(5) {
            break now;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    };
    assert_eq!(settled, (2, 0));
    observer.close().await;
    queue.close().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_run_subscription_sees_its_run_only_and_the_history_keeps_both() {
    let cfg = config(vec![Duration::from_secs(10)]);
    let queue = connect(&cfg).await;
    let _cleanup = Cleanup(queue.queue_names());
    let (run_a, run_b) = (Uuid::new_v4(), Uuid::new_v4());
    let mut subscription = queue.subscribe_run(run_a).await.unwrap();
    assert_eq!(subscription.run_id(), run_a);

    let started = |run_id| RunStarted {
        version: JOB_VERSION,
        run_id,
        started_at: 1_700_000_000,
        jobs: 2,
        destinations: vec![],
        tags: 1,
        up_to_date: 0,
        group: None,
    };
    let result =
        |run_id, n| JobResult::failed(&job(run_id, n), FailureKind::Denied, "unauthorized");
    let published = vec![
        RunEvent::Started(started(run_a)),
        RunEvent::Started(started(run_b)),
        RunEvent::Result(result(run_a, 1)),
        RunEvent::Result(result(run_b, 1)),
        RunEvent::Result(result(run_a, 2)),
    ];
    for event in &published {
        match event {
            RunEvent::Started(s) => queue.publish_run_started(s).await.unwrap(),
            RunEvent::Result(r) => queue.publish_result(r).await.unwrap(),
        }
    }

    for expected in [&published[0], &published[2], &published[4]] {
        let got = tokio::time::timeout(Duration::from_secs(5), subscription.next())
            .await
            .expect("the run's event arrived")
            .unwrap();
        assert_eq!(&got, expected);
    }
    assert!(
        tokio::time::timeout(Duration::from_millis(300), subscription.next())
            .await
            .is_err(),
        "an event of another run reached the subscription"
    );

    let history = queue.read_history(Duration::from_secs(600)).await.unwrap();
    assert_eq!(history, published);
    // Reading is not consuming.
    let again = queue.read_history(Duration::from_secs(600)).await.unwrap();
    assert_eq!(again.len(), published.len());
    drop(subscription);
    queue.close().await;
}

#[tokio::test]
async fn counts_show_unconsumed_jobs_and_no_consumers() {
    let cfg = config(vec![Duration::from_secs(10), Duration::from_secs(60)]);
    let queue = connect(&cfg).await;
    let _cleanup = Cleanup(queue.queue_names());
    let run = Uuid::new_v4();
    for n in 0..7 {
        queue.publish(&job(run, n)).await.unwrap();
    }
    let counts = queue.counts().await.unwrap();
    let names = queue.queue_names();
    assert_eq!(count(&counts, &names.jobs), (7, 0));
    for name in names.retries.iter().chain([&names.parked]) {
        assert_eq!(count(&counts, name), (0, 0));
    }
    assert_eq!(counts.len(), names.queues().len());

    // A queue deleted under us is left out of the counts, not an error.
    let conn = Connection::connect(URL, ConnectionProperties::default())
        .await
        .unwrap();
    let channel = conn.create_channel().await.unwrap();
    channel
        .queue_delete(
            names.retries[0].as_str().into(),
            QueueDeleteOptions::default(),
        )
        .await
        .unwrap();
    let counts = queue.counts().await.unwrap();
    assert_eq!(counts.len(), names.queues().len() - 1);
    assert_eq!(count(&counts, &names.jobs), (7, 0));
    assert_eq!(count(&counts, &names.history).1, 0);
    queue.close().await;

    // And the cleanup leaves nothing behind.
    drop(_cleanup);
    let gone = channel
        .queue_declare(
            names.jobs.as_str().into(),
            lapin::options::QueueDeclareOptions::default().passive(),
            Default::default(),
        )
        .await;
    assert!(gone.is_err(), "{gone:?}");
    let _ = conn.close(200, "done".into()).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn two_thousand_confirmed_publishes() {
    let cfg = config(vec![Duration::from_secs(10)]);
    let queue = connect(&cfg).await;
    let _cleanup = Cleanup(queue.queue_names());
    let run = Uuid::new_v4();
    let jobs: Vec<Job> = (0..2000).map(|n| job(run, n)).collect();
    let start = Instant::now();
    // Half from spawned tasks (several threads), half concurrently from this one.
    let spawned: Vec<_> = jobs[..1000]
        .chunks(100)
        .map(|chunk| {
            let (queue, chunk) = (queue.clone(), chunk.to_vec());
            tokio::spawn(async move {
                let publishes = chunk.into_iter().map(|j| {
                    let queue = queue.clone();
                    async move { queue.publish(&j).await }
                });
                futures::stream::iter(publishes)
                    .buffer_unordered(50)
                    .try_collect::<Vec<()>>()
                    .await
            })
        })
        .collect();
    futures::stream::iter(jobs[1000..].iter().map(|j| queue.publish(j)))
        .buffer_unordered(256)
        .try_collect::<Vec<()>>()
        .await
        .unwrap();
    for task in spawned {
        task.await.unwrap().unwrap();
    }
    let took = start.elapsed();
    println!(
        "2000 confirmed publishes in {took:?} ({:.0}/s)",
        2000.0 / took.as_secs_f64()
    );
    let counts = queue.counts().await.unwrap();
    assert_eq!(count(&counts, &queue.queue_names().jobs).0, 2000);
    queue.close().await;
}

/// A TCP relay to the broker that can be cut, to lose a connection the way a network does.
async fn relay() -> (String, tokio::sync::watch::Sender<bool>) {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    let (cut, cut_rx) = tokio::sync::watch::channel(false);
    tokio::spawn(async move {
        while let Ok((mut client, _)) = listener.accept().await {
            let mut cut_rx = cut_rx.clone();
            tokio::spawn(async move {
                let Ok(mut broker) = tokio::net::TcpStream::connect("127.0.0.1:5672").await else {
                    return;
                };
                tokio::select! {
                    _ = tokio::io::copy_bidirectional(&mut client, &mut broker) => {}
                    _ = cut_rx.wait_for(|cut| *cut) => {}
                }
            });
        }
    });
    (format!("amqp://guest:guest@127.0.0.1:{port}/%2f"), cut)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_lost_connection_fails_receive_and_publish_and_returns_the_held_job() {
    let (url, cut) = relay().await;
    let cfg = AmqpConfig {
        url,
        ..config(vec![Duration::from_secs(10)])
    };
    let queue = connect(&cfg).await;
    let _cleanup = Cleanup(queue.queue_names());
    let sent = job(Uuid::new_v4(), 1);
    queue.publish(&sent).await.unwrap();
    let held = queue.receive().await.unwrap();
    let waiting = tokio::spawn({
        let queue = queue.clone();
        async move { queue.receive().await }
    });
    tokio::time::sleep(Duration::from_millis(100)).await;

    cut.send(true).unwrap();
    let lost = tokio::time::timeout(Duration::from_secs(10), waiting)
        .await
        .expect("receive noticed the lost connection")
        .unwrap();
    match lost {
        Err(QueueError::Broker(msg)) => println!("receive after the cut: {msg}"),
        Err(QueueError::Closed) => panic!("a lost connection is not a clean close"),
        Ok(d) => panic!("received {:?}", d.job.id),
    }
    assert!(!queue.is_connected());
    assert!(matches!(
        queue.publish(&sent).await,
        Err(QueueError::Broker(_))
    ));
    assert!(held.acker.ack().await.is_err());

    let direct = AmqpConfig {
        url: URL.into(),
        ..cfg.clone()
    };
    let worker = connect(&direct).await;
    let again = tokio::time::timeout(Duration::from_secs(10), worker.receive())
        .await
        .expect("the held job came back")
        .unwrap();
    assert_eq!(again.job, sent);
    again.acker.ack().await.unwrap();
    worker.close().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_long_history_is_read_to_the_end() {
    let cfg = config(vec![Duration::from_secs(10)]);
    let queue = connect(&cfg).await;
    let _cleanup = Cleanup(queue.queue_names());
    let run = Uuid::new_v4();
    let results: Vec<JobResult> = (0..1800)
        .map(|n| JobResult::failed(&job(run, n), FailureKind::Denied, "unauthorized"))
        .collect();
    futures::stream::iter(results.iter().map(|r| queue.publish_result(r)))
        .buffer_unordered(256)
        .try_collect::<Vec<()>>()
        .await
        .unwrap();
    let start = Instant::now();
    let history = queue.read_history(Duration::from_secs(600)).await.unwrap();
    println!("read {} events in {:?}", history.len(), start.elapsed());
    assert_eq!(history.len(), results.len());
    queue.close().await;
}

#[tokio::test]
async fn a_refused_login_does_not_reveal_the_password() {
    let cfg = AmqpConfig {
        url: "amqp://guest:not-the-password-42@127.0.0.1:5672/%2f".into(),
        ..config(vec![])
    };
    // Reachability first, so that a stopped broker fails with the helpful message.
    let probe = connect(&config(vec![])).await;
    let _cleanup = Cleanup(probe.queue_names());
    probe.close().await;
    let err = match AmqpQueue::connect(cfg).await {
        Ok(_) => panic!("connected with a wrong password"),
        Err(e) => e.to_string(),
    };
    assert!(!err.contains("not-the-password-42"), "{err}");
    assert!(err.contains("amqp://127.0.0.1:5672/%2f"), "{err}");
    println!("{err}");
}

#[tokio::test]
async fn processes_with_other_retry_delays_share_the_broker() {
    let cfg = config(vec![Duration::from_secs(10)]);
    let queue = connect(&cfg).await;
    let _cleanup = Cleanup(queue.queue_names());
    let changed = AmqpConfig {
        retry_delays: vec![Duration::from_secs(20)],
        ..cfg.clone()
    };
    let other = connect(&changed).await;
    let _cleanup_other = Cleanup(other.queue_names());
    assert_ne!(queue.queue_names().retries, other.queue_names().retries);
    assert!(other.queue_names().retries[0].ends_with(".retry.20000ms"));
    assert!(queue.counts().await.is_ok());
    other.close().await;
    queue.close().await;
}

fn sources(n: usize) -> Vec<ImageRef> {
    (0..n)
        .map(|i| ImageRef::parse(&format!("src.example/team/app:v{i}")).unwrap())
        .collect()
}

fn digest_of(i: usize) -> String {
    format!("sha256:{i:064x}")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn workers_answer_digest_requests_and_the_asker_keeps_each_answer_in_its_place() {
    use mirror_common::source_digests::SourceDigests;
    let cfg = config(vec![]);
    let queue = connect(&cfg).await;
    let _cleanup = Cleanup(queue.queue_names());
    let asker = queue.digest_asker().await.unwrap();
    let wanted = sources(300);
    let refs: Vec<&ImageRef> = wanted.iter().collect();
    let run = Uuid::new_v4();

    let at_once = Instant::now();
    let answers = asker.digests(run, &refs).await;
    assert!(
        answers.iter().all(Option::is_none),
        "no worker: nothing answered"
    );
    assert!(
        at_once.elapsed() < Duration::from_secs(5),
        "and nothing waited for"
    );

    // A worker: even sources resolved, odd ones not, the last one answered with garbage.
    let worker = connect(&cfg).await;
    let mut requests = worker.digest_requests(2).await.unwrap();
    let answering = tokio::spawn(async move {
        let mut sizes = Vec::new();
        while let Ok(asked) = requests.next().await {
            assert_eq!(asked.request.run_id, run);
            sizes.push(asked.request.sources.len());
            let digests = asked
                .request
                .sources
                .iter()
                .map(|s| {
                    let i: usize = s.rsplit_once(":v").unwrap().1.parse().unwrap();
                    match (i % 2, i) {
                        (_, 299) => Some("not a digest".to_string()),
                        (0, _) => Some(digest_of(i)),
                        _ => None,
                    }
                })
                .collect();
            asked.reply(digests).await.unwrap();
            if sizes.iter().sum::<usize>() == 300 {
                return sizes;
            }
        }
        sizes
    });
    let answers = asker.digests(run, &refs).await;
    let mut sizes = answering.await.unwrap();
    sizes.sort_unstable();
    assert_eq!(sizes, [44, 256], "at most 256 sources a request");
    for (i, answer) in answers.iter().enumerate() {
        let expected = (i % 2 == 0 && i != 299).then(|| digest_of(i));
        assert_eq!(answer, &expected, "source {i}");
    }
    assert_eq!(
        asker.resolved_by_fleet(),
        (300, 150),
        "asked only while a worker serves"
    );
    worker.close().await;
    queue.close().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_silent_worker_leaves_every_source_to_the_asker_and_a_bad_request_is_parked() {
    use mirror_common::source_digests::SourceDigests;
    let cfg = config(vec![]);
    let queue = connect(&cfg).await;
    let _cleanup = Cleanup(queue.queue_names());
    let names = queue.queue_names();
    let worker = connect(&cfg).await;
    let mut requests = worker.digest_requests(1).await.unwrap();

    let asker = queue
        .digest_asker()
        .await
        .unwrap()
        .with_reply_silence(Duration::from_millis(500));
    let wanted = sources(3);
    let refs: Vec<&ImageRef> = wanted.iter().collect();
    let answers = asker.digests(Uuid::new_v4(), &refs).await;
    assert_eq!(answers, [None, None, None], "nobody answered in time");
    let held = requests.next().await.unwrap();
    assert_eq!(
        held.request.sources.len(),
        3,
        "the request was taken, not answered"
    );

    publish_foreign(&names.digests, b"{\"sources\": 7}").await;
    // Answering the held request lets the next (undecodable) one in; it is parked.
    held.reply(vec![None, None, None]).await.unwrap();
    let parked = tokio::time::timeout(Duration::from_secs(10), async {
        loop {
            let parked = queue.parked().await.unwrap();
            if !parked.is_empty() {
                return parked;
            }
            tokio::select! {
                _ = requests.next() => panic!("an undecodable request is not handed out"),
                _ = tokio::time::sleep(Duration::from_millis(100)) => {}
            }
        }
    })
    .await
    .unwrap();
    assert_eq!(parked[0].raw, "{\"sources\": 7}");
    assert!(
        parked[0].reason.starts_with("cannot decode digest request"),
        "{}",
        parked[0].reason
    );
    worker.close().await;
    queue.close().await;
}
