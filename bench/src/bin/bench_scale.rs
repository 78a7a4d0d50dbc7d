//! Benchmark: the hourly run at the real system's scale (see `mirror_bench::scale`: at
//! `SCALE=1`, 147 files, ~4,100 source images, ~7,500 destination tags in 700
//! repositories), between two registries 20 ms away each way (`LATENCY_MS`), mirrored
//! cold, warm (nothing changed) and warm `--verify`, by the embedded mode
//! (`run --local --workers 32` with a state file of its own, and warm without one) and by 2 workers (`--concurrency 16`) with RabbitMQ and
//! Redis. Prints per run: wall time, requests per destination tag at each registry and by
//! kind (as the proxies in front of them counted), and the peak RSS of the scheduler and
//! the workers; then the floor: how long the registries themselves take to answer the
//! warm run's HEADs, straight (no proxy, no latency) and 128 at a time. `MODES` picks
//! `embedded`, `fleet` (both by default) and `scale-out` (one worker, then two, cold; the
//! ratio). `SHOW_LOG=1` prints each run's log (`RUST_LOG=mirror_scheduler=debug` adds the
//! scheduler's phase timings). Run through `bench/scale.sh`.
//!
//! What is not like production: plain HTTP/1.1 through the latency proxies (the test proxy
//! does not speak TLS, so HTTP/2 cannot be negotiated), and one machine for everything: the
//! registries' CPU (docker-registry spends ~2.3 ms on a manifest HEAD) is shared with the
//! runs they serve, which is what the floor shows.

use std::path::Path;
use std::time::Duration;

use anyhow::Result;
use mirror_bench::corpus::latency_ms;
use mirror_bench::scale::{seed, source_images, write_mappings, Shape};
use mirror_bench::workers::{fleet_flags, wait_consumers, WorkerProcess};
use mirror_bench::{measure, Measured};
use mirror_tests::fleet::{prefix, Prefix};
use mirror_tests::mirror::client_options;
use mirror_tests::{binary, Proxy, Registry, SeenRequest};

/// One measured run and what the registries saw during it.
struct Row {
    name: String,
    measured: Measured,
    src_requests: usize,
    dst_requests: usize,
    /// The run's requests by kind at each registry, e.g. `HEAD manifest 4100`.
    src_kinds: String,
    dst_kinds: String,
}

struct Bed {
    src_proxy: Proxy,
    dst_proxy: Proxy,
    tags: usize,
}

impl Bed {
    fn run(&self, name: &str, args: &[String]) -> Result<Row> {
        let before = (
            self.src_proxy.requests().len(),
            self.dst_proxy.requests().len(),
        );
        let measured = measure(&binary("mirror-scheduler").display().to_string(), args)?;
        if !measured.success {
            // Figures of a run with failed tags are still figures: say why and go on.
            eprintln!(
                "{name}: not every tag made it:\n{}",
                errors(&measured.stderr)
            );
        }
        eprintln!("{name}: {:.2} s", measured.seconds);
        if std::env::var_os("SHOW_LOG").is_some() {
            eprintln!("{}", measured.stderr);
        }
        let (src, dst) = (self.src_proxy.requests(), self.dst_proxy.requests());
        Ok(Row {
            name: name.to_string(),
            src_requests: src.len() - before.0,
            dst_requests: dst.len() - before.1,
            src_kinds: kinds(&src[before.0..]),
            dst_kinds: kinds(&dst[before.1..]),
            measured,
        })
    }
}

/// Requests by method and kind (manifest, blob, upload, mount, tags, referrers, other),
/// most frequent first: where a run's round trips go.
fn kinds(requests: &[SeenRequest]) -> String {
    let mut counts: std::collections::BTreeMap<String, usize> = Default::default();
    for r in requests {
        let kind = if r.path.contains("/manifests/") {
            "manifest"
        } else if r.path.contains("mount=") {
            "mount"
        } else if r.path.contains("/blobs/uploads") {
            "upload"
        } else if r.path.contains("/blobs/") {
            "blob"
        } else if r.path.contains("/tags/list") {
            "tags"
        } else if r.path.contains("/referrers/") {
            "referrers"
        } else {
            "other"
        };
        *counts.entry(format!("{} {kind}", r.method)).or_default() += 1;
    }
    let mut counts: Vec<_> = counts.into_iter().collect();
    counts.sort_by_key(|c| std::cmp::Reverse(c.1));
    counts
        .iter()
        .map(|(k, n)| format!("{k} {n}"))
        .collect::<Vec<_>>()
        .join(", ")
}

