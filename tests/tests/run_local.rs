//! `mirror-scheduler run --local`: mapping files mirrored end to end in one process, against
//! real registries: globs, tag-less sources, several destinations per line, indexes; a
//! re-run that changes nothing; whole-file rejection; shared layers uploaded once; dry run.

use mirror_tests::mirror::{registry_flags, run_binary};
use mirror_tests::test_io::write;
use mirror_tests::*;

fn run_local(files: &[String], extra: &[&str], registries: &[&Registry]) -> std::process::Output {
    let mut args = vec!["run".to_string(), "--local".to_string()];
    for f in files {
        args.extend(["-f".to_string(), f.clone()]);
    }
    args.extend(extra.iter().map(|s| s.to_string()));
    args.extend(registry_flags(registries));
    run_binary("mirror-scheduler", &args)
}

fn stdout(o: &std::process::Output) -> String {
    String::from_utf8_lossy(&o.stdout).to_string()
}

fn stderr(o: &std::process::Output) -> String {
    String::from_utf8_lossy(&o.stderr).to_string()
}

/// Three release tags, two tools tags and a three-platform index at the source; returns the
/// destination tags the demo mapping should produce, with their digests.
async fn seed_globs_tagless_and_index(src: &Registry) -> Vec<(String, String)> {
    let base = Layer::random(30_000);
    let mut expected = Vec::new();
    for tag in ["4.15.0", "4.15.1", "4.16.0"] {
        let img = push_image(
            src,
            "ocp/release",
            tag,
            ImageSpec::new(vec![base.clone(), Layer::random(2_000)]),
        )
        .await
        .unwrap();
        expected.push((format!("mirror/release:{tag}"), img.digest));
    }
    for tag in ["a", "b"] {
        let img = push_image(
            src,
            "tools/all",
            tag,
            ImageSpec::new(vec![base.clone(), Layer::random(1_000)]),
        )
        .await
        .unwrap();
        expected.push((format!("mirror/all:{tag}"), img.digest));
    }
    let index = push_index(
        src,
        "multi/app",
        "v1",
        three_platform_index_spec(),
        Format::Oci,
    )
    .await
    .unwrap();
    expected.push(("mirror/app:v1".into(), index.digest.clone()));
    expected.push(("mirror/app:latest".into(), index.digest.clone()));
    expected
}

