//! Benchmark: what carrying referrers costs. The 100-tag corpus, with a cosign-style
//! signature on the first tag of each repository, mirrored by `mirror-scheduler run
//! --local` with referrers on (the default) and with `--referrers none`, cold then warm,
//! each mode into a destination prefix of its own, with 20 ms of latency each way
//! (`LATENCY_MS`). Prints wall time and the requests each registry saw per run. Run
//! through `bench/referrers.sh`.

use mirror_bench::corpus::{latency_ms, Corpus, REPOS};
use mirror_bench::measure;
use mirror_tests::artifacts::{cosign_sign, Pushed};
use mirror_tests::{binary, get_manifest};

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let corpus = Corpus::start(latency_ms()).await?;
    for r in 0..REPOS {
        let repo = format!("bench/repo{r}");
        let Some((media_type, bytes)) = get_manifest(&corpus.src, &repo, "v0").await? else {
            anyhow::bail!("{repo}:v0 is missing from the corpus");
        };
        let subject = Pushed {
            digest: mirror_tests::sha256_digest(&bytes),
            bytes,
            media_type,
        };
        cosign_sign(&corpus.src, &repo, &subject, &["benchmark signature"]).await?;
    }
    let dir = tempfile::tempdir()?;
    let scheduler = binary("mirror-scheduler").display().to_string();
    println!("{}; {REPOS} tags signed", corpus.describe());
    println!(
        "{:<34} {:>9} {:>17} {:>22}",
        "run", "wall (s)", "source requests", "destination requests"
    );
    for (mode, extra) in [("referrers all", None), ("referrers none", Some("none"))] {
        let prefix = if extra.is_some() { "off" } else { "on" };
        let mapping = dir.path().join(format!("mapping_{prefix}"));
        corpus.write_mapping(&mapping, prefix)?;
        let mut args = corpus.local_run_args(&mapping);
        if let Some(v) = extra {
            args.extend(["--referrers".to_string(), v.to_string()]);
        }
        for phase in ["cold", "warm"] {
            let (src_before, dst_before) = (
                corpus.src_proxy.requests().len(),
                corpus.dst_proxy.requests().len(),
            );
            let m = measure(&scheduler, &args)?;
            anyhow::ensure!(m.success, "{mode} {phase} failed: {}", m.stderr);
            println!(
                "{:<34} {:>9.2} {:>17} {:>22}",
                format!("{phase}: {mode}"),
                m.seconds,
                corpus.src_proxy.requests().len() - src_before,
                corpus.dst_proxy.requests().len() - dst_before
            );
        }
    }
    Ok(())
}
