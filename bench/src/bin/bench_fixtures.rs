//! Benchmark: the real mapping files (`tests/fixtures/mappings`, or `FIXTURES`) run by
//! groups, one group per file, on local registries standing in for the ones they name
//! (`registry.ci.openshift.org` and `registry.access.redhat.com` -> one, `quay.io` -> the
//! other). Every source tag is seeded with a small image (a shared base layer and a layer of
//! its own; three tags for each glob or tag-less source), then each group runs cold and
//! warm with `mirror-scheduler run --local --groups G --group NAME`. Prints per group and
//! in total: destination tags, wall time, and requests per tag at each registry (from their
//! access logs). Run through `bench/fixtures.sh`.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};

use anyhow::{ensure, Context, Result};
use mirror_bench::measure;
use mirror_common::mapping::{load, TagSelector};
use mirror_tests::{binary, push_image, ImageSpec, Layer, Registry};

/// Tags seeded for a glob or tag-less source, made to match it.
fn tags_for(selector: &TagSelector) -> Vec<String> {
    match selector {
        TagSelector::Tag(t) => vec![t.clone()],
        TagSelector::Glob(g) => (0..3).map(|i| g.replace('*', &format!("x{i}"))).collect(),
        _ => (0..3).map(|i| format!("t{i}")).collect(),
    }
}

/// The fixture files with their registries rewritten to the local ones, in `dir`.
fn rewrite(fixtures: &Path, dir: &Path, ci: &str, quay: &str) -> Result<Vec<PathBuf>> {
    let mut files = Vec::new();
    let mut names: Vec<_> = std::fs::read_dir(fixtures)?
        .map(|e| e.map(|e| e.path()))
        .collect::<Result<_, _>>()?;
    names.sort();
    for path in names {
        let text = std::fs::read_to_string(&path)?
            .replace("registry.ci.openshift.org/", &format!("{ci}/"))
            .replace("registry.access.redhat.com/", &format!("{ci}/"))
            .replace("quay.io/", &format!("{quay}/"));
        let out = dir.join(path.file_name().context("a file name")?);
        std::fs::write(&out, text)?;
        files.push(out);
    }
    Ok(files)
}

#[tokio::main]
async fn main() -> Result<()> {
    let fixtures = std::env::var("FIXTURES")
        .map(PathBuf::from)
        .unwrap_or_else(|_| {
            Path::new(env!("CARGO_MANIFEST_DIR")).join("../tests/fixtures/mappings")
        });
    let ci = Registry::start().await?;
    let quay = Registry::start().await?;
    let work = tempfile::tempdir()?;
    let mappings = work.path().join("mappings");
    std::fs::create_dir_all(&mappings)?;
    let files = rewrite(&fixtures, &mappings, &ci.host(), &quay.host())?;

    seed(&files, &ci, &quay).await?;

    let groups = work.path().join("groups.yaml");
    let mut yaml = String::from("groups:\n");
    for f in &files {
        let name = f.file_name().context("a file name")?.to_string_lossy();
        yaml.push_str(&format!(
            "- name: {}\n  prefix: {name}\n",
            name.replace('_', "-")
        ));
    }
    std::fs::write(&groups, yaml)?;

    let scheduler = binary("mirror-scheduler").display().to_string();
    println!("the fixture mapping files by groups (one per file), local registries, run --local");
    println!(
        "{:<44} {:>6} {:>9} {:>9} {:>15} {:>15}",
        "group", "tags", "cold (s)", "warm (s)", "cold req/tag", "warm req/tag"
    );
    let (mut tags_all, mut cold_all, mut warm_all) = (0usize, 0.0, 0.0);
    let (mut cold_req, mut warm_req) = (0usize, 0usize);
    for f in &files {
        let name = f
            .file_name()
            .context("a file name")?
            .to_string_lossy()
            .replace('_', "-");
        let args: Vec<String> = [
            "run",
            "--local",
            "--groups",
            groups.to_str().unwrap_or_default(),
            "--group",
            &name,
            "--dir",
            mappings.to_str().unwrap_or_default(),
            "--insecure-registry",
            &ci.host(),
            "--insecure-registry",
            &quay.host(),
            "--report",
        ]
        .iter()
        .map(|s| s.to_string())
        .chain([work.path().join("report.json").display().to_string()])
        .collect();
        let mut row = Vec::new();
        for _phase in ["cold", "warm"] {
            let before = ci.requests().len() + quay.requests().len();
            let m = measure(&scheduler, &args)?;
            ensure!(m.success, "group {name}: {}", m.stderr);
            let requests = ci.requests().len() + quay.requests().len() - before;
            let report: serde_json::Value =
                serde_json::from_slice(&std::fs::read(work.path().join("report.json"))?)?;
            let tags = report["tags"].as_array().map_or(0, Vec::len);
            row.push((m.seconds, requests, tags));
        }
        let ((cold_s, cold_r, tags), (warm_s, warm_r, _)) = (row[0], row[1]);
        let per = |r: usize| {
            if tags == 0 {
                0.0
            } else {
                r as f64 / tags as f64
            }
        };
        println!(
            "{name:<44} {tags:>6} {cold_s:>9.2} {warm_s:>9.2} {:>15.2} {:>15.2}",
            per(cold_r),
            per(warm_r)
        );
        tags_all += tags;
        cold_all += cold_s;
        warm_all += warm_s;
        cold_req += cold_r;
        warm_req += warm_r;
    }
    let per = |r: usize| r as f64 / tags_all.max(1) as f64;
    println!(
        "{:<44} {tags_all:>6} {cold_all:>9.2} {warm_all:>9.2} {:>15.2} {:>15.2}",
        "all groups",
        per(cold_req),
        per(warm_req)
    );
    Ok(())
}

/// Seeds every source tag of `files` (once), on whichever registry its source names.
async fn seed(files: &[PathBuf], ci: &Registry, quay: &Registry) -> Result<()> {
    let set = load(files);
    ensure!(
        set.rejected.is_empty(),
        "fixtures rejected: {:?}",
        set.rejected
    );
    let base = Layer::random(32 * 1024);
    let mut seeded = BTreeSet::new();
    for m in &set.mappings {
        let reg = if m.source.image.registry == ci.host() {
            &ci
        } else {
            &quay
        };
        for tag in tags_for(&m.source.tags) {
            if !seeded.insert((m.source.image.repo_name(), tag.clone())) {
                continue;
            }
            let spec = ImageSpec::new(vec![base.clone(), Layer::random(1024)]);
            push_image(reg, &m.source.image.repository, &tag, spec).await?;
        }
    }
    eprintln!("seeded {} source tags", seeded.len());

    Ok(())
}
