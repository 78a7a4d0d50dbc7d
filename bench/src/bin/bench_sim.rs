//! Benchmark: the fleet (scheduler + workers) at `SCALE` 1, 10 and 100 of the real system
//! (`SCALES`, "1 10" by default; 100 by hand), against the registry simulator. What is
//! simulated: the two registries only (`registry-sim`, a child process, `LATENCY_MS` 20
//! each way): no real registry here holds 750,000 tags. What is real: RabbitMQ, Redis and
//! the mirror's own release binaries (`mirror-scheduler run --wait`, `WORKERS` x
//! `mirror-worker run --concurrency 64`), so the figures are the fleet's, not a model's.
//!
//! Runs per scale, on a fresh queue and Redis prefix: `cold` (empty tag cache, destination
//! up to date: the workers HEAD every tag and fill the cache), `warm` (nothing changed: the
//! hourly no-op, which should publish no job; once with the sources resolved by the
//! workers, the default, and once by the scheduler alone, `--resolve-in scheduler`, the
//! row `warm sched`), `steady hour` (a third of the tag cache due
//! and 1 % of the sources changed, through the simulator's `POST /_sim/change-sources`, so
//! the destination keeps what was pushed). `SCALE_OUT=1` adds, each on a prefix of its own
//! (a cold run re-arms the tag cache, so the due share is again a third), cold, warm and
//! steady hour with 1 worker and with 4, and prints the ratios.
//!
//! Measured per run, outside the mirror's code where it can be: wall time and peak RSS of
//! the scheduler (`/usr/bin/time`), each worker's peak RSS so far (`VmHWM`), the
//! simulator's request counters per destination tag and by kind, messages through the
//! broker (run events through a queue of our own bound to the events exchange, counted and
//! sized, one job result per job; beside them the management API's publish count of the
//! jobs queue, which loses a short run's publishes when the scheduler's channel closes
//! before its next stats tick), Redis commands and memory (`INFO`, Redis-wide: other users
//! of this Redis count too), and the history stream's growth (management API). Job messages
//! cannot be tapped: they go through the default exchange, which takes no bindings, so
//! their size is not measured. Run through `bench/sim.sh`; `SHOW_LOG=1` prints each
//! scheduler run's log (always kept in a file).

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, ChildStdout, Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{bail, Context, Result};
use futures::StreamExt;
use lapin::options::{BasicConsumeOptions, QueueBindOptions, QueueDeclareOptions};
use lapin::types::{FieldTable, ShortString};
use lapin::{Connection, ConnectionProperties};
use mirror_bench::workers::{fleet_flags, vm_hwm_kib, wait_consumers, WorkerProcess};
use mirror_bench::{measure, Measured};
use mirror_tests::binary;
use mirror_tests::fleet::{prefix, Prefix, AMQP_URL, REDIS_URL};
use parking_lot::Mutex;
use serde_json::{json, Value};

/// The broker's management API (guest:guest, as the test bed's RabbitMQ).
const MANAGEMENT: &str = "http://127.0.0.1:15672/api";

/// The management API refreshes queue statistics every 5 s (`collect_statistics_interval`),
/// a stream's later still: a run's counts are read once they have not moved for longer
/// than that, so they include the run's end (and the next run's start is not blamed).
const STATS_STILL: Duration = Duration::from_secs(7);

/// How long the management API's counts may keep moving before they are read anyway.
const STATS_LIMIT: Duration = Duration::from_secs(45);

/// Share of the sources the steady hour changes, in percent.
const CHANGED_PERCENT: f64 = 1.0;

/// A `registry-sim` child process serving one scale's source and destination.
struct Sim {
    child: Child,
    /// Held so the simulator never writes into a closed pipe.
    _stdout: BufReader<ChildStdout>,
    source: String,
    dest: String,
    /// Destination tags of the set (what requests are divided by).
    tags: usize,
}