#[tokio::test]
async fn mapping_with_globs_tagless_sources_and_indexes_mirrors_every_tag_then_reruns_as_no_op() {
    let src = Registry::start().await.unwrap();
    let dst = Registry::start().await.unwrap();
    let (s, d) = (src.host(), dst.host());
    let mut expected = seed_globs_tagless_and_index(&src).await;
    let dir = tempfile::tempdir().unwrap();
    let file = write(
        dir.path(),
        "mapping_demo",
        &format!(
            "# globs, tag-less sources, two destinations, an index\n\
             {s}/ocp/release:4.15* {d}/mirror/release\n\
             {s}/tools/all   {d}/mirror/all\n\
             {s}/multi/app:v1 {d}/mirror/app:v1 {d}/mirror/app:latest   # index kept whole\n"
        ),
    );
    let first = run_local(std::slice::from_ref(&file), &[], &[&src, &dst]);
    assert!(first.status.success(), "{}", stderr(&first));
    let lines: Vec<String> = stdout(&first).lines().map(str::to_string).collect();
    assert_eq!(lines.len(), 6, "{lines:?}");
    expected.retain(|(t, _)| t != "mirror/release:4.16.0");
    for (tag, digest) in &expected {
        let (repo, t) = tag.split_once(':').unwrap();
        assert_eq!(
            manifest_digest(&dst, repo, t).await.unwrap().as_ref(),
            Some(digest),
            "{tag}"
        );
        assert!(
            lines.contains(&format!("{digest} {d}/{tag}")),
            "oc line for {tag} in {lines:?}"
        );
    }
    assert_eq!(
        manifest_digest(&dst, "mirror/release", "4.16.0")
            .await
            .unwrap(),
        None,
        "the glob does not match 4.16.0"
    );
    assert!(
        stderr(&first).contains("6 tags copied, 0 already up to date, 0 failed"),
        "{}",
        stderr(&first)
    );

    let puts = dst.count("PUT", "/");
    // Image manifests and blobs; not the referrers tag schema's `sha256-<hex>` tags, which
    // a no-op run looks at for new signatures (README "Signatures and other artifacts").
    let image_reads = |p: &Registry| {
        p.requests()
            .iter()
            .filter(|r| r.method == "GET")
            .filter(|r| r.path.contains("/manifests/") || r.path.contains("/blobs/"))
            .filter(|r| !r.path.contains("/manifests/sha256-"))
            .count()
    };
    let source_reads = image_reads(&src);
    let report = dir.path().join("report.json");
    let second = run_local(
        &[file],
        &["--report", report.to_str().unwrap()],
        &[&src, &dst],
    );
    assert!(second.status.success(), "{}", stderr(&second));
    assert!(
        stdout(&second).is_empty(),
        "nothing pushed, no oc lines: {}",
        stdout(&second)
    );
    assert!(
        stderr(&second).contains("0 tags copied, 6 already up to date"),
        "{}",
        stderr(&second)
    );
    assert_eq!(dst.count("PUT", "/"), puts, "a no-op run writes nothing");
    assert_eq!(
        image_reads(&src),
        source_reads,
        "and reads no image manifest or blob: one HEAD per source tag is enough"
    );
    let json: serde_json::Value = serde_json::from_slice(&std::fs::read(&report).unwrap()).unwrap();
    assert_eq!(json["tags"].as_array().unwrap().len(), 6);
    assert!(json["tags"]
        .as_array()
        .unwrap()
        .iter()
        .all(|t| t["status"] == "up_to_date"));
}

#[tokio::test]
async fn file_with_one_bad_line_mirrors_nothing_while_another_file_still_mirrors() {
    let src = Registry::start().await.unwrap();
    let dst = Registry::start().await.unwrap();
    let (s, d) = (src.host(), dst.host());
    push_image(
        &src,
        "good/app",
        "1",
        ImageSpec::new(vec![Layer::random(1_000)]),
    )
    .await
    .unwrap();
    push_image(
        &src,
        "bad/app",
        "1",
        ImageSpec::new(vec![Layer::random(1_000)]),
    )
    .await
    .unwrap();
    let dir = tempfile::tempdir().unwrap();
    let good = write(
        dir.path(),
        "mapping_good",
        &format!("{s}/good/app:1 {d}/good/app:1\n"),
    );
    let bad = write(
        dir.path(),
        "mapping_bad",
        &format!(
            "{s}/bad/app:1 {d}/bad/app:1\n{s}/bad/app:1 {d}/bad/other@sha256:{}\n",
            "a".repeat(64)
        ),
    );
    let report = dir.path().join("report.json");
    let out = run_local(
        &[good, bad.clone()],
        &["--report", report.to_str().unwrap()],
        &[&src, &dst],
    );
    assert_eq!(out.status.code(), Some(1), "a rejected file fails the run");
    assert!(
        stderr(&out).contains(&format!("{bad}:2: destination")),
        "{}",
        stderr(&out)
    );
    assert!(manifest_digest(&dst, "good/app", "1")
        .await
        .unwrap()
        .is_some());
    assert_eq!(
        catalog(&dst).await.unwrap(),
        ["good/app"],
        "nothing from the bad file"
    );
    let json: serde_json::Value = serde_json::from_slice(&std::fs::read(&report).unwrap()).unwrap();
    assert_eq!(json["rejected_files"][0]["file"], bad);
}

