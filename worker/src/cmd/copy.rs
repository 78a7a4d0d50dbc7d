//! `mirror-worker copy SRC DST [DST...]`, also as skopeo users write it
//! (`copy --dest-tls-verify=false docker://SRC docker://DST`).

use std::sync::Arc;

use mirror_cli::{blob_line, image_arg, plural, CopyArgs, RegistryArgs};
use mirror_common::copy::CopyEngine;
use mirror_common::index::MemoryIndex;
use mirror_common::mapping::inherit_tag;
use mirror_common::reference::ImageRef;
use mirror_common::registry::RegistryClient;
use mirror_common::report::{CopyReport, TagStatus};

// Two flags made oc-style booleans by the same function: clippy takes the second for a
// repeated attribute.
#[allow(clippy::duplicated_attributes)]
#[derive(clap::Args)]
#[command(
    mut_arg("src_tls_verify", mirror_cli::oc_bool),
    mut_arg("dest_tls_verify", mirror_cli::oc_bool)
)]
pub(crate) struct Args {
    /// Source image: registry/repo:tag or registry/repo@sha256:... (skopeo's docker://
    /// prefix accepted).
    source: String,
    /// Destinations: registry/repo:tag, or registry/repo to keep the source tag (skopeo's
    /// docker:// prefix accepted).
    #[arg(required = true)]
    destinations: Vec<String>,
    /// skopeo's flag: false makes the source registry insecure: its certificate is NOT
    /// checked, and plain HTTP is spoken once it answers in it (HTTPS tried first), as
    /// --insecure does for every registry.
    #[arg(long = "src-tls-verify", default_value_t = true)]
    src_tls_verify: bool,
    /// skopeo's flag: false makes the destination registries insecure: their certificates
    /// are NOT checked, and plain HTTP is spoken once one answers in it (HTTPS tried first),
    /// as --insecure does for every registry.
    #[arg(long = "dest-tls-verify", default_value_t = true)]
    dest_tls_verify: bool,
    #[command(flatten)]
    registry: RegistryArgs,
    #[command(flatten)]
    copy: CopyArgs,
}

/// Runs the copy; returns the process exit code (0 only when every destination made it).
pub(crate) async fn run(args: Args) -> i32 {
    match copy(args).await {
        Ok(code) => code,
        Err(e) => {
            mirror_cli::fatal(&format!("error: {e}"));
            1
        }
    }
}

/// The copy itself; an `Err` is a command line or client setup the copy cannot start with.
async fn copy(args: Args) -> anyhow::Result<i32> {
    let source = image_arg(&args.source).map_err(anyhow::Error::msg)?;
    let destinations = destinations(&args.destinations, &source)?;
    let opts = args.copy.options(false).map_err(anyhow::Error::msg)?;
    let mut client = args.registry.client_options()?;
    let fallback = &mut client.http_fallback.registries;
    if !args.src_tls_verify {
        fallback.insert(source.registry.clone());
    }
    if !args.dest_tls_verify {
        fallback.extend(destinations.iter().map(|d: &ImageRef| d.registry.clone()));
    }
    let client = Arc::new(RegistryClient::new(client)?);
    let engine = CopyEngine::new(client, Arc::new(MemoryIndex::new()), opts);
    let report = engine.copy(&source, &destinations).await;
    for t in &report.tags {
        match (&t.status, t.oc_line()) {
            (TagStatus::Failed, _) => {
                eprintln!(
                    "error: {}: {}",
                    t.destination,
                    t.error.as_deref().unwrap_or("failed")
                );
            }
            (_, Some(line)) => println!("{line}"),
            (_, None) => {}
        }
    }
    let counts = report.counts();
    print_summary(&report);
    Ok(if counts.failed == 0 { 0 } else { 1 })
}

/// The destinations as given, each tagged (the source's tag when it has none); a digest
/// is refused.
fn destinations(given: &[String], source: &ImageRef) -> anyhow::Result<Vec<ImageRef>> {
    let mut destinations = Vec::new();
    for d in given {
        let dst = image_arg(d).map_err(anyhow::Error::msg)?;
        if dst.digest.is_some() {
            anyhow::bail!(
                "destination \"{d}\" has a digest; destinations must be registry/repo[:tag]"
            );
        }
        let dst = inherit_tag(&dst, source.tag.as_deref()).ok_or_else(|| {
            anyhow::anyhow!(
                "destination \"{d}\" has no tag and the source \"{source}\" has none to inherit"
            )
        })?;
        destinations.push(dst);
    }
    Ok(destinations)
}

/// The copy's summary on stderr: tags by outcome, blobs moved, time taken.
fn print_summary(report: &CopyReport) {
    let counts = report.counts();
    eprintln!(
        "{}: {} pushed, {} up to date, {} failed\n{}",
        plural(report.tags.len(), "tag"),
        counts.pushed,
        counts.up_to_date,
        counts.failed,
        blob_line(&report.stats, report.seconds, false)
    );
}