impl Sim {
    /// Starts the simulator at `scale` on free ports, its mapping files written to `dir`,
    /// and reads its hosts from what it prints. The simulator waits its `--latency-ms`
    /// once before each answer: a round trip, so twice `latency_ms` (each way) is passed.
    fn start(scale: &str, latency_ms: u64, dir: &Path) -> Result<Sim> {
        let exe = std::env::current_exe()?;
        let path = exe
            .parent()
            .context("no directory of the benchmark")?
            .join("registry-sim");
        anyhow::ensure!(
            path.is_file(),
            "{} missing: cargo build --release -p mirror-bench (bench/sim.sh does)",
            path.display()
        );
        let mut child = Command::new(&path)
            .args([
                "--scale",
                scale,
                "--latency-ms",
                &(2 * latency_ms).to_string(),
            ])
            .args([
                "--source-listen",
                "127.0.0.1:0",
                "--dest-listen",
                "127.0.0.1:0",
            ])
            .arg("--write-mappings")
            .arg(dir)
            .stdout(Stdio::piped())
            .spawn()
            .context("starting registry-sim")?;
        let mut stdout = BufReader::new(child.stdout.take().context("no stdout")?);
        let (mut source, mut dest, mut tags) = (None, None, None);
        let mut line = String::new();
        loop {
            line.clear();
            if stdout.read_line(&mut line)? == 0 {
                let _ = child.kill();
                bail!("registry-sim ended before it was ready");
            }
            eprint!("  sim: {line}");
            let host = |rest: &str| rest.split_whitespace().next().map(str::to_string);
            if let Some(rest) = line.strip_prefix("source: http://") {
                source = host(rest);
            } else if let Some(rest) = line.strip_prefix("destination: http://") {
                dest = host(rest);
            } else if let Some(rest) = line.strip_prefix("mappings: ") {
                tags = rest
                    .split_once(" files, ")
                    .and_then(|(_, r)| r.split_whitespace().next())
                    .and_then(|n| n.parse().ok());
            } else if line.starts_with("ready in") {
                break;
            }
        }
        let (Some(source), Some(dest), Some(tags)) = (source, dest, tags) else {
            let _ = child.kill();
            bail!("registry-sim did not print its hosts and mappings");
        };
        Ok(Sim {
            child,
            _stdout: stdout,
            source,
            dest,
            tags,
        })
    }

    fn hosts(&self) -> Vec<String> {
        vec![self.source.clone(), self.dest.clone()]
    }

    /// Changes `percent` of the source images; how many changed.
    async fn change_sources(&self, http: &reqwest::Client, percent: f64) -> Result<u64> {
        let url = format!(
            "http://{}/_sim/change-sources?percent={percent}",
            self.source
        );
        let answer: Value = http
            .post(url)
            .send()
            .await?
            .error_for_status()?
            .json()
            .await?;
        answer["changed"].as_u64().context("no changed count")
    }

    fn peak_rss_kib(&self) -> u64 {
        vm_hwm_kib(&format!("/proc/{}/status", self.child.id())).unwrap_or(0)
    }
}

