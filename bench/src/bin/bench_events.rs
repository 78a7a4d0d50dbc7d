//! Benchmark: push-triggered mirroring (`run --listen-events`) in the distributed mode,
//! two workers, 20 ms each way (`LATENCY_MS`) between the mirror and both registries.
//! Three phases, each printing its figures and a JSON line:
//!
//! 1. **burst**: `TAGS` (500) new tags pushed to the source over `BURST_SECS` (60 s), each a
//!    new small image (one shared base layer, one random small layer and its config): for
//!    each tag, the time from its push's completion (the manifest PUT answered) to the tag
//!    being at the destination at the pushed digest; p50, p90, p99, max, and the tags
//!    missed (not there `WAIT_SECS`, 60 s, after the last push).
//! 2. **idle**: the listener of phase 1 up, nothing pushed for `IDLE_SECS` (30 s): the
//!    requests both registries logged meanwhile (and the proxies saw), by the scheduler
//!    and the workers.
//! 3. **restart**: the same burst into another repository, the listener (the scheduler
//!    process) killed with SIGKILL at `KILL_AT_SECS` (30 s) and started again 5 s later,
//!    with a schedule whose first run starts just after the burst's wait (`@every N`,
//!    `--wait --report`): the same long-running process that listens makes the scheduled
//!    run, as in production, so that its report counts the tags it had to repair
//!    (`totals.repaired`). Prints the latencies and misses as in phase 1, the tags at the
//!    destination before and after that run, and the run's repaired count and summary.
//!
//! Arrival is seen straight at the destination registry (no proxy), every 50 ms: one tag
//! listing of the repository, then a HEAD of each tag pushed, not yet seen, and listed,
//! whose `Docker-Content-Digest` must be the pushed digest; the arrival time is that
//! HEAD's answer. (A HEAD of every tag not yet seen every 50 ms would grow with the
//! backlog, hundreds per second while the listener is down, and load the registry the
//! mirror is writing to; the listing keeps the probe at one request per 50 ms.)
//!
//! What is real: two docker-registry (CNCF distribution 2.8) processes, the source sending
//! its real `notifications:` envelopes (blob pushes included) straight to the listener
//! (with distribution's own in-memory queue and retries while the listener is down), the
//! real RabbitMQ and Redis (a queue and key prefix of the benchmark's own, deleted at the
//! end), and the release binaries `mirror-scheduler run --schedule ... --listen-events`
//! and two `mirror-worker run --concurrency 16`. What is shaped: the mirror (scheduler and
//! workers) reaches both registries through the test bed's latency proxies (plain
//! HTTP/1.1, `LATENCY_MS` before each request and each response); the benchmark pushes
//! to the source and probes the destination directly. One 2-core machine runs it all.
//! Run through `bench/events.sh`.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{bail, Context, Result};
use futures::StreamExt;
use mirror_bench::corpus::latency_ms;
use mirror_bench::workers::{fleet_flags, wait_consumers, WorkerProcess};
use mirror_tests::fleet::prefix;
use mirror_tests::media_types::accept_all_manifests;
use mirror_tests::{
    binary, push_image, ImageSpec, Layer, Notifications, Proxy, Registry, RegistryApi,
    RegistryOptions, TESTBED_USER_AGENT,
};
use parking_lot::Mutex;
use serde_json::json;

/// The sender's token (the source registry sends it as `Authorization: Bearer`).
const TOKEN: &str = "bench-events-token-5d1e8b2a90c4";

/// How often the destination is probed.
const POLL_EVERY: Duration = Duration::from_millis(50);

/// How long the restarted listener is down.
const DOWN_FOR: Duration = Duration::from_secs(5);

