//! Benchmark: a corpus of 100 tags over 10 repositories (shared base layers, every fifth
//! tag a 4-platform index) mirrored by `mirror-scheduler run --local` and by `skopeo sync`
//! in the same run, cold (empty destination) and warm (nothing changed), with 20 ms of
//! latency each way on both registries (`LATENCY_MS` to change; 0 for none). Prints wall
//! times, peak RSS and the ratios. Run through `bench/corpus.sh`.

use std::time::Duration;

use mirror_tests::bench::{measure, Measured};
use mirror_tests::{binary, push_image, push_index, ImageSpec, Layer, Proxy, Registry};

const REPOS: usize = 10;
const TAGS_PER_REPO: usize = 10;

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let latency: u64 = std::env::var("LATENCY_MS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(20);
    let src = Registry::start().await?;
    let dst = Registry::start().await?;
    eprintln!("seeding {} tags into {}", REPOS * TAGS_PER_REPO, src.host());
    let bases = [
        Layer::random(2 << 20),
        Layer::random(1 << 20),
        Layer::random(512 << 10),
    ];
    let mut distinct_bytes = bases.iter().map(|b| b.size()).sum::<u64>();
    for r in 0..REPOS {
        for t in 0..TAGS_PER_REPO {
            let repo = format!("bench/repo{r}");
            let tag = format!("v{t}");
            let base = bases[(r + t) % bases.len()].clone();
            if (r * TAGS_PER_REPO + t) % 5 == 4 {
                let platforms = [
                    ("amd64", None),
                    ("arm64", Some("v8")),
                    ("ppc64le", None),
                    ("s390x", None),
                ];
                let children = platforms
                    .into_iter()
                    .map(|(arch, v)| {
                        ImageSpec::new(vec![base.clone(), Layer::random(256 << 10)])
                            .with_platform("linux", arch, v)
                    })
                    .collect();
                let pushed =
                    push_index(&src, &repo, &tag, children, mirror_tests::Format::Oci).await?;
                distinct_bytes += pushed
                    .children
                    .iter()
                    .map(|c| c.blobs.iter().skip(2).map(|b| b.1).sum::<u64>())
                    .sum::<u64>();
            } else {
                let own = Layer::random(256 << 10);
                distinct_bytes += own.size();
                push_image(&src, &repo, &tag, ImageSpec::new(vec![base, own])).await?;
            }
        }
    }
    let src_proxy = Proxy::start(&src).await?;
    let dst_proxy = Proxy::start(&dst).await?;
    src_proxy.set_latency(Duration::from_millis(latency));
    dst_proxy.set_latency(Duration::from_millis(latency));
    let (s, d) = (src_proxy.host(), dst_proxy.host());

    let dir = tempfile::tempdir()?;
    let mapping = dir.path().join("mapping_bench");
    let lines: String = (0..REPOS)
        .map(|r| format!("{s}/bench/repo{r} {d}/ours/repo{r}\n"))
        .collect();
    std::fs::write(&mapping, lines)?;
    let ours_args: Vec<String> = [
        "run",
        "--local",
        "-f",
        mapping.to_str().unwrap_or_default(),
        "--insecure-registry",
        &s,
        "--insecure-registry",
        &d,
    ]
    .iter()
    .map(|x| x.to_string())
    .collect();
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
    let tags = REPOS * TAGS_PER_REPO;
    println!("corpus: {tags} tags over {REPOS} repositories, every fifth a 4-platform index, {:.1} MiB of distinct blobs, {latency} ms latency each way", distinct_bytes as f64 / (1 << 20) as f64);
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