impl Drop for Sim {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Events seen by the tap since it was last taken.
#[derive(Debug, Default, Clone, Copy)]
struct Tapped {
    messages: u64,
    max_bytes: u64,
    bytes: u64,
    /// Run announcements (`run.<id>.started`) among them; the others are job results, one
    /// per job: the run's jobs as the broker carried them.
    started: u64,
    /// The largest run announcement and job result, apart: which of the two grows with the
    /// set.
    max_started: u64,
    max_result: u64,
}

/// A queue of the benchmark's own on the prefix's events exchange (`run.#`: every run
/// announcement and job result), consumed in the background: the messages and their
/// sizes as the broker delivered them, not as the mirror says it sent them.
struct Tap {
    seen: Arc<Mutex<Tapped>>,
    task: tokio::task::JoinHandle<()>,
    _connection: Connection,
}

impl Tap {
    async fn start(p: &Prefix) -> Result<Tap> {
        let names = p.config().names();
        let connection = Connection::connect(AMQP_URL, ConnectionProperties::default()).await?;
        let channel = connection.create_channel().await?;
        // The tap may come first: the mirror's own connect declares the topology.
        mirror_fleet::amqp::AmqpQueue::connect(p.config())
            .await?
            .close()
            .await;
        let queue = format!("{}.bench-tap", p.as_str());
        channel
            .queue_declare(
                ShortString::from(queue.as_str()),
                QueueDeclareOptions::exclusive().auto_delete(),
                FieldTable::default(),
            )
            .await?;
        channel
            .queue_bind(
                ShortString::from(queue.as_str()),
                ShortString::from(names.events.as_str()),
                ShortString::from("run.#"),
                QueueBindOptions::default(),
                FieldTable::default(),
            )
            .await?;
        let mut consumer = channel
            .basic_consume(
                ShortString::from(queue.as_str()),
                ShortString::from("bench-tap"),
                BasicConsumeOptions {
                    no_ack: true,
                    ..BasicConsumeOptions::default()
                },
                FieldTable::default(),
            )
            .await?;
        let seen = Arc::new(Mutex::new(Tapped::default()));
        let counted = seen.clone();
        let task = tokio::spawn(async move {
            // The channel lives as long as the consumer.
            let _channel = channel;
            while let Some(Ok(delivery)) = consumer.next().await {
                let size = delivery.data.len() as u64;
                let mut s = counted.lock();
                s.messages += 1;
                s.bytes += size;
                s.max_bytes = s.max_bytes.max(size);
                if delivery.routing_key.as_str().ends_with(".started") {
                    s.started += 1;
                    s.max_started = s.max_started.max(size);
                } else {
                    s.max_result = s.max_result.max(size);
                }
            }
        });
        Ok(Tap {
            seen,
            task,
            _connection: connection,
        })
    }

    /// What was seen since the last call.
    fn take(&self) -> Tapped {
        std::mem::take(&mut *self.seen.lock())
    }
}

impl Drop for Tap {
    fn drop(&mut self) {
        self.task.abort();
    }
}

/// Counters read before and after a run.
#[derive(Debug, Clone)]
struct Counters {
    src: Value,
    dst: Value,
    /// Publishes into the jobs queue (management API; `None`: not reported).
    jobs_published: Option<u64>,
    history_messages: Option<i64>,
    history_bytes: Option<i64>,
    redis_commands: u64,
    redis_memory: u64,
}

/// The benchmark's connections to what it reads counters from.
struct Probe {
    http: reqwest::Client,
    redis: redis::aio::MultiplexedConnection,
}

impl Probe {
    async fn new() -> Result<Probe> {
        let redis = redis::Client::open(REDIS_URL)?
            .get_multiplexed_async_connection()
            .await?;
        Ok(Probe {
            http: reqwest::Client::new(),
            redis,
        })
    }

    async fn read(&mut self, sim: &Sim, p: &Prefix) -> Result<Counters> {
        let stats = |host: &str| format!("http://{host}/_sim/stats");
        let src: Value = self
            .http
            .get(stats(&sim.source))
            .send()
            .await?
            .json()
            .await?;
        let dst: Value = self.http.get(stats(&sim.dest)).send().await?.json().await?;
        let names = p.config().names();
        let jobs = self.queue(&names.jobs).await;
        let history = self.queue(&names.history).await;
        let stats_text: String = redis::cmd("INFO")
            .arg("stats")
            .query_async(&mut self.redis)
            .await?;
        let memory_text: String = redis::cmd("INFO")
            .arg("memory")
            .query_async(&mut self.redis)
            .await?;
        Ok(Counters {
            src,
            dst,
            jobs_published: jobs
                .as_ref()
                .map(|q| q["message_stats"]["publish"].as_u64().unwrap_or(0)),
            history_messages: history.as_ref().and_then(|q| q["messages"].as_i64()),
            history_bytes: history.as_ref().and_then(|q| q["message_bytes"].as_i64()),
            redis_commands: info_field(&stats_text, "total_commands_processed"),
            redis_memory: info_field(&memory_text, "used_memory"),
        })
    }

