//! Benchmark: publishing 100,000 copy jobs (`JOBS` to change) to RabbitMQ through
//! `AmqpQueue` and `mirror_common::queue::publish_all`, the path `mirror-scheduler run`
//! takes in the distributed mode: every job persistent, mandatory and confirmed by the
//! broker, many confirms awaited at once. Prints jobs per second, the total time (target:
//! under 10 s for 100,000) and this process's peak RSS. Run through `bench/publish.sh`.
//!
//! Why: a scheduler publishes every planned job on every run, and the largest mapping
//! sets plan tens of thousands of them; publishing must stay a small part of a run, and
//! must not need memory in proportion to more than the jobs themselves.
//!
//! The jobs go to a queue prefix of their own, deleted (with the 100,000 messages) at the
//! end, so the benchmark leaves nothing behind on the broker and never meets a consumer.

use std::time::Instant;

use anyhow::{ensure, Context, Result};
use mirror_common::job::Job;
use mirror_common::queue::{publish_all, QueueError};
use mirror_common::reference::ImageRef;
use mirror_fleet::amqp::{AmqpConfig, AmqpQueue};
use mirror_tests::fleet::AMQP_URL;
use mirror_tests::sha256_digest;

/// Jobs published when `JOBS` is not set.
const DEFAULT_JOBS: usize = 100_000;

/// What the scheduler should publish 100,000 jobs within.
const TARGET_SECONDS: f64 = 10.0;

/// A job the size of a real one: a quay.io source with a long repository and tag, a
/// resolved digest, two destination tags in one repository of a CI registry, and the
/// `file:line` it was planned from. Every job differs (no two bodies alike). The run id is
/// `run.id`: see [`fresh_run`].
fn synthetic_job(run: &Job, i: usize) -> Result<Job> {
    let minor = 12 + i % 6;
    let component = format!("component-{i:06}");
    let patch = i % 50;
    let source = ImageRef::parse(&format!(
        "quay.io/openshift-release-dev/ocp-v4.0-art-dev:4.{minor}.{patch}-{component}"
    ))?;
    let destinations = [
        format!("registry.ci.openshift.org/ocp/4.{minor}:{component}"),
        format!("registry.ci.openshift.org/ocp/4.{minor}:{component}-4.{minor}.{patch}"),
    ]
    .iter()
    .map(|d| ImageRef::parse(d))
    .collect::<Result<Vec<_>, _>>()?;
    Ok(Job::new(
        run.id,
        source,
        sha256_digest(&i.to_le_bytes()),
        destinations,
        vec![format!("mapping_origin_4_{minor}:{}", i / 6 + 1)],
    ))
}

/// A placeholder job whose id serves as the run id of the benchmark's jobs: `Job::new`
/// mints a fresh v4 uuid, which spares this crate a `uuid` dependency for one value.
fn fresh_run() -> Result<Job> {
    Ok(Job::new(
        Default::default(),
        ImageRef::parse("quay.io/openshift-release-dev/ocp-release:run")?,
        sha256_digest(b"run"),
        Vec::new(),
        Vec::new(),
    ))
}

/// A `/proc/self/status` field (`VmHWM`, `VmRSS`), in KiB.
fn proc_self_kib(field: &str) -> Result<u64> {
    let text = std::fs::read_to_string("/proc/self/status")?;
    text.lines()
        .find_map(|l| l.strip_prefix(field)?.strip_prefix(':'))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .with_context(|| format!("no {field} in /proc/self/status"))
}

fn mib(kib: u64) -> f64 {
    kib as f64 / 1024.0
}

#[tokio::main]
async fn main() -> Result<()> {
    let count: usize = match std::env::var("JOBS") {
        Ok(v) => v
            .parse()
            .with_context(|| format!("JOBS={v:?} is not a count"))?,
        Err(_) => DEFAULT_JOBS,
    };
    let run = fresh_run()?;
    let jobs = (0..count)
        .map(|i| synthetic_job(&run, i))
        .collect::<Result<Vec<_>>>()?;
    let body_bytes: usize = jobs
        .iter()
        .map(|j| serde_json::to_vec(j).map(|b| b.len()))
        .sum::<Result<usize, _>>()?;
    let rss_with_jobs = proc_self_kib("VmRSS")?;

    // A prefix of our own (the broker may be shared with tests and real installations).
    let config = AmqpConfig {
        url: AMQP_URL.into(),
        prefix: format!("bench-publish-{:016x}", rand::random::<u64>()),
        ..AmqpConfig::default()
    };
    let prefix = config.prefix.clone();
    let queue = AmqpQueue::connect(config).await?;
    let started = Instant::now();
    let published = publish_all(&queue, &jobs).await;
    let seconds = started.elapsed().as_secs_f64();
    // Counted before the topology goes: every confirmed job must be in the queue.
    let held = queue.counts().await.map(|counts| {
        counts
            .into_iter()
            .find(|c| c.name == queue.queue_names().jobs)
            .map_or(0, |c| c.ready as usize)
    });
    // Deleted whatever happened above, so a failed run leaves no queues full of jobs.
    let deleted = queue.delete_topology().await;
    queue.close().await;
    published.context("publishing")?;
    deleted.with_context(|| format!("deleting the topology of prefix {prefix}"))?;
    let held = held.map_err(|e: QueueError| anyhow::anyhow!(e))?;
    ensure!(
        held == count,
        "the jobs queue held {held} messages after {count} confirmed publishes"
    );

    let peak = proc_self_kib("VmHWM")?;
    let target = TARGET_SECONDS * count as f64 / DEFAULT_JOBS as f64;
    println!(
        "published {count} jobs ({:.0} bytes of JSON each on average, publisher confirms) to RabbitMQ through AmqpQueue + publish_all",
        body_bytes as f64 / count.max(1) as f64
    );
    println!(
        "{:>10} {:>10} {:>10} {:>26} {:>15}",
        "jobs", "total (s)", "jobs/s", "RSS with jobs built (MiB)", "peak RSS (MiB)"
    );
    println!(
        "{count:>10} {seconds:>10.2} {:>10.0} {:>26.1} {:>15.1}",
        count as f64 / seconds,
        mib(rss_with_jobs),
        mib(peak)
    );
    println!(
        "target: under {target:.1} s ({}); {held} jobs held by the queue before it was deleted",
        if seconds < target { "met" } else { "MISSED" }
    );
    Ok(())
}
