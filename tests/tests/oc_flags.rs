//! oc's remaining flags, on real registries: `--skip-missing` passes over a source that
//! does not exist (reported, the run succeeds) and `--force` pushes a tag already at the
//! digest.

use mirror_tests::mirror::{registry_flags, run_binary};
use mirror_tests::test_io::{text, write};
use mirror_tests::*;

fn run_local(file: &str, extra: &[&str], registries: &[&Registry]) -> std::process::Output {
    let mut args = vec![
        "run".to_string(),
        "--local".to_string(),
        "-f".to_string(),
        file.to_string(),
    ];
    args.extend(extra.iter().map(|s| s.to_string()));
    args.extend(registry_flags(registries));
    run_binary("mirror-scheduler", &args)
}

#[tokio::test]
async fn skip_missing_reports_a_missing_source_and_the_run_succeeds() {
    let src = Registry::start().await.unwrap();
    let dst = Registry::start().await.unwrap();
    let (s, d) = (src.host(), dst.host());
    let image = push_image(
        &src,
        "team/app",
        "1",
        ImageSpec::new(vec![Layer::random(1_000)]),
    )
    .await
    .unwrap();
    let dir = tempfile::tempdir().unwrap();
    let file = write(
        dir.path(),
        "mapping_missing",
        &format!("{s}/team/app:1 {d}/team/app:1\n{s}/team/gone:1 {d}/team/gone:1\n"),
    );
    let without = run_local(&file, &[], &[&src, &dst]);
    assert!(
        !without.status.success(),
        "a missing source fails the run by default"
    );

    let report = dir.path().join("report.json");
    let with = run_local(
        &file,
        &["--skip-missing", "--report", report.to_str().unwrap()],
        &[&src, &dst],
    );
    let stderr = text(&with.stderr);
    assert!(with.status.success(), "{stderr}");
    assert!(stderr.contains("skipped (--skip-missing)"), "{stderr}");
    assert!(stderr.contains("team/gone"), "{stderr}");
    assert!(stderr.contains("1 skipped (source missing)"), "{stderr}");
    assert_eq!(
        manifest_digest(&dst, "team/app", "1").await.unwrap(),
        Some(image.digest)
    );
    let json: serde_json::Value = serde_json::from_slice(&std::fs::read(&report).unwrap()).unwrap();
    assert_eq!(json["totals"]["tags_skipped"], 1, "{json}");
    assert_eq!(json["totals"]["tags_failed"], 0, "{json}");
}

#[tokio::test]
async fn force_pushes_a_tag_already_at_the_digest() {
    let src = Registry::start().await.unwrap();
    let dst = Registry::start().await.unwrap();
    push_image(
        &src,
        "team/app",
        "1",
        ImageSpec::new(vec![Layer::random(1_000)]),
    )
    .await
    .unwrap();
    let copy = |extra: &[&str]| {
        let mut args = vec![
            "copy".to_string(),
            format!("{}/team/app:1", src.host()),
            format!("{}/team/app:1", dst.host()),
        ];
        args.extend(extra.iter().map(|s| s.to_string()));
        args.extend(registry_flags(&[&src, &dst]));
        run_binary("mirror-worker", &args)
    };
    assert!(copy(&[]).status.success());
    let puts = dst.count("PUT", "/manifests/");
    let again = copy(&[]);
    assert!(
        text(&again.stderr).contains("1 up to date"),
        "{}",
        text(&again.stderr)
    );
    assert_eq!(
        dst.count("PUT", "/manifests/"),
        puts,
        "left alone without --force"
    );
    let forced = copy(&["--force"]);
    assert!(forced.status.success(), "{}", text(&forced.stderr));
    assert!(
        text(&forced.stderr).contains("1 pushed"),
        "{}",
        text(&forced.stderr)
    );
    assert_eq!(
        dst.count("PUT", "/manifests/"),
        puts + 1,
        "pushed again with --force"
    );
}
