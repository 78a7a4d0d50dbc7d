//! `mirror-worker run` processes for the benchmarks that run a fleet (`bench_fleet`,
//! `bench_scale`, `bench_sim`): started wide, waited for until they consume, measured (peak
//! RSS) and stopped cleanly.

use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{bail, ensure, Context, Result};
use mirror_fleet::amqp::AmqpQueue;
use mirror_tests::binary;
use mirror_tests::fleet::{broker_flags, Prefix, RETRY_DELAYS};

/// How long workers get to come up and start consuming before the run is abandoned.
const STARTUP_LIMIT: Duration = Duration::from_secs(30);

/// How long a worker gets to drain and exit after SIGTERM (its `--grace` plus slack).
const STOP_LIMIT: Duration = Duration::from_secs(30);

/// One `mirror-worker run` process.
///
/// Spawned here rather than with `mirror_tests::fleet::Worker` because that helper fixes
/// `--concurrency 2` and clap refuses the flag a second time, while the benchmark wants
/// each worker as wide as a production one. Killed (SIGKILL) on drop if still running.
pub struct WorkerProcess {
    /// The process.
    pub child: Child,
    log: PathBuf,
    _home: tempfile::TempDir,
}

impl WorkerProcess {
    /// Starts a worker on the prefix's jobs copying `concurrency` at once, reaching
    /// `insecure` hosts over plain HTTP, with `extra` flags.
    pub fn start(
        prefix: &str,
        concurrency: &str,
        insecure: &[String],
        extra: &[&str],
    ) -> Result<WorkerProcess> {
        // A home of its own, so the caller's docker credentials are not read.
        let home = tempfile::tempdir()?;
        let log = home.path().join("worker.log");
        let mut args: Vec<String> = ["run", "--concurrency", concurrency, "--grace", "10s"]
            .iter()
            .map(|s| s.to_string())
            .collect();
        args.extend(extra.iter().map(|s| s.to_string()));
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
    pub fn peak_rss_kib(&self) -> Result<u64> {
        vm_hwm_kib(&format!("/proc/{}/status", self.child.id()))
    }

    /// Sends SIGTERM.
    pub fn terminate(&self) -> Result<()> {
        let status = Command::new("kill")
            .args(["-TERM", &self.child.id().to_string()])
            .status()?;
        ensure!(status.success(), "kill -TERM {} failed", self.child.id());
        Ok(())
    }

    /// Waits for the exit that follows SIGTERM; it must be a clean one (status 0).
    pub fn wait_stopped(&mut self) -> Result<()> {
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

    pub fn log_text(&self) -> String {
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
pub fn fleet_flags(prefix: &str) -> Vec<String> {
    let mut flags = broker_flags(prefix, RETRY_DELAYS);
    flags.extend(["--redis-prefix".to_string(), prefix.to_string()]);
    flags
}

/// `VmHWM` of a `/proc/<pid>/status` file, in KiB.
pub fn vm_hwm_kib(status_path: &str) -> Result<u64> {
    let text = std::fs::read_to_string(status_path).with_context(|| status_path.to_string())?;
    text.lines()
        .find_map(|l| l.strip_prefix("VmHWM:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .with_context(|| format!("no VmHWM in {status_path}"))
}

/// Waits until `n` consumers are on the prefix's jobs queue, so that worker start-up (and
/// their connecting to the broker) is not counted in the first run's time.
pub async fn wait_consumers(
    prefix: &Prefix,
    n: usize,
    workers: &mut [WorkerProcess],
) -> Result<()> {
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