    /// The jobs queue's publishes and the history stream's messages, once the management
    /// API has known both queues and their counts have stood still for [`STATS_STILL`].
    async fn settle(&self, p: &Prefix) {
        let names = p.config().names();
        let started = Instant::now();
        let mut last = None;
        let mut still_since = Instant::now();
        while started.elapsed() < STATS_LIMIT {
            let jobs = self.queue(&names.jobs).await;
            let history = self.queue(&names.history).await;
            let now = (
                jobs.map(|q| q["message_stats"]["publish"].as_u64().unwrap_or(0)),
                history.and_then(|q| q["messages"].as_i64()),
            );
            if Some(now) != last || now.1.is_none() {
                last = Some(now);
                still_since = Instant::now();
            } else if still_since.elapsed() >= STATS_STILL {
                return;
            }
            tokio::time::sleep(Duration::from_secs(1)).await;
        }
        eprintln!("  (the management API's counts still moved after {STATS_LIMIT:?}: read anyway)");
    }

    /// A queue as the management API describes it; `None` when it does not answer.
    async fn queue(&self, name: &str) -> Option<Value> {
        let url = format!("{MANAGEMENT}/queues/%2F/{name}");
        let answer = self
            .http
            .get(url)
            .basic_auth("guest", Some("guest"))
            .send()
            .await
            .ok()?;
        answer.error_for_status().ok()?.json().await.ok()
    }
}

/// A numeric field of Redis `INFO` text (0 when absent).
fn info_field(text: &str, name: &str) -> u64 {
    text.lines()
        .find_map(|l| l.strip_prefix(name)?.strip_prefix(':'))
        .and_then(|v| v.trim().parse().ok())
        .unwrap_or(0)
}

/// One measured run and its counters' differences.
struct Row {
    scale: String,
    name: String,
    workers: usize,
    tags: usize,
    measured: Measured,
    worker_rss_kib: Vec<u64>,
    src: Value,
    dst: Value,
    jobs: Option<u64>,
    events: Tapped,
    redis_commands: u64,
    redis_memory: u64,
    history_messages: Option<i64>,
    history_bytes: Option<i64>,
    changed_sources: u64,
    log: PathBuf,
}

impl Row {
    fn json(&self) -> Value {
        json!({
            "scale": self.scale, "run": self.name, "workers": self.workers,
            "dest_tags": self.tags, "success": self.measured.success,
            "wall_s": round2(self.measured.seconds),
            "scheduler_peak_rss_kib": self.measured.peak_rss_kib,
            "worker_peak_rss_kib": self.worker_rss_kib,
            "src_requests": self.src, "dst_requests": self.dst,
            "jobs_results_tapped": self.events.messages - self.events.started,
            "jobs_published_management": self.jobs,
            "events": self.events.messages, "event_bytes": self.events.bytes,
            "event_max_bytes": self.events.max_bytes,
            "started_event_max_bytes": self.events.max_started,
            "result_event_max_bytes": self.events.max_result,
            "redis_commands": self.redis_commands, "redis_used_memory_delta": self.redis_memory,
            "history_messages": self.history_messages, "history_bytes": self.history_bytes,
            "changed_sources": self.changed_sources,
            "scheduler_log": self.log.display().to_string(),
        })
    }
}

fn round2(x: f64) -> f64 {
    (x * 100.0).round() / 100.0
}

/// `after - before` for each request kind of two `/_sim/stats` answers, and the total.
fn request_delta(before: &Value, after: &Value) -> Value {
    let mut kinds = serde_json::Map::new();
    if let Some(a) = after["requests"].as_object() {
        for (kind, n) in a {
            let d = n.as_u64().unwrap_or(0) - before["requests"][kind].as_u64().unwrap_or(0);
            if d > 0 {
                kinds.insert(kind.clone(), d.into());
            }
        }
    }
    let total = after["total"].as_u64().unwrap_or(0) - before["total"].as_u64().unwrap_or(0);
    json!({"total": total, "by_kind": kinds})
}

fn delta(before: Option<i64>, after: Option<i64>) -> Option<i64> {
    Some(after? - before?)
}

/// One scale's fleet: the simulator, a prefix and its workers, the tap and the probe.
struct Bed<'a> {
    scale: String,
    sim: &'a Sim,
    dir: &'a Path,
    logs: &'a Path,
    p: Prefix,
    workers: Vec<WorkerProcess>,
    tap: Tap,
    probe: Probe,
    /// When this prefix's cold run started and how long it took.
    cold: Option<(Instant, Duration)>,
}