/// The error lines of a run's output (at most 10) and its summary line.
fn errors(text: &str) -> String {
    text.lines()
        .filter(|l| l.starts_with("error") || l.starts_with("run "))
        .take(12)
        .collect::<Vec<_>>()
        .join("\n")
}

fn insecure(hosts: &[String]) -> Vec<String> {
    hosts
        .iter()
        .flat_map(|h| ["--insecure-registry".to_string(), h.clone()])
        .collect()
}

/// How long `registry` itself takes to answer a HEAD for each of `refs`, 128 at a time,
/// straight (no proxy, no latency): the floor under a run whose time is those HEADs, on
/// this machine, where the registries share two cores with everything else.
async fn heads_floor(registry: &Registry, prefix: &str, refs: &[(String, String)]) -> Result<f64> {
    use futures::StreamExt;
    use mirror_common::name::{Reference, Repository};
    use mirror_common::registry::Manifests;
    let client = mirror_common::registry::RegistryClient::new(client_options(&[registry], None))?;
    let host = registry.host();
    let started = std::time::Instant::now();
    let found: Vec<bool> = futures::stream::iter(refs)
        .map(|(repo, tag)| {
            let (client, host) = (&client, &host);
            async move {
                let repo = Repository::new(host.as_str(), format!("{prefix}{repo}"));
                matches!(
                    client
                        .head_manifest(&repo, &Reference::tag(tag), false)
                        .await,
                    Ok(Some(_))
                )
            }
        })
        .buffer_unordered(128)
        .collect()
        .await;
    anyhow::ensure!(
        found.iter().all(|f| *f),
        "a HEAD of the floor found nothing"
    );
    Ok(started.elapsed().as_secs_f64())
}

/// `mirror-scheduler run` with `flags` over the set's files in `dir`.
fn run_args(flags: &[&str], dir: &Path, hosts: &[String]) -> Vec<String> {
    let mut args = vec!["run".to_string()];
    args.extend(flags.iter().map(|s| s.to_string()));
    args.extend(["--dir".to_string(), dir.display().to_string()]);
    args.extend(["--prefix".to_string(), "mapping_scale".to_string()]);
    args.extend(insecure(hosts));
    args
}

/// Stops the workers (SIGTERM, then a clean exit each).
fn stop(workers: &mut [WorkerProcess]) -> Result<()> {
    for w in workers.iter() {
        w.terminate()?;
    }
    for w in workers.iter_mut() {
        w.wait_stopped()?;
    }
    Ok(())
}

/// The embedded mode with a state file of its own (new at the cold run): cold, warm, warm
/// `--verify`; then warm remembering nothing (`--state none`, the mode before it had one).
/// Also the state file's size after them.
fn embedded(bed: &Bed, dir: &Path, hosts: &[String]) -> Result<(Vec<Row>, u64)> {
    let state = dir.join("state.db");
    let _ = std::fs::remove_file(&state);
    let state_flag = state.display().to_string();
    let flags = ["--local", "--workers", "32", "--state", &state_flag];
    let mut args = run_args(&flags, dir, hosts);
    let mut rows = vec![
        bed.run("embedded cold", &args)?,
        bed.run("embedded warm", &args)?,
    ];
    args.push("--verify".into());
    rows.push(bed.run("embedded warm --verify", &args)?);
    let size = std::fs::metadata(&state).map(|m| m.len()).unwrap_or(0);
    let forgetful = run_args(
        &["--local", "--workers", "32", "--state", "none"],
        dir,
        hosts,
    );
    rows.push(bed.run("embedded warm, no state", &forgetful)?);
    Ok((rows, size))
}

