//! Benchmark: a corpus of 100 tags over 10 repositories (shared base layers, every fifth
//! tag a 4-platform index) mirrored by `mirror-scheduler run --local` and by `skopeo sync`
//! in the same run, cold (empty destination) and warm (nothing changed), with 20 ms of
//! latency each way on both registries (`LATENCY_MS` to change; 0 for none). Prints wall
//! times, peak RSS and the ratios. Run through `bench/corpus.sh`.

use mirror_bench::corpus::{latency_ms, Corpus, REPOS};
use mirror_bench::{measure, Measured};
use mirror_tests::binary;

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let corpus = Corpus::start(latency_ms()).await?;
    let (s, d) = (corpus.src_host(), corpus.dst_host());
    let dst_proxy = &corpus.dst_proxy;

    let dir = tempfile::tempdir()?;
    let mapping = dir.path().join("mapping_bench");
    corpus.write_mapping(&mapping, "ours")?;
    let ours_args = corpus.local_run_args(&mapping);
    let yaml = dir.path().join("sync.yaml");
    let mut y = format!("{s}:\n  tls-verify: false\n  images-by-tag-regex:\n");
    for r in 0..REPOS {
        y.push_str(&format!("    bench/repo{r}: \".*\"\n"));
    }
    std::fs::write(&yaml, y)?;
    let skopeo_args: Vec<String> = [
        "sync",
        "--all",
        "--insecure-policy",
        "--src",
        "yaml",
        "--dest",
        "docker",
        "--dest-tls-verify=false",
        yaml.to_str().unwrap_or_default(),
        &format!("{d}/skopeo"),
    ]
    .iter()
    .map(|x| x.to_string())
    .collect();
    let scheduler = binary("mirror-scheduler").display().to_string();

    let mut rows: Vec<(&str, Measured, usize)> = Vec::new();
    for phase in ["cold", "warm"] {
        let before = dst_proxy.requests().len();
        let ours = measure(&scheduler, &ours_args)?;
        anyhow::ensure!(
            ours.success,
            "mirror-scheduler {phase} run failed: {}",
            ours.stderr
        );
        let ours_requests = dst_proxy.requests().len() - before;
        let before = dst_proxy.requests().len();
        let skopeo = measure("skopeo", &skopeo_args)?;
        anyhow::ensure!(
            skopeo.success,
            "skopeo sync {phase} failed: {}",
            skopeo.stderr
        );
        let skopeo_requests = dst_proxy.requests().len() - before;
        rows.push((
            if phase == "cold" {
                "cold: mirror-scheduler run --local"
            } else {
                "warm: mirror-scheduler run --local"
            },
            ours,
            ours_requests,
        ));
        rows.push((
            if phase == "cold" {
                "cold: skopeo sync --all"
            } else {
                "warm: skopeo sync --all"
            },
            skopeo,
            skopeo_requests,
        ));
    }
    println!("{}", corpus.describe());
    println!(
        "{:<38} {:>9} {:>15} {:>22}",
        "run", "wall (s)", "peak RSS (MiB)", "destination requests"
    );
    for (name, m, req) in &rows {
        println!(
            "{name:<38} {:>9.2} {:>15.1} {req:>22}",
            m.seconds,
            m.peak_rss_mib()
        );
    }
    println!(
        "cold ratio skopeo / ours: {:.1}x (target >= 10x)",
        rows[1].1.seconds / rows[0].1.seconds
    );
    println!(
        "warm ratio skopeo / ours: {:.1}x (target >= 50x)",
        rows[3].1.seconds / rows[2].1.seconds
    );
    Ok(())
}