#[tokio::test]
async fn repositories_sharing_base_layers_upload_each_shared_blob_once_and_mount_it() {
    let src = Registry::start().await.unwrap();
    let dst = Registry::start().await.unwrap();
    let d = dst.host();
    let base = Layer::random(80_000);
    let dir = tempfile::tempdir().unwrap();
    let seeded = seed_numbered(&src, &d, "team/svc", 4, dir.path(), |i| {
        vec![base.clone(), Layer::random(1_000 + i as u64)]
    })
    .await
    .unwrap();
    let file = seeded.mapping.clone();
    let report = dir.path().join("report.json");
    let out = run_local(
        &[file],
        &["--workers", "4", "--report", report.to_str().unwrap()],
        &[&src, &dst],
    );
    assert!(out.status.success(), "{}", stderr(&out));
    let hex = base.digest().trim_start_matches("sha256:"); // the query may escape the colon
    let base_puts = dst
        .requests()
        .into_iter()
        .filter(|r| r.method == "PUT" && r.path.contains(hex))
        .count();
    assert_eq!(base_puts, 1, "the shared base layer crossed the wire once");
    let mounts = dst
        .requests()
        .into_iter()
        .filter(|r| r.path.contains("mount=") && r.path.contains(hex) && r.status == 201)
        .count();
    assert_eq!(
        mounts, 3,
        "and was mounted into the three other repositories"
    );
    let json: serde_json::Value = serde_json::from_slice(&std::fs::read(&report).unwrap()).unwrap();
    assert_eq!(
        json["totals"]["blobs_uploaded"], 9,
        "4 configs + 4 own layers + 1 base"
    );
    assert_eq!(json["totals"]["blobs_mounted"], 3);
}

#[tokio::test]
async fn dry_run_writes_nothing_and_says_what_it_would_do() {
    let src = Registry::start().await.unwrap();
    let dst = Registry::start().await.unwrap();
    let (s, d) = (src.host(), dst.host());
    let img = push_image(
        &src,
        "app/new",
        "1",
        ImageSpec::new(vec![Layer::random(4_000)]),
    )
    .await
    .unwrap();
    let dir = tempfile::tempdir().unwrap();
    let file = write(
        dir.path(),
        "mapping_dry",
        &format!("{s}/app/new:1 {d}/app/new:1\n"),
    );
    let out = run_local(std::slice::from_ref(&file), &["--dry-run"], &[&src, &dst]);
    assert!(out.status.success(), "{}", stderr(&out));
    assert!(
        stdout(&out).starts_with(&format!(
            "new        {} {d}/app/new:1  blobs: 2 to upload",
            img.digest
        )),
        "{}",
        stdout(&out)
    );
    assert!(
        stderr(&out).contains("1 tag would be created"),
        "{}",
        stderr(&out)
    );
    assert!(
        catalog(&dst).await.unwrap().is_empty(),
        "dry run wrote nothing"
    );
    assert_eq!(dst.count("POST", "/"), 0);
    assert_eq!(dst.count("PUT", "/"), 0);

    // The environment switch the existing cron job uses works too.
    let mut args = vec![
        "run".to_string(),
        "--local".to_string(),
        "-f".to_string(),
        file,
    ];
    args.extend(registry_flags(&[&src, &dst]));
    let out = std::process::Command::new(binary("mirror-scheduler"))
        .args(&args)
        .env("dry_run", "true")
        .output()
        .unwrap();
    assert!(out.status.success());
    assert!(catalog(&dst).await.unwrap().is_empty());
}

