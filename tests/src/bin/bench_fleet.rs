//! Benchmark: the corpus of `bench_corpus` (100 tags over 10 repositories, 20 ms of latency
//! each way on both registries, `LATENCY_MS` to change) mirrored cold then warm by the
//! embedded mode (`mirror-scheduler run --local`) and by the distributed mode with one and
//! with two `mirror-worker run` processes (`mirror-scheduler run --wait`), all in one run.
//! Prints wall times, the scheduler's and each worker's peak RSS, and each mode's times
//! against the embedded mode's. Run through `bench/fleet.sh`.
//!
//! Why: the distributed mode adds a broker round trip per job and the planning scheduler's
//! wait for results; this shows what that costs (or what a second worker process buys)
//! on the same work, so a slowdown in either mode shows up next to the other.
//!
//! Each mode mirrors into a destination prefix of its own (`ours-local/`, `ours-1w/`,
//! `ours-2w/`), so each starts cold; the distributed modes use a queue and Redis key prefix
//! of their own, deleted after them.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{bail, ensure, Context, Result};
use mirror_common::queue::amqp::AmqpQueue;
use mirror_tests::bench::{measure, Measured};
use mirror_tests::binary;
use mirror_tests::corpus::{latency_ms, Corpus};
use mirror_tests::fleet::{broker_flags, prefix, Prefix, RETRY_DELAYS};

/// Jobs each worker process copies at the same time.
const WORKER_CONCURRENCY: &str = "8";

/// How long workers get to come up and start consuming before the run is abandoned.
const STARTUP_LIMIT: Duration = Duration::from_secs(30);

/// How long a worker gets to drain and exit after SIGTERM (its `--grace` plus slack).
const STOP_LIMIT: Duration = Duration::from_secs(30);

/// One way of mirroring the corpus.
struct Mode {
    name: &'static str,
    /// Destination repository prefix, its own so that its first run is cold.
    dest_prefix: &'static str,
    /// `mirror-worker run` processes; 0 for the embedded mode.
    workers: usize,
}

const MODES: [Mode; 3] = [
    Mode {
        name: "embedded: run --local",
        dest_prefix: "ours-local",
        workers: 0,
    },
    Mode {
        name: "1 worker + run --wait",
        dest_prefix: "ours-1w",
        workers: 1,
    },
    Mode {
        name: "2 workers + run --wait",
        dest_prefix: "ours-2w",
        workers: 2,
    },
];

/// What one mode measured.
struct Row {
    name: &'static str,
    cold: Measured,
    warm: Measured,
    /// Peak RSS of each worker process over both runs, in KiB.
    worker_rss_kib: Vec<u64>,
}

/// A `mirror-worker run` process.
///
/// Spawned here rather than with `mirror_tests::fleet::Worker` because that helper fixes
/// `--concurrency 2` and clap refuses the flag a second time, while the benchmark wants
/// each worker as wide as a production one. Killed (SIGKILL) on drop if still running.
struct WorkerProcess {
    child: Child,
    log: PathBuf,
    _home: tempfile::TempDir,
}

impl WorkerProcess {
    /// Starts a worker on the prefix's jobs, reaching `insecure` hosts over plain HTTP.
    fn start(prefix: &str, insecure: &[String]) -> Result<WorkerProcess> {
        // A home of its own, so the caller's docker credentials are not read.
        let home = tempfile::tempdir()?;
        let log = home.path().join("worker.log");
        let mut args: Vec<String> = ["run", "--concurrency", WORKER_CONCURRENCY, "--grace", "10"]
            .iter()
            .map(|s| s.to_string())
            .collect();
        args.extend(fleet_flags(prefix));
        for h in insecure {
            args.extend(["--insecure-registry".to_string(), h.clone()]);
        }
        let out = std::fs::File::create(&log)?;
        let err = out.try_clone()?;
        let child = Command::new(binary("mirror-worker"))
            .args(&args)
            .env("HOME", home.path())
            .stdout(Stdio::from(out))
            .stderr(Stdio::from(err))
            .spawn()
            .context("starting mirror-worker")?;
        Ok(WorkerProcess {
            child,
            log,
            _home: home,
        })
    }

    /// Peak resident set size so far (`VmHWM`), in KiB. Read while the process is still
    /// alive: its /proc entry goes once it has exited and been reaped.
    fn peak_rss_kib(&self) -> Result<u64> {
        vm_hwm_kib(&format!("/proc/{}/status", self.child.id()))
    }

    /// Sends SIGTERM.
    fn terminate(&self) -> Result<()> {
        let status = Command::new("kill")
            .args(["-TERM", &self.child.id().to_string()])
            .status()?;
        ensure!(status.success(), "kill -TERM {} failed", self.child.id());
        Ok(())
    }