/// Scale-out: the set mirrored cold by one worker, then (into another destination prefix)
/// by two, each copying [`scale_out_concurrency`] jobs at once, so that the run is bound by
/// round trips, not by this machine's two cores: the second worker should nearly halve it.
async fn scale_out(bed: &Bed, work: &Path, shape: Shape, hosts: &[String]) -> Result<Vec<Row>> {
    let mut rows = Vec::new();
    for n in [1, 2] {
        let dir = work.join(format!("scale-out-{n}"));
        std::fs::create_dir_all(&dir)?;
        write_mappings(&dir, shape, &hosts[0], &format!("{}/so{n}", hosts[1]))?;
        let p = prefix();
        let mut workers = start_workers(&p, n, &scale_out_concurrency(), hosts).await?;
        let mut args = run_args(&["--wait"], &dir, hosts);
        args.extend(fleet_flags(&p));
        let name = format!("scale-out: {n} worker(s) cold");
        rows.push(bed.run(&name, &args)?);
        stop(&mut workers)?;
    }
    Ok(rows)
}

/// Jobs each worker copies at once in the scale-out runs (`SCALE_OUT_CONCURRENCY`, 4).
fn scale_out_concurrency() -> String {
    std::env::var("SCALE_OUT_CONCURRENCY").unwrap_or_else(|_| "4".into())
}

/// `n` workers copying `concurrency` jobs each, once they all consume.
async fn start_workers(
    p: &Prefix,
    n: usize,
    concurrency: &str,
    hosts: &[String],
) -> Result<Vec<WorkerProcess>> {
    let mut workers = Vec::new();
    for _ in 0..n {
        workers.push(WorkerProcess::start(p, concurrency, hosts, &[])?);
    }
    wait_consumers(p, n, &mut workers).await?;
    Ok(workers)
}

/// Two workers and a scheduler: cold, warm, warm `--verify`; and the workers' peak RSS.
async fn fleet(bed: &Bed, dir: &Path, hosts: &[String]) -> Result<(Vec<Row>, Vec<u64>)> {
    let p = prefix();
    let mut workers = start_workers(&p, 2, "16", hosts).await?;
    let mut args = run_args(&["--wait"], dir, hosts);
    args.extend(fleet_flags(&p));
    let mut rows = vec![
        bed.run("2 workers cold", &args)?,
        bed.run("2 workers warm", &args)?,
    ];
    args.push("--verify".into());
    rows.push(bed.run("2 workers warm --verify", &args)?);
    let rss = workers
        .iter()
        .map(|w| w.peak_rss_kib().unwrap_or(0))
        .collect();
    stop(&mut workers)?;
    Ok((rows, rss))
}

