//! Benchmark: the corpus of `bench_corpus` (100 tags over 10 repositories, 20 ms of latency
//! each way on both registries, `LATENCY_MS` to change) mirrored cold then warm by the
//! embedded mode (`mirror-scheduler run --local`), by the distributed mode with one and
//! with two `mirror-worker run` processes (`mirror-scheduler run --wait`), and by
//! `skopeo sync --all`, all in one run. Prints wall times, the scheduler's (or skopeo's) and
//! each worker's peak RSS, each mode's times against the embedded mode's and skopeo's
//! against each mode's; then, per cold run of ours, the bytes uploaded (the `--report`'s
//! `totals.bytes_uploaded`) over the corpus's distinct blob bytes, and per warm run the HTTP
//! requests both proxies answered during it, per tag. Run through `bench/fleet.sh`.
//!
//! Why: the distributed mode adds a broker round trip per job and the planning scheduler's
//! wait for results; this shows what that costs (or what a second worker process buys)
//! on the same work, so a slowdown in either mode shows up next to the other. The bytes
//! ratio shows whether workers sharing a blob index upload each blob once (1.00) or race
//! to upload it twice; the requests per tag show what a run where nothing changed costs
//! the registries (the tag cache should spare the destination every request).
//!
//! Each mode mirrors into a destination prefix of its own (`ours-local/`, `ours-1w/`,
//! `ours-2w/`, `skopeo-fleet/`), so each starts cold; the distributed modes use a queue
//! and Redis key prefix of their own, kept from their cold run to their warm run (so the
//! warm run uses the tag cache the cold run wrote) and deleted after them.

use std::path::Path;
use std::time::Duration;

use anyhow::{ensure, Context, Result};
use mirror_bench::corpus::{latency_ms, Corpus, REPOS};
use mirror_bench::workers::{fleet_flags, wait_consumers, WorkerProcess};
use mirror_bench::{measure, Measured};
use mirror_tests::binary;
use mirror_tests::fleet::prefix;

/// Jobs each worker process copies at the same time.
const WORKER_CONCURRENCY: &str = "8";

/// The workers' `--tag-cache-max-age`: short, so that a third run of the distributed modes,
/// after waiting it out, shows what an hourly run pays for the tags whose cache entries
/// came due (here all of them: the worst case; with the 4 h default an hourly run re-checks
/// about a third).
const TAG_MAX_AGE: Duration = Duration::from_secs(30);

/// One way of mirroring the corpus.
struct Mode {
    name: &'static str,
    /// How the figures below the table name it.
    short: &'static str,
    /// Destination repository prefix, its own so that its first run is cold.
    dest_prefix: &'static str,
    /// `mirror-worker run` processes; 0 for the embedded mode.
    workers: usize,
}

const MODES: [Mode; 3] = [
    Mode {
        name: "embedded: run --local",
        short: "embedded",
        dest_prefix: "ours-local",
        workers: 0,
    },
    Mode {
        name: "1 worker + run --wait",
        short: "1 worker",
        dest_prefix: "ours-1w",
        workers: 1,
    },
    Mode {
        name: "2 workers + run --wait",
        short: "2 workers",
        dest_prefix: "ours-2w",
        workers: 2,
    },
];

/// skopeo's row in the table and its destination prefix.
const SKOPEO_NAME: &str = "skopeo sync --all";
const SKOPEO_SHORT: &str = "skopeo";
const SKOPEO_DEST_PREFIX: &str = "skopeo-fleet";

/// What one mode measured.
struct Row {
    name: &'static str,
    short: &'static str,
    cold: Run,
    warm: Run,
    /// Distributed modes: warm again once every tag cache entry came due.
    expired: Option<Run>,
    /// Peak RSS of each worker process over both runs, in KiB.
    worker_rss_kib: Vec<u64>,
}

/// One measured invocation (a scheduler run or a `skopeo sync`).
struct Run {
    measured: Measured,
    /// Requests the source proxy answered during it.
    source_requests: usize,
    /// Requests the destination proxy answered during it.
    destination_requests: usize,
    /// What its `--report` says; `None` for skopeo.
    report: Option<ReportTotals>,
}

/// The figures read from a scheduler's `--report` JSON (`totals`).
struct ReportTotals {
    bytes_uploaded: u64,
    /// Job results the run waited for: 0 when the tag cache found every tag up to date.
    jobs: u64,
}