#[tokio::test]
async fn missing_source_fails_its_tags_and_the_report_says_why() {
    let src = Registry::start().await.unwrap();
    let dst = Registry::start().await.unwrap();
    let (s, d) = (src.host(), dst.host());
    push_image(
        &src,
        "app/ok",
        "1",
        ImageSpec::new(vec![Layer::random(1_000)]),
    )
    .await
    .unwrap();
    let dir = tempfile::tempdir().unwrap();
    let file = write(
        dir.path(),
        "mapping_missing",
        &format!("{s}/app/ok:1 {d}/app/ok:1\n{s}/app/gone:1 {d}/app/gone:1\n"),
    );
    let report = dir.path().join("report.json");
    let out = run_local(
        &[file],
        &["--continue-on-error", "--report", report.to_str().unwrap()],
        &[&src, &dst],
    );
    assert_eq!(out.status.code(), Some(1));
    assert!(
        manifest_digest(&dst, "app/ok", "1")
            .await
            .unwrap()
            .is_some(),
        "the other tag still made it"
    );
    let json: serde_json::Value = serde_json::from_slice(&std::fs::read(&report).unwrap()).unwrap();
    let gone = json["tags"]
        .as_array()
        .unwrap()
        .iter()
        .find(|t| t["destination"] == format!("{d}/app/gone:1"))
        .unwrap()
        .clone();
    assert_eq!(gone["status"], "failed");
    assert!(
        gone["error"]
            .as_str()
            .unwrap()
            .contains("app/gone:1: not found"),
        "{gone}"
    );
}

/// Three teams' files all write `logging/operator:latest`, as the real set does: `validate`
/// warns naming both places and exits 0, the run mirrors every file, the contested tag ends
/// at the last file's image, and the report says which mappings were superseded by which.
#[tokio::test]
async fn a_tag_given_by_several_files_is_a_warning_and_the_last_file_wins() {
    let src = Registry::start().await.unwrap();
    let dst = Registry::start().await.unwrap();
    let (s, d) = (src.host(), dst.host());
    let dir = tempfile::tempdir().unwrap();
    let mut files = Vec::new();
    let mut digests = Vec::new();
    for team in ["a", "b", "c"] {
        let img = push_image(
            &src,
            &format!("{team}/logging"),
            "v1",
            ImageSpec::new(vec![Layer::random(1_000)]),
        )
        .await
        .unwrap();
        digests.push(img.digest);
        files.push(write(
            dir.path(),
            &format!("mapping_logging_{team}"),
            &format!("{s}/{team}/logging:v1 {d}/logging/operator:latest {d}/logging/{team}:v1\n"),
        ));
    }
    let mut args = vec!["validate".to_string()];
    for f in &files {
        args.extend(["-f".to_string(), f.clone()]);
    }
    let validated = run_binary("mirror-scheduler", &args);
    assert!(validated.status.success(), "{}", stderr(&validated));
    let warnings: Vec<String> = stderr(&validated)
        .lines()
        .filter(|l| l.starts_with("warning: "))
        .map(str::to_string)
        .collect();
    assert_eq!(
        warnings[0],
        format!(
            "warning: {}:1: destination \"{d}/logging/operator:latest\" is also given at {}:1, a later file, which wins",
            files[0], files[1]
        )
    );
    assert_eq!(warnings.len(), 2, "{warnings:?}");
    assert!(stdout(&validated).contains("0 errors, 0 files rejected, 2 warnings"));

    let report = dir.path().join("report.json");
    let run = run_local(
        &files,
        &["--report", report.to_str().unwrap()],
        &[&src, &dst],
    );
    assert!(run.status.success(), "{}", stderr(&run));
    assert_eq!(
        manifest_digest(&dst, "logging/operator", "latest")
            .await
            .unwrap(),
        Some(digests[2].clone()),
        "the last file's image"
    );
    for (team, digest) in ["a", "b", "c"].iter().zip(&digests) {
        assert_eq!(
            manifest_digest(&dst, &format!("logging/{team}"), "v1")
                .await
                .unwrap()
                .as_ref(),
            Some(digest),
            "every file's other tags are mirrored"
        );
    }
    let json: serde_json::Value = serde_json::from_slice(&std::fs::read(&report).unwrap()).unwrap();
    let superseded = json["superseded"].as_array().unwrap();
    assert_eq!(superseded.len(), 2, "{json}");
    assert_eq!(superseded[1]["mapping"], format!("{}:1", files[1]));
    assert_eq!(superseded[1]["by"], format!("{}:1", files[2]));
}

