//! The benchmark corpus: 100 tags over 10 repositories with shared base layers, every fifth
//! tag a 4-platform OCI index, on a source registry, with an empty destination registry,
//! both behind latency-adding proxies.
//!
//! Why a module of its own: the corpus benchmark (against skopeo) and the fleet benchmark
//! (embedded against distributed) must mirror the very same corpus through the very same
//! latency for their figures to be comparable, and the seeding is most of their code.

use std::path::Path;
use std::time::Duration;

use anyhow::Result;

use mirror_tests::{push_image, push_index, Format, ImageSpec, Layer, Proxy, Registry};

/// Repositories in the corpus.
pub const REPOS: usize = 10;
/// Tags in each repository.
pub const TAGS_PER_REPO: usize = 10;

/// Latency added each way on both registries when `LATENCY_MS` is not set: about what a
/// registry in another region costs, which is where the per-request savings show.
pub const DEFAULT_LATENCY_MS: u64 = 20;

/// `LATENCY_MS` from the environment (0 for none), else [`DEFAULT_LATENCY_MS`].
pub fn latency_ms() -> u64 {
    std::env::var("LATENCY_MS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(DEFAULT_LATENCY_MS)
}

/// The seeded source, the empty destination and the proxies every benchmarked run goes
/// through. Dropping it stops the proxies, then the registries.
pub struct Corpus {
    /// In front of `src`; put its host in source references.
    pub src_proxy: Proxy,
    /// In front of `dst`; put its host in destination references, and read its requests
    /// to count what a run cost the destination.
    pub dst_proxy: Proxy,
    pub src: Registry,
    pub dst: Registry,
    /// Bytes of the distinct layers in the corpus (configs left out): what a cold mirror
    /// has to move at least.
    pub distinct_bytes: u64,
    /// The latency each proxy adds each way, in milliseconds.
    pub latency_ms: u64,
}

impl Corpus {
    /// Starts both registries, seeds the source (before any latency, so seeding stays
    /// quick) and starts the proxies with `latency_ms` each way.
    pub async fn start(latency_ms: u64) -> Result<Corpus> {
        let src = Registry::start().await?;
        let dst = Registry::start().await?;
        let distinct_bytes = seed(&src).await?;
        let src_proxy = Proxy::start(&src).await?;
        let dst_proxy = Proxy::start(&dst).await?;
        src_proxy.set_latency(Duration::from_millis(latency_ms));
        dst_proxy.set_latency(Duration::from_millis(latency_ms));
        Ok(Corpus {
            src_proxy,
            dst_proxy,
            src,
            dst,
            distinct_bytes,
            latency_ms,
        })
    }

    /// `127.0.0.1:PORT` of the source proxy.
    pub fn src_host(&self) -> String {
        self.src_proxy.host()
    }

    /// `127.0.0.1:PORT` of the destination proxy.
    pub fn dst_host(&self) -> String {
        self.dst_proxy.host()
    }

    /// Tags in the corpus.
    pub fn tags(&self) -> usize {
        REPOS * TAGS_PER_REPO
    }

    /// Writes a mapping file sending every repository, all tags, through the proxies:
    /// `SRC/bench/repoN DST/<prefix>/repoN`. A prefix of its own per mirroring mode keeps
    /// each mode's destination empty until that mode's first run.
    pub fn write_mapping(&self, path: &Path, prefix: &str) -> Result<()> {
        let (s, d) = (self.src_host(), self.dst_host());
        let lines: String = (0..REPOS)
            .map(|r| format!("{s}/bench/repo{r} {d}/{prefix}/repo{r}\n"))
            .collect();
        std::fs::write(path, lines)?;
        Ok(())
    }

    /// `run --local -f MAPPING` reaching both proxies over plain HTTP.
    pub fn local_run_args(&self, mapping: &Path) -> Vec<String> {
        let (s, d) = (self.src_host(), self.dst_host());
        [
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
        .collect()
    }

    /// The line the benchmarks print above their tables.
    pub fn describe(&self) -> String {
        format!(
            "corpus: {} tags over {REPOS} repositories, every fifth a 4-platform index, {:.1} MiB of distinct blobs, {} ms latency each way",
            self.tags(),
            self.distinct_bytes as f64 / (1 << 20) as f64,
            self.latency_ms
        )
    }
}

/// Pushes the corpus into `registry` as `bench/repo0..9:v0..9`; returns the bytes of its
/// distinct layers.
///
/// Three random base layers (2 MiB, 1 MiB, 512 KiB) are shared round-robin, so a mirror
/// that skips and cross-mounts blobs it already has does much less than one that copies
/// each image whole. Every image adds a 256 KiB layer of its own. Every fifth tag is an OCI
/// index of four platforms (children: the base plus a layer of their own), as release
/// images are.
pub async fn seed(registry: &Registry) -> Result<u64> {
    eprintln!(
        "seeding {} tags into {}",
        REPOS * TAGS_PER_REPO,
        registry.host()
    );
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
                let pushed = push_index(registry, &repo, &tag, children, Format::Oci).await?;
                // Each child's blobs are its config, the shared base, then its own layer.
                distinct_bytes += pushed
                    .children
                    .iter()
                    .map(|c| c.blobs.iter().skip(2).map(|b| b.1).sum::<u64>())
                    .sum::<u64>();
            } else {
                let own = Layer::random(256 << 10);
                distinct_bytes += own.size();
                push_image(registry, &repo, &tag, ImageSpec::new(vec![base, own])).await?;
            }
        }
    }
    Ok(distinct_bytes)
}