impl ReportTotals {
    fn read(path: &Path) -> Result<ReportTotals> {
        let text = std::fs::read(path).with_context(|| format!("reading {}", path.display()))?;
        let json: serde_json::Value =
            serde_json::from_slice(&text).with_context(|| format!("parsing {}", path.display()))?;
        let total = |field: &str| {
            json["totals"][field]
                .as_u64()
                .with_context(|| format!("no totals.{field} in {}", path.display()))
        };
        Ok(ReportTotals {
            bytes_uploaded: total("bytes_uploaded")?,
            jobs: total("jobs")?,
        })
    }
}

/// Runs `program args` measured, counting the requests both proxies of the corpus answered
/// meanwhile (nothing else talks to them while it runs: workers only act on its jobs).
fn measure_counted(corpus: &Corpus, program: &str, args: &[String]) -> Result<Run> {
    let before = (
        corpus.src_proxy.requests().len(),
        corpus.dst_proxy.requests().len(),
    );
    let measured = measure(program, args)?;
    Ok(Run {
        measured,
        source_requests: corpus.src_proxy.requests().len() - before.0,
        destination_requests: corpus.dst_proxy.requests().len() - before.1,
        report: None,
    })
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
                let max_age = format!("{}s", TAG_MAX_AGE.as_secs());
                workers.push(WorkerProcess::start(
                    p,
                    WORKER_CONCURRENCY,
                    &[s.clone(), d.clone()],
                    &["--tag-cache-max-age", &max_age],
                )?);
            }
            wait_consumers(p, mode.workers, &mut workers).await?;
        }
    }
    let scheduler = binary("mirror-scheduler").display().to_string();
    let mut runs = Vec::new();
    let phases: &[&str] = match mode.workers {
        0 => &["cold", "warm"],
        _ => &["cold", "warm", "expired"],
    };
    for &phase in phases {
        if phase == "expired" {
            tokio::time::sleep(TAG_MAX_AGE + Duration::from_secs(1)).await;
        }
        eprintln!("{}: {phase} run", mode.name);
        let report = dir.join(format!("report_{}_{phase}.json", mode.dest_prefix));
        let mut run_args = args.clone();
        run_args.extend(["--report".to_string(), report.display().to_string()]);
        let mut run = measure_counted(corpus, &scheduler, &run_args)?;
        let m = &run.measured;
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
        // The scheduler's "run <id>: ..." lines (jobs published, tags the cache skipped,
        // the summary), for whoever watches the benchmark.
        for line in m.stderr.lines().filter(|l| l.starts_with("run ")) {
            eprintln!("  {line}");
        }
        run.report = Some(ReportTotals::read(&report)?);
        runs.push(run);
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
    let expired = (mode.workers > 0)
        .then(|| runs.pop().context("expired run"))
        .transpose()?;
    let warm = runs.pop().context("warm run")?;
    let cold = runs.pop().context("cold run")?;
    Ok(Row {
        name: mode.name,
        short: mode.short,
        cold,
        warm,
        expired,
        worker_rss_kib,
    })
}

/// Runs `skopeo sync --all` cold then warm over the corpus into a destination prefix of its
/// own, with the yaml source and arguments of `bench_corpus`.
fn run_skopeo(corpus: &Corpus, dir: &Path) -> Result<Row> {
    let (s, d) = (corpus.src_host(), corpus.dst_host());
    let yaml = dir.join("sync.yaml");
    let mut y = format!("{s}:\n  tls-verify: false\n  images-by-tag-regex:\n");
    for r in 0..REPOS {
        y.push_str(&format!("    bench/repo{r}: \".*\"\n"));
    }
    std::fs::write(&yaml, y)?;
    let args: Vec<String> = [
        "sync",
        "--all",
        "--insecure-policy",
        "--src",
        "yaml",
        "--dest",
        "docker",
        "--dest-tls-verify=false",
        yaml.to_str().unwrap_or_default(),
        &format!("{d}/{SKOPEO_DEST_PREFIX}"),
    ]
    .iter()
    .map(|x| x.to_string())
    .collect();
    let mut runs = Vec::new();
    for phase in ["cold", "warm"] {
        eprintln!("{SKOPEO_NAME}: {phase} run");
        let run = measure_counted(corpus, "skopeo", &args)?;
        ensure!(
            run.measured.success,
            "skopeo sync {phase} failed: {}",
            run.measured.stderr
        );
        runs.push(run);
    }
    let warm = runs.pop().context("warm run")?;
    let cold = runs.pop().context("cold run")?;
    Ok(Row {
        expired: None,
        name: SKOPEO_NAME,
        short: SKOPEO_SHORT,
        cold,
        warm,
        worker_rss_kib: Vec::new(),
    })
}