    /// Waits for the exit that follows SIGTERM; it must be a clean one (status 0).
    fn wait_stopped(&mut self) -> Result<()> {
        let start = Instant::now();
        while start.elapsed() < STOP_LIMIT {
            if let Some(status) = self.child.try_wait()? {
                ensure!(
                    status.code() == Some(0),
                    "mirror-worker exited with {status} after SIGTERM:\n{}",
                    self.log_text()
                );
                return Ok(());
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        bail!(
            "mirror-worker did not exit within {STOP_LIMIT:?} of SIGTERM:\n{}",
            self.log_text()
        )
    }

    fn log_text(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }
}

impl Drop for WorkerProcess {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Broker and Redis flags for a mode's prefix: its own queues and its own Redis keys (blob
/// index, tag cache), so no mode starts with what an earlier mode learnt, and the prefix's
/// drop deletes both.
fn fleet_flags(prefix: &str) -> Vec<String> {
    let mut flags = broker_flags(prefix, RETRY_DELAYS);
    flags.extend(["--redis-prefix".to_string(), prefix.to_string()]);
    flags
}

/// `VmHWM` of a `/proc/<pid>/status` file, in KiB.
fn vm_hwm_kib(status_path: &str) -> Result<u64> {
    let text = std::fs::read_to_string(status_path).with_context(|| status_path.to_string())?;
    text.lines()
        .find_map(|l| l.strip_prefix("VmHWM:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .with_context(|| format!("no VmHWM in {status_path}"))
}

/// Waits until `n` consumers are on the prefix's jobs queue, so that worker start-up (and
/// their connecting to the broker) is not counted in the first run's time.
async fn wait_consumers(prefix: &Prefix, n: usize, workers: &mut [WorkerProcess]) -> Result<()> {
    let queue = AmqpQueue::connect(prefix.config()).await?;
    let jobs = queue.queue_names().jobs;
    let start = Instant::now();
    let outcome = loop {
        let consumers = queue
            .counts()
            .await?
            .iter()
            .find(|c| c.name == jobs)
            .map_or(0, |c| c.consumers as usize);
        if consumers >= n {
            break Ok(());
        }
        let exited = workers
            .iter_mut()
            .position(|w| matches!(w.child.try_wait(), Ok(Some(_))));
        if let Some(i) = exited {
            break Err(anyhow::anyhow!(
                "a mirror-worker exited while starting:\n{}",
                workers[i].log_text()
            ));
        }
        if start.elapsed() > STARTUP_LIMIT {
            break Err(anyhow::anyhow!(
                "{consumers} of {n} workers consuming after {STARTUP_LIMIT:?}"
            ));
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    queue.close().await;
    outcome
}

/// Runs one mode: its workers (if any), a cold then a warm scheduler run, the workers'
/// peak RSS, then their SIGTERM.
async fn run_mode(mode: &Mode, corpus: &Corpus, dir: &Path) -> Result<Row> {
    let (s, d) = (corpus.src_host(), corpus.dst_host());
    let mapping = dir.join(format!("mapping_{}", mode.dest_prefix));
    corpus.write_mapping(&mapping, mode.dest_prefix)?;
    let mut args: Vec<String> = ["run", "-f", mapping.to_str().unwrap_or_default()]
        .iter()
        .map(|x| x.to_string())
        .collect();
    for h in [&s, &d] {
        args.extend(["--insecure-registry".to_string(), h.clone()]);
    }
    // Declared before the workers, so that it is dropped (and its queues deleted) after
    // they are gone.
    let queues = (mode.workers > 0).then(prefix);
    let mut workers = Vec::new();
    match &queues {
        None => args.push("--local".into()),
        Some(p) => {
            args.push("--wait".into());
            args.extend(fleet_flags(p));
            for _ in 0..mode.workers {
                workers.push(WorkerProcess::start(p, &[s.clone(), d.clone()])?);
            }
            wait_consumers(p, mode.workers, &mut workers).await?;
        }
    }
    let scheduler = binary("mirror-scheduler").display().to_string();
    let mut runs = Vec::new();
    for phase in ["cold", "warm"] {
        eprintln!("{}: {phase} run", mode.name);
        let m = measure(&scheduler, &args)?;
        ensure!(
            m.success,
            "{}: {phase} run failed: {}{}",
            mode.name,
            m.stderr,
            workers
                .iter()
                .map(|w| format!("\nworker log:\n{}", w.log_text()))
                .collect::<String>()
        );
        runs.push(m);
    }
    let worker_rss_kib = workers
        .iter()
        .map(WorkerProcess::peak_rss_kib)
        .collect::<Result<Vec<_>>>()?;
    for w in &workers {
        w.terminate()?;
    }
    for w in &mut workers {
        w.wait_stopped()?;
    }
    let warm = runs.pop().context("warm run")?;
    let cold = runs.pop().context("cold run")?;
    Ok(Row {
        name: mode.name,
        cold,
        warm,
        worker_rss_kib,
    })
}

#[tokio::main]
async fn main() -> Result<()> {
    let corpus = Corpus::start(latency_ms()).await?;
    let dir = tempfile::tempdir()?;
    let mut rows = Vec::new();
    for mode in &MODES {
        rows.push(run_mode(mode, &corpus, dir.path()).await?);
    }

    println!("{}", corpus.describe());
    println!(
        "workers: mirror-worker run --concurrency {WORKER_CONCURRENCY}; embedded: run --local with its default --workers; ratios: mode time / embedded time"
    );
    println!(
        "{:<24} {:>9} {:>9} {:>19} {:>22} {:>11} {:>11}",
        "mode",
        "cold (s)",
        "warm (s)",
        "scheduler RSS (MiB)",
        "worker RSS (MiB)",
        "cold ratio",
        "warm ratio"
    );
    let (base_cold, base_warm) = (rows[0].cold.seconds, rows[0].warm.seconds);
    for row in &rows {
        let scheduler_rss = row.cold.peak_rss_mib().max(row.warm.peak_rss_mib());
        let workers = match row.worker_rss_kib.is_empty() {
            true => "-".to_string(),
            false => row
                .worker_rss_kib
                .iter()
                .map(|k| format!("{:.1}", *k as f64 / 1024.0))
                .collect::<Vec<_>>()
                .join(" / "),
        };
        println!(
            "{:<24} {:>9.2} {:>9.2} {:>19.1} {:>22} {:>10.2}x {:>10.2}x",
            row.name,
            row.cold.seconds,
            row.warm.seconds,
            scheduler_rss,
            workers,
            row.cold.seconds / base_cold,
            row.warm.seconds / base_warm
        );
    }
    Ok(())
}