impl<'a> Bed<'a> {
    async fn start(
        scale: &str,
        sim: &'a Sim,
        dir: &'a Path,
        logs: &'a Path,
        n: usize,
    ) -> Result<Bed<'a>> {
        let p = prefix();
        let mut workers = Vec::new();
        for _ in 0..n {
            workers.push(WorkerProcess::start(&p, "64", &sim.hosts(), &[])?);
        }
        wait_consumers(&p, n, &mut workers).await?;
        let tap = Tap::start(&p).await?;
        let probe = Probe::new().await?;
        // The first run's "before" needs the management API to know the new queues.
        probe.settle(&p).await;
        Ok(Bed {
            scale: scale.to_string(),
            sim,
            dir,
            logs,
            p,
            workers,
            tap,
            probe,
            cold: None,
        })
    }

    /// `mirror-scheduler run DIR --wait` (every file of the directory) with the fleet flags
    /// and `extra`.
    fn args(&self, extra: &[String]) -> Vec<String> {
        let mut args = vec!["run".to_string(), self.dir.display().to_string()];
        args.push("--wait".into());
        args.extend(fleet_flags(&self.p));
        for h in self.sim.hosts() {
            args.extend(["--insecure-registry".to_string(), h]);
        }
        args.extend(extra.iter().cloned());
        args
    }

    /// One measured run named `name`.
    async fn run(&mut self, name: &str, extra: &[String], changed: u64) -> Result<Row> {
        let before = self.probe.read(self.sim, &self.p).await?;
        self.tap.take();
        let args = self.args(extra);
        let started = Instant::now();
        let scheduler = binary("mirror-scheduler").display().to_string();
        let measured = tokio::task::spawn_blocking(move || measure(&scheduler, &args)).await??;
        if name == "cold" {
            self.cold = Some((started, Duration::from_secs_f64(measured.seconds)));
        }
        let n = self.workers.len();
        let log = self.logs.join(format!(
            "scale{}-{}-{n}w.log",
            self.scale,
            name.replace(' ', "-")
        ));
        std::fs::write(&log, &measured.stderr)?;
        eprintln!(
            "scale {} {name} ({n} workers): {:.2} s{}; scheduler log {}",
            self.scale,
            measured.seconds,
            if measured.success {
                ""
            } else {
                " (FAILED tags)"
            },
            log.display()
        );
        if std::env::var_os("SHOW_LOG").is_some() {
            eprintln!("{}", measured.stderr);
        }
        self.probe.settle(&self.p).await;
        let after = self.probe.read(self.sim, &self.p).await?;
        let events = self.tap.take();
        let worker_rss_kib = self
            .workers
            .iter()
            .map(|w| w.peak_rss_kib().unwrap_or(0))
            .collect();
        Ok(Row {
            scale: self.scale.clone(),
            name: name.to_string(),
            workers: n,
            tags: self.sim.tags,
            measured,
            worker_rss_kib,
            src: request_delta(&before.src, &after.src),
            dst: request_delta(&before.dst, &after.dst),
            jobs: match (before.jobs_published, after.jobs_published) {
                (Some(b), Some(a)) => Some(a - b),
                _ => None,
            },
            events,
            redis_commands: after.redis_commands - before.redis_commands,
            redis_memory: after.redis_memory.saturating_sub(before.redis_memory),
            history_messages: delta(before.history_messages, after.history_messages),
            history_bytes: delta(before.history_bytes, after.history_bytes),
            changed_sources: changed,
            log,
        })
    }

    /// The steady hour: 1 % of the sources changed, and a reader's max age at which a third
    /// of the cold run's tag-cache entries are due. Entries E old are trusted for a hashed
    /// share in [M/2, M], so a share (E - M/2) / (M/2) is due: a third at M = 1.5 E.
    ///
    /// E is the age when the scheduler reads the cache, not when it starts: it reads after
    /// resolving every source, which takes about `lead` (the warm run's time, which does that
    /// and little else). So the cold run wrote its entries between `lead` and its end, and
    /// the steady hour reads them `lead` after it starts.
    async fn steady_hour(&mut self, lead: Duration) -> Result<Row> {
        let changed = self
            .sim
            .change_sources(&self.probe.http, CHANGED_PERCENT)
            .await?;
        let (started, took) = self.cold.context("steady hour before a cold run")?;
        let lead = lead.min(took);
        let spread = took - lead;
        let written = started + lead + spread / 2;
        // The entries' ages spread by spread/2 around E: all stay in the linear part of the
        // due share (age above M/2 = 0.75 E) only once E >= 2 x spread; before that the
        // youngest count as not due at all, older ones as more due, and over a third is due.
        let wait = (spread * 2).saturating_sub(written.elapsed() + lead);
        if !wait.is_zero() {
            eprintln!(
                "  waiting {:.0} s: the cold run's entries need an age of twice their spread",
                wait.as_secs_f64()
            );
            tokio::time::sleep(wait).await;
        }
        let age = written.elapsed() + lead;
        let max_age_ms = (age.as_millis() as f64 * 1.5).round() as u64;
        let extra = ["--tag-cache-max-age".to_string(), format!("{max_age_ms}ms")];
        self.run("steady hour", &extra, changed).await
    }

    /// Stops the workers (SIGTERM, then a clean exit each).
    fn stop(mut self) -> Result<()> {
        for w in &self.workers {
            w.terminate()?;
        }
        for w in &mut self.workers {
            w.wait_stopped()?;
        }
        Ok(())
    }
}

