//! Benchmark: the hourly run at the real system's scale (see `mirror_bench::scale`: at
//! `SCALE=1`, 147 files, ~4,100 source images, ~7,700 destination tags in 700
//! repositories), between two registries 20 ms away each way (`LATENCY_MS`), mirrored
//! cold, warm (nothing changed) and warm `--verify`, by the embedded mode
//! (`run --local --workers 32`) and by 2 workers (`--concurrency 16`) with RabbitMQ and
//! Redis. Prints per run: wall time, requests per destination tag at each registry (as the
//! proxies in front of them counted), and the peak RSS of the scheduler and the workers.
//! Run through `bench/scale.sh`.
//!
//! What is not like production: plain HTTP/1.1 through the latency proxies (the test proxy
//! does not speak TLS, so HTTP/2 cannot be negotiated), and one machine for everything.

use std::path::Path;
use std::time::Duration;

use anyhow::Result;
use mirror_bench::corpus::latency_ms;
use mirror_bench::scale::{seed, write_mappings, Shape};
use mirror_bench::workers::{fleet_flags, wait_consumers, WorkerProcess};
use mirror_bench::{measure, Measured};
use mirror_tests::fleet::prefix;
use mirror_tests::{binary, Proxy, Registry};

/// One measured run and what the registries saw during it.
struct Row {
    name: String,
    measured: Measured,
    src_requests: usize,
    dst_requests: usize,
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
        Ok(Row {
            name: name.to_string(),
            src_requests: self.src_proxy.requests().len() - before.0,
            dst_requests: self.dst_proxy.requests().len() - before.1,
            measured,
        })
    }
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

/// The embedded mode: cold, warm, warm `--verify`.
fn embedded(bed: &Bed, dir: &Path, hosts: &[String]) -> Result<Vec<Row>> {
    let mut args: Vec<String> = ["run", "--local", "--workers", "32", "--dir"]
        .iter()
        .map(|s| s.to_string())
        .collect();
    args.push(dir.display().to_string());
    args.extend(["--prefix".to_string(), "mapping_scale".to_string()]);
    args.extend(insecure(hosts));
    let mut rows = vec![
        bed.run("embedded cold", &args)?,
        bed.run("embedded warm", &args)?,
    ];
    args.push("--verify".into());
    rows.push(bed.run("embedded warm --verify", &args)?);
    Ok(rows)
}

/// Two workers and a scheduler: cold, warm, warm `--verify`; and the workers' peak RSS.
async fn fleet(bed: &Bed, dir: &Path, hosts: &[String]) -> Result<(Vec<Row>, Vec<u64>)> {
    let p = prefix();
    let mut workers = Vec::new();
    for _ in 0..2 {
        workers.push(WorkerProcess::start(&p, "16", hosts, &[])?);
    }
    wait_consumers(&p, 2, &mut workers).await?;
    let mut args: Vec<String> = ["run", "--wait", "--dir"]
        .iter()
        .map(|s| s.to_string())
        .collect();
    args.push(dir.display().to_string());
    args.extend(["--prefix".to_string(), "mapping_scale".to_string()]);
    args.extend(insecure(hosts));
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
    for w in &workers {
        w.terminate()?;
    }
    for w in &mut workers {
        w.wait_stopped()?;
    }
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

    let mut rows = embedded(&bed, &emb_dir, &hosts)?;
    let (fleet_rows, worker_rss) = fleet(&bed, &fleet_dir, &hosts).await?;
    rows.extend(fleet_rows);

    println!(
        "set: {} files, {} source images ({indexes} indexes), {} destination tags in {} repositories; {} ms each way",
        shape.files,
        shape.images,
        bed.tags,
        shape.repos,
        latency.as_millis()
    );
    println!(
        "{:<26} {:>9} {:>18} {:>18} {:>16}",
        "run", "wall (s)", "src req / tag", "dst req / tag", "sched RSS (MiB)"
    );
    for r in &rows {
        let name = if r.measured.success {
            r.name.clone()
        } else {
            format!("{} (failures)", r.name)
        };
        println!(
            "{:<26} {:>9.2} {:>18.2} {:>18.2} {:>16.1}",
            name,
            r.measured.seconds,
            r.src_requests as f64 / bed.tags as f64,
            r.dst_requests as f64 / bed.tags as f64,
            r.measured.peak_rss_mib()
        );
    }
    let worker_mib: Vec<String> = worker_rss
        .iter()
        .map(|k| format!("{:.1}", *k as f64 / 1024.0))
        .collect();
    println!("worker peak RSS (MiB): {}", worker_mib.join(", "));
    Ok(())
}