#[tokio::main]
async fn main() -> Result<()> {
    let shape = Shape::from_env();
    let src = Registry::start().await?;
    let dst = Registry::start().await?;
    eprintln!(
        "seeding {} source images ({} repositories)...",
        shape.images, shape.repos
    );
    let indexes = seed(&src, shape).await?;
    let src_proxy = Proxy::start(&src).await?;
    let dst_proxy = Proxy::start(&dst).await?;
    let latency = Duration::from_millis(latency_ms());
    src_proxy.set_latency(latency);
    dst_proxy.set_latency(latency);
    let (s, d) = (src_proxy.host(), dst_proxy.host());
    let hosts = vec![s.clone(), d.clone()];
    let work = tempfile::tempdir()?;
    let (emb_dir, fleet_dir) = (work.path().join("embedded"), work.path().join("fleet"));
    std::fs::create_dir_all(&emb_dir)?;
    std::fs::create_dir_all(&fleet_dir)?;
    let (_, tags) = write_mappings(&emb_dir, shape, &s, &format!("{d}/emb"))?;
    write_mappings(&fleet_dir, shape, &s, &format!("{d}/fleet"))?;
    let bed = Bed {
        src_proxy,
        dst_proxy,
        tags,
    };

    let images = source_images(shape);
    let src_floor = heads_floor(&src, "", &images).await?;
    // MODES=embedded, fleet or scale-out runs some of them (embedded and fleet by default).
    let modes = std::env::var("MODES").unwrap_or_else(|_| "embedded,fleet".into());
    let mut rows = Vec::new();
    let mut state_size = None;
    if modes.contains("embedded") {
        let (embedded_rows, size) = embedded(&bed, &emb_dir, &hosts)?;
        rows.extend(embedded_rows);
        state_size = Some(size);
    }
    // The destination's floor per tag, from one HEAD per image into what a cold run pushed.
    let dst_floor = match rows.first() {
        Some(_) => {
            Some(heads_floor(&dst, "emb/", &images).await? * bed.tags as f64 / images.len() as f64)
        }
        None => None,
    };
    let mut worker_rss = Vec::new();
    if modes.contains("fleet") {
        let (fleet_rows, rss) = fleet(&bed, &fleet_dir, &hosts).await?;
        rows.extend(fleet_rows);
        worker_rss = rss;
    }
    if modes.contains("scale-out") {
        let out = scale_out(&bed, work.path(), shape, &hosts).await?;
        println!(
            "scale-out (cold, --concurrency {} per worker): 2 workers {:.2}x one",
            scale_out_concurrency(),
            out[0].measured.seconds / out[1].measured.seconds
        );
        rows.extend(out);
    }

    println!(
        "set: {} files, {} source images ({indexes} indexes), {} destination tags in {} repositories; {} ms each way",
        shape.files,
        shape.images,
        bed.tags,
        shape.repos,
        latency.as_millis()
    );
    print_rows(&rows, bed.tags);
    println!(
        "floor (straight to the registry, 128 at a time, no latency): the {} source HEADs {:.2} s{}",
        images.len(),
        src_floor,
        dst_floor.map_or(String::new(), |f| format!("; a HEAD per destination tag {f:.2} s"))
    );
    println!("requests by kind:");
    for r in &rows {
        println!("  {:<24} src: {}", r.name, r.src_kinds);
        println!("  {:<24} dst: {}", "", r.dst_kinds);
    }
    print_embedded(&rows, state_size, bed.tags);
    // Measured in the fleet runs only.
    if !worker_rss.is_empty() {
        let worker_mib: Vec<String> = worker_rss
            .iter()
            .map(|k| format!("{:.1}", *k as f64 / 1024.0))
            .collect();
        println!("worker peak RSS (MiB): {}", worker_mib.join(", "));
    }
    Ok(())
}

/// The table of runs: wall time, requests per destination tag, the scheduler's peak RSS.
fn print_rows(rows: &[Row], tags: usize) {
    println!(
        "{:<26} {:>9} {:>18} {:>18} {:>16}",
        "run", "wall (s)", "src req / tag", "dst req / tag", "sched RSS (MiB)"
    );
    for r in rows {
        let name = if r.measured.success {
            r.name.clone()
        } else {
            format!("{} (failures)", r.name)
        };
        println!(
            "{:<26} {:>9.2} {:>18.2} {:>18.2} {:>16.1}",
            name,
            r.measured.seconds,
            r.src_requests as f64 / tags as f64,
            r.dst_requests as f64 / tags as f64,
            r.measured.peak_rss_mib()
        );
    }
}

/// The embedded mode's state file size and its warm run against the fleet's.
fn print_embedded(rows: &[Row], state_size: Option<u64>, tags: usize) {
    if let Some(size) = state_size {
        println!(
            "embedded state file after cold, warm and --verify: {:.1} MiB ({:.0} bytes per destination tag)",
            size as f64 / 1_048_576.0,
            size as f64 / tags as f64
        );
    }
    let seconds = |name: &str| {
        rows.iter()
            .find(|r| r.name == name)
            .map(|r| r.measured.seconds)
    };
    if let (Some(e), Some(f)) = (seconds("embedded warm"), seconds("2 workers warm")) {
        println!("embedded warm / fleet warm: {:.2}x", e / f);
    }
}