fn env_or(name: &str, default: &str) -> String {
    std::env::var(name).unwrap_or_else(|_| default.to_string())
}

/// Every run of one scale.
async fn scale(scale: &str, logs: &Path) -> Result<Vec<Row>> {
    let latency_ms: u64 = env_or("LATENCY_MS", "20").parse()?;
    let workers: usize = env_or("WORKERS", "2").parse()?;
    let work = tempfile::tempdir()?;
    let dir = work.path().join("mappings");
    eprintln!("scale {scale}: starting registry-sim ({latency_ms} ms each way)...");
    let sim = Sim::start(scale, latency_ms, &dir)?;
    let mut rows = Vec::new();
    let mut bed = Bed::start(scale, &sim, &dir, logs, workers).await?;
    rows.push(bed.run("cold", &[], 0).await?);
    let warm = bed.run("warm", &[], 0).await?;
    let lead = Duration::from_secs_f64(warm.measured.seconds);
    rows.push(warm);
    // The same no-op with every source HEAD made by the scheduler, as before the workers
    // answered them: what spreading the resolution saves on this bed.
    let here = ["--resolve-in".to_string(), "scheduler".to_string()];
    let warm_here = bed.run("warm sched", &here, 0).await?;
    println!(
        "scale {scale} warm: sources resolved by the workers {:.2} s, by the scheduler {:.2} s: {:.2}x",
        rows[1].measured.seconds,
        warm_here.measured.seconds,
        warm_here.measured.seconds / rows[1].measured.seconds
    );
    rows.push(warm_here);
    rows.push(bed.steady_hour(lead).await?);
    bed.stop()?;
    if std::env::var("SCALE_OUT").is_ok_and(|v| v == "1") {
        let (mut steady, mut warm) = (Vec::new(), Vec::new());
        for n in [1, 4] {
            // A prefix of its own, re-armed by a cold run, so a third is due again.
            let mut bed = Bed::start(scale, &sim, &dir, logs, n).await?;
            rows.push(bed.run("cold", &[], 0).await?);
            let row = bed.run("warm", &[], 0).await?;
            warm.push(row.measured.seconds);
            rows.push(row);
            let row = bed.steady_hour(lead).await?;
            steady.push(row.measured.seconds);
            rows.push(row);
            bed.stop()?;
        }
        println!(
            "scale {scale} scale-out, warm: 1 worker {:.2} s, 4 workers {:.2} s: {:.2}x",
            warm[0],
            warm[1],
            warm[0] / warm[1]
        );
        println!(
            "scale {scale} scale-out, steady hour: 1 worker {:.2} s, 4 workers {:.2} s: {:.2}x",
            steady[0],
            steady[1],
            steady[0] / steady[1]
        );
    }
    println!(
        "scale {scale}: registry-sim peak RSS {:.1} MiB",
        sim.peak_rss_kib() as f64 / 1024.0
    );
    Ok(rows)
}

