//! A mapping set with the real system's shape, generated: at `SCALE=1`, 147 files, 700
//! source repositories, ~4,100 source images (every 10th a 2-platform index; all small, each
//! on one of three shared base layers) and ~7,700 destination tags (most lines name two
//! destination tags, as release mirrors do; one repository in 20 is mirrored by a tag-less
//! line, every tag). `SCALE=0.1` makes a tenth of it, for a quick look.
//!
//! Why generated: the real files name registries this machine cannot reach, and their
//! sizes (147 files, thousands of tags) are what a benchmark of the hourly run must have;
//! the fixtures benchmark (`bench/fixtures.sh`) covers the real files' exact lines.

use std::path::{Path, PathBuf};

use anyhow::Result;
use futures::StreamExt;

use mirror_tests::{push_image, push_index, Format, ImageSpec, Layer, Registry};

/// Files, source repositories and source images at `SCALE=1`.
const FILES: usize = 147;
const REPOS: usize = 700;
const IMAGES: usize = 4_100;

/// The set's size at a scale.
#[derive(Debug, Clone, Copy)]
pub struct Shape {
    /// Mapping files.
    pub files: usize,
    /// Source (and destination) repositories.
    pub repos: usize,
    /// Source images (tags at the source).
    pub images: usize,
}

impl Shape {
    /// `SCALE` from the environment (default 1.0).
    pub fn from_env() -> Shape {
        let scale: f64 = std::env::var("SCALE")
            .ok()
            .and_then(|v| v.parse().ok())
            .filter(|s: &f64| *s > 0.0)
            .unwrap_or(1.0);
        let n = |x: usize| ((x as f64 * scale).round() as usize).max(1);
        Shape {
            files: n(FILES),
            repos: n(REPOS),
            images: n(IMAGES).max(n(REPOS)),
        }
    }

    /// Tags of source repository `r`: images spread evenly over the repositories.
    fn tags_of(&self, r: usize) -> usize {
        self.images / self.repos + usize::from(r < self.images % self.repos)
    }
}

/// Every source image as (repository, tag), in seeding order.
pub fn source_images(shape: Shape) -> Vec<(String, String)> {
    (0..shape.repos)
        .flat_map(|r| (0..shape.tags_of(r)).map(move |k| (format!("scale/r{r}"), format!("v{k}"))))
        .collect()
}

/// Pushes every source image (8 at a time); returns how many were indexes.
pub async fn seed(registry: &Registry, shape: Shape) -> Result<usize> {
    let bases: Vec<Layer> = (0..3).map(|i| Layer::seeded(1000 + i, 4096)).collect();
    let mut work = Vec::new();
    let mut n = 0usize;
    for r in 0..shape.repos {
        for k in 0..shape.tags_of(r) {
            work.push((r, k, n));
            n += 1;
        }
    }
    let indexes = work.iter().filter(|(_, _, n)| n % 10 == 9).count();
    let pushes = futures::stream::iter(work).map(|(r, k, n)| {
        let base = bases[n % 3].clone();
        async move {
            // docker-registry answers an occasional 500 under concurrent pushes to one
            // storage directory: try an image again before giving up.
            let mut attempt = 0;
            loop {
                attempt += 1;
                match push_one(registry, r, k, n, &base).await {
                    Ok(()) => return anyhow::Ok(()),
                    Err(e) if attempt >= 4 => return Err(e),
                    Err(_) => tokio::time::sleep(std::time::Duration::from_millis(200)).await,
                }
            }
        }
    });
    let results: Vec<Result<()>> = pushes.buffer_unordered(8).collect().await;
    results.into_iter().collect::<Result<Vec<()>>>()?;
    Ok(indexes)
}

/// Source image `n` (`scale/r<r>:v<k>`): an index of two platforms for every 10th, else
/// one image; each on `base` and a small layer of its own.
async fn push_one(registry: &Registry, r: usize, k: usize, n: usize, base: &Layer) -> Result<()> {
    let repo = format!("scale/r{r}");
    let tag = format!("v{k}");
    if n % 10 == 9 {
        let children = ["amd64", "arm64"]
            .iter()
            .enumerate()
            .map(|(i, arch)| {
                let own = Layer::seeded(n as u64 * 7 + 2 + i as u64, 1024);
                ImageSpec::new(vec![base.clone(), own]).with_platform("linux", arch, None)
            })
            .collect();
        push_index(registry, &repo, &tag, children, Format::Oci).await?;
    } else {
        let own = Layer::seeded(n as u64 * 7 + 1, 1024);
        push_image(
            registry,
            &repo,
            &tag,
            ImageSpec::new(vec![base.clone(), own]),
        )
        .await?;
    }
    Ok(())
}

/// Writes the mapping files into `dir` (`mapping_scale_NNN`), repositories spread over
/// them; returns the files and the number of destination tags they name.
pub fn write_mappings(
    dir: &Path,
    shape: Shape,
    src: &str,
    dst: &str,
) -> Result<(Vec<PathBuf>, usize)> {
    let mut texts = vec![String::new(); shape.files];
    let mut tags = 0;
    for r in 0..shape.repos {
        let text = &mut texts[r % shape.files];
        let repo = format!("scale/r{r}");
        if r % 20 == 19 {
            text.push_str(&format!("{src}/{repo} {dst}/{repo}\n"));
            tags += shape.tags_of(r);
            continue;
        }
        for k in 0..shape.tags_of(r) {
            let line = if (r + k) % 8 == 7 {
                tags += 1;
                format!("{src}/{repo}:v{k} {dst}/{repo}:v{k}\n")
            } else {
                tags += 2;
                format!("{src}/{repo}:v{k} {dst}/{repo}:v{k} {dst}/{repo}:v{k}-mirror\n")
            };
            text.push_str(&line);
        }
    }
    let mut files = Vec::new();
    for (i, text) in texts.into_iter().enumerate() {
        let path = dir.join(format!("mapping_scale_{i:03}"));
        std::fs::write(&path, text)?;
        files.push(path);
    }
    Ok((files, tags))
}