/// `x / y` for the table, `-` when `y` is zero.
fn ratio(x: f64, y: f64) -> String {
    match y > 0.0 {
        true => format!("{:.2}x", x / y),
        false => "-".to_string(),
    }
}

#[tokio::main]
async fn main() -> Result<()> {
    let corpus = Corpus::start(latency_ms()).await?;
    let dir = tempfile::tempdir()?;
    let mut rows = Vec::new();
    for mode in &MODES {
        rows.push(run_mode(mode, &corpus, dir.path()).await?);
    }
    let skopeo = run_skopeo(&corpus, dir.path())?;
    let (skopeo_cold, skopeo_warm) = (skopeo.cold.measured.seconds, skopeo.warm.measured.seconds);
    rows.push(skopeo);

    println!("{}", corpus.describe());
    println!(
        "workers: mirror-worker run --concurrency {WORKER_CONCURRENCY}; embedded: run --local with its default --workers; RSS: the scheduler's (skopeo's) and each worker's peak"
    );
    println!(
        "ratios: mode time / embedded time (vs embedded), skopeo time / mode time (skopeo/mode)"
    );
    println!(
        "{:<24} {:>9} {:>9} {:>10} {:>17} {:>11} {:>11} {:>12} {:>12}",
        "mode",
        "cold (s)",
        "warm (s)",
        "RSS (MiB)",
        "worker RSS (MiB)",
        "vs emb cold",
        "vs emb warm",
        "skopeo/cold",
        "skopeo/warm"
    );
    let (base_cold, base_warm) = (rows[0].cold.measured.seconds, rows[0].warm.measured.seconds);
    for row in &rows {
        let (cold, warm) = (&row.cold.measured, &row.warm.measured);
        let rss = cold.peak_rss_mib().max(warm.peak_rss_mib());
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
            "{:<24} {:>9.2} {:>9.2} {:>10.1} {:>17} {:>11} {:>11} {:>12} {:>12}",
            row.name,
            cold.seconds,
            warm.seconds,
            rss,
            workers,
            ratio(cold.seconds, base_cold),
            ratio(warm.seconds, base_warm),
            ratio(skopeo_cold, cold.seconds),
            ratio(skopeo_warm, warm.seconds)
        );
    }

    println!(
        "bytes uploaded / distinct blob bytes of the corpus ({} B; configs left out), cold runs, target 1.00:",
        corpus.distinct_bytes
    );
    for row in &rows {
        if let Some(report) = &row.cold.report {
            println!(
                "  cold {}: {} B uploaded / {} B distinct = {:.2}",
                row.short,
                report.bytes_uploaded,
                corpus.distinct_bytes,
                report.bytes_uploaded as f64 / corpus.distinct_bytes as f64
            );
        }
    }
    print_requests(&rows, corpus.tags());
    Ok(())
}

/// Requests per tag of the warm runs, and of the runs after the tag cache came due.
fn print_requests(rows: &[Row], tags: usize) {
    println!("HTTP requests per tag, warm runs (both proxies, during the run), target at most 1:");
    for row in rows {
        let w = &row.warm;
        let jobs = match &w.report {
            Some(r) => format!(" ({} jobs run)", r.jobs),
            None => String::new(),
        };
        println!(
            "  warm {}: {} source + {} destination requests for {tags} tags = {:.2} per tag{jobs}",
            row.short,
            w.source_requests,
            w.destination_requests,
            (w.source_requests + w.destination_requests) as f64 / tags as f64
        );
    }
    println!(
        "Warm runs once every tag cache entry came due (--tag-cache-max-age {}s waited out): each tag checked again:",
        TAG_MAX_AGE.as_secs()
    );
    for row in rows {
        let Some(e) = &row.expired else { continue };
        println!(
            "  {}: {:.2} s (warm {:.2} s); {} source + {} destination requests for {tags} tags = {:.2} per tag",
            row.short,
            e.measured.seconds,
            row.warm.measured.seconds,
            e.source_requests,
            e.destination_requests,
            (e.source_requests + e.destination_requests) as f64 / tags as f64
        );
    }
}