fn per_tag(requests: &Value, tags: usize) -> f64 {
    requests["total"].as_u64().unwrap_or(0) as f64 / tags.max(1) as f64
}

fn kinds(requests: &Value, tags: usize) -> String {
    requests["by_kind"].as_object().map_or(String::new(), |m| {
        m.iter()
            .map(|(k, n)| {
                let n = n.as_u64().unwrap_or(0);
                format!("{k} {n} ({:.2}/tag)", n as f64 / tags.max(1) as f64)
            })
            .collect::<Vec<_>>()
            .join(", ")
    })
}

fn mib(kib: u64) -> String {
    format!("{:.1}", kib as f64 / 1024.0)
}

fn print(rows: &[Row]) {
    println!(
        "{:<6} {:<12} {:>3} {:>8} {:>8} {:>8} {:>10} {:>8} {:>9} {:>9} {:>9} {:>9} {:>9} {:>10}  worker RSS (MiB)",
        "scale", "run", "w", "tags", "wall s", "src/tag", "dst/tag", "jobs", "mgmt jobs",
        "ev max B", "redis cmd", "redis +KiB", "hist msgs", "sched MiB"
    );
    for r in rows {
        let opt = |v: Option<i64>| v.map_or("n/a".to_string(), |v| v.to_string());
        println!(
            "{:<6} {:<12} {:>3} {:>8} {:>8.2} {:>8.2} {:>10.2} {:>8} {:>9} {:>9} {:>9} {:>9} {:>9} {:>10}  {}{}",
            r.scale,
            r.name,
            r.workers,
            r.tags,
            r.measured.seconds,
            per_tag(&r.src, r.tags),
            per_tag(&r.dst, r.tags),
            r.events.messages - r.events.started,
            r.jobs.map_or("n/a".to_string(), |j| j.to_string()),
            r.events.max_bytes,
            r.redis_commands,
            r.redis_memory / 1024,
            opt(r.history_messages),
            mib(r.measured.peak_rss_kib),
            r.worker_rss_kib.iter().map(|k| mib(*k)).collect::<Vec<_>>().join(", "),
            if r.measured.success { "" } else { "  (FAILED tags)" },
        );
    }
    println!("requests by kind (per destination tag):");
    for r in rows {
        let name = format!("{} {} {}w", r.scale, r.name, r.workers);
        println!("  {name:<22} src: {}", kinds(&r.src, r.tags));
        println!("  {:<22} dst: {}", "", kinds(&r.dst, r.tags));
        if r.changed_sources > 0 {
            println!("  {:<22} changed sources: {}", "", r.changed_sources);
        }
        let messages = r
            .history_messages
            .map_or("messages n/a".to_string(), |m| format!("+{m} messages"));
        // Every run event is stored in the stream, so the tapped bytes are its growth in
        // message bodies when the management API gives no byte count.
        let bytes = r.history_bytes.map_or_else(
            || format!("~+{} bytes of bodies (tapped)", r.events.bytes),
            |b| format!("+{b} bytes"),
        );
        println!("  {:<22} history stream: {messages}, {bytes}", "");
        println!(
            "  {:<22} largest event: run announcement {} B, job result {} B",
            "", r.events.max_started, r.events.max_result
        );
    }
    println!(
        "jobs: job results through our own queue on the events exchange (one per job); mgmt jobs: \
         publishes into the jobs queue as the management API counts them, which misses those of \
         a channel closed before its next 5 s stats tick (short runs); job message sizes are not \
         measured (jobs go through the default exchange, which takes no bindings). ev max B: the \
         largest run event. redis: Redis-wide deltas."
    );
    println!("JSON lines:");
    for r in rows {
        println!("{}", r.json());
    }
}

#[tokio::main]
async fn main() -> Result<()> {
    let scales = env_or("SCALES", "1 10");
    let logs = std::env::temp_dir().join(format!("bench-sim-{}", std::process::id()));
    std::fs::create_dir_all(&logs)?;
    eprintln!("scheduler logs in {}", logs.display());
    let mut rows = Vec::new();
    for s in scales.split_whitespace() {
        rows.extend(scale(s, &logs).await?);
    }
    print(&rows);
    Ok(())
}
