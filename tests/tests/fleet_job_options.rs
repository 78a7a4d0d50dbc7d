//! What to copy is the run's choice, carried in each job, whichever worker takes it: a
//! scheduler run with `--referrers none --keep-manifest-list=false` on workers started with
//! the defaults (referrers all, indexes whole) leaves the signature behind and pushes only the
//! linux/amd64 image. Real RabbitMQ and registries.

use mirror_tests::artifacts::{cosign_sign, Pushed};
use mirror_tests::fleet::{prefix, scheduler, Worker};
use mirror_tests::mirror::run_binary;
use mirror_tests::test_io::{text, write};
use mirror_tests::*;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_runs_choices_of_what_to_copy_reach_workers_started_with_other_defaults() {
    let src = Registry::start().await.unwrap();
    let dst = Registry::start().await.unwrap();
    let (s, d) = (src.host(), dst.host());
    let image = push_image(
        &src,
        "team/app",
        "v1",
        ImageSpec::new(vec![Layer::random(2_000)]),
    )
    .await
    .unwrap();
    let subject = Pushed {
        digest: image.digest.clone(),
        bytes: image.manifest_bytes.clone(),
        media_type: image.media_type.clone(),
    };
    cosign_sign(&src, "team/app", &subject, &["sig"])
        .await
        .unwrap();
    let index = push_index(
        &src,
        "team/multi",
        "v1",
        three_platform_index_spec(),
        Format::Oci,
    )
    .await
    .unwrap();
    let amd64 = &index.children[0].digest;
    let dir = tempfile::tempdir().unwrap();
    let file = write(
        dir.path(),
        "mapping_options",
        &format!("{s}/team/app:v1 {d}/team/app:v1\n{s}/team/multi:v1 {d}/team/multi:v1\n"),
    );
    let p = prefix();
    let worker = Worker::start(&p, &[&src, &dst], &[], &[]);
    let out = scheduler(
        &p,
        &[
            "run",
            "--wait",
            "-f",
            &file,
            "--referrers",
            "none",
            "--keep-manifest-list=false",
        ],
        &[&src, &dst],
        &[],
    );
    assert!(
        out.status.success(),
        "{}\n{}",
        text(&out.stderr),
        worker.log()
    );
    assert_eq!(
        manifest_digest(&dst, "team/app", "v1").await.unwrap(),
        Some(image.digest.clone())
    );
    assert_eq!(
        tags(&dst, "team/app").await.unwrap(),
        vec!["v1".to_string()],
        "no signature tag: the run said --referrers none"
    );
    assert_eq!(
        manifest_digest(&dst, "team/multi", "v1")
            .await
            .unwrap()
            .as_ref(),
        Some(amd64),
        "only the linux/amd64 image: the run said --keep-manifest-list=false"
    );
}

/// A worker given a what-to-copy flag would be overridden by every job's own choice without
/// a word; it refuses to start instead (exit 2, as a usage error), naming the flag and
/// where to set it, and its help does not offer those flags.
#[test]
fn the_worker_refuses_what_to_copy_flags_that_each_job_carries() {
    let flags: [&[&str]; 8] = [
        &["--force"],
        &["--filter-by-os", "linux/.*"],
        &["--platform", "linux/amd64"],
        &["--keep-manifest-list=false"],
        &["--referrers", "none"],
        &["--referrers-type", "application/spdx+json"],
        &["--include-nondistributable"],
        &["--skip-missing"],
    ];
    for given in flags {
        let mut args = vec!["run".to_string()];
        args.extend(given.iter().map(|s| s.to_string()));
        // A broker URL the worker would refuse too, later: the refusal must come first (and
        // a worker that took the flags ends here instead of consuming for ever).
        args.extend(["--amqp".to_string(), "notaurl".to_string()]);
        let out = run_binary("mirror-worker", &args);
        let stderr = text(&out.stderr);
        assert_eq!(out.status.code(), Some(2), "{given:?}: {stderr}");
        assert!(
            stderr.contains(&format!(
                "mirror-worker run: {} would have no effect",
                given[0].split('=').next().unwrap_or_default()
            )) && stderr.contains("travels in each job")
                && stderr.contains("set it on mirror-scheduler run or in the group's settings"),
            "{given:?}: {stderr}"
        );
    }
    let help = text(&run_binary("mirror-worker", &["run".into(), "--help".into()]).stdout);
    assert!(help.contains("--concurrency"), "{help}");
    for flag in [
        "--force",
        "--filter-by-os",
        "--keep-manifest-list",
        "--skip-missing",
    ] {
        assert!(!help.contains(flag), "{flag} in: {help}");
    }
}