fn env_u64(name: &str, default: u64) -> u64 {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

/// The benchmark's knobs (environment, with the targets' values by default).
#[derive(Clone, Copy)]
struct Knobs {
    tags: usize,
    burst: Duration,
    wait: Duration,
    idle: Duration,
    kill_at: Duration,
}

impl Knobs {
    fn from_env() -> Knobs {
        Knobs {
            tags: env_u64("TAGS", 500) as usize,
            burst: Duration::from_secs(env_u64("BURST_SECS", 60)),
            wait: Duration::from_secs(env_u64("WAIT_SECS", 60)),
            idle: Duration::from_secs(env_u64("IDLE_SECS", 30)),
            kill_at: Duration::from_secs(env_u64("KILL_AT_SECS", 30)),
        }
    }
}

/// A `mirror-scheduler run` in the background, its output in a file; killed when dropped.
struct Scheduler {
    child: Child,
    log: PathBuf,
}

impl Scheduler {
    fn start(dir: &Path, name: &str, args: &[String]) -> Result<Scheduler> {
        let log = dir.join(format!("{name}.log"));
        let out = std::fs::File::create(&log)?;
        let err = out.try_clone()?;
        let child = Command::new(binary("mirror-scheduler"))
            .args(args)
            .env("HOME", dir)
            .env_remove("XDG_STATE_HOME")
            .env_remove("MIRROR_STATE")
            .env("RUST_LOG", "info")
            .stdout(Stdio::from(out))
            .stderr(Stdio::from(err))
            .spawn()
            .context("starting mirror-scheduler")?;
        Ok(Scheduler { child, log })
    }

    fn log_text(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    /// SIGKILL, and the exit reaped.
    fn kill(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }

    /// SIGTERM, then up to 30 s for the exit (SIGKILL after that).
    fn stop(&mut self) {
        let _ = Command::new("kill")
            .args(["-TERM", &self.child.id().to_string()])
            .status();
        let start = Instant::now();
        while start.elapsed() < Duration::from_secs(30) {
            if let Ok(Some(_)) = self.child.try_wait() {
                return;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        self.kill();
    }
}

impl Drop for Scheduler {
    fn drop(&mut self) {
        self.kill();
    }
}

fn free_port() -> Result<u16> {
    Ok(std::net::TcpListener::bind("127.0.0.1:0")?
        .local_addr()?
        .port())
}

/// Waits until the listener answers `GET /events`.
async fn wait_listening(http: &reqwest::Client, port: u16, s: &mut Scheduler) -> Result<()> {
    let start = Instant::now();
    while start.elapsed() < Duration::from_secs(60) {
        if let Ok(r) = http
            .get(format!("http://127.0.0.1:{port}/events"))
            .send()
            .await
        {
            if r.status().is_success() {
                return Ok(());
            }
        }
        if let Ok(Some(status)) = s.child.try_wait() {
            bail!("mirror-scheduler exited with {status}:\n{}", s.log_text());
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    bail!("the listener never answered:\n{}", s.log_text())
}

/// Everything the phases share.
struct Bed {
    src: Arc<Registry>,
    dst: Registry,
    src_proxy: Proxy,
    dst_proxy: Proxy,
    /// The listener's port (the source's `notifications:` URL names it, so every phase's
    /// scheduler listens there).
    port: u16,
    metrics_port: u16,
    senders: String,
    /// Flags every scheduler gets: the fleet's prefix, the proxies over plain HTTP.
    common: Vec<String>,
    http: reqwest::Client,
    work: PathBuf,
    base: Layer,
}

impl Bed {
    /// The flags of a listening scheduler over `mapping`, on `schedule`, plus `extra`.
    fn scheduler_args(&self, mapping: &str, schedule: &str, extra: &[&str]) -> Vec<String> {
        let mut args: Vec<String> = ["run", "--schedule", schedule]
            .iter()
            .map(|s| s.to_string())
            .collect();
        args.extend([
            "--listen-events".into(),
            format!("127.0.0.1:{}", self.port),
            "--event-senders".into(),
            self.senders.clone(),
            "-f".into(),
            mapping.to_string(),
            "--listen".into(),
            format!("127.0.0.1:{}", self.metrics_port),
        ]);
        args.extend(extra.iter().map(|s| s.to_string()));
        args.extend(self.common.iter().cloned());
        args
    }

    /// A mapping file mirroring every tag of `repo` at the source to `repo` at the
    /// destination, both through the proxies.
    fn mapping(&self, repo: &str) -> Result<String> {
        let path = self
            .work
            .join(format!("mapping_{}", repo.replace('/', "_")));
        std::fs::write(
            &path,
            format!(
                "{}/{repo} {}/{repo}\n",
                self.src_proxy.host(),
                self.dst_proxy.host()
            ),
        )?;
        Ok(path.display().to_string())
    }

    /// The digest of `repo:tag` at the destination (straight, no proxy), if there.
    async fn head(&self, repo: &str, tag: &str) -> Option<String> {
        let r = self
            .http
            .head(format!("{}/v2/{repo}/manifests/{tag}", self.dst.url()))
            .header("Accept", accept_all_manifests())
            .send()
            .await
            .ok()?;
        if !r.status().is_success() {
            return None;
        }
        r.headers()
            .get("Docker-Content-Digest")
            .and_then(|v| v.to_str().ok())
            .map(str::to_string)
    }

    /// The tags of `repo` at the destination (straight); none when it has none yet.
    async fn listed(&self, repo: &str) -> std::collections::HashSet<String> {
        let Ok(r) = self
            .http
            .get(format!("{}/v2/{repo}/tags/list", self.dst.url()))
            .send()
            .await
        else {
            return Default::default();
        };
        if !r.status().is_success() {
            return Default::default();
        }
        let body: serde_json::Value = r.json().await.unwrap_or_default();
        body["tags"]
            .as_array()
            .map(|a| {
                a.iter()
                    .filter_map(|t| t.as_str().map(str::to_string))
                    .collect()
            })
            .unwrap_or_default()
    }

    /// How many of `pushed` are at the destination at their pushed digest now.
    async fn census(&self, repo: &str, pushed: &[Option<Pushed>]) -> usize {
        let listed = self.listed(repo).await;
        futures::stream::iter(pushed.iter().enumerate())
            .filter_map(|(i, p)| {
                let listed = &listed;
                async move {
                    let p = p.as_ref()?;
                    let tag = tag_name(i);
                    if !listed.contains(&tag) {
                        return None;
                    }
                    (self.head(repo, &tag).await.as_deref() == Some(p.digest.as_str()))
                        .then_some(())
                }
            })
            .count()
            .await
    }

    /// The requests the registries logged and the proxies saw so far.
    fn requests(&self) -> [usize; 4] {
        [
            self.src.requests().len(),
            self.dst.requests().len(),
            self.src_proxy.requests().len(),
            self.dst_proxy.requests().len(),
        ]
    }

    /// The listener's `mirror_events_*` counters and the latency histogram's count and sum.
    async fn event_metrics(&self) -> String {
        let Ok(r) = self
            .http
            .get(format!("http://127.0.0.1:{}/metrics", self.metrics_port))
            .send()
            .await
        else {
            return String::new();
        };
        r.text()
            .await
            .unwrap_or_default()
            .lines()
            .filter(|l| l.starts_with("mirror_events_") && !l.contains("_bucket"))
            .collect::<Vec<_>>()
            .join("\n")
    }
}

/// One tag as pushed: its digest and when its push completed.
#[derive(Clone)]
struct Pushed {
    digest: String,
    done: Instant,
}

fn tag_name(i: usize) -> String {
    format!("t{i:04}")
}

/// What a burst came to: per tag, its push and its arrival at the destination.
struct Burst {
    pushed: Vec<Option<Pushed>>,
    arrived: Vec<Option<Instant>>,
    push_errors: Vec<String>,
}

impl Burst {
    /// Seconds from push to arrival of the tags that arrived, sorted.
    fn latencies(&self) -> Vec<f64> {
        let mut l: Vec<f64> = self
            .pushed
            .iter()
            .zip(&self.arrived)
            .filter_map(|(p, a)| Some(a.as_ref()?.duration_since(p.as_ref()?.done).as_secs_f64()))
            .collect();
        l.sort_by(f64::total_cmp);
        l
    }

    fn pushed_count(&self) -> usize {
        self.pushed.iter().filter(|p| p.is_some()).count()
    }

    /// Of the tags whose push completed within `from..to`: how many, how many arrived, and
    /// the longest push-to-mirrored of those.
    fn window(&self, from: Instant, to: Instant) -> (usize, usize, f64) {
        let mut n = 0;
        let mut arrived = 0;
        let mut max = 0.0f64;
        for (p, a) in self.pushed.iter().zip(&self.arrived) {
            let Some(p) = p else { continue };
            if p.done < from || p.done >= to {
                continue;
            }
            n += 1;
            if let Some(a) = a {
                arrived += 1;
                max = max.max(a.duration_since(p.done).as_secs_f64());
            }
        }
        (n, arrived, max)
    }

    fn missed(&self) -> usize {
        self.pushed
            .iter()
            .zip(&self.arrived)
            .filter(|(p, a)| p.is_some() && a.is_none())
            .count()
    }

    /// The figures line and the JSON fields of the latencies.
    fn figures(&self, label: &str) -> (String, serde_json::Value) {
        let l = self.latencies();
        let pct = |p: f64| -> f64 {
            if l.is_empty() {
                return f64::NAN;
            }
            let rank = ((p * l.len() as f64).ceil() as usize).clamp(1, l.len());
            l[rank - 1]
        };
        let (p50, p90, p99, max) = (pct(0.50), pct(0.90), pct(0.99), pct(1.0));
        let line = format!(
            "{label}: {} tags pushed ({} push errors), {} at the destination: push to mirrored p50 {p50:.3} s, p90 {p90:.3} s, p99 {p99:.3} s, max {max:.3} s; missed {}",
            self.pushed_count(),
            self.push_errors.len(),
            l.len(),
            self.missed()
        );
        let fields = json!({
            "pushed": self.pushed_count(),
            "push_errors": self.push_errors.len(),
            "arrived": l.len(),
            "p50_s": p50,
            "p90_s": p90,
            "p99_s": p99,
            "max_s": max,
            "missed": self.missed(),
        });
        (line, fields)
    }
}

/// Pushes `knobs.tags` new images to `repo` at the source over `knobs.burst`, evenly
/// spaced (each push its own task, so that a slow one does not delay the next), while
/// probing the destination for them; returns once every tag arrived or `knobs.wait`
/// after the last push completed. `during` runs beside it from the burst's start.
async fn burst<F>(bed: &Bed, repo: &str, knobs: Knobs, during: F) -> Result<Burst>
where
    F: std::future::Future<Output = Result<()>>,
{
    let n = knobs.tags;
    let pushed: Arc<Mutex<Vec<Option<Pushed>>>> = Arc::new(Mutex::new(vec![None; n]));
    let errors: Arc<Mutex<Vec<String>>> = Arc::default();
    let all_pushed = Arc::new(AtomicBool::new(false));
    let start = tokio::time::Instant::now();
    let interval = knobs.burst / n as u32;
    let pusher = {
        let (pushed, errors, all_pushed) = (pushed.clone(), errors.clone(), all_pushed.clone());
        let (src, base, repo) = (bed.src.clone(), bed.base.clone(), repo.to_string());
        async move {
            let mut tasks = tokio::task::JoinSet::new();
            for i in 0..n {
                tokio::time::sleep_until(start + interval * i as u32).await;
                let (src, base, repo) = (src.clone(), base.clone(), repo.clone());
                let (pushed, errors) = (pushed.clone(), errors.clone());
                tasks.spawn(async move {
                    let spec = ImageSpec::new(vec![base, Layer::random(4 * 1024)]);
                    match push_image(&src, &repo, &tag_name(i), spec).await {
                        Ok(img) => {
                            pushed.lock()[i] = Some(Pushed {
                                digest: img.digest,
                                done: Instant::now(),
                            })
                        }
                        Err(e) => errors.lock().push(format!("{}: {e:#}", tag_name(i))),
                    }
                });
            }
            while tasks.join_next().await.is_some() {}
            all_pushed.store(true, Ordering::SeqCst);
        }
    };
    let prober = {
        let (pushed, all_pushed) = (pushed.clone(), all_pushed.clone());
        async move {
            let mut arrived: Vec<Option<Instant>> = vec![None; n];
            loop {
                let snapshot = pushed.lock().clone();
                let waiting: Vec<usize> = (0..n)
                    .filter(|i| snapshot[*i].is_some() && arrived[*i].is_none())
                    .collect();
                if !waiting.is_empty() {
                    let listed = bed.listed(repo).await;
                    let seen: Vec<(usize, Instant)> = futures::stream::iter(waiting)
                        .filter(|i| std::future::ready(listed.contains(&tag_name(*i))))
                        .map(|i| {
                            let want = snapshot[i].as_ref().map(|p| p.digest.clone());
                            async move {
                                let got = bed.head(repo, &tag_name(i)).await;
                                (got.is_some() && got == want).then(|| (i, Instant::now()))
                            }
                        })
                        .buffer_unordered(16)
                        .filter_map(std::future::ready)
                        .collect()
                        .await;
                    for (i, at) in seen {
                        arrived[i] = Some(at);
                    }
                }
                if all_pushed.load(Ordering::SeqCst) {
                    let last = snapshot.iter().flatten().map(|p| p.done).max();
                    let all_there = (0..n).all(|i| snapshot[i].is_none() || arrived[i].is_some());
                    if all_there || last.is_none_or(|l| l.elapsed() >= knobs.wait) {
                        return arrived;
                    }
                }
                tokio::time::sleep(POLL_EVERY).await;
            }
        }
    };
    let ((), arrived, during) = tokio::join!(pusher, prober, during);
    during?;
    let pushed = pushed.lock().clone();
    let push_errors = errors.lock().clone();
    Ok(Burst {
        pushed,
        arrived,
        push_errors,
    })
}

/// The registries (the source notifying the listener's port), the proxies, the senders
/// file and the flags every scheduler gets.
async fn bed(work: &Path, fleet: &str) -> Result<Bed> {
    let latency = Duration::from_millis(latency_ms());
    let port = free_port()?;
    let src = Arc::new(
        Registry::start_with(RegistryOptions {
            notifications: Some(Notifications {
                url: format!("http://127.0.0.1:{port}/events/ci"),
                token: TOKEN.to_string(),
            }),
            ..Default::default()
        })
        .await?,
    );
    let dst = Registry::start().await?;
    let src_proxy = Proxy::start(&src).await?;
    let dst_proxy = Proxy::start(&dst).await?;
    src_proxy.set_latency(latency);
    dst_proxy.set_latency(latency);
    let token = work.join("ci-token");
    std::fs::write(&token, format!("{TOKEN}\n"))?;
    // The sender's `registry` is the source as the mapping files name it: its proxy.
    let senders = work.join("senders.yaml");
    std::fs::write(
        &senders,
        format!(
            "- name: ci\n  kind: distribution\n  registry: {}\n  token_file: {}\n",
            src_proxy.host(),
            token.display()
        ),
    )?;
    let mut common = fleet_flags(fleet);
    for h in [src_proxy.host(), dst_proxy.host()] {
        common.extend(["--insecure-registry".to_string(), h]);
    }
    let bed = Bed {
        src,
        dst,
        src_proxy,
        dst_proxy,
        port,
        metrics_port: free_port()?,
        senders: senders.display().to_string(),
        common,
        http: reqwest::Client::builder()
            .user_agent(TESTBED_USER_AGENT)
            .build()?,
        work: work.to_path_buf(),
        base: Layer::random(512 * 1024),
    };
    // The shared base layer is at the source before the bursts (a blob push: its events
    // are ignored), so that every tag of a burst pushes the same small amount.
    let api = RegistryApi::new(&bed.src)?;
    for repo in ["burst/app", "restart/app"] {
        api.push_layer(repo, &bed.base).await?;
    }
    Ok(bed)
}

/// The burst, on a listener started for it; the listener is left up for the idle phase.
async fn phase_burst(bed: &Bed, knobs: Knobs) -> Result<Scheduler> {
    let mapping = bed.mapping("burst/app")?;
    let mut sched = Scheduler::start(
        &bed.work,
        "scheduler-burst",
        &bed.scheduler_args(&mapping, "@yearly", &[]),
    )?;
    wait_listening(&bed.http, bed.port, &mut sched).await?;
    let b = burst(bed, "burst/app", knobs, async { Ok(()) }).await?;
    let (line, fields) = b.figures("burst");
    println!("{line}");
    for e in b.push_errors.iter().take(5) {
        println!("  push error: {e}");
    }
    println!(
        "burst: the listener's metrics:\n{}",
        bed.event_metrics().await
    );
    println!(
        "{}",
        json!({"phase": "burst", "tags": knobs.tags, "burst_s": knobs.burst.as_secs(),
               "latency_ms": latency_ms(), "workers": 2, "figures": fields})
    );
    Ok(sched)
}

/// The listener up, nothing pushed: the requests at both registries meanwhile.
async fn phase_idle(bed: &Bed, knobs: Knobs) {
    tokio::time::sleep(Duration::from_secs(3)).await;
    let before = bed.requests();
    tokio::time::sleep(knobs.idle).await;
    let after = bed.requests();
    let d: Vec<usize> = before.iter().zip(after).map(|(b, a)| a - b).collect();
    println!(
        "idle: listener up, nothing pushed for {} s: {} requests at the source registry, {} at the destination (the proxies saw {} and {})",
        knobs.idle.as_secs(),
        d[0],
        d[1],
        d[2],
        d[3]
    );
    println!(
        "{}",
        json!({"phase": "idle", "seconds": knobs.idle.as_secs(), "source_requests": d[0],
               "destination_requests": d[1], "source_proxy_requests": d[2],
               "destination_proxy_requests": d[3]})
    );
}

/// The scheduler of the restart phase: none while it is down.
type Slot = Arc<Mutex<Option<Scheduler>>>;

/// Beside the restart phase's burst: kills the listener at `kill_at`, starts it again
/// [`DOWN_FOR`] later with a schedule whose first run starts at `run_at` (`--wait`, the
/// report to `report`).
async fn kill_and_restart(
    bed: &Bed,
    knobs: Knobs,
    slot: Slot,
    started: tokio::time::Instant,
    run_at: tokio::time::Instant,
    mapping: &str,
    report: &Path,
) -> Result<()> {
    tokio::time::sleep_until(started + knobs.kill_at).await;
    if let Some(mut s) = slot.lock().take() {
        s.kill();
    }
    eprintln!(
        "restart: listener killed (SIGKILL) at {:.1} s",
        started.elapsed().as_secs_f64()
    );
    tokio::time::sleep_until(started + knobs.kill_at + DOWN_FOR).await;
    let every = (run_at - tokio::time::Instant::now()).as_secs().max(1);
    let report = report.display().to_string();
    let schedule = format!("@every {every}s");
    let args = bed.scheduler_args(mapping, &schedule, &["--wait", "--report", &report]);
    let mut s = Scheduler::start(&bed.work, "scheduler-restart-2", &args)?;
    eprintln!(
        "restart: listener started again at {:.1} s ({schedule})",
        started.elapsed().as_secs_f64()
    );
    wait_listening(&bed.http, bed.port, &mut s).await?;
    *slot.lock() = Some(s);
    Ok(())
}

/// Waits for the scheduled run's report (`--report`), written when the run ends.
async fn report_of_the_run(report: &Path, slot: &Slot) -> Result<serde_json::Value> {
    let limit = Instant::now() + Duration::from_secs(300);
    loop {
        if let Ok(text) = std::fs::read_to_string(report) {
            if let Ok(v) = serde_json::from_str::<serde_json::Value>(&text) {
                return Ok(v);
            }
        }
        if Instant::now() > limit {
            let log = slot.lock().as_ref().map(Scheduler::log_text);
            bail!(
                "no report of the scheduled run within 300 s:\n{}",
                log.unwrap_or_default()
            );
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

/// The burst with the listener killed and restarted, then the restarted process's first
/// scheduled run: the tags there before and after it, and what it repaired.
async fn phase_restart(bed: &Bed, knobs: Knobs) -> Result<()> {
    let mapping = bed.mapping("restart/app")?;
    let report = bed.work.join("report.json");
    let mut first = Scheduler::start(
        &bed.work,
        "scheduler-restart-1",
        &bed.scheduler_args(&mapping, "@yearly", &[]),
    )?;
    wait_listening(&bed.http, bed.port, &mut first).await?;
    let slot: Slot = Arc::new(Mutex::new(Some(first)));
    let started = tokio::time::Instant::now();
    // The restarted scheduler's first run starts 3 s after the burst's wait ends at most.
    let run_at = started + knobs.burst + knobs.wait + Duration::from_secs(3);
    let during = kill_and_restart(bed, knobs, slot.clone(), started, run_at, &mapping, &report);
    let b = burst(bed, "restart/app", knobs, during).await?;
    let before = bed.census("restart/app", &b.pushed).await;
    eprintln!(
        "restart: {before} tags there at {:.1} s; waiting for the scheduled run",
        started.elapsed().as_secs_f64()
    );
    let report = report_of_the_run(&report, &slot).await?;
    let after = bed.census("restart/app", &b.pushed).await;
    let log = slot
        .lock()
        .as_ref()
        .map(Scheduler::log_text)
        .unwrap_or_default();
    if let Some(mut s) = slot.lock().take() {
        s.stop();
    }
    let summary = log
        .lines()
        .find(|l| l.starts_with("run ") && l.contains(" copied"))
        .unwrap_or("(no summary line)");
    let totals = &report["totals"];
    let (line, fields) = b.figures("restart");
    println!("{line}");
    for e in b.push_errors.iter().take(5) {
        println!("  push error: {e}");
    }
    let (down, down_arrived, down_max) = b.window(
        (started + knobs.kill_at).into_std(),
        (started + knobs.kill_at + DOWN_FOR).into_std(),
    );
    println!(
        "restart: {down} tags pushed while the listener was down, {down_arrived} of them mirrored (their events held and sent again by the registry), the longest {down_max:.3} s after its push"
    );
    // `totals.repaired` is absent only from a run that was not followed to its end.
    let repaired = match &totals["repaired"] {
        serde_json::Value::Null => format!(
            "not reported (absent from the report; the run published {} jobs)",
            totals["jobs"]
        ),
        n => n.to_string(),
    };
    println!(
        "restart: before the scheduled run {before} of {} tags at the destination, after it {after}; the run: repaired {repaired}, pushed {}, up to date {}, failed {}, {:.2} s",
        b.pushed_count(),
        totals["tags_pushed"],
        totals["tags_up_to_date"],
        totals["tags_failed"],
        totals["seconds"].as_f64().unwrap_or(f64::NAN)
    );
    println!("restart: the run's summary: {summary}");
    println!(
        "{}",
        json!({"phase": "restart", "tags": knobs.tags, "kill_at_s": knobs.kill_at.as_secs(),
               "down_s": DOWN_FOR.as_secs(), "figures": fields,
               "pushed_while_down": down, "pushed_while_down_arrived": down_arrived,
               "pushed_while_down_max_s": down_max,
               "before_run": before, "after_run": after,
               "repaired": totals["repaired"], "run_totals": totals})
    );
    if std::env::var_os("SHOW_LOG").is_some() {
        eprintln!("--- restarted scheduler ---\n{log}");
    }
    Ok(())
}

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() -> Result<()> {
    let knobs = Knobs::from_env();
    let work = tempfile::tempdir()?;
    let p = prefix();
    let bed = bed(work.path(), &p).await?;
    let hosts = vec![bed.src_proxy.host(), bed.dst_proxy.host()];
    let mut workers = Vec::new();
    for _ in 0..2 {
        workers.push(WorkerProcess::start(&p, "16", &hosts, &[])?);
    }
    wait_consumers(&p, 2, &mut workers).await?;
    eprintln!(
        "bench_events: {} tags over {} s, {} ms each way, 2 workers; listener on 127.0.0.1:{}",
        knobs.tags,
        knobs.burst.as_secs(),
        latency_ms(),
        bed.port
    );
    let mut sched = phase_burst(&bed, knobs).await?;
    phase_idle(&bed, knobs).await;
    sched.stop();
    if std::env::var_os("SHOW_LOG").is_some() {
        eprintln!("--- burst scheduler ---\n{}", sched.log_text());
    }
    drop(sched);
    let outcome = phase_restart(&bed, knobs).await;
    for w in &workers {
        let _ = w.terminate();
    }
    for w in &mut workers {
        let _ = w.wait_stopped();
    }
    outcome
}
