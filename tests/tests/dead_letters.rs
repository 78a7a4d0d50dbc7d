//! `mirror-scheduler dead-letters` on a real RabbitMQ (a queue prefix of its own per test):
//! requeueing or purging only the parked jobs of chosen jobs and runs, the others staying
//! parked in their order. (What a parked job says of its attempts is checked where a real
//! worker parks one: `distributed.rs`.)

use mirror_common::job::Job;
use mirror_common::queue::JobQueue;
use mirror_common::reference::ImageRef;
use mirror_tests::fleet::{prefix, scheduler, Prefix};
use mirror_tests::test_io::text;
use uuid::Uuid;

fn job(run: Uuid, n: usize) -> Job {
    Job::new(
        run,
        ImageRef::parse(&format!("quay.io/org/app:{n}")).unwrap(),
        format!("sha256:{}", "b".repeat(64)),
        vec![ImageRef::parse(&format!("registry.example/mirror/app:{n}")).unwrap()],
        vec![format!("mapping:{n}")],
    )
}

/// Parks `jobs` in this order, as a worker parks them (published, delivered, parked).
async fn park(p: &Prefix, jobs: &[Job]) -> mirror_fleet::amqp::AmqpQueue {
    let queue = mirror_fleet::amqp::AmqpQueue::connect(p.config())
        .await
        .unwrap();
    for j in jobs {
        queue.publish(j).await.unwrap();
        let delivery = queue.receive().await.unwrap();
        assert_eq!(delivery.job.id, j.id);
        delivery.acker.park("gave up").await.unwrap();
    }
    queue
}

/// Job ids of what is parked, in order.
async fn parked_ids(queue: &mirror_fleet::amqp::AmqpQueue) -> Vec<Uuid> {
    let parked = queue.parked().await.unwrap();
    parked.iter().map(|m| m.job.as_ref().unwrap().id).collect()
}

/// Three parked jobs of two runs: `requeue --job` replays that one job only, `purge --run`
/// drops that run's only, and the other stays parked, in its place; a `--job` naming
/// nothing parked is an error that names it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn requeue_by_job_and_purge_by_run_leave_the_other_parked_jobs_in_their_order() {
    let p = prefix();
    let (one, two) = (Uuid::new_v4(), Uuid::new_v4());
    let (a, b, c) = (job(one, 1), job(one, 2), job(two, 3));
    let queue = park(&p, &[a.clone(), b.clone(), c.clone()]).await;
    assert_eq!(parked_ids(&queue).await, vec![a.id, b.id, c.id]);

    let job_flag = b.id.to_string();
    let requeued = scheduler(
        &p,
        &["dead-letters", "requeue", "--job", &job_flag],
        &[],
        &[],
    );
    assert!(requeued.status.success(), "{}", text(&requeued.stderr));
    assert_eq!(
        text(&requeued.stdout).trim(),
        "requeued 1 parked job; 2 stay parked"
    );
    assert_eq!(
        parked_ids(&queue).await,
        vec![a.id, c.id],
        "the others stay, in order"
    );
    let back = queue.receive().await.unwrap();
    assert_eq!(
        (back.job.id, back.job.attempt),
        (b.id, 0),
        "on the jobs queue, attempts reset"
    );
    back.acker.ack().await.unwrap();

    let run_flag = two.to_string();
    let purged = scheduler(&p, &["dead-letters", "purge", "--run", &run_flag], &[], &[]);
    assert!(purged.status.success(), "{}", text(&purged.stderr));
    assert_eq!(
        text(&purged.stdout).trim(),
        "purged 1 parked job; 1 stays parked"
    );
    assert_eq!(parked_ids(&queue).await, vec![a.id]);

    let unknown = Uuid::new_v4().to_string();
    let none = scheduler(&p, &["dead-letters", "purge", "--job", &unknown], &[], &[]);
    assert_eq!(none.status.code(), Some(1));
    assert!(
        text(&none.stderr).contains(&format!("--job {unknown}: no parked job has this id")),
        "{}",
        text(&none.stderr)
    );
    assert_eq!(parked_ids(&queue).await, vec![a.id], "nothing else touched");

    // Neither flag: every parked job, as before.
    let all = scheduler(&p, &["dead-letters", "purge"], &[], &[]);
    assert_eq!(text(&all.stdout).trim(), "purged 1 parked job");
    assert!(parked_ids(&queue).await.is_empty());
    queue.close().await;
}