/// One group of a groups file run as a CronJob per group would: only its files, with its
/// options: `keep_manifest_list: false` pushes the index's linux/amd64 image as itself, and
/// `digest_tag` adds a tag of the digest's first 12 hex digits beside the mapped one.
#[tokio::test]
async fn a_group_run_mirrors_its_files_with_its_options() {
    let src = Registry::start().await.unwrap();
    let dst = Registry::start().await.unwrap();
    let (s, d) = (src.host(), dst.host());
    let index = push_index(
        &src,
        "multi/app",
        "v1",
        three_platform_index_spec(),
        Format::Oci,
    )
    .await
    .unwrap();
    let mappings = tempfile::tempdir().unwrap();
    write(
        mappings.path(),
        "mapping_cosa_1",
        &format!("{s}/multi/app:v1 {d}/cosa/app:v1\n"),
    );
    write(
        mappings.path(),
        "mapping_other",
        &format!("{s}/multi/app:v1 {d}/other/app:v1\n"),
    );
    let groups_dir = tempfile::tempdir().unwrap();
    let groups = write(
        groups_dir.path(),
        "groups.yaml",
        "groups:\n\
         - name: cosa\n  prefix: mapping_cosa\n  keep_manifest_list: false\n  digest_tag: true\n\
         - name: other\n  prefix: mapping_other\n",
    );
    let dir = mappings.path().to_str().unwrap();
    let group = ["--groups", &groups, "--group", "cosa", "--dir", dir];
    let out = run_local(&[], &group, &[&src, &dst]);
    assert!(out.status.success(), "{}", stderr(&out));
    let amd64 = &index.children[0].digest;
    assert_eq!(
        manifest_digest(&dst, "cosa/app", "v1")
            .await
            .unwrap()
            .as_ref(),
        Some(amd64),
        "the linux/amd64 image alone"
    );
    // The tag of the source's digest (the index the mapping names), first 12 hex digits.
    let short_tag = &index.digest["sha256:".len().."sha256:".len() + 12];
    assert!(
        manifest_digest(&dst, "cosa/app", short_tag)
            .await
            .unwrap()
            .is_some(),
        "the digest tag {short_tag}: {}",
        stdout(&out)
    );
    assert_eq!(
        manifest_digest(&dst, "other/app", "v1").await.unwrap(),
        None,
        "another group's file is not run"
    );
}

/// Every group on its own schedule in one scheduler: a group whose run outlasts its period
/// skips the starts that come meanwhile (its runs never overlap), while another group runs
/// on its own period regardless. Shaped: the slow group's source, paced by the test proxy.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn groups_run_on_their_own_schedules_and_a_long_run_is_not_overlapped() {
    let src = Registry::start().await.unwrap();
    let dst = Registry::start().await.unwrap();
    let d = dst.host();
    let layer = Layer::random(250_000);
    push_image(&src, "slow/app", "1", ImageSpec::new(vec![layer.clone()]))
        .await
        .unwrap();
    push_image(
        &src,
        "quick/app",
        "1",
        ImageSpec::new(vec![Layer::random(500)]),
    )
    .await
    .unwrap();
    let proxy = Proxy::start(&src).await.unwrap();
    proxy.pace(layer.digest(), 100_000); // 2.5 s per run of the slow group
    let mappings = tempfile::tempdir().unwrap();
    let p = proxy.host();
    write(
        mappings.path(),
        "mapping_slow",
        &format!("{p}/slow/app:1 {d}/slow/app:1\n"),
    );
    write(
        mappings.path(),
        "mapping_quick",
        &format!("{}/quick/app:1 {d}/quick/app:1\n", src.host()),
    );
    let groups = tempfile::tempdir().unwrap();
    let groups_file = write(
        groups.path(),
        "groups.yaml",
        "groups:\n\
         - name: slow\n  prefix: mapping_slow\n  schedule: '@every 1s'\n\
         - name: quick\n  prefix: mapping_quick\n  schedule: '@every 2s'\n",
    );
    let mut args: Vec<String> = ["run", "--local", "--groups", &groups_file, "--dir"]
        .iter()
        .map(|x| x.to_string())
        .collect();
    args.push(mappings.path().display().to_string());
    args.extend(registry_flags(&[&src, &dst]));
    args.extend(["--insecure-registry".to_string(), p.clone()]);
    // Both groups' runs share the process's one state file.
    let state = groups.path().join("state.db").display().to_string();
    args.extend(["--state".to_string(), state]);
    let child = std::process::Command::new(mirror_tests::binary("mirror-scheduler"))
        .args(&args)
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    tokio::time::sleep(std::time::Duration::from_millis(6_500)).await;
    let _ = std::process::Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status();
    let out = mirror_tests::fleet::wait_output(child, std::time::Duration::from_secs(20));
    let err = stderr(&out);
    assert!(out.status.success(), "{err}");
    let count = |s: &str| err.lines().filter(|l| l.contains(s)).count();
    assert!(
        count("group slow: the previous run is still going; this start is skipped") >= 1,
        "{err}"
    );
    assert!(count("group quick: run ok") >= 2, "{err}");
    assert!(count("group slow: run ok") >= 1, "{err}");
}

