//! Benchmark: copy one image with a large layer (512 MiB by default, `LAYER_MIB` to
//! change) between two local registries with `mirror-worker copy` and with `skopeo copy`,
//! and print wall time and peak RSS of each. Run through `bench/large-layer.sh`.

use mirror_bench::measure;
use mirror_tests::{binary, push_image, ImageSpec, Layer, Registry};

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let mib: u64 = std::env::var("LAYER_MIB")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(512);
    let src = Registry::start().await?;
    let dst = Registry::start().await?;
    eprintln!("seeding a {mib} MiB layer into {}", src.host());
    let image = push_image(
        &src,
        "bench/big",
        "1",
        ImageSpec::new(vec![Layer::random_streamed(mib << 20), Layer::random(4096)]),
    )
    .await?;
    let worker = binary("mirror-worker").display().to_string();
    let ours = measure(
        &worker,
        &[
            "copy".into(),
            format!("{}/bench/big:1", src.host()),
            format!("{}/mirror/big:1", dst.host()),
            "--insecure-registry".into(),
            src.host(),
            "--insecure-registry".into(),
            dst.host(),
        ],
    )?;
    anyhow::ensure!(ours.success, "mirror-worker copy failed: {}", ours.stderr);
    anyhow::ensure!(
        ours.stdout.starts_with(&image.digest),
        "unexpected output {}",
        ours.stdout
    );
    let skopeo = measure(
        "skopeo",
        &[
            "copy".into(),
            "--src-tls-verify=false".into(),
            "--dest-tls-verify=false".into(),
            format!("docker://{}/bench/big:1", src.host()),
            format!("docker://{}/skopeo/big:1", dst.host()),
        ],
    )?;
    anyhow::ensure!(skopeo.success, "skopeo copy failed: {}", skopeo.stderr);
    println!("large-layer copy, {mib} MiB layer, local registries");
    println!("{:<22} {:>10} {:>14}", "tool", "wall (s)", "peak RSS (MiB)");
    println!(
        "{:<22} {:>10.2} {:>14.1}",
        "mirror-worker copy",
        ours.seconds,
        ours.peak_rss_mib()
    );
    println!(
        "{:<22} {:>10.2} {:>14.1}",
        "skopeo copy",
        skopeo.seconds,
        skopeo.peak_rss_mib()
    );
    println!(
        "wall-time ratio skopeo / mirror-worker: {:.2}x",
        skopeo.seconds / ours.seconds
    );
    println!(
        "peak RSS target <= 64 MiB: {}",
        if ours.peak_rss_mib() <= 64.0 {
            "met"
        } else {
            "NOT met"
        }
    );
    Ok(())
}
