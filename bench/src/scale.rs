//! A mapping set with the real system's shape, generated: at `SCALE=1`, 147 files, 700
//! source repositories, ~4,100 source images (every 10th a 2-platform index; all small, each
//! on one of three shared base layers) and ~7,700 destination tags (most lines name two
//! destination tags, as release mirrors do; one repository in 20 is mirrored by a tag-less
//! line, every tag). `SCALE=0.1` makes a tenth of it, for a quick look. The lines are laid
//! out here once ([`Shape::lines_of`]) for both the seeding of docker-registry and the
//! registry simulator (`crate::sim`), which adds glob lines and lines with three
//! destinations ([`Variety::Full`]).
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

/// Teams the mapping files of [`Variety::Full`] are spread over (`mapping_<team>_<n>`), as
/// the real system's ~30 Prow jobs each own a file prefix.
const TEAMS: usize = 30;

/// The set's size at a scale.
#[derive(Debug, Clone, Copy)]
pub struct Shape {
    /// Mapping files.
    pub files: usize,
    /// Source (and destination) repositories.
    pub repos: usize,
    /// Source images (tags at the source).
    pub images: usize,
    /// Which kinds of lines the files hold.
    pub variety: Variety,
}

/// The kinds of mapping lines. Two, so that `bench_scale`'s figures (measured on the first)
/// stay comparable while the registry simulator mirrors every kind the real files have.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Variety {
    /// What `bench_scale` measured: tag lines with one or two destinations, and one
    /// repository in 20 mirrored by a tag-less line; files `mapping_scale_NNN`.
    AsMeasured,
    /// The same plus what the real files also hold: one repository in 20 mirrored by a tag
    /// glob (`repo:v*`), and one tag line in 8 with three destinations (~7,800 destination
    /// tags at `SCALE=1`, ~7,500 as measured); files `mapping_<team>_<n>`.
    Full,
}

/// The source of one mapping line of source repository `r`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Source {
    /// Tag `v<k>`.
    Tag(usize),
    /// No tag: every tag of the repository.
    Every,
    /// `v*`: every tag, by a glob.
    Glob,
}

/// One mapping line: a source and the destination tags it names in the destination
/// repository of the same name (none written for [`Source::Every`] and [`Source::Glob`]:
/// each tag keeps its name).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Line {
    /// What is mirrored.
    pub source: Source,
    /// Destination tags of a [`Source::Tag`] line.
    pub dest_tags: Vec<String>,
}

impl Shape {
    /// `SCALE` from the environment (default 1.0), lines as `bench_scale` measured them.
    pub fn from_env() -> Shape {
        let scale: f64 = std::env::var("SCALE")
            .ok()
            .and_then(|v| v.parse().ok())
            .filter(|s: &f64| *s > 0.0)
            .unwrap_or(1.0);
        Shape::at(scale, Variety::AsMeasured)
    }

    /// The set at `scale` (1.0: the real system's size).
    pub fn at(scale: f64, variety: Variety) -> Shape {
        let n = |x: usize| ((x as f64 * scale).round() as usize).max(1);
        Shape {
            files: n(FILES),
            repos: n(REPOS),
            images: n(IMAGES).max(n(REPOS)),
            variety,
        }
    }

    /// Tags of source repository `r`: images spread evenly over the repositories.
    pub fn tags_of(&self, r: usize) -> usize {
        self.images / self.repos + usize::from(r < self.images % self.repos)
    }

    /// The number of source image `v<k>` of repository `r` in seeding order (`n % 10 == 9`
    /// are indexes, `n % 3` picks the base layer).
    pub fn image_number(&self, r: usize, k: usize) -> usize {
        let (each, extra) = (self.images / self.repos, self.images % self.repos);
        r * each + r.min(extra) + k
    }

    /// The mapping lines of source repository `r`.
    pub fn lines_of(&self, r: usize) -> Vec<Line> {
        let full = self.variety == Variety::Full;
        if r % 20 == 19 {
            return vec![Line {
                source: Source::Every,
                dest_tags: Vec::new(),
            }];
        }
        if full && r % 20 == 9 {
            return vec![Line {
                source: Source::Glob,
                dest_tags: Vec::new(),
            }];
        }
        (0..self.tags_of(r))
            .map(|k| {
                let dest_tags = match (r + k) % 8 {
                    7 => vec![format!("v{k}")],
                    3 if full => vec![
                        format!("v{k}"),
                        format!("v{k}-mirror"),
                        format!("v{k}-copy"),
                    ],
                    _ => vec![format!("v{k}"), format!("v{k}-mirror")],
                };
                Line {
                    source: Source::Tag(k),
                    dest_tags,
                }
            })
            .collect()
    }

    /// Every destination tag of repository `r` with the source tag `v<k>` it mirrors.
    pub fn dest_tags_of(&self, r: usize) -> Vec<(String, usize)> {
        let mut tags = Vec::new();
        for line in self.lines_of(r) {
            match line.source {
                Source::Tag(k) => tags.extend(line.dest_tags.into_iter().map(|t| (t, k))),
                Source::Every | Source::Glob => {
                    tags.extend((0..self.tags_of(r)).map(|k| (format!("v{k}"), k)))
                }
            }
        }
        tags
    }

    /// The name of mapping file `i`.
    fn file_name(&self, i: usize) -> String {
        match self.variety {
            Variety::AsMeasured => format!("mapping_scale_{i:03}"),
            Variety::Full => format!("mapping_team{}_{}", i % TEAMS, i / TEAMS),
        }
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
        tags += shape.dest_tags_of(r).len();
        for line in shape.lines_of(r) {
            let (source, dests) = match line.source {
                Source::Every => (format!("{src}/{repo}"), format!(" {dst}/{repo}")),
                Source::Glob => (format!("{src}/{repo}:v*"), format!(" {dst}/{repo}")),
                Source::Tag(k) => (
                    format!("{src}/{repo}:v{k}"),
                    line.dest_tags
                        .iter()
                        .map(|t| format!(" {dst}/{repo}:{t}"))
                        .collect(),
                ),
            };
            text.push_str(&format!("{source}{dests}\n"));
        }
    }
    let mut files = Vec::new();
    for (i, text) in texts.into_iter().enumerate() {
        let path = dir.join(shape.file_name(i));
        std::fs::write(&path, text)?;
        files.push(path);
    }
    Ok((files, tags))
}