/// A base layer shared by five tags in two repositories is one upload and one mount in a
/// real run; the dry run before it predicts exactly that (it used to count the base once
/// per tag), and says what its blob counts count.
#[tokio::test]
async fn dry_run_counts_a_shared_layer_once_and_matches_what_the_run_uploads() {
    let src = Registry::start().await.unwrap();
    let dst = Registry::start().await.unwrap();
    let (s, d) = (src.host(), dst.host());
    let base = Layer::random(60_000);
    for (repo, tags) in [
        ("shared/app", &["1", "2", "3"][..]),
        ("shared/tools", &["a", "b"]),
    ] {
        for tag in tags {
            let own = Layer::random(1_000);
            push_image(&src, repo, tag, ImageSpec::new(vec![base.clone(), own]))
                .await
                .unwrap();
        }
    }
    let dir = tempfile::tempdir().unwrap();
    let file = write(
        dir.path(),
        "mapping_shared",
        &format!("{s}/shared/app {d}/mirror/app\n{s}/shared/tools {d}/mirror/tools\n"),
    );
    let totals = |name: &str, extra: &[&str]| {
        let report = dir.path().join(name);
        let mut args = extra.to_vec();
        args.extend(["--report", report.to_str().unwrap()]);
        let out = run_local(std::slice::from_ref(&file), &args, &[&src, &dst]);
        assert!(out.status.success(), "{}", stderr(&out));
        let json: serde_json::Value =
            serde_json::from_slice(&std::fs::read(&report).unwrap()).unwrap();
        (json["totals"].clone(), stderr(&out))
    };
    let (predicted, said) = totals("dry.json", &["--dry-run"]);
    assert!(
        catalog(&dst).await.unwrap().is_empty(),
        "dry run wrote nothing"
    );
    assert!(
        said.contains(
            "each distinct blob counted once per registry it is uploaded to and once per repository it is mounted into"
        ),
        "{said}"
    );
    let (moved, _) = totals("run.json", &[]);
    assert_eq!(
        (&predicted["blobs_uploaded"], &predicted["blobs_mounted"]),
        (&serde_json::json!(11), &serde_json::json!(1)),
        "5 configs + 5 own layers + the base once; the base mounted into the other repository: {predicted}"
    );
    for key in [
        "blobs_uploaded",
        "bytes_uploaded",
        "blobs_mounted",
        "bytes_mounted",
    ] {
        assert_eq!(
            predicted[key], moved[key],
            "{key}: predicted {predicted}, moved {moved}"
        );
    }
    let hex = base.digest().trim_start_matches("sha256:");
    let base_puts = dst
        .requests()
        .into_iter()
        .filter(|r| r.method == "PUT" && r.path.contains(hex))
        .count();
    assert_eq!(base_puts, 1, "the run did upload the base once");
}
