//! Teams push with credentials of their own on one fleet: a job carries a credentials
//! *name*; the worker copies it with the docker config it holds under that name (as
//! Kubernetes mounts Secrets), over its own, and never with another name's.
//!
//! Real: docker-registry behind distribution's token auth, and a token service (the test
//! bed's) that lets each team's user push only to repositories under its team's prefix,
//! as quay.io organisations do.

use std::path::Path;
use std::time::Duration;

use mirror_tests::fleet::{prefix, scheduler, Worker};
use mirror_tests::mirror::{registry_flags, run_binary};
use mirror_tests::test_io::{text, write};
use mirror_tests::*;

/// A destination registry whose token service knows two team users.
async fn team_registry() -> (TokenServer, Registry) {
    let server = TokenServer::start(TokenServerOptions {
        anonymous_pull: false,
        scoped_users: vec![
            ("team-a".into(), "pass-a".into(), "team-a/".into()),
            ("team-b".into(), "pass-b".into(), "team-b/".into()),
        ],
        ..TokenServerOptions::default()
    })
    .unwrap();
    let dst = Registry::start_with(RegistryOptions {
        token_auth: Some(server.registry_auth()),
        ..Default::default()
    })
    .await
    .unwrap();
    (server, dst)
}

/// `DIR/NAME/FILE` holding `user:pass` for `host`.
fn secret(dir: &Path, name: &str, file: &str, host: &str, user: &str, pass: &str) {
    let written = write_docker_config(&dir.join(name), &[(host, user, pass)]).unwrap();
    if file != "config.json" {
        std::fs::rename(&written, dir.join(name).join(file)).unwrap();
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn each_run_pushes_with_its_named_credentials_and_only_where_they_allow() {
    let src = Registry::start().await.unwrap();
    let (_server, dst) = team_registry().await;
    let (s, d) = (src.host(), dst.host());
    push_image(&src, "app", "1", ImageSpec::new(vec![Layer::random(2_000)]))
        .await
        .unwrap();
    let dir = tempfile::tempdir().unwrap();
    let creds = dir.path().join("credentials");
    secret(&creds, "push-a", "config.json", &d, "team-a", "pass-a");
    secret(
        &creds,
        "push-b",
        ".dockerconfigjson",
        &d,
        "team-b",
        "pass-b",
    );
    let run = |file: &str, name: &str| {
        let mut args: Vec<String> = ["run", "--local", "-f", file, "--credentials", name]
            .iter()
            .map(|x| x.to_string())
            .collect();
        args.extend(["--credentials-dir".to_string(), creds.display().to_string()]);
        args.extend(registry_flags(&[&src, &dst]));
        run_binary("mirror-scheduler", &args)
    };
    let mapping_a = write(
        dir.path(),
        "mapping_a",
        &format!("{s}/app:1 {d}/team-a/app:1\n"),
    );
    let mapping_b = write(
        dir.path(),
        "mapping_b",
        &format!("{s}/app:1 {d}/team-b/app:1\n"),
    );
    for (file, name) in [(&mapping_a, "push-a"), (&mapping_b, "push-b")] {
        let out = run(file, name);
        assert!(out.status.success(), "{name}: {}", text(&out.stderr));
    }

    // Team b's credentials cannot write team a's repositories.
    let stolen = write(
        dir.path(),
        "mapping_x",
        &format!("{s}/app:1 {d}/team-a/other:1\n"),
    );
    let out = run(&stolen, "push-b");
    assert_eq!(out.status.code(), Some(1));
    assert!(
        text(&out.stderr).contains("granted less than"),
        "{}",
        text(&out.stderr)
    );

    // A name this process does not hold fails, naming it.
    let out = run(&mapping_a, "push-c");
    assert_eq!(out.status.code(), Some(1));
    assert!(
        text(&out.stderr).contains("credentials \"push-c\": this worker has no"),
        "{}",
        text(&out.stderr)
    );
    assert!(
        !text(&out.stderr).contains("pass-"),
        "no secret in the output"
    );
}

/// A Secret rotated on disk is used by the worker's next job, without a restart.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_rotated_secret_is_used_by_the_next_job_without_a_restart() {
    let src = Registry::start().await.unwrap();
    let (_server, dst) = team_registry().await;
    let (s, d) = (src.host(), dst.host());
    let img = push_image(&src, "app", "1", ImageSpec::new(vec![Layer::random(2_000)]))
        .await
        .unwrap();
    let dir = tempfile::tempdir().unwrap();
    let creds = dir.path().join("credentials");
    secret(
        &creds,
        "push-b",
        "config.json",
        &d,
        "team-b",
        "an-old-password",
    );
    let mapping = write(
        dir.path(),
        "mapping_b",
        &format!("{s}/app:1 {d}/team-b/app:1\n"),
    );
    let p = prefix();
    let creds_flag = creds.display().to_string();
    let _w = Worker::start(&p, &[&src, &dst], &[], &["--credentials-dir", &creds_flag]);
    let args = ["run", "--wait", "-f", &mapping, "--credentials", "push-b"];
    let before = scheduler(&p, &args, &[&src, &dst], &[]);
    assert_eq!(before.status.code(), Some(1), "{}", text(&before.stderr));
    assert!(
        text(&before.stderr).contains("refused"),
        "{}",
        text(&before.stderr)
    );

    tokio::time::sleep(Duration::from_millis(20)).await;
    secret(&creds, "push-b", "config.json", &d, "team-b", "pass-b");
    let after = scheduler(&p, &args, &[&src, &dst], &[]);
    assert!(after.status.success(), "{}", text(&after.stderr));
    assert!(
        text(&after.stdout).contains(&format!("{} {d}/team-b/app:1", img.digest)),
        "{}",
        text(&after.stdout)
    );
}
